/*
 * The Anthropic interface: POST /v1/messages and /v1/messages/count_tokens
 * (with or without /v1), keys in x-api-key (or any carrier the gateway
 * accepts), and the error shape {"type":"error","error":{"type",
 * "message"}}.  The model list is GET /v1/models with an
 * anthropic-version header, served at OpenAI's URL in this shape.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_request.h"
#include "ngx_http_llmproxy_response.h"

#include <llmp_iface.h>
#include <llmp_json_scan.h>


/* an API path starting "/messages": its two endpoints */

void
ngx_http_llmproxy_anthropic_url(ngx_str_t *path,
    ngx_http_llmproxy_url_t *url)
{
    if (path->len == 9) {
        url->endpoint = NGX_HTTP_LLMPROXY_EP_MESSAGES;

    } else if (path->len == 22
               && ngx_strncmp(path->data, "/messages/count_tokens", 22) == 0)
    {
        url->endpoint = NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS;

    } else {
        return;
    }

    url->path = *path;
}


/* the same checks as OpenAI's: one JSON object with a string "model" */

ngx_int_t
ngx_http_llmproxy_anthropic_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    return ngx_http_llmproxy_openai_check(r, ctx);
}


ngx_int_t
ngx_http_llmproxy_anthropic_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    u_char      *p;
    const char  *type;

    type = llmp_iface_error_type(LLMP_IFACE_ANTHROPIC,
                                 (int) ctx->err.status);

    p = ngx_pnalloc(r->pool, 6 * ctx->err.message.len + 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_sprintf(p, "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                    "\"message\":", type);
    p += llmp_json_escape(ctx->err.message.data, ctx->err.message.len, p);
    *p++ = '}';
    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}


/* Anthropic's row of the interface table, registered by _module.c */

const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_anthropic_iface = {
    LLMP_IFACE_ANTHROPIC,
    ngx_http_llmproxy_anthropic_url,
    ngx_http_llmproxy_anthropic_check,
    ngx_http_llmproxy_anthropic_error_body,
    ngx_string("x-api-key: "),
    ngx_string("anthropic-version: 2023-06-01" CRLF),
    ngx_string("anthropic-version"),
    ngx_string("/messages"),
    "{\"input_tokens\":%uz}",
    ngx_string("event: error\ndata: "),
    ngx_string("{\"data\":["),
    ngx_http_llmproxy_anthropic_model_json
};

/*
 * The Anthropic interface: POST /v1/messages and /v1/messages/count_tokens
 * (with or without /v1), keys in x-api-key (or any carrier the gateway
 * accepts), and the error shape {"type":"error","error":{"type",
 * "message"}}.  The model list is GET /v1/models with an
 * anthropic-version header, served by the OpenAI handler in this shape.
 */

#include "ngx_http_llmproxy_module.h"


ngx_int_t
ngx_http_llmproxy_anthropic_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  path;

    /* "/v1beta/" is Gemini's: it stays in the path, unknown here */

    if (ngx_http_llmproxy_api_path(&r->uri, &path)) {
        path = r->uri;
    }

    if (path.len == 9) {
        ctx->req.endpoint = NGX_HTTP_LLMPROXY_EP_MESSAGES;

    } else if (path.len == 22
               && ngx_strncmp(path.data, "/messages/count_tokens", 22) == 0)
    {
        ctx->req.endpoint = NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS;

    } else {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                      "invalid_request_error", "unknown_url",
                                      "Unknown request URL: %V %V",
                                      &r->method_name, &r->uri);
    }

    ctx->req.endpoint_path = path;

    rc = ngx_http_llmproxy_request_prepare(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_llmproxy_request_start(r, ctx);
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

/*
 * The OpenAI interface: endpoints, request body checks, the model list and
 * the error shape {"error":{"message","type","param","code"}}.
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


typedef struct {
    ngx_str_t                     path;
    ngx_uint_t                    endpoint;
} ngx_http_llmproxy_openai_endpoint_t;


static ngx_http_llmproxy_openai_endpoint_t  ngx_http_llmproxy_openai_eps[] = {
    { ngx_string("/chat/completions"), NGX_HTTP_LLMPROXY_EP_CHAT },
    { ngx_string("/completions"), NGX_HTTP_LLMPROXY_EP_COMPLETIONS },
    { ngx_string("/embeddings"), NGX_HTTP_LLMPROXY_EP_EMBEDDINGS },
    { ngx_string("/responses"), NGX_HTTP_LLMPROXY_EP_RESPONSES },
    { ngx_null_string, 0 }
};


static ngx_int_t ngx_http_llmproxy_openai_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_openai_include_usage(
    ngx_http_llmproxy_ctx_t *ctx);


/*
 * An API path ("/v1" taken off): an endpoint, or the model list
 * ("/models", "/models/ID", served in the shape the client's headers
 * ask for)
 */

void
ngx_http_llmproxy_openai_url(ngx_str_t *path, ngx_http_llmproxy_url_t *url)
{
    ngx_http_llmproxy_openai_endpoint_t  *ep;

    for (ep = ngx_http_llmproxy_openai_eps; ep->path.len; ep++) {
        if (ep->path.len == path->len
            && ngx_strncmp(ep->path.data, path->data, path->len) == 0)
        {
            url->endpoint = ep->endpoint;
            url->path = ep->path;
            return;
        }
    }

    if (path->len == 7 && ngx_strncmp(path->data, "/models", 7) == 0) {
        url->list = 1;

    } else if (path->len > 8 && ngx_strncmp(path->data, "/models/", 8) == 0)
    {
        url->list = 1;
        url->model.data = path->data + 8;
        url->model.len = path->len - 8;
    }
}


ngx_int_t
ngx_http_llmproxy_openai_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t        rc;
    llmp_json_rc_e   jrc;

    jrc = llmp_json_scan_top(ctx->req.body, ctx->req.body_len, &ctx->req.top);

    if (jrc != LLMP_JSON_OK) {
        return ngx_http_llmproxy_request_json_fail(r, jrc, ctx->req.top.name,
                                                   ctx->req.top.error_offset);
    }

    rc = ngx_http_llmproxy_openai_model(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * lenient parsers (pydantic's) take "true", 1 and the like for true: a
     * stream the gateway would not see as one, its usage never counted
     */

    switch (ctx->req.top.stream.type) {

    case LLMP_JSON_NONE:
    case LLMP_JSON_NULL:
    case LLMP_JSON_FALSE:
        ctx->req.stream = 0;
        break;

    case LLMP_JSON_TRUE:
        ctx->req.stream = 1;
        break;

    default:
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_stream",
                                      "stream: expected a boolean");
    }

    /*
     * a background response answers "queued" at once and is billed by the
     * provider when it ends, out of the gateway's sight: its cost would
     * never reach the key's record, budget or tpm
     */

    if (ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_RESPONSES
        && ctx->req.top.background.type != LLMP_JSON_NONE
        && ctx->req.top.background.type != LLMP_JSON_NULL
        && ctx->req.top.background.type != LLMP_JSON_FALSE)
    {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request_error", "unsupported_parameter",
                   "background: not supported through this gateway (the "
                   "usage of a background response cannot be recorded)");
    }

    if (ctx->req.stream
        && (ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_CHAT
            || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_COMPLETIONS))
    {
        ngx_http_llmproxy_openai_include_usage(ctx);
    }

    return NGX_OK;
}


/* the body's "model": one string, unescaped, a name that reads one way */

static ngx_int_t
ngx_http_llmproxy_openai_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    long     n;
    u_char  *p;

    if (ctx->req.top.model.type == LLMP_JSON_NONE) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "missing_model",
                                      "you must provide a model parameter");
    }

    if (ctx->req.top.model.type != LLMP_JSON_STRING) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_model",
                                      "model: expected a string");
    }

    if (ctx->req.top.model.escaped) {
        p = ngx_pnalloc(r->pool,
                        ctx->req.top.model.end - ctx->req.top.model.start);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = llmp_json_unescape(ctx->req.body, ctx->req.top.model.start,
                               ctx->req.top.model.end, p);
        if (n < 0) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request_error",
                                          "invalid_model",
                                          "model: invalid escape");
        }

        ctx->req.model.data = p;
        ctx->req.model.len = n;

    } else {
        ctx->req.model.data = ctx->req.body + ctx->req.top.model.start + 1;
        ctx->req.model.len = ctx->req.top.model.end
                             - ctx->req.top.model.start - 2;
    }

    if (ctx->req.model.len == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "missing_model",
                                      "you must provide a model parameter");
    }

    /*
     * the name is compared, logged, recorded and passed on as a C string
     * (translation): a NUL, a control character or invalid UTF-8 could be
     * one name here and another further on
     */

    if (!llmp_json_name_ok(ctx->req.model.data, ctx->req.model.len)) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_model",
                                      "model: a control character or "
                                      "invalid UTF-8 in the name");
    }

    return NGX_OK;
}


/*
 * A stream's tokens are known only if the provider sends its usage chunk,
 * which it does when asked: stream_options.include_usage is made true in
 * the request when the client did not set it so, and that chunk is then
 * kept from the client (ctx->req.hide_usage).  The scanner refused any second
 * reading of stream_options or include_usage, so the member edited is the
 * one the provider reads.
 */

static void
ngx_http_llmproxy_openai_include_usage(ngx_http_llmproxy_ctx_t *ctx)
{
    llmp_json_edit_t  e;

    if (llmp_json_usage_edit(ctx->req.body, &ctx->req.top, &e) == 0) {
        return;                           /* the client asked */
    }

    ctx->req.edit_start = e.start;
    ctx->req.edit_end = e.end;
    ctx->req.edit.data = (u_char *) e.value;
    ctx->req.edit.len = e.len;
    ctx->req.hide_usage = 1;
}


ngx_int_t
ngx_http_llmproxy_openai_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    u_char  *p;
    size_t   len;

    len = sizeof("{\"error\":{\"message\":,\"type\":\"\",\"param\":null,"
                 "\"code\":}}")
          + 6 * ctx->err.message.len + 2 + 64 + 64 + 2;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, "{\"error\":{\"message\":",
                   sizeof("{\"error\":{\"message\":") - 1);
    p += llmp_json_escape(ctx->err.message.data, ctx->err.message.len, p);
    p = ngx_sprintf(p, ",\"type\":\"%s\",\"param\":null,\"code\":",
                    ctx->err.type ? ctx->err.type : "api_error");

    if (ctx->err.code) {
        p = ngx_sprintf(p, "\"%s\"", ctx->err.code);

    } else {
        p = ngx_sprintf(p, "\"%ui\"", ctx->err.status);
    }

    *p++ = '}';
    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}


/* OpenAI's row of the interface table, registered by _module.c */

const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_openai_iface = {
    LLMP_IFACE_OPENAI,
    ngx_http_llmproxy_openai_url,
    ngx_http_llmproxy_openai_check,
    ngx_http_llmproxy_openai_error_body,
    ngx_string("Authorization: Bearer "),
    ngx_null_string,
    ngx_null_string,
    ngx_string("/chat/completions"),
    "{\"input_tokens\":%uz}",
    ngx_string("data: "),
    ngx_string("{\"object\":\"list\",\"data\":["),
    ngx_http_llmproxy_openai_model_json
};

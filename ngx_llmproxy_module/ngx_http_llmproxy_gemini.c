/*
 * The Gemini interface: POST /v1beta/models/MODEL:generateContent,
 * :streamGenerateContent (?alt=sse), :countTokens, :embedContent and
 * :batchEmbedContents (also
 * under /v1/), GET /v1beta/models[/MODEL]; keys in x-goog-api-key or
 * ?key=; the model is in the URL, not in the body; the error shape is
 * {"error":{"code","message","status"}}.
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
    ngx_str_t                     name;
    ngx_uint_t                    endpoint;
    ngx_uint_t                    stream;
} ngx_http_llmproxy_gemini_method_t;


static ngx_int_t ngx_http_llmproxy_gemini_embed_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_gemini_embed_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t start, size_t end);
static ngx_int_t ngx_http_llmproxy_gemini_inner_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t start, size_t end);
static ngx_int_t ngx_http_llmproxy_gemini_span_cmp(const void *a,
    const void *b);


static ngx_http_llmproxy_gemini_method_t  ngx_http_llmproxy_gemini_methods[] =
{
    { ngx_string("generateContent"), NGX_HTTP_LLMPROXY_EP_GENERATE, 0 },
    { ngx_string("streamGenerateContent"), NGX_HTTP_LLMPROXY_EP_GENERATE, 1 },
    { ngx_string("countTokens"), NGX_HTTP_LLMPROXY_EP_GEMINI_COUNT, 0 },
    { ngx_string("embedContent"), NGX_HTTP_LLMPROXY_EP_EMBED_CONTENT, 0 },
    { ngx_string("batchEmbedContents"), NGX_HTTP_LLMPROXY_EP_EMBED_CONTENT,
      0 },
    { ngx_null_string, 0, 0 }
};


/*
 * An API path: "/models" or "/models/NAME", the list or one model;
 * "/models/NAME:method", a model call
 */

void
ngx_http_llmproxy_gemini_url(ngx_str_t *path, ngx_http_llmproxy_url_t *url)
{
    u_char                             *colon, *last;
    ngx_str_t                           name, action;
    ngx_http_llmproxy_gemini_method_t  *m;

    if (path->len < 7 || ngx_strncmp(path->data, "/models", 7) != 0
        || (path->len > 7 && path->data[7] != '/'))
    {
        return;
    }

    name.data = path->data + 8;
    name.len = path->len > 8 ? path->len - 8 : 0;

    last = name.data + name.len;
    colon = name.len ? ngx_strlchr(name.data, last, ':') : NULL;

    if (colon == NULL) {
        url->list = 1;
        url->model = name;
        return;
    }

    action.data = colon + 1;
    action.len = last - colon - 1;
    name.len = colon - name.data;

    for (m = ngx_http_llmproxy_gemini_methods; m->name.len; m++) {
        if (m->name.len == action.len
            && ngx_strncmp(m->name.data, action.data, m->name.len) == 0)
        {
            break;
        }
    }

    if (m->name.len == 0 || name.len == 0) {
        return;
    }

    url->endpoint = m->endpoint;
    url->stream = m->stream;
    url->model = name;
    url->action = action;

    /* for the records: "/generateContent" */
    url->path.data = colon;
    url->path.len = last - colon;
}


/*
 * One JSON object; the model came with the URL.  A body can name a model
 * again: "model" of :embedContent (and of any request, as the API's
 * messages accept it there), "model" of each of :batchEmbedContents'
 * requests[], generateContentRequest.model of :countTokens, all as
 * "models/NAME".  Each attempt writes its deployment's upstream name in
 * all of them, so the provider can only see the model the gateway checked
 * (the real API refuses a name that is not the URL's anyway).  A value
 * that is not a string is left for the provider to refuse.
 */

ngx_int_t
ngx_http_llmproxy_gemini_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t       rc;
    llmp_json_rc_e  jrc;

    jrc = llmp_json_scan_top(ctx->req.body, ctx->req.body_len, &ctx->req.top);

    if (jrc != LLMP_JSON_OK) {
        return ngx_http_llmproxy_request_json_fail(r, jrc, ctx->req.top.name,
                                                   ctx->req.top.error_offset);
    }

    rc = ngx_http_llmproxy_gemini_embed_models(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the body's "model" is spliced as "models/NAME", not as OpenAI's */
    ctx->req.top.model.type = LLMP_JSON_NONE;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_gemini_embed_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    size_t     pos, start, end;
    ngx_int_t  rc;

    if (ctx->req.top.model.type == LLMP_JSON_STRING
        && ngx_http_llmproxy_gemini_embed_model(r, ctx,
                                                ctx->req.top.model.start,
                                                ctx->req.top.model.end)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->req.top.gen_request.type == LLMP_JSON_OBJECT) {
        start = ctx->req.top.gen_request.start;
        end = ctx->req.top.gen_request.end;

        rc = ngx_http_llmproxy_gemini_inner_model(r, ctx, start, end);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->req.action.len != sizeof("batchEmbedContents") - 1
        || ngx_strncmp(ctx->req.action.data, "batchEmbedContents",
                       ctx->req.action.len) != 0
        || ctx->req.top.requests.type != LLMP_JSON_ARRAY)
    {
        goto done;
    }

    pos = ctx->req.top.requests.start;

    while (llmp_json_array_next(ctx->req.body, ctx->req.body_len, &pos, &start,
                                &end))
    {
        if (ctx->req.body[start] != '{') {
            continue;
        }

        rc = ngx_http_llmproxy_gemini_inner_model(r, ctx, start, end);
        if (rc != NGX_OK) {
            return rc;
        }
    }

done:

    /* in the body's order, as ngx_http_llmproxy_gemini_embed_body() wants */

    if (ctx->req.embed_models && ctx->req.embed_models->nelts > 1) {
        ngx_sort(ctx->req.embed_models->elts, ctx->req.embed_models->nelts,
                 sizeof(ngx_http_llmproxy_span_t),
                 ngx_http_llmproxy_gemini_span_cmp);
    }

    return NGX_OK;
}


/* the "model" of an object inside the body, [start, end) */

static ngx_int_t
ngx_http_llmproxy_gemini_inner_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t start, size_t end)
{
    llmp_json_rc_e   rc;
    llmp_json_top_t  el;

    rc = llmp_json_scan_top(ctx->req.body + start, end - start, &el);

    if (rc != LLMP_JSON_OK) {
        /* a duplicate or ambiguous "model": valid JSON was checked */
        return ngx_http_llmproxy_request_json_fail(r, rc, el.name,
                                                   start + el.error_offset);
    }

    if (el.model.type != LLMP_JSON_STRING) {
        return NGX_OK;
    }

    if (ngx_http_llmproxy_gemini_embed_model(r, ctx, start + el.model.start,
                                             start + el.model.end)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_gemini_span_cmp(const void *a, const void *b)
{
    const ngx_http_llmproxy_span_t  *x = a, *y = b;

    return x->start < y->start ? -1 : (x->start > y->start);
}


static ngx_int_t
ngx_http_llmproxy_gemini_embed_model(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t start, size_t end)
{
    ngx_http_llmproxy_span_t  *sp;

    if (ctx->req.embed_models == NULL) {
        ctx->req.embed_models =
            ngx_array_create(r->pool, 4, sizeof(ngx_http_llmproxy_span_t));
        if (ctx->req.embed_models == NULL) {
            return NGX_ERROR;
        }
    }

    sp = ngx_array_push(ctx->req.embed_models);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    sp->start = start;
    sp->end = end;

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_gemini_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    u_char      *p;
    const char  *status;

    status = llmp_iface_error_type(LLMP_IFACE_GEMINI,
                                   (int) ctx->err.status);

    p = ngx_pnalloc(r->pool, 6 * ctx->err.message.len + 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_sprintf(p, "{\"error\":{\"code\":%ui,\"message\":",
                    ctx->err.status);
    p += llmp_json_escape(ctx->err.message.data, ctx->err.message.len, p);
    p = ngx_sprintf(p, ",\"status\":\"%s\"}}", status);

    out->len = p - out->data;

    return NGX_OK;
}


/* Gemini's row of the interface table, registered by _module.c */

const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_gemini_iface = {
    LLMP_IFACE_GEMINI,
    ngx_http_llmproxy_gemini_url,
    ngx_http_llmproxy_gemini_check,
    ngx_http_llmproxy_gemini_error_body,
    ngx_string("x-goog-api-key: "),
    ngx_null_string,
    ngx_null_string,
    ngx_null_string,
    "{\"totalTokens\":%uz}",
    ngx_string("data: "),
    ngx_string("{\"models\":["),
    ngx_http_llmproxy_gemini_model_json
};

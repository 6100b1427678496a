/*
 * Requests to a provider that does not speak the client's interface: the
 * glue between the module and the translation library (common/
 * llmp_translate*).  The request body is translated for each attempt (its
 * deployment decides the interface and the model); a non-streamed answer
 * or an error is held whole and translated back; a stream is translated
 * as it arrives, each complete event passed on at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_upstream.h"

#include <llmp_iface.h>

#include <llmp_translate.h>
#include <llmp_translate_responses.h>


/*
 * /v1/responses: the client speaks OpenAI, but its own API, which the
 * library reads and writes apart from chat.completions
 */
#define ngx_http_llmproxy_xlate_responses(ctx)                               \
    ((ctx)->req.endpoint == NGX_HTTP_LLMPROXY_EP_RESPONSES)


static ngx_int_t ngx_http_llmproxy_translate_copy(ngx_http_request_t *r,
    llmp_buf_t *buf, ngx_str_t *out);
static void ngx_http_llmproxy_translate_cleanup(void *data);
static void ngx_http_llmproxy_translate_responses_cleanup(void *data);


/* which of its interfaces a provider is spoken to in, failing the client's */

ngx_uint_t
ngx_http_llmproxy_translate_target(ngx_uint_t interfaces)
{
    if (interfaces & LLMP_IFACE_OPENAI) {
        return LLMP_IFACE_OPENAI;
    }

    if (interfaces & LLMP_IFACE_ANTHROPIC) {
        return LLMP_IFACE_ANTHROPIC;
    }

    return LLMP_IFACE_GEMINI;
}


/*
 * The body for this attempt's deployment.  A body the library cannot read
 * is the client's mistake: 400, with the library's reason.
 */

ngx_int_t
ngx_http_llmproxy_translate_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *out)
{
    int          rc;
    char         err[256];
    u_char      *model;
    llmp_buf_t   buf;

    model = ngx_pnalloc(r->pool, d->upstream_model.len + 1);
    if (model == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(model, d->upstream_model.data,
                       d->upstream_model.len + 1);

    ngx_memzero(&buf, sizeof(llmp_buf_t));
    err[0] = '\0';

    if (ngx_http_llmproxy_xlate_responses(ctx)) {
        rc = llmp_responses_request((int) ctx->up.iface, (char *) ctx->req.body,
                                    ctx->req.body_len, (char *) model,
                                    ctx->req.stream, &buf, err, sizeof(err));

    } else {
        rc = llmp_translate_request((int) ctx->req.iface, (int) ctx->up.iface,
                                    (char *) ctx->req.body, ctx->req.body_len,
                                    (char *) model, ctx->req.stream, &buf, err,
                                    sizeof(err));
    }

    if (rc != 0) {
        llmp_buf_free(&buf);

        (void) ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "untranslatable_request", "%s",
                                      err[0] ? err : "out of memory");
        ctx->err.keep = 1;

        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: request translated from %s to %s, %uz bytes",
                   llmp_iface_name(ctx->req.iface),
                   llmp_iface_name(ctx->up.iface), buf.len);

    return ngx_http_llmproxy_translate_copy(r, &buf, out);
}


/*
 * A held answer (or error) of the provider's, in the client's interface.
 * One read whole by the upstream handler was translated there, and one
 * that could not be was a failed attempt.  One that was not (its end was
 * the connection's) is translated here, and when it cannot be the client
 * gets a 502 in its own shape, not a body in a shape it does not read.
 */

ngx_int_t
ngx_http_llmproxy_translate_response(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *body)
{
    ngx_int_t  rc;

    if (ctx->answer.xlated.data == NULL) {
        rc = ngx_http_llmproxy_translate_answer(r, ctx,
                                                r->headers_out.status,
                                                body->data, body->len);

        if (rc == NGX_DECLINED) {
            (void) ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_GATEWAY,
                                          "api_error", "translation_failed",
                                          "the answer of \"%V\" could not "
                                          "be translated from %s",
                                          &ctx->route.current->id,
                                          llmp_iface_name(ctx->up.iface));

            if (ngx_http_llmproxy_error_body(r, ctx, body) != NGX_OK) {
                return NGX_ERROR;
            }

            r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
            r->headers_out.status_line.len = 0;
            r->err_status = NGX_HTTP_BAD_GATEWAY;

            return NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    *body = ctx->answer.xlated;

    return NGX_OK;
}


/*
 * An answer of the provider's, whole, in the client's interface (kept in
 * ctx->answer.xlated); NGX_DECLINED: it cannot be translated.  An error always
 * can: the library keeps its message whatever its shape.
 */

ngx_int_t
ngx_http_llmproxy_translate_answer(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t status, u_char *data,
    size_t len)
{
    int            rc;
    char           err[256];
    u_char        *model;
    llmp_buf_t     buf;
    llmp_usage_t   usage;

    ngx_memzero(&buf, sizeof(llmp_buf_t));

    if (status >= NGX_HTTP_BAD_REQUEST) {
        rc = llmp_translate_error((int) ctx->up.iface, (int) ctx->req.iface,
                                  (int) status, (char *) data, len, &buf);

        if (rc != 0) {
            llmp_buf_free(&buf);
            return NGX_ERROR;
        }

        return ngx_http_llmproxy_translate_copy(r, &buf, &ctx->answer.xlated);
    }

    model = ngx_pnalloc(r->pool, ctx->req.model.len + 1);
    if (model == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(model, ctx->req.model.data, ctx->req.model.len + 1);

    err[0] = '\0';

    if (ngx_http_llmproxy_xlate_responses(ctx)) {
        rc = llmp_responses_response((int) ctx->up.iface,
                                     (char *) ctx->req.body, ctx->req.body_len,
                                     (char *) data, len, (char *) model,
                                     &buf, &usage, err, sizeof(err));

    } else {
        rc = llmp_translate_response((int) ctx->up.iface, (int) ctx->req.iface,
                                     (char *) data, len, (char *) model,
                                     &buf, &usage, err, sizeof(err));
    }

    if (rc != 0) {
        llmp_buf_free(&buf);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: answer of \"%V\" not translated from "
                      "%s: %s", &ctx->route.current->id,
                      llmp_iface_name(ctx->up.iface),
                      err[0] ? err : "out of memory");

        return NGX_DECLINED;
    }

    return ngx_http_llmproxy_translate_copy(r, &buf, &ctx->answer.xlated);
}


/* a translated stream: its state lives as long as the request */

ngx_int_t
ngx_http_llmproxy_translate_stream_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char              *model;
    ngx_pool_cleanup_t  *cln;

    model = ngx_pnalloc(r->pool, ctx->req.model.len + 1);
    if (model == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(model, ctx->req.model.data, ctx->req.model.len + 1);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_xlate_responses(ctx)) {
        ctx->streaming.xlate =
            llmp_responses_stream_new((int) ctx->up.iface, (char *) model,
                                      (char *) ctx->req.body,
                                      ctx->req.body_len);
        if (ctx->streaming.xlate == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_llmproxy_translate_responses_cleanup;
        cln->data = ctx->streaming.xlate;

        return NGX_OK;
    }

    ctx->streaming.xlate = llmp_stream_new((int) ctx->up.iface,
                                           (int) ctx->req.iface,
                                           (char *) model,
                                           !ctx->req.hide_usage);
    if (ctx->streaming.xlate == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llmproxy_translate_cleanup;
    cln->data = ctx->streaming.xlate;

    return NGX_OK;
}


/*
 * What a piece of the provider's stream becomes, appended to out (an
 * llmp_buf_t the caller keeps); last: the provider's stream ended.
 * NGX_ERROR: the stream could not be translated.
 */

ngx_int_t
ngx_http_llmproxy_translate_stream(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *data, size_t len, ngx_uint_t last,
    void *out)
{
    int  rc;

    rc = 0;

    if (ngx_http_llmproxy_xlate_responses(ctx)) {
        if (len) {
            rc = llmp_responses_stream_feed(ctx->streaming.xlate,
                                            (char *) data, len, out);
        }

        if (rc == 0 && last) {
            rc = llmp_responses_stream_finish(ctx->streaming.xlate, out);
        }

    } else {
        if (len) {
            rc = llmp_stream_feed(ctx->streaming.xlate, (char *) data, len,
                                  out);
        }

        if (rc == 0 && last) {
            rc = llmp_stream_finish(ctx->streaming.xlate, out);
        }
    }

    if (rc != 0 && !ctx->streaming.xlate_broken) {
        ctx->streaming.xlate_broken = 1;
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: stream of \"%V\" could not be translated "
                      "from %s", &ctx->route.current->id,
                      llmp_iface_name(ctx->up.iface));

        /* its status is sent: the error goes into its record only */

        ctx->err.status = NGX_HTTP_BAD_GATEWAY;
        ctx->err.type = "api_error";
        ctx->err.code = "translation_failed";
    }

    /*
     * NGX_ERROR: the client's stream is cut, which its SDK reports; ended
     * properly, it would look like a whole answer
     */

    return ctx->streaming.xlate_broken ? NGX_ERROR : NGX_OK;
}


/* a buffer for translated streams, freed with the request */

void *
ngx_http_llmproxy_translate_buf(ngx_http_request_t *r)
{
    llmp_buf_t          *buf;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(llmp_buf_t));
    if (cln == NULL) {
        return NULL;
    }

    buf = cln->data;
    ngx_memzero(buf, sizeof(llmp_buf_t));

    cln->handler = (ngx_pool_cleanup_pt) llmp_buf_free;

    return buf;
}


static ngx_int_t
ngx_http_llmproxy_translate_copy(ngx_http_request_t *r, llmp_buf_t *buf,
    ngx_str_t *out)
{
    out->data = ngx_pnalloc(r->pool, buf->len ? buf->len : 1);
    if (out->data == NULL) {
        llmp_buf_free(buf);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf->data, buf->len);
    out->len = buf->len;

    llmp_buf_free(buf);

    return NGX_OK;
}


static void
ngx_http_llmproxy_translate_cleanup(void *data)
{
    llmp_stream_free(data);
}


static void
ngx_http_llmproxy_translate_responses_cleanup(void *data)
{
    llmp_responses_stream_free(data);
}


/*
 * The body for this attempt: each of the embedding requests' "model"
 * values becomes "models/UPSTREAM", the rest stays as the client sent it
 */

ngx_int_t
ngx_http_llmproxy_gemini_embed_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *out)
{
    u_char                    *p;
    size_t                     len, pos;
    ngx_str_t                  name;
    ngx_uint_t                 i, n;
    ngx_http_llmproxy_span_t  *sp;

    /* the quoted upstream name without its opening quote */

    name.data = d->upstream_model_json.data + 1;
    name.len = d->upstream_model_json.len - 1;

    sp = ctx->req.embed_models->elts;
    n = ctx->req.embed_models->nelts;

    len = ctx->req.body_len;

    for (i = 0; i < n; i++) {
        len += sizeof("\"models/") - 1 + name.len - (sp[i].end - sp[i].start);
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    pos = 0;

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, ctx->req.body + pos, sp[i].start - pos);
        p = ngx_cpymem(p, "\"models/", sizeof("\"models/") - 1);
        p = ngx_cpymem(p, name.data, name.len);
        pos = sp[i].end;
    }

    p = ngx_cpymem(p, ctx->req.body + pos, ctx->req.body_len - pos);

    out->len = p - out->data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: %ui embedding request(s) for \"models/%V\"",
                   n, &d->upstream_model);

    return NGX_OK;
}

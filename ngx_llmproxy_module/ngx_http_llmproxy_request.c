/*
 * A model request, whatever its interface: the endpoint its URL named
 * (_iface.c), the key's limits, then the body read whole (model requests
 * are small, and routing needs the model before anything is sent),
 * checked by its interface, routed and sent upstream; or a model list.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_request.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_upstream.h"

#include <llmp_iface.h>
#include <llmp_json_scan.h>


static void ngx_http_llmproxy_request_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_request_read_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_request_join(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_request_copy(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_request_count_tokens(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx);


/*
 * The content handler of a gateway URL that is no other endpoint of the
 * gateway's: an unknown one is a 404 before any key is looked at (the
 * access handler let it through), a model list or a model call.
 */

ngx_int_t
ngx_http_llmproxy_request_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  shape;

    if (ctx->req.url.endpoint == NGX_HTTP_LLMPROXY_EP_NONE
        && !ctx->req.url.list)
    {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                      "invalid_request_error", "unknown_url",
                                      "Unknown request URL: %V %V",
                                      &r->method_name, &r->uri);
    }

    ngx_http_llmproxy_iface_take(ctx);

    rc = ngx_http_llmproxy_request_prepare(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->req.url.endpoint) {
        return ngx_http_llmproxy_request_start(r, ctx);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed",
                                      "use GET for %V", &r->uri);
    }

    /*
     * the Anthropic and Google SDKs list models at OpenAI's URL too, each
     * in its own shape, and say who they are with their headers
     */

    shape = ctx->req.iface;

    if (shape == LLMP_IFACE_OPENAI) {
        if (ngx_http_llmproxy_has_header(r, "anthropic-version")) {
            shape = LLMP_IFACE_ANTHROPIC;

        } else if (ngx_http_llmproxy_has_header(r, "x-goog-api-key")) {
            shape = LLMP_IFACE_GEMINI;
        }
    }

    return ngx_http_llmproxy_models(r, ctx, shape, &ctx->req.url.model);
}


/*
 * The key (authenticated at the access phase, or here when that phase
 * let the request through without it) and its limits, and the config the
 * request will be routed with
 */

ngx_int_t
ngx_http_llmproxy_request_prepare(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_llmproxy_check_key(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->rt = ngx_http_llmproxy_runtime_get(r);

    if (ctx->rt == NULL) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "api_error", "not_configured",
                                      "the gateway has no configuration yet: "
                                      "run \"llmproxyctl sync\"");
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_request_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed",
                                      "use POST for %V", &r->uri);
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body of %O bytes is larger "
                                      "than the limit of %uz bytes",
                                      r->headers_in.content_length_n,
                                      llcf->max_body_size);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_llmproxy_request_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_llmproxy_request_body(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    rc = ngx_http_llmproxy_request_read_body(r, ctx);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: body of %uz bytes read: %i",
                   ctx->req.body_len, rc);

    if (rc == NGX_OK) {
        rc = ngx_http_llmproxy_iface(ctx->req.iface)->check(r, ctx);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy: body checked: %i, model \"%V\"%s", rc,
                       &ctx->req.model, ctx->req.stream ? ", stream" : "");
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llmproxy_route_plan(r, ctx);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy: plan of %ui targets: %i",
                       ctx->route.plan.nelts, rc);

        if (rc == NGX_DECLINED) {
            rc = ngx_http_llmproxy_request_count_tokens(r, ctx);
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    (void) ngx_http_llmproxy_upstream_start(r, ctx);
}


/* the body as one contiguous piece of memory */

static ngx_int_t
ngx_http_llmproxy_request_read_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_chain_t                   *cl;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ctx->req.body = (u_char *) "";
        ctx->req.body_len = 0;
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        ctx->req.body = cl->buf->pos;
        ctx->req.body_len = cl->buf->last - cl->buf->pos;

    } else if (ngx_http_llmproxy_request_join(r, ctx) != NGX_OK) {
        rc = ngx_http_llmproxy_request_copy(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (ctx->req.body_len > llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body is larger than the "
                                      "limit of %uz bytes",
                                      llcf->max_body_size);
    }

    return NGX_OK;
}


/*
 * The usual case for a large body: the part read with the headers, then
 * the rest in the body buffer, which nginx sized with room for that first
 * part (request_body_in_single_buf).  Joining them in place saves
 * allocating and faulting in another copy of the body.  NGX_DECLINED
 * when the body is not in that shape.
 */

static ngx_int_t
ngx_http_llmproxy_request_join(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    off_t         len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = r->request_body->bufs;
    b = cl->next ? cl->next->buf : NULL;

    if (!(b && cl->next->next == NULL && !cl->buf->in_file && !b->in_file
          && b == r->request_body->buf && b->temporary
          && (size_t) (b->end - b->last) >= (size_t) ngx_buf_size(cl->buf)
          && b->pos == b->start))
    {
        return NGX_DECLINED;
    }

    len = ngx_buf_size(cl->buf);

    ngx_memmove(b->start + len, b->pos, b->last - b->pos);
    ngx_memcpy(b->start, cl->buf->pos, len);

    b->last += len;
    cl->buf->pos = cl->buf->last;

    ctx->req.body = b->start;
    ctx->req.body_len = b->last - b->start;

    return NGX_OK;
}


/* the body's pieces, in memory or in a temp file, copied into one */

static ngx_int_t
ngx_http_llmproxy_request_copy(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char                        *p;
    off_t                          len;
    ssize_t                        n;
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (len > (off_t) llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body is larger than the "
                                      "limit of %uz bytes",
                                      llcf->max_body_size);
    }

    p = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->req.body = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        /* a body larger than client_body_buffer_size, in a temp file */

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != (ssize_t) (b->file_last - b->file_pos)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p += n;
    }

    ctx->req.body_len = p - ctx->req.body;

    return NGX_OK;
}



/*
 * Token counting for a model none of whose providers can count: an
 * estimate of a token per four bytes of the request's text, as tools
 * such as Claude Code only need a size to plan with
 */

static ngx_int_t
ngx_http_llmproxy_request_count_tokens(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char    *p, *start;
    size_t     text;
    ngx_uint_t in_string;

    text = 0;
    in_string = 0;

    /* the bytes inside JSON strings, names of members included */

    for (p = ctx->req.body; p < ctx->req.body + ctx->req.body_len; p++) {
        if (*p == '"') {
            in_string = !in_string;
            continue;
        }

        if (*p == '\\' && in_string) {
            p++;
        }

        text += in_string;
    }

    start = ngx_pnalloc(r->pool, 64);
    if (start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(start,
                    ngx_http_llmproxy_iface(ctx->req.iface)->count_tokens,
                    (text + 3) / 4);

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, start, p - start);
}


/*
 * A body llmp_json_scan_top() refused, 400 in the client's shape; name and
 * offset from its llmp_json_top_t (offset: within the whole body)
 */

ngx_int_t
ngx_http_llmproxy_request_json_fail(ngx_http_request_t *r, llmp_json_rc_e rc,
    const char *name, size_t offset)
{
    switch (rc) {

    case LLMP_JSON_DUPLICATE:
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "duplicate_member",
                                      "the request body has \"%s\" more "
                                      "than once (at byte %uz)",
                                      name, offset);

    case LLMP_JSON_AMBIGUOUS:
        if (name) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request_error",
                                          "ambiguous_member",
                                          "the request body has a member "
                                          "name that some parsers read as "
                                          "\"%s\" (at byte %uz): spell it "
                                          "\"%s\"", name, offset, name);
        }

        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "ambiguous_member",
                                      "the request body has a member name "
                                      "with a control character or a lone "
                                      "surrogate (at byte %uz)", offset);

    default:
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_json", "%s (at byte %uz)",
                                      llmp_json_strerror(rc), offset);
    }
}

/*
 * The header and body filter: adds the x-llmproxy-* headers to every
 * response of a gateway location, and turns the error pages nginx itself
 * would render (HTML) into the JSON error shape of the client's interface,
 * there and in a server with a gateway location wherever no location was
 * found (before one was: a malformed request, 414; or none matched).
 * Errors found by the gateway are returned as plain status codes through
 * nginx's special response path and rendered here, so nginx's own errors
 * (400, 413, 408, ...) and the gateway's look the same to a client.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_upstream.h"
#include "ngx_http_llmproxy_usage.h"


/* the largest one whose announced length is allocated at once */
#define NGX_HTTP_LLMPROXY_HOLD_HINT  (1024 * 1024)


static ngx_int_t ngx_http_llmproxy_attempt_headers(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_header_hold(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_llmproxy_body_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_llmproxy_hold_room(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t n);
static ngx_int_t ngx_http_llmproxy_held_send(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_error_chosen(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_llmproxy_error_prepare(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_upstream_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_hold(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_llmproxy_release(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_llmproxy_send_held(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *rest);
static ngx_int_t ngx_http_llmproxy_add_header(ngx_http_request_t *r,
    const char *key, ngx_str_t *value);
static void ngx_http_llmproxy_clear_length(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_drain_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_llmproxy_drain(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in);
static void ngx_http_llmproxy_early_iface(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_uint_t ngx_http_llmproxy_before_location(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_llmproxy_header_filter(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t       *ctx;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx == NULL) {
        llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

        if (llcf->role == NGX_HTTP_LLMPROXY_OFF
            && !ngx_http_llmproxy_before_location(r))
        {
            return ngx_http_next_header_filter(r);
        }

        /* nginx answered before the gateway's handler ran */

        ctx = ngx_http_llmproxy_get_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        if (r->uri.len == 0) {
            ngx_http_llmproxy_early_iface(r, ctx);
        }
    }

    if (r->err_status) {
        if (ngx_http_llmproxy_error_prepare(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->request_id.len
        && ngx_http_llmproxy_add_header(r, "x-llmproxy-request-id",
                                        &ctx->request_id)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_keys_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!ctx->up.started) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->time.ttfb == 0 && !r->err_status) {
        ctx->time.ttfb = ngx_current_msec - ctx->time.start + 1;
    }

    if (ngx_http_llmproxy_attempt_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (r->headers_out.status != NGX_HTTP_OK) {
        ctx->req.hide_usage = 0;
    }

    return ngx_http_llmproxy_header_hold(r, ctx);
}


/* which model answered, the fallbacks and retries, the gateway's time */

static ngx_int_t
ngx_http_llmproxy_attempt_headers(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char          *p;
    ngx_str_t        v;
    ngx_msec_int_t   overhead;

    p = ngx_pnalloc(r->pool, 3 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ctx->route.current) {
        if (ngx_http_llmproxy_add_header(r, "x-llmproxy-model",
                                         &ctx->route.current->id)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    v.data = p;
    v.len = ngx_http_llmproxy_format_uint(p, ctx->route.fallbacks) - p;
    p += v.len;

    if (ngx_http_llmproxy_add_header(r, "x-llmproxy-attempted-fallbacks", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_http_llmproxy_format_uint(p, ctx->route.retries) - p;
    p += v.len;

    if (ngx_http_llmproxy_add_header(r, "x-llmproxy-attempted-retries", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* time spent in the gateway itself: before the first upstream attempt */

    overhead = (ngx_msec_int_t) (ctx->time.upstream_start - ctx->time.start);
    if (overhead < 0) {
        overhead = 0;
    }

    v.data = p;
    v.len = ngx_http_llmproxy_format_uint(p, overhead) - p;

    if (ngx_http_llmproxy_add_header(r, "x-llmproxy-overhead-duration-ms", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * a translated stream starts here; a complete answer (or a translated
 * error) is held for the body filter; anything else goes on
 */

static ngx_int_t
ngx_http_llmproxy_header_hold(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_uint_t  translated;

    translated = (ctx->up.iface && ctx->up.iface != ctx->req.iface
                  && !ctx->err.rendered && !r->header_only);

    /* a stream from a provider of another interface: translated as it goes */

    if (translated && ctx->req.stream && r->headers_out.status == NGX_HTTP_OK) {
        if (ngx_http_llmproxy_translate_stream_start(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_llmproxy_clear_length(r);
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_type_lowcase = NULL;

        return ngx_http_next_header_filter(r);
    }

    /*
     * a non-streamed answer is held until it is complete: its cost goes
     * into its headers (streams are never held); so is an error from a
     * provider of another interface, to be translated
     */

    if (!ctx->req.stream && !ctx->err.rendered && !r->header_only
        && r->headers_out.status >= NGX_HTTP_OK
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE
        && (r->headers_out.content_length_n < 0
            || r->headers_out.content_length_n
               <= NGX_HTTP_LLMPROXY_HOLD_MAX))
    {
        ctx->answer.hold = 1;
        return NGX_OK;
    }

    if (translated && r->headers_out.status >= NGX_HTTP_BAD_REQUEST
        && (r->headers_out.content_length_n < 0
            || r->headers_out.content_length_n
               <= NGX_HTTP_LLMPROXY_HOLD_MAX))
    {
        ctx->answer.hold = 1;
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy header: status %ui passed, translated %ui",
                   r->headers_out.status, translated);

    return ngx_http_next_header_filter(r);
}


/*
 * A request line nginx could not parse (a NUL in the URI, 414) leaves no
 * URI: the interface is read from the path as far as the parser got.
 */

static void
ngx_http_llmproxy_early_iface(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char     *p, *last;
    ngx_str_t   uri;

    if (r->header_in == NULL || r->uri_start == NULL
        || r->uri_start < r->header_in->start
        || r->uri_start >= r->header_in->last)
    {
        return;
    }

    last = r->header_in->last;

    for (p = r->uri_start; p < last; p++) {
        if (*p == ' ' || *p == '?' || *p == '\0' || *p == CR || *p == LF) {
            break;
        }
    }

    uri = r->uri;

    r->uri.data = r->uri_start;
    r->uri.len = p - r->uri_start;

    ctx->req.iface = ngx_http_llmproxy_iface_of(r);

    r->uri = uri;
}


/* the words for an error nginx itself chose */

typedef struct {
    ngx_uint_t                    status;
    const char                   *code;
    ngx_str_t                     message;
} ngx_http_llmproxy_nginx_error_t;


static ngx_http_llmproxy_nginx_error_t  ngx_http_llmproxy_nginx_errors[] = {
    { NGX_HTTP_BAD_REQUEST, NULL, ngx_string("malformed request") },
    { NGX_HTTP_FORBIDDEN, NULL, ngx_string("forbidden") },
    { NGX_HTTP_NOT_FOUND, NULL, ngx_string("not found") },
    { NGX_HTTP_NOT_ALLOWED, NULL, ngx_string("method not allowed") },
    { NGX_HTTP_LENGTH_REQUIRED, NULL, ngx_string("length required") },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "uri_too_long",
      ngx_string("request URI too long") },
    { NGX_HTTP_NOT_IMPLEMENTED, NULL, ngx_string("not implemented") },
    { NGX_HTTP_VERSION_NOT_SUPPORTED, NULL,
      ngx_string("HTTP version not supported") },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "request_too_large",
      ngx_string("request body too large") },
    { NGX_HTTP_REQUEST_TIME_OUT, NULL,
      ngx_string("client request timed out") },
    { 0, NULL, ngx_null_string }
};


/*
 * An error nginx or the upstream machinery chose: the provider's answer
 * when one came, or the gateway's words for it
 */

static ngx_int_t
ngx_http_llmproxy_error_chosen(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t status)
{
    ngx_http_llmproxy_nginx_error_t  *e;

    ctx->err.status = status;
    ctx->err.type = "api_error";
    ctx->err.code = NULL;
    ngx_str_null(&ctx->err.message);

    switch (status) {

    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_GATEWAY_TIME_OUT:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_INTERNAL_SERVER_ERROR:

        if (ctx->up.started) {
            return ngx_http_llmproxy_upstream_error(r, ctx);
        }

        ngx_str_set(&ctx->err.message, "internal gateway error");
        return NGX_OK;
    }

    for (e = ngx_http_llmproxy_nginx_errors; e->status; e++) {
        if (e->status == status) {
            ctx->err.type = "invalid_request_error";
            ctx->err.code = e->code;
            ctx->err.message = e->message;
            return NGX_OK;
        }
    }

    ctx->err.type = status < 500 ? "invalid_request_error" : "api_error";
    ngx_str_set(&ctx->err.message, "request failed");

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_error_prepare(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_str_t   body;
    ngx_uint_t  status;

    status = r->headers_out.status;

    if (ctx->err.keep && ctx->err.status != status) {
        /* found inside the upstream machinery, which can only say 500 */
        status = ctx->err.status;
        r->headers_out.status = status;
        r->err_status = status;
    }

    if ((ctx->err.status == 0 || ctx->err.status != status)
        && ngx_http_llmproxy_error_chosen(r, ctx, status) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_error_body(r, ctx, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->err.message = body;   /* from here on: the rendered body */
    ctx->err.rendered = 1;

    r->headers_out.content_length_n = body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    return NGX_OK;
}


/* every attempt failed: 504 when the last one timed out, else 502 */

static ngx_int_t
ngx_http_llmproxy_upstream_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char      *p, *last;
    ngx_uint_t   status;

    if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TIMEOUT) {
        status = NGX_HTTP_GATEWAY_TIME_OUT;
        ctx->err.type = "timeout";
        ctx->err.code = "upstream_timeout";

    } else {
        status = NGX_HTTP_BAD_GATEWAY;
        ctx->err.type = "api_error";
        ctx->err.code = (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TRUNCATED)
                        ? "upstream_truncated"
                        : (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TRANSLATE)
                        ? "translation_failed" : "all_deployments_failed";
    }

    p = ngx_pnalloc(r->pool, 512);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + 512;

    ctx->err.message.data = p;

    p = ngx_slprintf(p, last, "model \"%V\": every deployment and fallback "
                     "failed after %ui attempt%s; last error: ",
                     &ctx->req.model, ctx->route.attempts,
                     ctx->route.attempts == 1 ? "" : "s");

    switch (ctx->route.fail) {

    case NGX_HTTP_LLMPROXY_FAIL_TIMEOUT:
        p = ngx_slprintf(p, last, "upstream timed out");
        break;

    case NGX_HTTP_LLMPROXY_FAIL_CONNECT:
        p = ngx_slprintf(p, last, "could not connect to upstream");
        break;

    case NGX_HTTP_LLMPROXY_FAIL_STATUS:
        p = ngx_slprintf(p, last, "upstream returned status %ui",
                         ctx->route.fail_status);
        break;

    case NGX_HTTP_LLMPROXY_FAIL_TRUNCATED:
        p = ngx_slprintf(p, last, "upstream answer cut short");
        break;

    case NGX_HTTP_LLMPROXY_FAIL_TRANSLATE:
        p = ngx_slprintf(p, last, "upstream answer could not be translated");
        break;

    default:
        p = ngx_slprintf(p, last, "upstream sent an invalid response");
    }

    ctx->err.message.len = p - ctx->err.message.data;
    ctx->err.status = status;

    r->headers_out.status = status;
    r->err_status = status;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                 rc;
    ngx_http_llmproxy_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx && ctx->streaming.draining) {
        return ngx_http_llmproxy_drain(r, ctx, in);
    }

    if (in == NULL || (ctx && ctx->streaming.stream_end)) {
        rc = ngx_http_next_body_filter(r, in);
        goto sent;
    }

    if (ctx && ctx->answer.hold) {
        return ngx_http_llmproxy_hold(r, ctx, in);
    }

    if (ctx && (ctx->req.hide_usage || ctx->streaming.xlate)
        && !ctx->err.rendered)
    {
        rc = ngx_http_llmproxy_sse_filter(r, ctx, in,
                                          ngx_http_next_body_filter);
        goto sent;
    }

    if (ctx && ctx->req.stream && !ctx->err.rendered) {
        rc = ngx_http_next_body_filter(r, in);
        goto sent;
    }

    if (ctx == NULL || !ctx->err.rendered) {
        return ngx_http_next_body_filter(r, in);
    }

    return ngx_http_llmproxy_body_error(r, ctx, in);

sent:

    /*
     * the client of a stream left (the write failed): the provider's
     * answer is read on for its usage, for llmproxy_stream_drain_timeout
     */

    if (rc == NGX_ERROR && r->connection->error && ctx && ctx->req.stream
        && r->upstream && r->upstream->header_sent
        && r->upstream->conf->ignore_client_abort)
    {
        return ngx_http_llmproxy_drain_start(r, ctx, in);
    }

    return rc;
}


/* the HTML error page nginx renders is replaced by our JSON, once */

static ngx_int_t
ngx_http_llmproxy_body_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;

    for ( /* void */ ; in; in = in->next) {
        in->buf->pos = in->buf->last;
        in->buf->file_pos = in->buf->file_last;
    }

    if (ctx->err.sent) {
        return NGX_OK;
    }

    ctx->err.sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->err.message.data;
    b->last = ctx->err.message.data + ctx->err.message.len;
    b->memory = 1;
    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_llmproxy_drain_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "llmproxy: client left the stream, reading the "
                  "provider's answer on for its usage");

    ctx->streaming.client_left = 1;
    ctx->streaming.draining = 1;
    ctx->streaming.drain_end = ngx_current_msec + lmcf->stream_drain;

    return ngx_http_llmproxy_drain(r, ctx, in);
}


/*
 * Draining: what the provider sends is dropped, the upstream's buffers
 * consumed (nothing reaches the client, so nginx would stop reading when
 * they are all busy), and its read timeout is what is left of the drain
 * (or the stream's idle timeout, if shorter): nginx rearms the timer with
 * it after every read, and when it fires the request ends
 */

static ngx_int_t
ngx_http_llmproxy_drain(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_chain_t *in)
{
    ngx_msec_int_t        left;
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    u = r->upstream;

    if (u == NULL) {
        return NGX_OK;
    }

    for (cl = u->busy_bufs; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
    }

    left = (ngx_msec_int_t) (ctx->streaming.drain_end - ngx_current_msec);

    if (left < 1) {
        left = 1;
    }

    if (ctx->streaming.idle_timeout
        && (ngx_msec_t) left > ctx->streaming.idle_timeout)
    {
        left = ctx->streaming.idle_timeout;
    }

    u->conf->read_timeout = (ngx_msec_t) left;

    return NGX_OK;
}


/*
 * A stream the provider cut or stalled ends with the error event of the
 * client's interface (its SDK raises it) rather than just stopping: the
 * error as the filter renders it, as one server-sent event, and the
 * stream's end
 */

ngx_int_t
ngx_http_llmproxy_stream_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            len;
    ngx_str_t                         body;
    ngx_buf_t                        *b;
    ngx_chain_t                       out;
    const ngx_http_llmproxy_iface_t  *ifc;

    if (ctx->streaming.stream_end || r->connection->error) {
        return NGX_OK;
    }

    if (ngx_http_llmproxy_error_body(r, ctx, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    ifc = ngx_http_llmproxy_iface(ctx->req.iface);

    /* a blank line first ends an event the provider left half sent */

    len = 2 + ifc->sse_error.len + body.len + 2;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = p;

    p = ngx_cpymem(p, "\n\n", 2);
    p = ngx_cpymem(p, ifc->sse_error.data, ifc->sse_error.len);
    p = ngx_cpymem(p, body.data, body.len);
    p = ngx_cpymem(p, "\n\n", 2);

    b->last = p;
    b->memory = 1;
    b->flush = 1;
    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    ctx->streaming.stream_end = 1;
    r->keepalive = 0;

    return ngx_http_output_filter(r, &out);
}


/*
 * Collects a held answer (the upstream's buffers are consumed, so it keeps
 * reading), and on the last buffer sends the headers with the cost and the
 * key's spend, then the body in one buffer.
 */

static ngx_int_t
ngx_http_llmproxy_hold(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_chain_t *in)
{
    size_t       n;
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_uint_t   last;

    last = 0;

    for ( /* void */ ; in; in = in->next) {
        b = in->buf;
        n = b->last - b->pos;

        if (b->last_buf) {
            last = 1;
        }

        if (n == 0 || !ngx_buf_in_memory(b)) {
            continue;
        }

        rc = ngx_http_llmproxy_hold_room(r, ctx, n);

        if (rc == NGX_DECLINED) {
            return ngx_http_llmproxy_release(r, ctx, in);
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->answer.held + ctx->answer.held_len, b->pos, n);
        ctx->answer.held_len += n;
        b->pos = b->last;
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->answer.hold = 0;

    return ngx_http_llmproxy_held_send(r, ctx);
}


/* room for n more bytes of a held answer; NGX_DECLINED: too large to hold */

static ngx_int_t
ngx_http_llmproxy_hold_room(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t n)
{
    u_char  *p;

    if (ctx->answer.held_len + n <= ctx->answer.held_size) {
        return NGX_OK;
    }

    /*
     * the answer's length when the provider gave it (up to 1m, so a length
     * announced is not all allocated before it comes): a typical answer
     * then fits in the pool's blocks, not in a separate allocation of 4096
     * bytes or more
     */

    if (ctx->answer.held_size == 0
        && r->headers_out.content_length_n >= (off_t) n
        && r->headers_out.content_length_n <= NGX_HTTP_LLMPROXY_HOLD_HINT)
    {
        ctx->answer.held_size = (size_t) r->headers_out.content_length_n;

    } else {
        ctx->answer.held_size = ngx_max(2 * ctx->answer.held_size,
                                        ctx->answer.held_len + n);
        ctx->answer.held_size = ngx_max(ctx->answer.held_size, 4096);
    }

    if (ctx->answer.held_size > NGX_HTTP_LLMPROXY_HOLD_MAX) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, ctx->answer.held_size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, ctx->answer.held, ctx->answer.held_len);
    ctx->answer.held = p;

    return NGX_OK;
}


/*
 * The whole answer is in: its cost and the key's spend in the headers,
 * translated back if it came in another interface, then sent
 */

static ngx_int_t
ngx_http_llmproxy_held_send(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char     *p;
    ngx_str_t   v;

    ngx_http_llmproxy_usage_account(r, ctx);

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_http_llmproxy_format_fixed8(p, ctx->usage.cost) - p;
    p += v.len;

    /* an unpriced model's answer has no cost to tell, rather than $0 */

    if (!ctx->usage.unpriced
        && ngx_http_llmproxy_add_header(r, "x-llmproxy-response-cost", &v)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_http_llmproxy_format_fixed8(p, ctx->usage.key_spend) - p;

    if (ngx_http_llmproxy_add_header(r, "x-llmproxy-key-spend", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->up.iface && ctx->up.iface != ctx->req.iface) {
        v.data = ctx->answer.held;
        v.len = ctx->answer.held_len;

        if (ngx_http_llmproxy_translate_response(r, ctx, &v) == NGX_OK) {
            ctx->answer.held = v.data;
            ctx->answer.held_len = v.len;

            ngx_str_set(&r->headers_out.content_type, "application/json");
            r->headers_out.content_type_len =
                                          r->headers_out.content_type.len;
            r->headers_out.content_type_lowcase = NULL;
        }
    }

    ngx_http_llmproxy_clear_length(r);
    r->headers_out.content_length_n = ctx->answer.held_len;

    return ngx_http_llmproxy_send_held(r, ctx, NULL);
}


/* too large to hold: send what is held and pass the rest through */

static ngx_int_t
ngx_http_llmproxy_release(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_chain_t *in)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "llmproxy: response over %uz bytes, sent without its cost",
                  (size_t) NGX_HTTP_LLMPROXY_HOLD_MAX);

    ctx->answer.hold = 0;

    return ngx_http_llmproxy_send_held(r, ctx, in);
}


/*
 * The headers, then what is held: the whole answer (rest == NULL, a last
 * buffer), or its start followed by the rest as it comes.
 */

static ngx_int_t
ngx_http_llmproxy_send_held(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *rest)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (rest && ctx->answer.held_len == 0) {
        return ngx_http_next_body_filter(r, rest);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->answer.held;
    b->last = ctx->answer.held + ctx->answer.held_len;
    b->memory = ctx->answer.held_len ? 1 : 0;
    b->last_buf = (rest == NULL);

    out.buf = b;
    out.next = rest;

    return ngx_http_next_body_filter(r, &out);
}


static void
ngx_http_llmproxy_clear_length(ngx_http_request_t *r)
{
    r->headers_out.content_length_n = -1;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }
}


/*
 * llmproxy_litellm_headers on: each x-llmproxy-* header also under the
 * name LiteLLM's proxy gives it, for clients and dashboards that read them
 */

static ngx_int_t
ngx_http_llmproxy_litellm_header(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    size_t                          n;
    ngx_uint_t                      i;
    ngx_table_elt_t                *alias;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    static ngx_str_t  names[][2] = {
        { ngx_string("x-llmproxy-request-id"),
          ngx_string("x-litellm-call-id") },
        { ngx_string("x-llmproxy-model"), ngx_string("x-litellm-model-id") },
        { ngx_string("x-llmproxy-attempted-fallbacks"),
          ngx_string("x-litellm-attempted-fallbacks") },
        { ngx_string("x-llmproxy-attempted-retries"),
          ngx_string("x-litellm-attempted-retries") },
        { ngx_string("x-llmproxy-overhead-duration-ms"),
          ngx_string("x-litellm-overhead-duration-ms") },
        { ngx_string("x-llmproxy-response-cost"),
          ngx_string("x-litellm-response-cost") },
        { ngx_string("x-llmproxy-key-spend"),
          ngx_string("x-litellm-key-spend") }
    };

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (!lmcf->litellm_headers) {
        return NGX_OK;
    }

    n = sizeof(names) / sizeof(names[0]);

    for (i = 0; i < n; i++) {
        if (h->key.len == names[i][0].len
            && ngx_strncmp(h->key.data, names[i][0].data, h->key.len) == 0)
        {
            break;
        }
    }

    if (i == n) {
        return NGX_OK;
    }

    alias = ngx_list_push(&r->headers_out.headers);
    if (alias == NULL) {
        return NGX_ERROR;
    }

    alias->hash = 1;
    alias->key = names[i][1];
    alias->value = h->value;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_add_header(ngx_http_request_t *r, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;

    return ngx_http_llmproxy_litellm_header(r, h);
}


ngx_int_t
ngx_http_llmproxy_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_llmproxy_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_llmproxy_body_filter;

    return NGX_OK;
}


/*
 * A request of a server with an llmproxy location that nginx answers before
 * any location is found (a malformed request line or header, 414, 494),
 * or that no location matched: answered as the gateway would answer it.
 */

static ngx_uint_t
ngx_http_llmproxy_before_location(ngx_http_request_t *r)
{
    ngx_http_core_srv_conf_t      *cscf;
    ngx_http_llmproxy_srv_conf_t  *lscf;

    lscf = ngx_http_get_module_srv_conf(r, ngx_http_llmproxy_module);

    if (lscf == NULL || !lscf->gateway) {
        return 0;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    return r->loc_conf == cscf->ctx->loc_conf;
}

/*
 * Talking to providers, on nginx's upstream machinery.
 *
 * The gateway is its own balancer: peer.get asks the router for the next
 * deployment of the plan and builds the request for it (path, Host,
 * credentials and the body with "model" spliced in), so that nginx's
 * next-upstream logic retries across providers and fallback models with a
 * different request each time.  peer.free records failures for the shared
 * cooldown and keeps idle connections for reuse, the way
 * ngx_http_upstream_keepalive_module does.  A status that warrants a retry
 * (429, 5xx) is turned into an invalid-header failure before anything
 * reaches the client; when the plan is exhausted, peer.get answers
 * NGX_BUSY and the filter renders the 502 or 504.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_upstream.h"
#include "ngx_http_llmproxy_usage.h"

#include <llmp_iface.h>
#include <llmp_json_scan.h>


#define NGX_HTTP_LLMPROXY_TRIES      10000

/* the largest announced length of an answer allocated at once */
#define NGX_HTTP_LLMPROXY_READ_HINT  (1024 * 1024)


typedef struct {
    ngx_queue_t                     queue;
    ngx_connection_t               *connection;
    socklen_t                       socklen;
    ngx_sockaddr_t                  sockaddr;
    unsigned                        ssl:1;
} ngx_http_llmproxy_keepalive_item_t;


typedef struct {
    size_t                         start;
    size_t                         end;
    ngx_str_t                      value;
} ngx_http_llmproxy_edit_t;


/* an attempt's body: made whole for it, or the client's with edits */

typedef struct {
    ngx_http_llmproxy_edit_t       edits[3];   /* edits[0]: whole body */
    ngx_uint_t                     n;
    ngx_uint_t                     whole;
    size_t                         len;
} ngx_http_llmproxy_body_plan_t;


static ngx_int_t ngx_http_llmproxy_peer_init(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static void ngx_http_llmproxy_upstream_fixed(ngx_http_upstream_conf_t *u);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_llmproxy_upstream_ssl(ngx_conf_t *cf,
    ngx_http_upstream_conf_t *u);
static ngx_int_t ngx_http_llmproxy_upstream_ssl_create(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf);
#endif
static ngx_int_t ngx_http_llmproxy_peer_get(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_llmproxy_peer_failed(ngx_peer_connection_t *pc,
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_peer_free(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static ngx_int_t ngx_http_llmproxy_build_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d);
static ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_peer_next(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx, ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_keepalive_take(ngx_peer_connection_t *pc,
    ngx_uint_t ssl);
static ngx_int_t ngx_http_llmproxy_header_line(ngx_http_request_t *r);
static ngx_buf_t *ngx_http_llmproxy_relay_buf(ngx_http_request_t *r,
    ngx_chain_t ***ll);
static ngx_int_t ngx_http_llmproxy_headers_done(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_body_length(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_body_chunked(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_body_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_http_llmproxy_body_plan_t *bp);
static ngx_buf_t *ngx_http_llmproxy_request_head(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *uri, size_t body_len);
static size_t ngx_http_llmproxy_client_headers(ngx_http_request_t *r,
    u_char *p);
static ngx_int_t ngx_http_llmproxy_request_chain(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *head,
    ngx_http_llmproxy_body_plan_t *bp);
static ngx_int_t ngx_http_llmproxy_upstream_uri(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *uri);
static ngx_int_t ngx_http_llmproxy_create_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_reinit_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_process_status_line(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_process_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_retryable(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_read_whole(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_process_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_body_done(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t len);
static ngx_int_t ngx_http_llmproxy_body_chunked_full(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_body_room(ngx_http_request_t *r,
    size_t size);
static ngx_int_t ngx_http_llmproxy_body_too_large(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_late_error(ngx_http_llmproxy_ctx_t *ctx,
    ngx_uint_t status, const char *code);
static ngx_int_t ngx_http_llmproxy_input_filter_init(void *data);
static ngx_int_t ngx_http_llmproxy_copy_filter(void *data, ssize_t bytes);
static ngx_int_t ngx_http_llmproxy_chunked_filter(void *data,
    ssize_t bytes);
static ngx_int_t ngx_http_llmproxy_chunked_plain(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *buf, ngx_chain_t **ll);
static ngx_int_t ngx_http_llmproxy_chunked_data(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *buf, ngx_chain_t ***ll);
static void ngx_http_llmproxy_chunked_done(ngx_http_request_t *r,
    ngx_buf_t *buf);
static void ngx_http_llmproxy_relay_scan(ngx_http_llmproxy_ctx_t *ctx,
    ngx_buf_t *b);
static void ngx_http_llmproxy_abort_request(ngx_http_request_t *r);
static void ngx_http_llmproxy_first_byte(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_client_left(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_int_t rc);
static ngx_msec_t ngx_http_llmproxy_timeout(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_deployment_t *d, ngx_uint_t idle);
static void ngx_http_llmproxy_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_http_llmproxy_keepalive_item_t *ngx_http_llmproxy_keepalive_find(
    ngx_peer_connection_t *pc, ngx_uint_t ssl);
static void ngx_http_llmproxy_keepalive_save(ngx_peer_connection_t *pc,
    ngx_msec_t timeout);
static void ngx_http_llmproxy_keepalive_close_handler(ngx_event_t *ev);
static void ngx_http_llmproxy_keepalive_dummy_handler(ngx_event_t *ev);
static void ngx_http_llmproxy_keepalive_close(ngx_connection_t *c);


static ngx_queue_t  ngx_http_llmproxy_keepalive_cache;
static ngx_queue_t  ngx_http_llmproxy_keepalive_free;


static ngx_str_t  ngx_http_llmproxy_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    ngx_string("X-Pad"),
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_null_string
};


/* client headers never sent upstream: hop-by-hop, framing, credentials */

static ngx_str_t  ngx_http_llmproxy_drop_headers[] = {
    ngx_string("host"),
    ngx_string("connection"),
    ngx_string("keep-alive"),
    ngx_string("proxy-connection"),
    ngx_string("proxy-authorization"),
    ngx_string("te"),
    ngx_string("trailer"),
    ngx_string("transfer-encoding"),
    ngx_string("upgrade"),
    ngx_string("expect"),
    ngx_string("content-length"),
    ngx_string("content-type"),
    ngx_string("content-encoding"),  /* the body is sent as it was read */
    ngx_string("accept-encoding"),
    ngx_string("cookie"),
    ngx_string("authorization"),
    ngx_string("x-api-key"),
    ngx_string("x-goog-api-key"),
    ngx_string("api-key"),
    ngx_string("x-litellm-api-key"),

    /*
     * a client must not pick the account the provider bills (OpenAI's
     * organization and project, Google's quota project) nor turn the
     * gateway's POST into another method (Google's APIs honour the
     * override headers); a provider's own "headers" may still set them
     */
    ngx_string("openai-organization"),
    ngx_string("openai-project"),
    ngx_string("x-goog-user-project"),
    ngx_string("x-http-method-override"),
    ngx_string("x-http-method"),
    ngx_string("x-method-override"),
    ngx_null_string
};


ngx_int_t
ngx_http_llmproxy_upstream_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_msec_t                      timeout;
    ngx_http_upstream_t            *u;
    ngx_http_upstream_conf_t       *ucf;
    ngx_http_llmproxy_loc_conf_t   *llcf;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (ngx_http_upstream_create(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u = r->upstream;
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    /* the timeouts come from the config that llmproxyctl pushed */

    ucf = ngx_palloc(r->pool, sizeof(ngx_http_upstream_conf_t));
    if (ucf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ucf, &llcf->upstream, sizeof(ngx_http_upstream_conf_t));

    timeout = ctx->rt->settings.request_timeout;

    ucf->send_timeout = timeout;
    ucf->read_timeout = timeout;

    if (ucf->connect_timeout > timeout) {
        ucf->connect_timeout = timeout;
    }

    /*
     * a stream the client leaves is read on for its usage (the body
     * filter drains it): nginx must not close the provider's connection
     * when it sees the client go
     */

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    ucf->ignore_client_abort = (ctx->req.stream && lmcf->stream_drain) ? 1 : 0;

    u->conf = ucf;
    u->output.tag = (ngx_buf_tag_t) &ngx_http_llmproxy_module;

    u->create_request = ngx_http_llmproxy_create_request;
    u->reinit_request = ngx_http_llmproxy_reinit_request;
    u->process_header = ngx_http_llmproxy_process_status_line;
    u->abort_request = ngx_http_llmproxy_abort_request;
    u->finalize_request = ngx_http_llmproxy_finalize_request;

    u->input_filter_init = ngx_http_llmproxy_input_filter_init;
    u->input_filter = ngx_http_llmproxy_copy_filter;
    u->input_filter_ctx = r;

    u->buffering = 0;

    ctx->up.started = 1;
    ctx->time.upstream_start = ngx_current_msec;

    ngx_http_llmproxy_usage_reset(ctx);

    ngx_http_upstream_init(r);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_llmproxy_peer_init(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    u->peer.get = ngx_http_llmproxy_peer_get;
    u->peer.free = ngx_http_llmproxy_peer_free;
    u->peer.data = r;
    u->peer.tries = NGX_HTTP_LLMPROXY_TRIES;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_peer_get(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_request_t *r = data;

    ngx_addr_t                      *addr;
    ngx_http_upstream_t             *u;
    ngx_http_llmproxy_ctx_t         *ctx;
    ngx_http_llmproxy_provider_t    *p;
    ngx_http_llmproxy_deployment_t  *d;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    u = r->upstream;

    /* a failed attempt's answer never reached the client */
    ctx->time.ttfb = 0;

    d = ngx_http_llmproxy_peer_next(r, ctx, pc->log);

    if (d == NULL) {
        return NGX_BUSY;
    }

    p = d->provider;
    addr = &p->addrs[p->next_addr++ % p->naddrs];

    pc->sockaddr = addr->sockaddr;
    pc->socklen = addr->socklen;
    pc->name = &addr->name;

    /*
     * until the first byte of the answer: a provider that accepts and
     * then hangs is a failed attempt after first_byte_timeout, so the
     * next deployment or fallback is tried in seconds (nginx arms the
     * read timer with it once the request is sent)
     */

    u->conf->read_timeout = ngx_http_llmproxy_timeout(ctx, d, 0);

    ctx->time.attempt_start = ngx_current_msec;
    ctx->up.first_byte_wait = (u->conf->read_timeout
                               != ctx->rt->settings.request_timeout);

    ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_NONE;
    ctx->route.fail_status = 0;
    ctx->route.retry_after = 0;
    ctx->answer.body_wait = 0;
    ctx->answer.body_plain = 0;
    ngx_str_null(&ctx->answer.xlated);

#if (NGX_HTTP_SSL)
    u->ssl = p->ssl;
    u->ssl_name = p->ssl_name;
#endif

    if (ngx_http_llmproxy_build_request(r, ctx, d) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_keepalive_take(pc, p->ssl);
}


/*
 * The deployment this attempt goes to: the same again (a cached
 * connection was stale, or one of its provider's addresses refused), or
 * the plan's next one that has an address; NULL when none is left
 */

static ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_peer_next(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_log_t *log)
{
    ngx_http_llmproxy_deployment_t  *d;

    for ( ;; ) {

        if (ctx->route.repeat && ctx->route.current) {
            ctx->route.repeat = 0;
            d = ctx->route.current;

        } else {
            ctx->route.addr_tries = 0;
            d = ngx_http_llmproxy_route_next(r, ctx);

            if (d == NULL) {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "llmproxy: model \"%V\": no deployment left "
                              "after %ui attempts", &ctx->req.model,
                              ctx->route.attempts);
                return NULL;
            }
        }

        if (d->provider->naddrs) {
            return d;
        }

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "llmproxy: provider \"%V\" has no address (its host "
                      "did not resolve)", &d->provider->name);

        ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_CONNECT;
        ngx_http_llmproxy_route_failed(r, ctx);
    }
}


/* a cached connection to the peer, if there is one: NGX_DONE, or NGX_OK */

static ngx_int_t
ngx_http_llmproxy_keepalive_take(ngx_peer_connection_t *pc, ngx_uint_t ssl)
{
    ngx_connection_t                    *c;
    ngx_http_llmproxy_keepalive_item_t  *item;

    item = ngx_http_llmproxy_keepalive_find(pc, ssl);

    if (item == NULL) {
        return NGX_OK;
    }

    c = item->connection;

    ngx_queue_remove(&item->queue);
    ngx_queue_insert_head(&ngx_http_llmproxy_keepalive_free, &item->queue);

    c->idle = 0;
    c->sent = 0;
    c->data = NULL;
    c->log = pc->log;
    c->read->log = pc->log;
    c->write->log = pc->log;
    c->pool->log = pc->log;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    pc->connection = c;
    pc->cached = 1;

    return NGX_DONE;
}


static void
ngx_http_llmproxy_peer_free(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_request_t *r = data;

    ngx_connection_t               *c;
    ngx_http_upstream_t            *u;
    ngx_http_llmproxy_ctx_t        *ctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    u = r->upstream;
    c = pc->connection;

    if (state & NGX_PEER_FAILED) {
        ngx_http_llmproxy_peer_failed(pc, r, ctx);
        return;
    }

    if (c == NULL
        || c->read->eof
        || c->read->error
        || c->read->timedout
        || c->write->error
        || c->write->timedout
        || !u->keepalive
        || !u->request_body_sent
        || c->requests >= 10000
        || ngx_terminate
        || ngx_exiting
        || (ngx_queue_empty(&ngx_http_llmproxy_keepalive_free)
            && ngx_queue_empty(&ngx_http_llmproxy_keepalive_cache)))
    {
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    ngx_http_llmproxy_keepalive_save(pc, lmcf->keepalive_timeout);
}


/*
 * A failed attempt: why it failed, then the provider's next address, a
 * cached connection's retry, or the route's next deployment.
 */

static void
ngx_http_llmproxy_peer_failed(ngx_peer_connection_t *pc,
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_connection_t     *c;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    c = pc->connection;

    if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_NONE) {
        ctx->route.fail = (c && (c->read->timedout || c->write->timedout))
                    ? NGX_HTTP_LLMPROXY_FAIL_TIMEOUT
                    : ctx->answer.body_wait
                    ? NGX_HTTP_LLMPROXY_FAIL_TRUNCATED
                    : NGX_HTTP_LLMPROXY_FAIL_CONNECT;
    }

    if (pc->cached && ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_CONNECT) {
        ctx->route.repeat = 1;
        return;
    }

    /* "localhost" is ::1 and 127.0.0.1: try the provider's next one */

    if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_CONNECT && !u->request_sent
        && ctx->route.current
        && ++ctx->route.addr_tries < ctx->route.current->provider->naddrs)
    {
        ngx_log_error(NGX_LOG_INFO, pc->log, 0,
                      "llmproxy: \"%V\" at %V failed, trying its "
                      "next address", &ctx->route.current->id, pc->name);
        ctx->route.repeat = 1;
        return;
    }

    ngx_log_error(NGX_LOG_WARN, pc->log, 0,
                  "llmproxy: attempt %ui on \"%V\" failed: %s",
                  ctx->route.attempts,
                  ctx->route.current ? &ctx->route.current->id
                                     : &ctx->req.model,
                  ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TIMEOUT
                  ? "timed out"
                  : ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_CONNECT
                  ? "connection failed"
                  : ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_STATUS
                  ? "retryable status"
                  : ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TRUNCATED
                  ? "answer cut short"
                  : ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_TRANSLATE
                  ? "answer not translatable" : "invalid response");

    ngx_http_llmproxy_route_failed(r, ctx);
}


static ngx_int_t
ngx_http_llmproxy_build_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d)
{
    ngx_str_t                       uri;
    ngx_buf_t                      *head;
    ngx_http_llmproxy_provider_t   *pv;
    ngx_http_llmproxy_body_plan_t   bp;

    pv = d->provider;

    /* the provider's own interface, or the one the request is turned into */

    ctx->up.iface = (pv->interfaces & ctx->req.iface)
                    ? ctx->req.iface
                    : ngx_http_llmproxy_translate_target(pv->interfaces);

    if (ngx_http_llmproxy_body_plan(r, ctx, d, &bp) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_upstream_uri(r, ctx, d, &uri) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: attempt \"%V\" as %s: POST %V, body %uz "
                   "(%s, %ui edits)", &d->id, llmp_iface_name(ctx->up.iface),
                   &uri, bp.len, bp.whole ? "made" : "client's", bp.n);

    head = ngx_http_llmproxy_request_head(r, ctx, d, &uri, bp.len);
    if (head == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_request_chain(r, ctx, head, &bp);
}


/*
 * The attempt's body: translated or rewritten whole for it (another
 * interface, Gemini's embeddings), or the client's as it came with up to
 * two pieces spliced in: the value of "model", and
 * stream_options.include_usage when added
 */

static ngx_int_t
ngx_http_llmproxy_body_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_http_llmproxy_body_plan_t *bp)
{
    ngx_uint_t                 k, n;
    ngx_http_llmproxy_edit_t  *edits;

    edits = bp->edits;
    bp->whole = 1;
    bp->n = 0;

    if (ctx->up.iface != ctx->req.iface) {
        if (ngx_http_llmproxy_translate_request(r, ctx, d, &edits[0].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        bp->len = edits[0].value.len;
        return NGX_OK;
    }

    /* Gemini's embeddings name the model in the body too */

    if (ctx->req.embed_models) {
        if (ngx_http_llmproxy_gemini_embed_body(r, ctx, d, &edits[0].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        bp->len = edits[0].value.len;
        return NGX_OK;
    }

    bp->whole = 0;
    n = 0;

    if (ctx->req.top.model.type == LLMP_JSON_STRING) {
        edits[n].start = ctx->req.top.model.start;
        edits[n].end = ctx->req.top.model.end;
        edits[n].value = d->upstream_model_json;
        n++;
    }

    if (ctx->req.edit.len) {
        edits[n].start = ctx->req.edit_start;
        edits[n].end = ctx->req.edit_end;
        edits[n].value = ctx->req.edit;

        if (n && edits[n].start < edits[0].start) {
            edits[2] = edits[0];
            edits[0] = edits[1];
            edits[1] = edits[2];
        }

        n++;
    }

    bp->len = ctx->req.body_len;

    for (k = 0; k < n; k++) {
        bp->len += edits[k].value.len - (edits[k].end - edits[k].start);
    }

    bp->n = n;

    return NGX_OK;
}


/*
 * The request line and headers: the provider's Host and credentials
 * (where its interface expects them), its configured headers, then the
 * client's headers except those the gateway decides
 */

static ngx_buf_t *
ngx_http_llmproxy_request_head(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *uri, size_t body_len)
{
    u_char                           *p;
    size_t                            len;
    ngx_buf_t                        *b;
    ngx_http_llmproxy_provider_t     *pv;
    const ngx_http_llmproxy_iface_t  *ifc;

    pv = d->provider;

    len = sizeof("POST ") - 1 + uri->len + sizeof(" HTTP/1.1" CRLF) - 1
          + sizeof("Host: ") - 1 + pv->host.len + 2
          + sizeof("Content-Type: application/json" CRLF) - 1
          + sizeof("Content-Length: " CRLF) - 1 + NGX_OFF_T_LEN
          + sizeof("Authorization: Bearer " CRLF) - 1 + pv->api_key.len
          + sizeof("anthropic-version: 2023-06-01" CRLF) - 1
          + pv->extra_headers.len + 2
          + ngx_http_llmproxy_client_headers(r, NULL);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    /* "POST %V HTTP/1.1", "Host: %V", ..., "Content-Length: %uz" */

    p = ngx_cpymem(b->last, "POST ", sizeof("POST ") - 1);
    p = ngx_cpymem(p, uri->data, uri->len);
    p = ngx_cpymem(p, " HTTP/1.1" CRLF "Host: ",
                   sizeof(" HTTP/1.1" CRLF "Host: ") - 1);
    p = ngx_cpymem(p, pv->host.data, pv->host.len);
    p = ngx_cpymem(p, CRLF "Content-Type: application/json" CRLF
                   "Content-Length: ",
                   sizeof(CRLF "Content-Type: application/json" CRLF
                          "Content-Length: ") - 1);
    p = ngx_http_llmproxy_format_uint(p, body_len);
    *p++ = CR; *p++ = LF;

    /* the provider's credentials, where its interface expects them */

    ifc = ngx_http_llmproxy_iface(ctx->up.iface);

    if (pv->api_key.len) {
        p = ngx_cpymem(p, ifc->key_header.data, ifc->key_header.len);
        p = ngx_cpymem(p, pv->api_key.data, pv->api_key.len);
        *p++ = CR; *p++ = LF;
    }

    if (ifc->version_header.len
        && (ctx->req.iface != ctx->up.iface
            || !ngx_http_llmproxy_has_header(r,
                                   (char *) ifc->version_name.data)))
    {
        p = ngx_cpymem(p, ifc->version_header.data, ifc->version_header.len);
    }

    p = ngx_cpymem(p, pv->extra_headers.data, pv->extra_headers.len);
    p += ngx_http_llmproxy_client_headers(r, p);

    *p++ = CR; *p++ = LF;
    b->last = p;

    return b;
}


/*
 * The client's headers but those the gateway decides, written at p; or,
 * with p NULL, the most they can take
 */

static size_t
ngx_http_llmproxy_client_headers(ngx_http_request_t *r, u_char *p)
{
    u_char           *start;
    size_t            len;
    ngx_str_t        *drop;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    start = p;
    len = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (p == NULL) {
            len += h[i].key.len + 2 + h[i].value.len + 2;
            continue;
        }

        /* the names lowercased by nginx's parser, as the proxy module's */

        for (drop = ngx_http_llmproxy_drop_headers; drop->len; drop++) {
            if (drop->len == h[i].key.len
                && ngx_memcmp(drop->data, h[i].lowcase_key, drop->len) == 0)
            {
                break;
            }
        }

        if (drop->len) {
            continue;
        }

        p = ngx_cpymem(p, h[i].key.data, h[i].key.len);
        *p++ = ':'; *p++ = ' ';
        p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
        *p++ = CR; *p++ = LF;
    }

    return p ? (size_t) (p - start) : len;
}


/* the head, then the body's pieces, none of them copied */

static ngx_int_t
ngx_http_llmproxy_request_chain(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *head,
    ngx_http_llmproxy_body_plan_t *bp)
{
    size_t                     pos;
    ngx_buf_t                 *b;
    ngx_uint_t                 k;
    ngx_chain_t               *cl, **ll;
    ngx_http_llmproxy_edit_t  *edits;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = head;
    ll = &cl->next;

    r->upstream->request_bufs = cl;

    edits = bp->edits;

#define ngx_http_llmproxy_body_buf(from, size)                               \
    if (size) {                                                              \
        b = ngx_calloc_buf(r->pool);                                         \
        *ll = ngx_alloc_chain_link(r->pool);                                 \
        if (b == NULL || *ll == NULL) {                                      \
            return NGX_ERROR;                                                \
        }                                                                    \
        b->start = b->pos = (u_char *) (from);                               \
        b->end = b->last = (u_char *) (from) + (size);                       \
        b->memory = 1;                                                       \
        (*ll)->buf = b;                                                      \
        ll = &(*ll)->next;                                                   \
    }

    if (bp->whole) {
        ngx_http_llmproxy_body_buf(edits[0].value.data, edits[0].value.len);
        *ll = NULL;
        return NGX_OK;
    }

    pos = 0;

    for (k = 0; k < bp->n; k++) {
        ngx_http_llmproxy_body_buf(ctx->req.body + pos, edits[k].start - pos);
        ngx_http_llmproxy_body_buf(edits[k].value.data, edits[k].value.len);
        pos = edits[k].end;
    }

    ngx_http_llmproxy_body_buf(ctx->req.body + pos, ctx->req.body_len - pos);

#undef ngx_http_llmproxy_body_buf

    *ll = NULL;

    return NGX_OK;
}


/*
 * The path on the provider: its api_base path, then the endpoint in the
 * interface it is spoken to in (Gemini's with the model in it)
 */

static ngx_int_t
ngx_http_llmproxy_upstream_uri(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *uri)
{
    u_char                           *p;
    size_t                            len;
    ngx_str_t                         endpoint, action;
    const ngx_http_llmproxy_iface_t  *ifc;

    endpoint = ctx->req.endpoint_path;

    ifc = ngx_http_llmproxy_iface(ctx->up.iface);

    if (ctx->up.iface != ctx->req.iface && ifc->chat_path.len) {
        endpoint = ifc->chat_path;
    }

    if (ifc->chat_path.len) {
        len = d->provider->path.len + sizeof("/v1") - 1 + endpoint.len;

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        uri->data = p;

        p = ngx_cpymem(p, d->provider->path.data, d->provider->path.len);
        p = ngx_cpymem(p, "/v1", sizeof("/v1") - 1);
        p = ngx_cpymem(p, endpoint.data, endpoint.len);

        uri->len = p - uri->data;
        return NGX_OK;
    }

    /* /v1beta/models/MODEL:method, ?alt=sse for a stream */

    if (ctx->req.iface == LLMP_IFACE_GEMINI) {
        action = ctx->req.action;

    } else if (ctx->req.stream) {
        ngx_str_set(&action, "streamGenerateContent");

    } else {
        ngx_str_set(&action, "generateContent");
    }

    len = d->provider->path.len + sizeof("/v1beta/models/:?alt=sse") - 1
          + d->upstream_model.len
          + 2 * ngx_escape_uri(NULL, d->upstream_model.data,
                               d->upstream_model.len,
                               NGX_ESCAPE_URI_COMPONENT)
          + action.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uri->data = p;

    p = ngx_sprintf(p, "%V/v1beta/models/", &d->provider->path);
    p = (u_char *) ngx_escape_uri(p, d->upstream_model.data,
                                  d->upstream_model.len,
                                  NGX_ESCAPE_URI_COMPONENT);
    p = ngx_sprintf(p, ":%V", &action);

    if (ctx->req.stream) {
        p = ngx_cpymem(p, "?alt=sse", sizeof("?alt=sse") - 1);
    }

    uri->len = p - uri->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_create_request(ngx_http_request_t *r)
{
    /* the request is built per attempt, in peer.get */
    r->upstream->request_bufs = NULL;
    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_reinit_request(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    if (ctx == NULL) {
        return NGX_OK;
    }

    ctx->up.status.code = 0;
    ctx->up.status.count = 0;
    ctx->up.status.start = NULL;
    ctx->up.status.end = NULL;
    ctx->up.chunked.state = 0;

    ngx_http_llmproxy_usage_reset(ctx);

    r->upstream->process_header = ngx_http_llmproxy_process_status_line;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_process_status_line(ngx_http_request_t *r)
{
    size_t                    len;
    ngx_int_t                 rc;
    ngx_http_upstream_t      *u;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    u = r->upstream;

    /*
     * the first byte came: nginx arms the read timer once for the whole
     * header, which here includes an answer read whole, so the rest of
     * the attempt gets what is left of the request timeout rather than
     * the first-byte timeout
     */

    if (ctx->up.first_byte_wait) {
        ngx_http_llmproxy_first_byte(r, ctx);
    }

    rc = ngx_http_parse_status_line(r, &u->buffer, &ctx->up.status);

    if (rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: upstream \"%V\" sent no valid HTTP/1.x "
                      "status line", &ctx->route.current->id);
        ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_INVALID;
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->state && u->state->status == 0) {
        u->state->status = ctx->up.status.code;
    }

    u->headers_in.status_n = ctx->up.status.code;

    len = ctx->up.status.end - ctx->up.status.start;
    u->headers_in.status_line.len = len;

    u->headers_in.status_line.data = ngx_pnalloc(r->pool, len);
    if (u->headers_in.status_line.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(u->headers_in.status_line.data, ctx->up.status.start, len);

    if (ctx->up.status.http_version < NGX_HTTP_VERSION_11) {
        u->headers_in.connection_close = 1;
    }

    u->process_header = ngx_http_llmproxy_process_header;

    return ngx_http_llmproxy_process_header(r);
}


static ngx_int_t
ngx_http_llmproxy_process_header(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_upstream_t      *u;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    u = r->upstream;

    for ( ;; ) {

        rc = ngx_http_parse_header_line(r, &u->buffer, 1);

        if (rc == NGX_OK) {
            if (ngx_http_llmproxy_header_line(r) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {
            return ngx_http_llmproxy_headers_done(r, ctx);
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        /* rc == NGX_HTTP_PARSE_INVALID_HEADER */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: upstream \"%V\" sent an invalid header",
                      &ctx->route.current->id);

        ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_INVALID;

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
}


/* one header line of the provider's, kept as the proxy module keeps it */

static ngx_int_t
ngx_http_llmproxy_header_line(ngx_http_request_t *r)
{
    ngx_table_elt_t                *h;
    ngx_http_upstream_t            *u;
    ngx_http_upstream_header_t     *hh;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    u = r->upstream;

    h = ngx_list_push(&u->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = r->header_hash;

    h->key.len = r->header_name_end - r->header_name_start;
    h->value.len = r->header_end - r->header_start;

    h->key.data = ngx_pnalloc(r->pool,
                       h->key.len + 1 + h->value.len + 1 + h->key.len);
    if (h->key.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->value.data = h->key.data + h->key.len + 1;
    h->lowcase_key = h->key.data + h->key.len + 1 + h->value.len + 1;

    ngx_memcpy(h->key.data, r->header_name_start, h->key.len);
    h->key.data[h->key.len] = '\0';
    ngx_memcpy(h->value.data, r->header_start, h->value.len);
    h->value.data[h->value.len] = '\0';

    if (h->key.len == r->lowcase_index) {
        ngx_memcpy(h->lowcase_key, r->lowcase_header, h->key.len);

    } else {
        ngx_strlow(h->lowcase_key, h->key.data, h->key.len);
    }

    hh = ngx_hash_find(&umcf->headers_in_hash, h->hash,
                       h->lowcase_key, h->key.len);

    if (hh && hh->handler(r, h, hh->offset) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The provider's headers are in: a status worth a retry fails the
 * attempt, an answer without a body goes on, any other is read whole
 * first where it must be (_read_whole)
 */

static ngx_int_t
ngx_http_llmproxy_headers_done(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t             rc;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: \"%V\" answered %ui%s",
                   &ctx->route.current->id, u->headers_in.status_n,
                   u->headers_in.chunked ? ", chunked" : "");

    if (ngx_http_llmproxy_retryable(r, ctx) != NGX_OK) {
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->headers_in.chunked) {
        u->headers_in.content_length_n = -1;
    }

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || (!u->headers_in.chunked
            && u->headers_in.content_length_n == 0))
    {
        u->keepalive = !u->headers_in.connection_close;
        return NGX_OK;
    }

    rc = ngx_http_llmproxy_read_whole(r, ctx);

    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_OK : rc;
    }

    /*
     * its first byte is now, as for an answer passed on as it comes (the
     * filter keeps it)
     */

    ctx->time.ttfb = ngx_current_msec - ctx->time.start + 1;

    ctx->answer.body_wait = 1;
    ctx->answer.body_read = 0;
    ngx_memzero(&ctx->answer.body_chunked, sizeof(ngx_http_chunked_t));

    u->process_header = ngx_http_llmproxy_process_body;

    return ngx_http_llmproxy_process_body(r);
}


/*
 * 429 and 5xx are retried on another deployment or model, as long as
 * nothing was sent to the client; a 429's retry-after sets the cooldown
 */

static ngx_int_t
ngx_http_llmproxy_retryable(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t             n;
    ngx_uint_t            i, status;
    ngx_list_part_t      *part;
    ngx_table_elt_t      *h;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    status = u->headers_in.status_n;

    if (status != NGX_HTTP_TOO_MANY_REQUESTS && status < 500) {
        return NGX_OK;
    }

    ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_STATUS;
    ctx->route.fail_status = status;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llmproxy: upstream \"%V\" answered %ui",
                  &ctx->route.current->id, status);

    if (status != NGX_HTTP_TOO_MANY_REQUESTS) {
        return NGX_DECLINED;
    }

    part = &u->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == 14
            && ngx_strncmp(h[i].lowcase_key, "retry-after-ms", 14) == 0)
        {
            n = ngx_atoi(h[i].value.data, h[i].value.len);
            if (n > 0) {
                ctx->route.retry_after = (ngx_msec_t) ngx_min(n, 3600000);
                break;
            }

        } else if (h[i].key.len == 11
                   && ngx_strncmp(h[i].lowcase_key, "retry-after", 11) == 0)
        {
            n = ngx_atoi(h[i].value.data, h[i].value.len);
            if (n > 0) {
                ctx->route.retry_after = (ngx_msec_t) ngx_min(n, 3600) * 1000;
            }
        }
    }

    return NGX_DECLINED;
}


/*
 * A non-streamed answer (or any error) is read whole here, before nginx
 * passes anything of it on: the client waits for all of it anyway (the
 * filter holds it for its cost header).  Cut short (its length not
 * reached, its last chunk missing, the connection reset) or impossible to
 * translate, it is then a failed attempt like a 5xx, which nginx's
 * next-upstream logic retries on the next deployment or fallback, and
 * which ends in a 502 in the client's shape when there is none.  NGX_OK:
 * read it whole; NGX_DECLINED: pass it on as it comes.
 */

static ngx_int_t
ngx_http_llmproxy_read_whole(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    /* a stream goes out as it comes; its errors do not stream */

    if (ctx->req.stream && u->headers_in.status_n < NGX_HTTP_BAD_REQUEST) {
        return NGX_DECLINED;
    }

    /*
     * an answer that only the connection's end ends: nginx takes that end
     * for a failure while it reads the header (providers answer HTTP/1.1
     * requests with a length or chunks)
     */

    if (!u->headers_in.chunked && u->headers_in.content_length_n < 0) {
        return NGX_DECLINED;
    }

    if (u->headers_in.content_length_n > NGX_HTTP_LLMPROXY_HOLD_MAX) {

        if (ctx->up.iface && ctx->up.iface != ctx->req.iface) {
            return ngx_http_llmproxy_body_too_large(r, ctx);
        }

        /* too large to hold: passed on as it comes, without its cost */
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the process_header handler while the answer is read whole */

static ngx_int_t
ngx_http_llmproxy_process_body(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    /* u->buffer.pos stays at the body's start */

    if (r->upstream->headers_in.chunked) {
        return ngx_http_llmproxy_body_chunked(r, ctx);
    }

    return ngx_http_llmproxy_body_length(r, ctx);
}


/* a body of a known length: read until it is all in the buffer */

static ngx_int_t
ngx_http_llmproxy_body_length(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    size_t                len, size;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    len = (size_t) u->headers_in.content_length_n;

    if ((size_t) (u->buffer.last - u->buffer.pos) >= len) {
        return ngx_http_llmproxy_body_done(r, ctx, len);
    }

    if (u->buffer.last < u->buffer.end) {
        return NGX_AGAIN;
    }

    /*
     * room for the length announced, up to 1m at once: a length is
     * not all allocated before its bytes come
     */

    size = ngx_max(2 * (size_t) (u->buffer.end - u->buffer.pos),
                   NGX_HTTP_LLMPROXY_READ_HINT);

    if (ngx_http_llmproxy_body_room(r, ngx_min(size, len)) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/*
 * A chunked body: chunks are decoded in place as they come, the buffer
 * holds the decoded body so far, and what the next read appends
 */

static ngx_int_t
ngx_http_llmproxy_body_chunked(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char               *p;
    off_t                 n;
    ngx_int_t             rc;
    ngx_buf_t             in;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    ngx_memzero(&in, sizeof(ngx_buf_t));

    in.pos = u->buffer.pos + ctx->answer.body_read;
    in.last = u->buffer.last;

    p = in.pos;

    for ( ;; ) {

        rc = ngx_http_parse_chunked(r, &in, &ctx->answer.body_chunked);

        if (rc == NGX_OK) {
            n = ngx_min(in.last - in.pos, ctx->answer.body_chunked.size);

            p = ngx_movemem(p, in.pos, (size_t) n);
            in.pos += n;
            ctx->answer.body_chunked.size -= n;

            continue;
        }

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_DONE) {

            if (in.pos != in.last) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "llmproxy: upstream sent data after final "
                              "chunk");
                u->headers_in.connection_close = 1;
            }

            /* passed on as a body of that length */

            u->buffer.last = p;
            u->headers_in.chunked = 0;
            u->headers_in.content_length_n = p - u->buffer.pos;

            return ngx_http_llmproxy_body_done(r, ctx, p - u->buffer.pos);
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: upstream \"%V\" sent invalid chunked "
                      "response", &ctx->route.current->id);

        ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_INVALID;

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    u->buffer.last = p;
    ctx->answer.body_read = p - u->buffer.pos;

    if (u->buffer.last < u->buffer.end) {
        return NGX_AGAIN;
    }

    return ngx_http_llmproxy_body_chunked_full(r, ctx);
}


/*
 * The buffer is full of decoded chunks: a larger one, or, past what may
 * be held, the rest passed on as it comes.
 */

static ngx_int_t
ngx_http_llmproxy_body_chunked_full(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    size_t                size;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (ctx->answer.body_read >= NGX_HTTP_LLMPROXY_HOLD_MAX) {

        if (ctx->up.iface && ctx->up.iface != ctx->req.iface) {
            return ngx_http_llmproxy_body_too_large(r, ctx);
        }

        /*
         * too large to hold: what is decoded goes first (body_plain), the
         * chunked filter goes on from where the chunks were left
         */

        ctx->answer.body_wait = 0;
        ctx->answer.body_plain = 1;
        ctx->up.chunked = ctx->answer.body_chunked;

        return NGX_OK;
    }

    /* (a header may have filled the first buffer to its end) */

    size = ngx_max(2 * (size_t) (u->buffer.end - u->buffer.pos),
                   u->conf->buffer_size);
    size = ngx_min(size, NGX_HTTP_LLMPROXY_HOLD_MAX + u->conf->buffer_size);

    if (ngx_http_llmproxy_body_room(r, size) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* the whole answer, in the buffer: translated if it must be */

static ngx_int_t
ngx_http_llmproxy_body_done(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, size_t len)
{
    ngx_int_t   rc;
    ngx_uint_t  status;

    ctx->answer.body_wait = 0;

    status = r->upstream->headers_in.status_n;

    if (ctx->up.iface == 0 || ctx->up.iface == ctx->req.iface
        || status < NGX_HTTP_OK
        || (status >= NGX_HTTP_SPECIAL_RESPONSE
            && status < NGX_HTTP_BAD_REQUEST))
    {
        return NGX_OK;
    }

    rc = ngx_http_llmproxy_translate_answer(r, ctx, status,
                                            r->upstream->buffer.pos, len);

    if (rc == NGX_DECLINED) {
        ctx->route.fail = NGX_HTTP_LLMPROXY_FAIL_TRANSLATE;
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    return rc;
}


/*
 * A buffer of size bytes for the answer, its bytes so far moved to its
 * start (the header's are no longer needed: what nginx keeps of a header
 * is copied)
 */

static ngx_int_t
ngx_http_llmproxy_body_room(ngx_http_request_t *r, size_t size)
{
    u_char               *p;
    size_t                n;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    n = u->buffer.last - u->buffer.pos;

    p = ngx_palloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, u->buffer.pos, n);

    /* the buffers outgrown are large allocations: freed at once */

    (void) ngx_pfree(r->pool, u->buffer.start);

    u->buffer.start = p;
    u->buffer.pos = p;
    u->buffer.last = p + n;
    u->buffer.end = p + size;

    return NGX_OK;
}


/* an answer to translate that is over the hold limit: 502, not retried */

static ngx_int_t
ngx_http_llmproxy_body_too_large(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    (void) ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_GATEWAY, "api_error",
                                  "translation_failed",
                                  "the answer of \"%V\" is over %uz bytes, "
                                  "too large to translate from %s",
                                  &ctx->route.current->id,
                                  (size_t) NGX_HTTP_LLMPROXY_HOLD_MAX,
                                  llmp_iface_name(ctx->up.iface));
    ctx->err.keep = 1;

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_llmproxy_input_filter_init(void *data)
{
    ngx_http_request_t *r = data;

    ngx_http_upstream_t      *u;
    ngx_http_llmproxy_ctx_t  *ctx;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    /*
     * a stream passed on as it comes: nginx rearms the read timer with
     * read_timeout after every read, so it is the longest gap between
     * two chunks; a stalled stream then ends (finalize_request)
     */

    if (ctx->req.stream && ctx->route.current) {
        ctx->streaming.idle_timeout =
                    ngx_http_llmproxy_timeout(ctx, ctx->route.current, 1);

        if (ctx->streaming.idle_timeout) {
            u->conf->read_timeout = ctx->streaming.idle_timeout;
        }
    }

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || r->method == NGX_HTTP_HEAD)
    {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else if (u->headers_in.chunked) {
        u->input_filter = ngx_http_llmproxy_chunked_filter;
        u->length = 1;

    } else if (u->headers_in.content_length_n == 0) {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else {
        u->length = u->headers_in.content_length_n;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_copy_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t *r = data;

    ngx_buf_t                *b;
    ngx_chain_t              *cl, **ll;
    ngx_http_upstream_t      *u;
    ngx_http_llmproxy_ctx_t  *ctx;

    u = r->upstream;

    if (u->length == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llmproxy: upstream sent more data than specified in "
                      "\"Content-Length\" header");
        u->keepalive = 0;
        return NGX_OK;
    }

    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }

    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    *ll = cl;

    cl->buf->flush = 1;
    cl->buf->memory = 1;

    b = &u->buffer;

    cl->buf->pos = b->last;
    b->last += bytes;
    cl->buf->last = b->last;
    cl->buf->tag = u->output.tag;

    if (u->length != -1 && bytes > u->length) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llmproxy: upstream sent more data than specified in "
                      "\"Content-Length\" header");

        cl->buf->last = cl->buf->pos + u->length;
        u->length = 0;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    ngx_http_llmproxy_relay_scan(ctx, cl->buf);

    if (u->length == -1 || u->length == 0) {
        return NGX_OK;
    }

    u->length -= bytes;

    if (u->length == 0) {
        u->keepalive = !u->headers_in.connection_close;
    }

    return NGX_OK;
}


/* a buffer of the upstream's own for the client, at the end of *ll */

static ngx_buf_t *
ngx_http_llmproxy_relay_buf(ngx_http_request_t *r, ngx_chain_t ***ll)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NULL;
    }

    **ll = cl;
    *ll = &cl->next;

    b = cl->buf;

    b->flush = 1;
    b->memory = 1;
    b->tag = u->output.tag;

    return b;
}


/*
 * The input filter of an answer in chunked encoding passed on as it comes
 * (a stream, mostly): what was read is decoded in place, each chunk's
 * data going to the client in a relay buffer of its own, which the
 * gateway scans for usage (and a stream for its text) on the way.
 */

static ngx_int_t
ngx_http_llmproxy_chunked_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t *r = data;

    ngx_int_t                 rc;
    ngx_buf_t                *buf;
    ngx_chain_t              *cl, **ll;
    ngx_http_upstream_t      *u;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    u = r->upstream;
    buf = &u->buffer;

    buf->pos = buf->last;
    buf->last += bytes;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: chunked filter, %z bytes read", bytes);

    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }

    if (ctx->answer.body_plain) {
        return ngx_http_llmproxy_chunked_plain(r, ctx, buf, ll);
    }

    for ( ;; ) {

        rc = ngx_http_parse_chunked(r, buf, &ctx->up.chunked);

        if (rc == NGX_OK) {
            if (ngx_http_llmproxy_chunked_data(r, ctx, buf, &ll) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (rc == NGX_DONE) {
            ngx_http_llmproxy_chunked_done(r, buf);
            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llmproxy: chunked filter, waiting for more");
            return NGX_OK;
        }

        break;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "llmproxy: upstream sent invalid chunked response");

    ngx_http_llmproxy_late_error(ctx, NGX_HTTP_BAD_GATEWAY,
                                 "upstream_invalid_response");

    return NGX_ERROR;
}


/*
 * The start of an answer too large to read whole, decoded already while
 * the gateway tried to hold it (body_plain): passed on as it is
 */

static ngx_int_t
ngx_http_llmproxy_chunked_plain(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *buf, ngx_chain_t **ll)
{
    ngx_buf_t  *b;

    ctx->answer.body_plain = 0;

    b = ngx_http_llmproxy_relay_buf(r, &ll);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = buf->pos;
    b->last = buf->last;

    buf->pos = buf->last;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: chunked filter, %uz decoded bytes relayed",
                   (size_t) (b->last - b->pos));

    ngx_http_llmproxy_relay_scan(ctx, b);

    return NGX_OK;
}


/* the data of one chunk, or what of it was read, into a relay buffer */

static ngx_int_t
ngx_http_llmproxy_chunked_data(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *buf, ngx_chain_t ***ll)
{
    ngx_buf_t  *b;

    b = ngx_http_llmproxy_relay_buf(r, ll);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = buf->pos;

    if (buf->last - buf->pos >= ctx->up.chunked.size) {
        buf->pos += (size_t) ctx->up.chunked.size;
        b->last = buf->pos;
        ctx->up.chunked.size = 0;

    } else {
        ctx->up.chunked.size -= buf->last - buf->pos;
        buf->pos = buf->last;
        b->last = buf->last;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: chunked filter, %uz bytes of chunk data, "
                   "%O to come", (size_t) (b->last - b->pos),
                   ctx->up.chunked.size);

    ngx_http_llmproxy_relay_scan(ctx, b);

    return NGX_OK;
}


/* the last chunk: the connection may be kept, unless more came after it */

static void
ngx_http_llmproxy_chunked_done(ngx_http_request_t *r, ngx_buf_t *buf)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    u->keepalive = !u->headers_in.connection_close;
    u->length = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: chunked filter, last chunk, keepalive: %d",
                   u->keepalive);

    if (buf->pos != buf->last) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llmproxy: upstream sent data after final chunk");
        u->keepalive = 0;
    }
}


/* what goes to the client, read for its usage and a stream for its text */

static void
ngx_http_llmproxy_relay_scan(ngx_http_llmproxy_ctx_t *ctx, ngx_buf_t *b)
{
    ngx_http_llmproxy_usage_scan(ctx, b->pos, b->last);

    if (ctx->req.stream) {
        ngx_http_llmproxy_sse_count(ctx, b->pos, b->last);
    }
}


static void
ngx_http_llmproxy_abort_request(ngx_http_request_t *r)
{
    return;
}


static void
ngx_http_llmproxy_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: finalize upstream request: %i", rc);

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx == NULL || r->upstream == NULL || !r->upstream->header_sent) {
        return;
    }

    /*
     * the client left: seen by nginx, or a write that failed (an error of
     * the gateway's own, such as a stream it could not translate, has
     * its code already; ngx_http_output_filter() marks the connection
     * failed for any error)
     */

    if (ctx->req.stream
        && (ctx->streaming.client_left || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
            || rc == NGX_HTTP_REQUEST_TIME_OUT
            || (rc == NGX_ERROR && r->connection->error
                && ctx->err.status == 0)))
    {
        ngx_http_llmproxy_client_left(r, ctx, rc);
        ngx_http_llmproxy_usage_account(r, ctx);
        return;
    }

    /*
     * an answer passed on as it came, a stream mostly, that the provider
     * cut or stopped sending: too late to retry or to change the status,
     * but its record says so, and a stream ends with the error event of
     * the client's interface
     */

    if (rc == NGX_HTTP_BAD_GATEWAY) {
        ngx_http_llmproxy_late_error(ctx, rc, "upstream_truncated");
        ngx_str_set(&ctx->err.message, "the provider's stream was cut "
                    "short");

    } else if (rc == NGX_HTTP_GATEWAY_TIME_OUT) {

        if (ctx->req.stream && ctx->streaming.idle_timeout) {
            ngx_http_llmproxy_late_error(ctx, rc, "stream_idle_timeout");
            ctx->err.type = "timeout";
            ngx_str_set(&ctx->err.message, "the provider's stream stalled "
                        "(stream_idle_timeout_seconds)");

        } else {
            ngx_http_llmproxy_late_error(ctx, rc, "upstream_timeout");
            ngx_str_set(&ctx->err.message, "the provider timed out");
        }

    } else if (rc != 0) {
        goto done;
    }

    if (ctx->req.stream) {

        if (rc != 0) {
            ngx_http_llmproxy_sse_estimate(ctx);

            (void) ngx_http_llmproxy_stream_error(r, ctx);
        }
    }

done:

    ngx_http_llmproxy_usage_account(r, ctx);
}


/*
 * The client left a stream: recorded as 499 (nginx's "client closed
 * request", as the access log shows it), billed with the usage the
 * provider sent, read on for up to llmproxy_stream_drain_timeout; or,
 * when the stream ended before it, with an estimate, marked as such
 */

static void
ngx_http_llmproxy_client_left(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_int_t rc)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "llmproxy: client left the stream of \"%V\"%s",
                  &ctx->req.model,
                  rc == 0 ? ", its usage read to the end"
                  : ctx->streaming.draining ? ", its usage not come in time"
                  : "");

    ctx->streaming.client_left = 1;
    ctx->streaming.draining = 0;

    if (rc != 0 || ctx->usage.completion_tokens < 0) {
        ngx_http_llmproxy_sse_estimate(ctx);
    }

    ctx->err.status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    ctx->err.type = "invalid_request_error";
    ctx->err.code = "client_closed";

    r->headers_out.status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
}


/*
 * The first-byte (idle == 0) or stream-idle timeout of a deployment: its
 * model's own, else the settings'; the first-byte one is never over the
 * request timeout, which it replaces until the answer starts.  0: off.
 */

static ngx_msec_t
ngx_http_llmproxy_timeout(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_deployment_t *d, ngx_uint_t idle)
{
    ngx_msec_t                     t;
    ngx_http_llmproxy_settings_t  *s;

    s = &ctx->rt->settings;

    if (idle) {
        return (d->stream_idle_timeout != NGX_CONF_UNSET_MSEC)
               ? d->stream_idle_timeout : s->stream_idle_timeout;
    }

    t = (d->first_byte_timeout != NGX_CONF_UNSET_MSEC)
        ? d->first_byte_timeout : s->first_byte_timeout;

    if (t == 0 || t > s->request_timeout) {
        t = s->request_timeout;
    }

    return t;
}


static void
ngx_http_llmproxy_first_byte(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_msec_t            timeout;
    ngx_msec_int_t        left;
    ngx_connection_t     *c;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    c = u->peer.connection;

    ctx->up.first_byte_wait = 0;

    timeout = ctx->rt->settings.request_timeout;
    u->conf->read_timeout = timeout;

    left = (ngx_msec_int_t)
               (timeout - (ngx_current_msec - ctx->time.attempt_start));

    if (c && c->read->timer_set) {
        ngx_add_timer(c->read, (ngx_msec_t) ngx_max(left, 1));
    }
}


/* an upstream failure after the status was sent: for the record only */

static void
ngx_http_llmproxy_late_error(ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t status,
    const char *code)
{
    if (ctx->err.status) {
        return;
    }

    ctx->err.status = status;
    ctx->err.type = "api_error";
    ctx->err.code = code;
}


/* idle upstream connections, per worker */

static ngx_http_llmproxy_keepalive_item_t *
ngx_http_llmproxy_keepalive_find(ngx_peer_connection_t *pc, ngx_uint_t ssl)
{
    ngx_queue_t                         *q;
    ngx_http_llmproxy_keepalive_item_t  *item;

    if (ngx_http_llmproxy_keepalive_cache.next == NULL) {
        return NULL;
    }

    for (q = ngx_queue_head(&ngx_http_llmproxy_keepalive_cache);
         q != ngx_queue_sentinel(&ngx_http_llmproxy_keepalive_cache);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_http_llmproxy_keepalive_item_t, queue);

        if (item->ssl == ssl
            && ngx_memn2cmp((u_char *) &item->sockaddr,
                            (u_char *) pc->sockaddr,
                            item->socklen, pc->socklen)
               == 0)
        {
            return item;
        }
    }

    return NULL;
}


static void
ngx_http_llmproxy_keepalive_save(ngx_peer_connection_t *pc,
    ngx_msec_t timeout)
{
    ngx_queue_t                         *q;
    ngx_connection_t                    *c;
    ngx_http_llmproxy_keepalive_item_t  *item;

    c = pc->connection;

    if (ngx_queue_empty(&ngx_http_llmproxy_keepalive_free)) {
        q = ngx_queue_last(&ngx_http_llmproxy_keepalive_cache);
        ngx_queue_remove(q);
        item = ngx_queue_data(q, ngx_http_llmproxy_keepalive_item_t, queue);
        ngx_http_llmproxy_keepalive_close(item->connection);

    } else {
        q = ngx_queue_head(&ngx_http_llmproxy_keepalive_free);
        ngx_queue_remove(q);
        item = ngx_queue_data(q, ngx_http_llmproxy_keepalive_item_t, queue);
    }

    ngx_queue_insert_head(&ngx_http_llmproxy_keepalive_cache, q);

    item->connection = c;
    item->ssl = (c->ssl != NULL);

    pc->connection = NULL;

    c->read->delayed = 0;
    ngx_add_timer(c->read, timeout);

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->write->handler = ngx_http_llmproxy_keepalive_dummy_handler;
    c->read->handler = ngx_http_llmproxy_keepalive_close_handler;

    c->data = item;
    c->idle = 1;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->pool->log = ngx_cycle->log;

    item->socklen = pc->socklen;
    ngx_memcpy(&item->sockaddr, pc->sockaddr, pc->socklen);

    if (c->read->ready) {
        ngx_http_llmproxy_keepalive_close_handler(c->read);
    }
}


static void
ngx_http_llmproxy_keepalive_dummy_handler(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "llmproxy: keepalive dummy handler");
}


static void
ngx_http_llmproxy_keepalive_close_handler(ngx_event_t *ev)
{
    int                                  n;
    char                                 buf[1];
    ngx_connection_t                    *c;
    ngx_http_llmproxy_keepalive_item_t  *item;

    c = ev->data;

    if (c->close || c->read->timedout) {
        goto close;
    }

    n = recv(c->fd, buf, 1, MSG_PEEK);

    if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
        ev->ready = 0;

        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            goto close;
        }

        return;
    }

close:

    item = c->data;

    ngx_http_llmproxy_keepalive_close(c);

    ngx_queue_remove(&item->queue);
    ngx_queue_insert_head(&ngx_http_llmproxy_keepalive_free, &item->queue);
}


static void
ngx_http_llmproxy_keepalive_close(ngx_connection_t *c)
{
#if (NGX_HTTP_SSL)

    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;

        if (ngx_ssl_shutdown(c) == NGX_AGAIN) {
            c->ssl->handler = ngx_http_llmproxy_keepalive_close;
            return;
        }
    }

#endif

    ngx_destroy_pool(c->pool);
    ngx_close_connection(c);
}


ngx_int_t
ngx_http_llmproxy_keepalive_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_http_llmproxy_main_conf_t       *lmcf;
    ngx_http_llmproxy_keepalive_item_t  *items;

    ngx_queue_init(&ngx_http_llmproxy_keepalive_cache);
    ngx_queue_init(&ngx_http_llmproxy_keepalive_free);

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);
    if (lmcf == NULL || lmcf->keepalive == 0) {
        return NGX_OK;
    }

    items = ngx_pcalloc(cycle->pool,
                        sizeof(ngx_http_llmproxy_keepalive_item_t)
                        * lmcf->keepalive);
    if (items == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < lmcf->keepalive; i++) {
        ngx_queue_insert_head(&ngx_http_llmproxy_keepalive_free,
                              &items[i].queue);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_upstream_init_conf(ngx_conf_t *cf,
    ngx_http_llmproxy_loc_conf_t *prev, ngx_http_llmproxy_loc_conf_t *conf)
{
    ngx_hash_init_t                 hash;
    ngx_http_upstream_srv_conf_t   *uscf;
    ngx_http_upstream_conf_t       *u;

    u = &conf->upstream;

    ngx_conf_merge_size_value(u->buffer_size, prev->upstream.buffer_size,
                              16384);
    ngx_conf_merge_msec_value(u->connect_timeout,
                              prev->upstream.connect_timeout, 10000);

    if (conf->role != NGX_HTTP_LLMPROXY_GATEWAY) {
        return NGX_OK;
    }

    ngx_http_llmproxy_upstream_fixed(u);

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "llmproxy_headers_hash";

    if (ngx_http_upstream_hide_headers_hash(cf, u, &prev->upstream,
                                            ngx_http_llmproxy_hide_headers,
                                            &hash)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    uscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_srv_conf_t));
    if (uscf == NULL) {
        return NGX_ERROR;
    }

    uscf->peer.init = ngx_http_llmproxy_peer_init;
    ngx_str_set(&uscf->host, "llmproxy");
    uscf->file_name = cf->conf_file->file.name.data;
    uscf->line = cf->conf_file->line;

    u->upstream = uscf;

#if (NGX_HTTP_SSL)
    return ngx_http_llmproxy_upstream_ssl(cf, u);
#else
    return NGX_OK;
#endif
}


/*
 * What the gateway's upstream always is: unbuffered, the request built by
 * the module, retries and fallbacks its own, no caching header obeyed.
 */

static void
ngx_http_llmproxy_upstream_fixed(ngx_http_upstream_conf_t *u)
{
    u->send_timeout = 600000;
    u->read_timeout = 600000;
    u->next_upstream_timeout = 0;
    u->next_upstream_tries = 0;
    u->send_lowat = 0;
    u->limit_rate = 0;
    u->busy_buffers_size = u->buffer_size;
    u->buffering = 0;
    u->request_buffering = 1;
    u->pass_request_headers = 0;
    u->pass_request_body = 0;
    u->ignore_client_abort = 0;
    u->intercept_errors = 0;
    u->store = 0;
    u->local = NULL;
    u->socket_keepalive = 0;

    u->next_upstream = NGX_HTTP_UPSTREAM_FT_ERROR
                       |NGX_HTTP_UPSTREAM_FT_TIMEOUT
                       |NGX_HTTP_UPSTREAM_FT_INVALID_HEADER
                       |NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT;

    u->ignore_headers = NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT
                        |NGX_HTTP_UPSTREAM_IGN_XA_EXPIRES
                        |NGX_HTTP_UPSTREAM_IGN_XA_LIMIT_RATE
                        |NGX_HTTP_UPSTREAM_IGN_XA_BUFFERING
                        |NGX_HTTP_UPSTREAM_IGN_XA_CHARSET
                        |NGX_HTTP_UPSTREAM_IGN_EXPIRES
                        |NGX_HTTP_UPSTREAM_IGN_CACHE_CONTROL
                        |NGX_HTTP_UPSTREAM_IGN_SET_COOKIE
                        |NGX_HTTP_UPSTREAM_IGN_VARY;

    ngx_str_set(&u->module, "llmproxy");
}


#if (NGX_HTTP_SSL)

/* TLS to the providers: one context for all locations, made by the first */

static ngx_int_t
ngx_http_llmproxy_upstream_ssl(ngx_conf_t *cf, ngx_http_upstream_conf_t *u)
{
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llmproxy_module);

    if (lmcf->ssl == NULL
        && ngx_http_llmproxy_upstream_ssl_create(cf, lmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    u->ssl = lmcf->ssl;
    u->ssl_session_reuse = 0;
    u->ssl_server_name = 1;
    u->ssl_verify = (lmcf->ssl_verify != 0);
    u->ssl_name = NULL;
    u->ssl_certificate = NULL;
    u->ssl_certificate_key = NULL;
    u->ssl_passwords = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_upstream_ssl_create(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf)
{
    ngx_str_t            cafile;
    ngx_pool_cleanup_t  *cln;

    lmcf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (lmcf->ssl == NULL) {
        return NGX_ERROR;
    }

    lmcf->ssl->log = cf->log;

    if (ngx_ssl_create(lmcf->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(lmcf->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = lmcf->ssl;

    /*
     * the main conf is complete: the location blocks that use it come
     * after the http block's own directives
     */

    cafile = lmcf->ssl_trusted_certificate;

    if (cafile.len == 0) {
        ngx_str_set(&cafile, "/etc/ssl/certs/ca-certificates.crt");
    }

    if (lmcf->ssl_verify != 0
        && ngx_ssl_trusted_certificate(cf, lmcf->ssl, &cafile, 100)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif

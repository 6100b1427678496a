/*
 * GET /metrics in Prometheus' text format, summed over all workers: each
 * request that reached routing is counted at the log phase in a series of
 * the zone (an rbtree keyed by the crc32 of its labels: model, deployment
 * and key alias).  The handler copies the series under the lock, then
 * formats them outside it.
 *
 * The series are bounded: a model label is a name the config knows (any
 * other requested name counts as "(unknown)"), a key alias is cut to
 * NGX_HTTP_LLMPROXY_ALIAS_LABEL bytes, there are at most
 * NGX_HTTP_LLMPROXY_SERIES_MAX of them, in a slab pool of their own (an
 * eighth of the zone, at most 5000k), and the series of names a new
 * config no longer has are freed.  A request whose series does not fit is
 * counted in llmproxy_metrics_series_dropped_total only.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_usage.h"
#include "ngx_http_llmproxy_zone.h"


#define NGX_HTTP_LLMPROXY_BUCKETS       11

#define NGX_HTTP_LLMPROXY_SERIES_MAX    5000
#define NGX_HTTP_LLMPROXY_ALIAS_LABEL   128


static double  ngx_http_llmproxy_bounds[NGX_HTTP_LLMPROXY_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
};


typedef struct {
    ngx_rbtree_node_t   node;
    uint64_t            requests[3];       /* 2xx and 3xx, 4xx, 5xx */
    uint64_t            prompt_tokens;
    uint64_t            completion_tokens;
    uint64_t            cache_read_tokens;     /* of the prompt tokens */
    uint64_t            cache_creation_tokens;
    uint64_t            reasoning_tokens;      /* of the completion ones */
    uint64_t            unpriced;              /* requests without a cost */
    double              cost;
    uint64_t            failures;          /* failed upstream attempts */
    uint64_t            fallbacks;
    uint64_t            latency[NGX_HTTP_LLMPROXY_BUCKETS];
    double              latency_sum;
    uint64_t            ttfb[NGX_HTTP_LLMPROXY_BUCKETS];
    double              ttfb_sum;
    uint64_t            ttfb_count;
    u_short             model_len;
    u_short             deployment_len;
    u_short             key_len;
    u_char              data[1];           /* model, deployment, key */
} ngx_http_llmproxy_series_t;


/*
 * Each worker remembers the series it updated last (their labels never
 * change), so a request of a known series finds it without building its
 * key, hashing it or walking the tree.  The stamp is the zone's: a zone
 * created anew (a reload in single-process mode), or series freed after a
 * config change, empty the cache; it is compared again under the lock,
 * before a remembered series is touched.
 */

#define NGX_HTTP_LLMPROXY_SERIES_CACHE  8

static ngx_http_llmproxy_series_t
    *ngx_http_llmproxy_series_cache[NGX_HTTP_LLMPROXY_SERIES_CACHE];
static ngx_uint_t   ngx_http_llmproxy_series_next;
static uint64_t     ngx_http_llmproxy_series_stamp;


static ngx_int_t ngx_http_llmproxy_metrics_log(ngx_http_request_t *r);
static ngx_http_llmproxy_series_t *ngx_http_llmproxy_series_lock(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *model,
    ngx_str_t *deployment, ngx_str_t *alias);
static void ngx_http_llmproxy_series_add(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_series_t *s, ngx_str_t *model, ngx_str_t *deployment,
    ngx_str_t *alias);
static void ngx_http_llmproxy_metrics_drop(ngx_http_request_t *r,
    ngx_http_llmproxy_shctx_t *sh);
static ngx_http_llmproxy_series_t *ngx_http_llmproxy_series_locked(
    ngx_http_request_t *r, ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_str_t *model, ngx_str_t *deployment, ngx_str_t *alias);
static void ngx_http_llmproxy_metrics_prune(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_http_llmproxy_runtime_t *rt);
static ngx_http_llmproxy_series_t *ngx_http_llmproxy_series_cached(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *model,
    ngx_str_t *deployment, ngx_str_t *key);
static void ngx_http_llmproxy_series_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static u_char *ngx_http_llmproxy_labels(u_char *p,
    ngx_http_llmproxy_series_t *s);
static u_char *ngx_http_llmproxy_escape(u_char *p, u_char *s, size_t len);
static ngx_int_t ngx_http_llmproxy_metrics_text(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *text);
static size_t ngx_http_llmproxy_metrics_copy(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_array_t *copies);
static u_char *ngx_http_llmproxy_metrics_series(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_requests(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_tokens(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_cost(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_attempts(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_histograms(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n);
static u_char *ngx_http_llmproxy_metrics_gauges(u_char *p,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_uint_t cooling,
    ngx_str_t *health, ngx_uint_t n);


/* the log phase: one request, one update of its series */

static ngx_int_t
ngx_http_llmproxy_metrics_log(ngx_http_request_t *r)
{
    ngx_str_t                      model, deployment, alias;
    ngx_http_llmproxy_ctx_t       *ctx;
    ngx_http_llmproxy_shctx_t     *sh;
    ngx_http_llmproxy_series_t    *s;
    ngx_http_llmproxy_zone_ctx_t  *zctx;
    ngx_http_llmproxy_main_conf_t *lmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx == NULL || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_NONE
        || ctx->req.model.len == 0 || r != r->main)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;
    sh = zctx->sh;

    if (sh->metrics_pool == NULL) {
        return NGX_OK;
    }

    /* the first request of a new config frees the series it dropped */

    if (ctx->rt && ctx->rt->generation != sh->metrics_generation
        && ctx->rt->generation == sh->generation)
    {
        ngx_http_llmproxy_metrics_prune(zctx, ctx->rt);
    }

    ngx_str_null(&deployment);

    if (ctx->route.current) {
        deployment = ctx->route.current->id;
    }

    alias = ctx->key.alias;
    alias.len = ngx_min(alias.len, NGX_HTTP_LLMPROXY_ALIAS_LABEL);

    model = ctx->req.model;

    s = ngx_http_llmproxy_series_lock(r, ctx, zctx, &model, &deployment,
                                      &alias);
    if (s == NULL) {
        return NGX_OK;
    }

    ngx_http_llmproxy_series_add(r, ctx, zctx, s, &model, &deployment,
                                 &alias);

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy metrics: counted \"%V\" status %ui",
                   &model, r->headers_out.status);

    return NGX_OK;
}


/*
 * The request's series, returned with the zone locked: a remembered one
 * whose stamp still holds, else the tree's (made if new), remembered for
 * the next request.  A model the config does not know is counted as
 * "(unknown)", and *model is set so.  NULL, unlocked, when the series
 * does not fit.
 */

static ngx_http_llmproxy_series_t *
ngx_http_llmproxy_series_lock(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_str_t *model, ngx_str_t *deployment, ngx_str_t *alias)
{
    ngx_http_llmproxy_series_t  *s;

    static ngx_str_t  unknown = ngx_string("(unknown)");

    /*
     * a remembered series was made for a name the config knows (or is
     * the "(unknown)" one), so it is looked for before the name is
     */

    s = ngx_http_llmproxy_series_cached(zctx, model, deployment, alias);

    if (s == NULL
        && (ctx->rt == NULL
            || ngx_http_llmproxy_runtime_find(ctx->rt, model) == NULL))
    {
        *model = unknown;
        s = ngx_http_llmproxy_series_cached(zctx, model, deployment, alias);
    }

    if (s) {
        ngx_shmtx_lock(&zctx->shpool->mutex);

        if (zctx->sh->metrics_stamp == ngx_http_llmproxy_series_stamp) {
            return s;
        }

        /* freed meanwhile, by a config change */

        ngx_shmtx_unlock(&zctx->shpool->mutex);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy metrics: series of \"%V\" not remembered",
                   model);

    ngx_shmtx_lock(&zctx->shpool->mutex);

    s = ngx_http_llmproxy_series_locked(r, zctx, model, deployment, alias);

    if (s == NULL) {
        ngx_shmtx_unlock(&zctx->shpool->mutex);
        return NULL;
    }

    if (ngx_http_llmproxy_series_stamp == zctx->sh->metrics_stamp) {
        ngx_http_llmproxy_series_cache[ngx_http_llmproxy_series_next] = s;
        ngx_http_llmproxy_series_next = (ngx_http_llmproxy_series_next + 1)
                                        % NGX_HTTP_LLMPROXY_SERIES_CACHE;
    }

    return s;
}


/* one request into its series, failed attempts into theirs; locked */

static void
ngx_http_llmproxy_series_add(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_series_t *s, ngx_str_t *model, ngx_str_t *deployment,
    ngx_str_t *alias)
{
    double                       secs;
    ngx_str_t                   *ids;
    ngx_uint_t                   i, status;
    ngx_http_llmproxy_series_t  *fs;

    status = r->headers_out.status;

    s->requests[status >= 500 ? 2 : status >= 400 ? 1 : 0]++;
    s->prompt_tokens += ngx_max(ctx->usage.prompt_tokens, 0);
    s->completion_tokens += ngx_max(ctx->usage.completion_tokens, 0);
    s->cache_read_tokens += ngx_max(ctx->usage.cache_read_tokens, 0);
    s->cache_creation_tokens +=
        ctx->usage.cache_in_prompt
        ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
    s->reasoning_tokens += ngx_max(ctx->usage.reasoning_tokens, 0);
    s->unpriced += ctx->usage.unpriced;
    s->cost += ctx->usage.cost;

    /*
     * each failed attempt counts for the deployment that failed, not for
     * the one that answered
     */

    ids = ctx->route.failed ? ctx->route.failed->elts : NULL;

    for (i = 0; ctx->route.failed && i < ctx->route.failed->nelts; i++) {
        fs = (ids[i].len == deployment->len
              && ngx_strncmp(ids[i].data, deployment->data, deployment->len)
                 == 0)
             ? s
             : ngx_http_llmproxy_series_locked(r, zctx, model, &ids[i],
                                               alias);
        if (fs) {
            fs->failures++;
        }
    }

    s->fallbacks += ctx->route.fallbacks;

    secs = (double) (ngx_current_msec - ctx->time.start) / 1000;
    s->latency_sum += secs;

    for (i = 0; i < NGX_HTTP_LLMPROXY_BUCKETS; i++) {
        if (secs <= ngx_http_llmproxy_bounds[i]) {
            s->latency[i]++;
        }
    }

    if (ctx->time.ttfb) {
        secs = (double) (ctx->time.ttfb - 1) / 1000;
        s->ttfb_sum += secs;
        s->ttfb_count++;

        for (i = 0; i < NGX_HTTP_LLMPROXY_BUCKETS; i++) {
            if (secs <= ngx_http_llmproxy_bounds[i]) {
                s->ttfb[i]++;
            }
        }
    }
}


/* under the lock: the series of these labels, made if it is new */

static ngx_http_llmproxy_series_t *
ngx_http_llmproxy_series_locked(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *model,
    ngx_str_t *deployment, ngx_str_t *alias)
{
    u_char                       key[1024], *k;
    size_t                       n, len;
    uint32_t                     hash;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_llmproxy_shctx_t   *sh;
    ngx_http_llmproxy_series_t  *s;

    sh = zctx->sh;

    /* the labels, NUL-separated, are the series' identity */

    len = model->len + 1 + deployment->len + 1 + alias->len;

    if (len > sizeof(key)) {
        ngx_http_llmproxy_metrics_drop(r, sh);
        return NULL;
    }

    k = ngx_cpymem(key, model->data, model->len);
    *k++ = '\0';
    k = ngx_cpymem(k, deployment->data, deployment->len);
    *k++ = '\0';
    k = ngx_cpymem(k, alias->data, alias->len);

    hash = ngx_crc32_short(key, len);

    node = sh->metrics.root;
    sentinel = sh->metrics.sentinel;
    s = NULL;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        s = (ngx_http_llmproxy_series_t *) node;
        n = s->model_len + 1 + s->deployment_len + 1 + s->key_len;

        if (n == len && ngx_memcmp(s->data, key, len) == 0) {
            break;
        }

        node = (ngx_memn2cmp(key, s->data, len, n) < 0) ? node->left
                                                        : node->right;
        s = NULL;
    }

    if (s == NULL) {
        if (sh->metrics_series < sh->metrics_max) {
            s = ngx_slab_calloc_locked(sh->metrics_pool,
                                      offsetof(ngx_http_llmproxy_series_t,
                                               data)
                                      + len);
        }

        if (s == NULL) {
            ngx_http_llmproxy_metrics_drop(r, sh);
            return NULL;
        }

        s->node.key = hash;
        s->model_len = (u_short) model->len;
        s->deployment_len = (u_short) deployment->len;
        s->key_len = (u_short) alias->len;
        ngx_memcpy(s->data, key, len);

        ngx_rbtree_insert(&sh->metrics, &s->node);
        sh->metrics_series++;
    }

    return s;
}


/* under the lock: a request whose series could not be made */

static void
ngx_http_llmproxy_metrics_drop(ngx_http_request_t *r,
    ngx_http_llmproxy_shctx_t *sh)
{
    sh->metrics_dropped++;

    if (!sh->metrics_full) {
        sh->metrics_full = 1;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llmproxy: no room for more metrics series (%ui of at "
                      "most %ui), the requests of new series are counted "
                      "as dropped", sh->metrics_series, sh->metrics_max);
    }
}


/*
 * The series of a model or deployment the config rt no longer has are
 * freed, and every worker forgets the series it remembered.
 */

static void
ngx_http_llmproxy_metrics_prune(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_runtime_t *rt)
{
    ngx_str_t                    name;
    ngx_uint_t                   freed, keep;
    ngx_rbtree_node_t           *node, *next, *root, *sentinel;
    ngx_http_llmproxy_target_t  *t;
    ngx_http_llmproxy_shctx_t   *sh;
    ngx_http_llmproxy_series_t  *s;

    sh = zctx->sh;
    freed = 0;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    if (sh->metrics_generation == rt->generation) {
        ngx_shmtx_unlock(&zctx->shpool->mutex);
        return;
    }

    sh->metrics_generation = rt->generation;

    root = sh->metrics.root;
    sentinel = sh->metrics.sentinel;

    if (root == sentinel) {
        ngx_shmtx_unlock(&zctx->shpool->mutex);
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel); node; node = next) {
        next = ngx_rbtree_next(&sh->metrics, node);
        s = (ngx_http_llmproxy_series_t *) node;

        name.data = s->data;
        name.len = s->model_len;

        keep = (name.len == sizeof("(unknown)") - 1
                && ngx_strncmp(name.data, "(unknown)", name.len) == 0)
               || ngx_http_llmproxy_runtime_find(rt, &name) != NULL;

        if (keep && s->deployment_len) {
            name.data = s->data + s->model_len + 1;
            name.len = s->deployment_len;

            t = ngx_http_llmproxy_runtime_find(rt, &name);
            keep = (t != NULL && t->deployment != NULL);
        }

        if (keep) {
            continue;
        }

        ngx_rbtree_delete(&sh->metrics, node);
        ngx_slab_free_locked(sh->metrics_pool, s);
        sh->metrics_series--;
        freed++;
    }

    if (freed) {
        sh->metrics_stamp++;
        sh->metrics_full = 0;
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    if (freed) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "llmproxy: %ui metrics series freed: config "
                      "generation %ui no longer has their names", freed,
                      rt->generation);
    }
}


static ngx_http_llmproxy_series_t *
ngx_http_llmproxy_series_cached(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_str_t *model, ngx_str_t *deployment, ngx_str_t *key)
{
    u_char                      *d;
    ngx_uint_t                   i;
    ngx_http_llmproxy_series_t  *s;

    if (ngx_http_llmproxy_series_stamp != zctx->sh->metrics_stamp) {
        ngx_memzero(ngx_http_llmproxy_series_cache,
                    sizeof(ngx_http_llmproxy_series_cache));
        ngx_http_llmproxy_series_next = 0;
        ngx_http_llmproxy_series_stamp = zctx->sh->metrics_stamp;
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_LLMPROXY_SERIES_CACHE; i++) {
        s = ngx_http_llmproxy_series_cache[i];

        if (s == NULL) {
            return NULL;
        }

        if (s->model_len != model->len
            || s->deployment_len != deployment->len
            || s->key_len != key->len)
        {
            continue;
        }

        d = s->data;

        if (ngx_memcmp(d, model->data, model->len) != 0) {
            continue;
        }

        d += model->len + 1;

        if (ngx_memcmp(d, deployment->data, deployment->len) != 0) {
            continue;
        }

        d += deployment->len + 1;

        if (ngx_memcmp(d, key->data, key->len) != 0) {
            continue;
        }

        return s;
    }

    return NULL;
}


ngx_int_t
ngx_http_llmproxy_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       text;
    ngx_http_llmproxy_runtime_t    *rt;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed", "use GET");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    /* a config that dropped names: their series go before the scrape */

    rt = ngx_http_llmproxy_runtime_get(r);

    if (rt && rt->generation != zctx->sh->metrics_generation
        && zctx->sh->metrics_pool)
    {
        ngx_http_llmproxy_metrics_prune(zctx, rt);
    }

    if (ngx_http_llmproxy_metrics_text(r, zctx, &text) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = text.len;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_llmproxy_send_body(r, text.data, text.len);
}


/* the scrape's text: the series copied under the lock, formatted outside */

static ngx_int_t
ngx_http_llmproxy_metrics_text(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *text)
{
    u_char                        *p, *start;
    size_t                         len, size;
    ngx_uint_t                     n;
    ngx_str_t                      health;
    ngx_array_t                    copies, cooldowns;
    ngx_http_llmproxy_series_t   **sp;

    if (ngx_array_init(&copies, r->pool, 16, sizeof(void *)) != NGX_OK) {
        return NGX_ERROR;
    }

    len = ngx_http_llmproxy_metrics_copy(r, zctx, &copies);

    if (ngx_http_llmproxy_cooldown_list(zctx, r->pool, &cooldowns)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_health_metrics(r, zctx, &health) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * every series appears in at most 48 lines (40 today) of at most 128
     * bytes and its labels
     */

    size = 4096 + copies.nelts * 48 * 128 + 48 * len
           + cooldowns.nelts * 256 + health.len;

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    sp = copies.elts;
    n = copies.nelts;

    p = ngx_http_llmproxy_metrics_series(start, sp, n);
    p = ngx_http_llmproxy_metrics_gauges(p, zctx, cooldowns.nelts, &health,
                                         n);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy metrics: %ui series, %uz bytes",
                   n, (size_t) (p - start));

    text->data = start;
    text->len = p - start;

    return NGX_OK;
}


/* copies the series out of shared memory; returns the bytes of labels */

static size_t
ngx_http_llmproxy_metrics_copy(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_array_t *copies)
{
    size_t                       len, size;
    ngx_rbtree_node_t           *node, *root, *sentinel;
    ngx_http_llmproxy_series_t  *s, **sp;

    len = 0;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    root = zctx->sh->metrics.root;
    sentinel = zctx->sh->metrics.sentinel;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&zctx->sh->metrics, node))
        {
            s = (ngx_http_llmproxy_series_t *) node;
            size = offsetof(ngx_http_llmproxy_series_t, data) + s->model_len
                   + s->deployment_len + s->key_len + 2;

            sp = ngx_array_push(copies);
            if (sp == NULL) {
                break;
            }

            *sp = ngx_palloc(r->pool, size);
            if (*sp == NULL) {
                copies->nelts--;
                break;
            }

            ngx_memcpy(*sp, s, size);
            /* escaped: at most 3 bytes a byte, and 29 of label names */
            len += 3 * (s->model_len + s->deployment_len + s->key_len) + 32;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return len;
}


#define LLMP_HEAD(name, type, help)                                          \
    p = ngx_sprintf(p, "# HELP " name " " help "\n# TYPE " name " " type "\n")


/* the counters and histograms of every series */

static u_char *
ngx_http_llmproxy_metrics_series(u_char *p, ngx_http_llmproxy_series_t **sp,
    ngx_uint_t n)
{
    p = ngx_http_llmproxy_metrics_requests(p, sp, n);
    p = ngx_http_llmproxy_metrics_tokens(p, sp, n);
    p = ngx_http_llmproxy_metrics_cost(p, sp, n);
    p = ngx_http_llmproxy_metrics_attempts(p, sp, n);

    return ngx_http_llmproxy_metrics_histograms(p, sp, n);
}


/* requests by answer class; a class without requests has no line */

static u_char *
ngx_http_llmproxy_metrics_requests(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n)
{
    ngx_uint_t  i, j;

    LLMP_HEAD("llmproxy_requests_total", "counter",
              "Requests that reached routing, by answer class.");

    for (i = 0; i < n; i++) {
        for (j = 0; j < 3; j++) {
            if (sp[i]->requests[j] == 0) {
                continue;
            }

            p = ngx_sprintf(p, "llmproxy_requests_total{");
            p = ngx_http_llmproxy_labels(p, sp[i]);
            p = ngx_sprintf(p, ",status=\"%s\"} %uL\n",
                            j == 0 ? "2xx" : j == 1 ? "4xx" : "5xx",
                            sp[i]->requests[j]);
        }
    }

    return p;
}


static u_char *
ngx_http_llmproxy_metrics_tokens(u_char *p, ngx_http_llmproxy_series_t **sp,
    ngx_uint_t n)
{
    ngx_uint_t  i;

    LLMP_HEAD("llmproxy_tokens_total", "counter",
              "Tokens the providers reported.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_tokens_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, ",type=\"prompt\"} %uL\n", sp[i]->prompt_tokens);
        p = ngx_sprintf(p, "llmproxy_tokens_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, ",type=\"completion\"} %uL\n",
                        sp[i]->completion_tokens);
        p = ngx_sprintf(p, "llmproxy_tokens_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, ",type=\"cache_read\"} %uL\n",
                        sp[i]->cache_read_tokens);
        p = ngx_sprintf(p, "llmproxy_tokens_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, ",type=\"cache_creation\"} %uL\n",
                        sp[i]->cache_creation_tokens);
        p = ngx_sprintf(p, "llmproxy_tokens_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, ",type=\"reasoning\"} %uL\n",
                        sp[i]->reasoning_tokens);
    }

    return p;
}


/* what the requests cost, and how many of them had no price */

static u_char *
ngx_http_llmproxy_metrics_cost(u_char *p, ngx_http_llmproxy_series_t **sp,
    ngx_uint_t n)
{
    ngx_uint_t  i;

    LLMP_HEAD("llmproxy_unpriced_requests_total", "counter",
              "Requests with tokens to a model priced neither in the config "
              "nor in the price list: not in llmproxy_cost_usd_total.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_unpriced_requests_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, "} %uL\n", sp[i]->unpriced);
    }

    LLMP_HEAD("llmproxy_cost_usd_total", "counter",
              "Cost of the requests from the models' prices, in USD.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_cost_usd_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, "} %.8f\n", sp[i]->cost);
    }

    return p;
}


/* the attempts beyond the first: retries after failures, fallbacks */

static u_char *
ngx_http_llmproxy_metrics_attempts(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n)
{
    ngx_uint_t  i;

    LLMP_HEAD("llmproxy_upstream_failures_total", "counter",
              "Upstream attempts that failed and were retried or fell back.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_upstream_failures_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, "} %uL\n", sp[i]->failures);
    }

    LLMP_HEAD("llmproxy_fallbacks_total", "counter",
              "Fallback models tried.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_fallbacks_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, "} %uL\n", sp[i]->fallbacks);
    }

    return p;
}


/* the latency and time-to-first-byte histograms */

static u_char *
ngx_http_llmproxy_metrics_histograms(u_char *p,
    ngx_http_llmproxy_series_t **sp, ngx_uint_t n)
{
    ngx_uint_t  i, j;

#define LLMP_HISTOGRAM(name, field, sum, count)                              \
    for (i = 0; i < n; i++) {                                                \
        for (j = 0; j < NGX_HTTP_LLMPROXY_BUCKETS; j++) {                    \
            p = ngx_sprintf(p, name "_bucket{");                             \
            p = ngx_http_llmproxy_labels(p, sp[i]);                          \
            p = ngx_sprintf(p, ",le=\"%.2f\"} %uL\n",                        \
                            ngx_http_llmproxy_bounds[j], sp[i]->field[j]);   \
        }                                                                    \
        p = ngx_sprintf(p, name "_bucket{");                                 \
        p = ngx_http_llmproxy_labels(p, sp[i]);                              \
        p = ngx_sprintf(p, ",le=\"+Inf\"} %uL\n", (count));                  \
        p = ngx_sprintf(p, name "_sum{");                                    \
        p = ngx_http_llmproxy_labels(p, sp[i]);                              \
        p = ngx_sprintf(p, "} %.3f\n", (sum));                               \
        p = ngx_sprintf(p, name "_count{");                                  \
        p = ngx_http_llmproxy_labels(p, sp[i]);                              \
        p = ngx_sprintf(p, "} %uL\n", (count));                              \
    }

    LLMP_HEAD("llmproxy_request_duration_seconds", "histogram",
              "Time from the request to the end of the answer.");
    LLMP_HISTOGRAM("llmproxy_request_duration_seconds", latency,
                   sp[i]->latency_sum, sp[i]->requests[0]
                   + sp[i]->requests[1] + sp[i]->requests[2]);

    LLMP_HEAD("llmproxy_time_to_first_byte_seconds", "histogram",
              "Time from the request to the provider's answer headers.");
    LLMP_HISTOGRAM("llmproxy_time_to_first_byte_seconds", ttfb,
                   sp[i]->ttfb_sum, sp[i]->ttfb_count);

#undef LLMP_HISTOGRAM

    return p;
}


/* the gauges of the whole gateway: cooldowns, health, series, keys */

static u_char *
ngx_http_llmproxy_metrics_gauges(u_char *p,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_uint_t cooling,
    ngx_str_t *health, ngx_uint_t n)
{
    LLMP_HEAD("llmproxy_deployments_in_cooldown", "gauge",
              "Deployments skipped because they failed.");
    p = ngx_sprintf(p, "llmproxy_deployments_in_cooldown %ui\n", cooling);

    /* the last health check of each deployment, when they are on */
    p = ngx_cpymem(p, health->data, health->len);

    LLMP_HEAD("llmproxy_metrics_series", "gauge",
              "Series in these metrics, of at most llmproxy_metrics_"
              "series_max.");
    p = ngx_sprintf(p, "llmproxy_metrics_series %ui\n", n);

    LLMP_HEAD("llmproxy_metrics_series_max", "gauge",
              "The ceiling on the number of series.");
    p = ngx_sprintf(p, "llmproxy_metrics_series_max %ui\n",
                    zctx->sh->metrics_max);

    LLMP_HEAD("llmproxy_metrics_series_dropped_total", "counter",
              "Requests not counted in a series: the series ceiling or "
              "the metrics memory was reached.");
    p = ngx_sprintf(p, "llmproxy_metrics_series_dropped_total %uA\n",
                    zctx->sh->metrics_dropped);

    LLMP_HEAD("llmproxy_keys_loaded", "gauge",
              "Virtual keys in shared memory.");
    p = ngx_sprintf(p, "llmproxy_keys_loaded %uA\n", zctx->sh->nkeys);

    LLMP_HEAD("llmproxy_config_generation", "gauge",
              "Generation of the loaded config.");
    p = ngx_sprintf(p, "llmproxy_config_generation %uA\n",
                    zctx->sh->generation);

    return p;
}

#undef LLMP_HEAD


static u_char *
ngx_http_llmproxy_labels(u_char *p, ngx_http_llmproxy_series_t *s)
{
    u_char  *d;

    d = s->data;

    p = ngx_cpymem(p, "model=\"", sizeof("model=\"") - 1);
    p = ngx_http_llmproxy_escape(p, d, s->model_len);
    d += s->model_len + 1;

    p = ngx_cpymem(p, "\",deployment=\"", sizeof("\",deployment=\"") - 1);
    p = ngx_http_llmproxy_escape(p, d, s->deployment_len);
    d += s->deployment_len + 1;

    p = ngx_cpymem(p, "\",key=\"", sizeof("\",key=\"") - 1);
    p = ngx_http_llmproxy_escape(p, d, s->key_len);
    *p++ = '"';

    return p;
}


/*
 * A label value in the text exposition format: backslash, double quote
 * and newline escaped, and valid UTF-8 whatever the bytes are (a key
 * alias is anything the database holds): an invalid byte, or a control
 * byte, becomes U+FFFD.  At most 3 bytes out for a byte in.
 */

static u_char *
ngx_http_llmproxy_escape(u_char *p, u_char *s, size_t len)
{
    u_char      c, *last;
    uint32_t    u, min;
    ngx_uint_t  i, n;

    last = s + len;

    while (s < last) {
        c = *s;

        if (c < 0x80) {
            if (c == '\\' || c == '"') {
                *p++ = '\\';
                *p++ = c;

            } else if (c == '\n') {
                *p++ = '\\';
                *p++ = 'n';

            } else if (c < 0x20 || c == 0x7f) {
                goto replace;

            } else {
                *p++ = c;
            }

            s++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            u = c & 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            u = c & 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            u = c & 0x07;
            min = 0x10000;

        } else {
            goto replace;
        }

        if ((size_t) (last - s) <= n) {
            goto replace;
        }

        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) {
                goto replace;
            }

            u = (u << 6) | (s[i] & 0x3f);
        }

        if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            goto replace;
        }

        p = ngx_cpymem(p, s, n + 1);
        s += n + 1;
        continue;

    replace:

        *p++ = 0xef; *p++ = 0xbf; *p++ = 0xbd;
        s++;
    }

    return p;
}


static void
ngx_http_llmproxy_series_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    size_t                       n, m;
    ngx_rbtree_node_t          **p;
    ngx_http_llmproxy_series_t  *a, *b;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            a = (ngx_http_llmproxy_series_t *) node;
            b = (ngx_http_llmproxy_series_t *) temp;
            n = a->model_len + 1 + a->deployment_len + 1 + a->key_len;
            m = b->model_len + 1 + b->deployment_len + 1 + b->key_len;

            p = (ngx_memn2cmp(a->data, b->data, n, m) < 0) ? &temp->left
                                                           : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The series' own slab pool: an eighth of the zone (at least 8 pages, at
 * most what the most series can use), so
 * that no number of series can take the memory of keys and configs, nor
 * keys the memory of the series.  It shares the zone's mutex.
 */

ngx_int_t
ngx_http_llmproxy_metrics_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx,
    size_t size)
{
    u_char           *p;
    ngx_uint_t        max;
    ngx_slab_pool_t  *pool;

    static uint64_t  zones;

    /* distinct for every zone this process (the master) creates */

    zctx->sh->metrics_stamp = (++zones << 32) | (uint32_t) ngx_random();

    ngx_rbtree_init(&zctx->sh->metrics, &zctx->sh->metrics_sentinel,
                    ngx_http_llmproxy_series_insert);

    /* room for the most series with long labels (1024-byte chunks) */

    size = ngx_min(size / 8, NGX_HTTP_LLMPROXY_SERIES_MAX * 1024);
    size = ngx_max(size, 8 * ngx_pagesize) & ~(ngx_pagesize - 1);

    p = ngx_slab_alloc(zctx->shpool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    pool = (ngx_slab_pool_t *) p;
    pool->end = p + size;
    pool->min_shift = 3;
    pool->addr = p;

    ngx_slab_init(pool);

    /* a full pool is logged once by the log phase, not by the slab code */
    pool->log_nomem = 0;

    /* a series with short labels takes a 512-byte chunk */

    max = size / 512;

    zctx->sh->metrics_pool = pool;
    zctx->sh->metrics_max = ngx_min(max, NGX_HTTP_LLMPROXY_SERIES_MAX);

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llmproxy_metrics_log;

    return NGX_OK;
}

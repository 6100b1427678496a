/*
 * GET /metrics in Prometheus' text format, summed over all workers: each
 * request that reached routing is counted at the log phase in a series of
 * the zone (an rbtree keyed by the crc32 of its labels: model, deployment
 * and key alias).  The handler copies the series under the lock, then
 * formats them outside it.
 */

#include "ngx_http_llmproxy_module.h"


#define NGX_HTTP_LLMPROXY_BUCKETS  11


static double  ngx_http_llmproxy_bounds[NGX_HTTP_LLMPROXY_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
};


typedef struct {
    ngx_rbtree_node_t   node;
    uint64_t            requests[3];       /* 2xx and 3xx, 4xx, 5xx */
    uint64_t            prompt_tokens;
    uint64_t            completion_tokens;
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
 * Each worker remembers the series it updated last (they are never freed,
 * and their labels never change), so a request of a known series finds
 * it without building its key, hashing it or walking the tree.  The stamp
 * is the zone's: a zone created anew (a reload in single-process mode)
 * empties the cache.
 */

#define NGX_HTTP_LLMPROXY_SERIES_CACHE  8

static ngx_http_llmproxy_series_t
    *ngx_http_llmproxy_series_cache[NGX_HTTP_LLMPROXY_SERIES_CACHE];
static ngx_uint_t   ngx_http_llmproxy_series_next;
static uint64_t     ngx_http_llmproxy_series_stamp;


static ngx_int_t ngx_http_llmproxy_metrics_log(ngx_http_request_t *r);
static ngx_http_llmproxy_series_t *ngx_http_llmproxy_series_cached(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *model,
    ngx_str_t *deployment, ngx_str_t *key);
static void ngx_http_llmproxy_series_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static u_char *ngx_http_llmproxy_labels(u_char *p,
    ngx_http_llmproxy_series_t *s);
static u_char *ngx_http_llmproxy_escape(u_char *p, u_char *s, size_t len);


/* the log phase: one request, one update of its series */

static ngx_int_t
ngx_http_llmproxy_metrics_log(ngx_http_request_t *r)
{
    u_char                         key[1024], *k;
    size_t                         n, len;
    double                         secs;
    uint32_t                       hash;
    ngx_str_t                      deployment;
    ngx_uint_t                     i, status, failed;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_llmproxy_ctx_t       *ctx;
    ngx_http_llmproxy_series_t    *s;
    ngx_http_llmproxy_zone_ctx_t  *zctx;
    ngx_http_llmproxy_main_conf_t *lmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx == NULL || ctx->endpoint == NGX_HTTP_LLMPROXY_EP_NONE
        || ctx->model.len == 0 || r != r->main)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    ngx_str_null(&deployment);

    if (ctx->current) {
        deployment = ctx->current->id;
    }

    /* the labels, NUL-separated, are the series' identity */

    len = ctx->model.len + 1 + deployment.len + 1 + ctx->key.alias.len;

    if (len > sizeof(key)) {
        return NGX_OK;
    }

    status = r->headers_out.status;
    failed = ctx->attempts;

    if (ctx->attempts && status < NGX_HTTP_INTERNAL_SERVER_ERROR) {
        failed--;
    }

    s = ngx_http_llmproxy_series_cached(zctx, &ctx->model, &deployment,
                                        &ctx->key.alias);

    if (s) {
        ngx_shmtx_lock(&zctx->shpool->mutex);
        goto update;
    }

    k = ngx_cpymem(key, ctx->model.data, ctx->model.len);
    *k++ = '\0';
    k = ngx_cpymem(k, deployment.data, deployment.len);
    *k++ = '\0';
    k = ngx_cpymem(k, ctx->key.alias.data, ctx->key.alias.len);

    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&zctx->shpool->mutex);

    node = zctx->sh->metrics.root;
    sentinel = zctx->sh->metrics.sentinel;
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
        s = ngx_slab_calloc_locked(zctx->shpool,
                                   offsetof(ngx_http_llmproxy_series_t, data)
                                   + len);
        if (s == NULL) {
            if (!zctx->sh->metrics_full) {
                zctx->sh->metrics_full = 1;
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "llmproxy: no memory in the zone for more "
                              "metrics series");
            }

            ngx_shmtx_unlock(&zctx->shpool->mutex);
            return NGX_OK;
        }

        s->node.key = hash;
        s->model_len = (u_short) ctx->model.len;
        s->deployment_len = (u_short) deployment.len;
        s->key_len = (u_short) ctx->key.alias.len;
        ngx_memcpy(s->data, key, len);

        ngx_rbtree_insert(&zctx->sh->metrics, &s->node);
    }

    ngx_http_llmproxy_series_cache[ngx_http_llmproxy_series_next] = s;
    ngx_http_llmproxy_series_next = (ngx_http_llmproxy_series_next + 1)
                                    % NGX_HTTP_LLMPROXY_SERIES_CACHE;

update:

    s->requests[status >= 500 ? 2 : status >= 400 ? 1 : 0]++;
    s->prompt_tokens += ngx_max(ctx->prompt_tokens, 0);
    s->completion_tokens += ngx_max(ctx->completion_tokens, 0);
    s->cost += ctx->cost;
    s->failures += failed;
    s->fallbacks += ctx->fallbacks;

    secs = (double) (ngx_current_msec - ctx->start) / 1000;
    s->latency_sum += secs;

    for (i = 0; i < NGX_HTTP_LLMPROXY_BUCKETS; i++) {
        if (secs <= ngx_http_llmproxy_bounds[i]) {
            s->latency[i]++;
        }
    }

    if (ctx->ttfb) {
        secs = (double) (ctx->ttfb - 1) / 1000;
        s->ttfb_sum += secs;
        s->ttfb_count++;

        for (i = 0; i < NGX_HTTP_LLMPROXY_BUCKETS; i++) {
            if (secs <= ngx_http_llmproxy_bounds[i]) {
                s->ttfb[i]++;
            }
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return NGX_OK;
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
    u_char                         *p, *start;
    size_t                          len, size;
    ngx_int_t                       rc;
    ngx_uint_t                      i, j, n, cooling;
    ngx_array_t                     copies, cooldowns;
    ngx_rbtree_node_t              *node, *root, *sentinel;
    ngx_http_llmproxy_series_t     *s, **sp;
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

    if (ngx_array_init(&copies, r->pool, 16, sizeof(void *)) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* copy under the lock, format outside it */

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

            sp = ngx_array_push(&copies);
            if (sp == NULL) {
                break;
            }

            *sp = ngx_palloc(r->pool, size);
            if (*sp == NULL) {
                copies.nelts--;
                break;
            }

            ngx_memcpy(*sp, s, size);
            len += 6 * (s->model_len + s->deployment_len + s->key_len) + 64;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    if (ngx_http_llmproxy_cooldown_list(zctx, r->pool, &cooldowns)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cooling = cooldowns.nelts;

    /* every series appears in at most 40 lines of at most 128 + labels */

    size = 4096 + copies.nelts * 40 * 128 + 40 * len
           + cooldowns.nelts * 256;

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = start;
    sp = copies.elts;
    n = copies.nelts;

#define LLMP_HEAD(name, type, help)                                          \
    p = ngx_sprintf(p, "# HELP " name " " help "\n# TYPE " name " " type "\n")

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
    }

    LLMP_HEAD("llmproxy_cost_usd_total", "counter",
              "Cost of the requests from the models' prices, in USD.");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "llmproxy_cost_usd_total{");
        p = ngx_http_llmproxy_labels(p, sp[i]);
        p = ngx_sprintf(p, "} %.8f\n", sp[i]->cost);
    }

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

    LLMP_HEAD("llmproxy_deployments_in_cooldown", "gauge",
              "Deployments skipped because they failed.");
    p = ngx_sprintf(p, "llmproxy_deployments_in_cooldown %ui\n", cooling);

    LLMP_HEAD("llmproxy_keys_loaded", "gauge",
              "Virtual keys in shared memory.");
    p = ngx_sprintf(p, "llmproxy_keys_loaded %uA\n", zctx->sh->nkeys);

    LLMP_HEAD("llmproxy_config_generation", "gauge",
              "Generation of the loaded config.");
    p = ngx_sprintf(p, "llmproxy_config_generation %uA\n",
                    zctx->sh->generation);

#undef LLMP_HEAD

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = p - start;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_llmproxy_send_body(r, start, p - start);
}


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


static u_char *
ngx_http_llmproxy_escape(u_char *p, u_char *s, size_t len)
{
    while (len--) {
        if (*s == '\\' || *s == '"') {
            *p++ = '\\';
            *p++ = *s++;

        } else if (*s == '\n') {
            *p++ = '\\';
            *p++ = 'n';
            s++;

        } else {
            *p++ = *s++;
        }
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


void
ngx_http_llmproxy_metrics_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx)
{
    static uint64_t  zones;

    /* distinct for every zone this process (the master) creates */

    zctx->sh->metrics_stamp = (++zones << 32) | (uint32_t) ngx_random();

    ngx_rbtree_init(&zctx->sh->metrics, &zctx->sh->metrics_sentinel,
                    ngx_http_llmproxy_series_insert);
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

/*
 * Virtual keys in the zone: a hash table of SHA-256 digests (O(1) lookup,
 * no database round trip per request), filled from PostgreSQL by the
 * database poller.  The check copies what a request needs under the lock
 * and counts the request against the key's per-minute limits, so rpm and
 * tpm hold across all workers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <llmp_sha256.h>


#define NGX_HTTP_LLMPROXY_KEY_BUCKETS  (1 << 17)

#define NGX_HTTP_LLMPROXY_DIGESTS      256
#define NGX_HTTP_LLMPROXY_DIGEST_KEY   80


/*
 * The digests of the keys this worker saw last: a client sends the same
 * key again and again, and SHA-256 of it cost as much as the rest of the
 * key check.  A digest never changes, so the cache needs no expiry.
 */

typedef struct {
    size_t                        len;
    u_char                        key[NGX_HTTP_LLMPROXY_DIGEST_KEY];
    u_char                        digest[32];
} ngx_http_llmproxy_digest_t;


static void ngx_http_llmproxy_keys_digest(ngx_str_t *key, u_char *digest);
static ngx_uint_t ngx_http_llmproxy_keys_slot(u_char *p, size_t len);
static size_t ngx_http_llmproxy_keys_chunk(size_t size);
static size_t ngx_http_llmproxy_keys_data_len(
    ngx_http_llmproxy_key_row_t *row);
static ngx_http_llmproxy_key_node_t *ngx_http_llmproxy_keys_renew(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_http_llmproxy_key_node_t **pn,
    ngx_http_llmproxy_key_node_t *old, size_t size, u_char *digest);
static void ngx_http_llmproxy_keys_fill(ngx_http_llmproxy_key_node_t *node,
    ngx_http_llmproxy_key_row_t *row, size_t data_len);
static ngx_uint_t ngx_http_llmproxy_keys_bucket(ngx_http_llmproxy_shctx_t *sh,
    u_char *digest);
static ngx_http_llmproxy_key_node_t **ngx_http_llmproxy_keys_find(
    ngx_http_llmproxy_shctx_t *sh, u_char *digest);
static u_char *ngx_http_llmproxy_keys_copy_list(ngx_pool_t *pool, u_char *p,
    ngx_uint_t n, ngx_array_t *out);
static ngx_uint_t ngx_http_llmproxy_keys_used(
    ngx_http_llmproxy_key_node_t *node, uint32_t minute);
static void ngx_http_llmproxy_keys_hide_limits(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t retry);
static u_char *ngx_http_llmproxy_keys_retry_after(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *p);
static u_char *ngx_http_llmproxy_keys_limit_value(
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t which, time_t left, u_char *p);
static const char *ngx_http_llmproxy_keys_unusable(
    ngx_http_llmproxy_key_node_t *node, time_t now);
static ngx_int_t ngx_http_llmproxy_keys_limits(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_shctx_t *sh, ngx_http_llmproxy_key_node_t *node,
    time_t now, const char **whyp, const char **codep);
static ngx_int_t ngx_http_llmproxy_keys_refuse(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_int_t rc, const char *why,
    const char *code);
static ngx_int_t ngx_http_llmproxy_keys_take(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_key_node_t *node);


static ngx_http_llmproxy_digest_t
    ngx_http_llmproxy_digests[NGX_HTTP_LLMPROXY_DIGESTS];


/*
 * A bucket for every 256 bytes of the zone, up to 1 << 17 (a key takes
 * 128 bytes or more): the smallest zone does not spend more than it has
 * on the table.
 */

ngx_int_t
ngx_http_llmproxy_keys_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx)
{
    size_t      size;
    ngx_uint_t  n;

    size = zctx->shpool->end - (u_char *) zctx->shpool;

    for (n = NGX_HTTP_LLMPROXY_KEY_BUCKETS; n > 256 && n * 256 > size;
         n >>= 1)
    {
        /* void */
    }

    zctx->sh->keys = ngx_slab_calloc(zctx->shpool,
                               n * sizeof(ngx_http_llmproxy_key_node_t *));
    if (zctx->sh->keys == NULL) {
        return NGX_ERROR;
    }

    zctx->sh->keys_mask = n - 1;

    /*
     * this gateway's name in the other gateways' view of the key counts:
     * a new zone is a new node (a reload keeps the zone, and the counts)
     */

    zctx->sh->node_id = ((uint64_t) ngx_random() << 40)
                        ^ ((uint64_t) ngx_random() << 20)
                        ^ (uint64_t) ngx_random()
                        ^ ((uint64_t) ngx_pid << 48)
                        ^ (uint64_t) ngx_time();

    return NGX_OK;
}


/*
 * Who the key is (the access phase): one the zone does not have, or
 * revoked, expired or blocked, is a 401; the alias and model lists are
 * copied into the request.  Its limits come later, keys_limit().
 */

ngx_int_t
ngx_http_llmproxy_keys_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *key)
{
    ngx_int_t                        rc;
    const char                      *why;
    ngx_http_llmproxy_shctx_t       *sh;
    ngx_http_llmproxy_key_node_t    *node, **pn;
    ngx_http_llmproxy_zone_ctx_t    *zctx;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;
    sh = zctx->sh;

    ngx_http_llmproxy_keys_digest(key, ctx->key.digest);

    ctx->key.prefix.len = ngx_min(key->len, 7);
    ctx->key.prefix.data = key->data;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(sh, ctx->key.digest);
    node = pn ? *pn : NULL;

    if (node == NULL) {
        rc = NGX_HTTP_UNAUTHORIZED;
        why = sh->keys_loaded ? "invalid API key"
                              : "invalid API key (keys are not loaded yet)";

    } else {
        why = ngx_http_llmproxy_keys_unusable(node, ngx_time());

        rc = why ? NGX_HTTP_UNAUTHORIZED
                 : ngx_http_llmproxy_keys_take(r, ctx, node);
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return ngx_http_llmproxy_keys_refuse(r, ctx, rc, why, NULL);
}


/*
 * What the key may do now, after keys_check(): its budget and, for a
 * model call, its per-minute limits, the call counted.  The key is looked
 * up again: the lock was let go, and the poller may have changed it.
 */

ngx_int_t
ngx_http_llmproxy_keys_limit(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    time_t                           now;
    ngx_int_t                        rc;
    const char                      *why, *code;
    ngx_http_llmproxy_key_node_t    *node, **pn;
    ngx_http_llmproxy_zone_ctx_t    *zctx;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    now = ngx_time();
    code = "rate_limit_exceeded";

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(zctx->sh, ctx->key.digest);
    node = pn ? *pn : NULL;

    if (node == NULL) {
        rc = NGX_HTTP_UNAUTHORIZED;
        why = "invalid API key";

    } else {
        why = ngx_http_llmproxy_keys_unusable(node, now);

        rc = why ? NGX_HTTP_UNAUTHORIZED
                 : ngx_http_llmproxy_keys_limits(ctx, zctx->sh, node, now,
                                                 &why, &code);
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return ngx_http_llmproxy_keys_refuse(r, ctx, rc, why, code);
}


/* a key refused: logged by its prefix only, answered in the client's shape */

static ngx_int_t
ngx_http_llmproxy_keys_refuse(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_int_t rc, const char *why,
    const char *code)
{
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (rc == NGX_OK || why == NULL) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    ngx_log_error(lmcf->log_level, r->connection->log, 0,
                  "llmproxy: key \"%V...\" refused: %s", &ctx->key.prefix,
                  why);

    if (rc == NGX_HTTP_UNAUTHORIZED) {
        return ngx_http_llmproxy_fail(r, rc, "authentication_error",
                                      "invalid_api_key", "%s", why);
    }

    if (rc == NGX_HTTP_TOO_MANY_REQUESTS) {
        return ngx_http_llmproxy_fail(r, rc, "rate_limit_error", code,
                                      "%s", why);
    }

    return rc;
}


/* why a key that exists may not be used now, or NULL */

static const char *
ngx_http_llmproxy_keys_unusable(ngx_http_llmproxy_key_node_t *node,
    time_t now)
{
    if (node->revoked) {
        return "this API key has been revoked";
    }

    if (node->expires_at && now >= (time_t) node->expires_at) {
        return "this API key has expired";
    }

    if (node->blocked) {
        return "this API key is blocked";
    }

    return NULL;
}


/*
 * this minute's window, the budget and the per-minute limits; a model call
 * is counted; the caller holds the lock
 */

static ngx_int_t
ngx_http_llmproxy_keys_limits(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_shctx_t *sh, ngx_http_llmproxy_key_node_t *node,
    time_t now, const char **whyp, const char **codep)
{
    uint32_t  minute, requests, tokens;

    minute = (uint32_t) (now / 60);

    if (node->window != minute) {
        node->window = minute;
        node->requests = 0;
        node->tokens = 0;
        node->others_requests = 0;
        node->others_tokens = 0;
    }

    /* this minute's counts of every gateway, as far as they are known */

    requests = node->requests + node->others_requests;
    tokens = node->tokens + node->others_tokens;

    ctx->key.rpm = node->rpm;
    ctx->key.tpm = node->tpm;
    ctx->key.reset = (time_t) (minute + 1) * 60;
    ctx->key.requests_left = node->rpm > requests ? node->rpm - requests : 0;
    ctx->key.tokens_left = node->tpm > tokens ? node->tpm - tokens : 0;

    if (node->max_budget >= 0) {

        if (node->budget_reset_at && now >= (time_t) node->budget_reset_at) {
            /* the period ended: the database resets it on its side */
            node->spend = 0;
            node->pending = 0;
            node->budget_reset_at = 0;
        }

        if (node->spend + node->pending >= node->max_budget) {
            *codep = "budget_exceeded";
            *whyp = "budget exceeded";

            /* without a period, an hour: a raised budget lifts it */
            ctx->key.retry_after = node->budget_reset_at
                                   ? (time_t) node->budget_reset_at - now
                                   : 3600;
            return NGX_HTTP_TOO_MANY_REQUESTS;
        }
    }

    if (ctx->req.endpoint && node->rpm && requests >= node->rpm) {
        *whyp = "rate limit exceeded: requests per minute";
        ctx->key.retry_after = ctx->key.reset - now;
        return NGX_HTTP_TOO_MANY_REQUESTS;
    }

    if (ctx->req.endpoint && node->tpm && tokens >= node->tpm) {
        *whyp = "rate limit exceeded: tokens per minute";
        ctx->key.retry_after = ctx->key.reset - now;
        return NGX_HTTP_TOO_MANY_REQUESTS;
    }

    if (ctx->req.endpoint) {
        node->requests++;     /* model calls count, listings do not */

        if (node->rpm || node->tpm) {
            sh->limited_minute = minute;
        }

        if (ctx->key.requests_left) {
            ctx->key.requests_left--;
        }
    }

    return NGX_OK;
}


/* the key's alias and model lists into the request; the lock is held */

static ngx_int_t
ngx_http_llmproxy_keys_take(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_key_node_t *node)
{
    u_char  *p;

    p = node->data;

    ctx->key.alias.len = node->alias_len;
    ctx->key.alias.data = ngx_pnalloc(r->pool, node->data_len + 1);

    if (ctx->key.alias.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->key.alias.data, p, node->data_len);
    p = ctx->key.alias.data + node->alias_len;

    p = ngx_http_llmproxy_keys_copy_list(r->pool, p, node->nmodels,
                                         &ctx->key.models);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_llmproxy_keys_copy_list(r->pool, p, node->ngroups,
                                         &ctx->key.groups);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->key.all_models = (node->nmodels == 0 && node->ngroups == 0);

    return NGX_OK;
}


/*
 * The slot of a key in the digest cache: a multiplicative hash of its
 * 8-byte words, a tenth of ngx_hash_key()'s byte by byte loop (only this
 * worker's cache depends on it).
 */

static ngx_uint_t
ngx_http_llmproxy_keys_slot(u_char *p, size_t len)
{
    uint64_t  h, w;

    h = len;

    while (len >= 8) {
        ngx_memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }

    w = 0;

    while (len--) {
        w = (w << 8) | *p++;
    }

    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;

    return (ngx_uint_t) (h >> 32) & (NGX_HTTP_LLMPROXY_DIGESTS - 1);
}


static void
ngx_http_llmproxy_keys_digest(ngx_str_t *key, u_char *digest)
{
    u_char                       diff;
    ngx_uint_t                   i;
    ngx_http_llmproxy_digest_t  *d;

    if (key->len > NGX_HTTP_LLMPROXY_DIGEST_KEY) {
        llmp_sha256(key->data, key->len, digest);
        return;
    }

    d = &ngx_http_llmproxy_digests[ngx_http_llmproxy_keys_slot(key->data,
                                                               key->len)];

    if (d->len == key->len) {

        /* in constant time, like the master key */

        diff = 0;

        for (i = 0; i < key->len; i++) {
            diff |= d->key[i] ^ key->data[i];
        }

        if (diff == 0) {
            ngx_memcpy(digest, d->digest, 32);
            return;
        }
    }

    llmp_sha256(key->data, key->len, digest);

    d->len = key->len;
    ngx_memcpy(d->key, key->data, key->len);
    ngx_memcpy(d->digest, digest, 32);
}


static u_char *
ngx_http_llmproxy_keys_copy_list(ngx_pool_t *pool, u_char *p, ngx_uint_t n,
    ngx_array_t *out)
{
    u_short     len;
    ngx_str_t  *s;
    ngx_uint_t  i;

    if (ngx_array_init(out, pool, n ? n : 1, sizeof(ngx_str_t)) != NGX_OK) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        ngx_memcpy(&len, p, sizeof(u_short));
        p += sizeof(u_short);

        s = ngx_array_push(out);
        s->data = p;
        s->len = len;
        p += len;
    }

    return p;
}


/* may this key call target t (a model, an alias or PROVIDER/MODEL)? */

ngx_int_t
ngx_http_llmproxy_keys_allow_target(ngx_http_llmproxy_key_t *key,
    ngx_http_llmproxy_target_t *t)
{
    ngx_uint_t                        i;
    ngx_http_llmproxy_deployment_t  **d;

    if (key->master || key->all_models) {
        return 1;
    }

    if (t->deployment) {
        return ngx_http_llmproxy_keys_allow(key, &t->name, t->deployment);
    }

    d = t->group->deployments.elts;

    for (i = 0; i < t->group->deployments.nelts; i++) {
        if (ngx_http_llmproxy_keys_allow(key, &t->name, d[i])) {
            return 1;
        }
    }

    return 0;
}


ngx_uint_t
ngx_http_llmproxy_keys_allow(ngx_http_llmproxy_key_t *key, ngx_str_t *name,
    ngx_http_llmproxy_deployment_t *d)
{
    ngx_str_t   *m, *g, *ag;
    ngx_uint_t   i, j;

    if (key->master || key->all_models) {
        return 1;
    }

    m = key->models.elts;

    for (i = 0; i < key->models.nelts; i++) {
        if ((m[i].len == name->len
             && ngx_strncmp(m[i].data, name->data, name->len) == 0)
            || (m[i].len == d->model.len
                && ngx_strncmp(m[i].data, d->model.data, d->model.len) == 0)
            || (m[i].len == d->id.len
                && ngx_strncmp(m[i].data, d->id.data, d->id.len) == 0))
        {
            return 1;
        }
    }

    g = key->groups.elts;
    ag = d->access_groups.elts;

    for (i = 0; i < key->groups.nelts; i++) {
        for (j = 0; j < d->access_groups.nelts; j++) {
            if (g[i].len == ag[j].len
                && ngx_strncmp(g[i].data, ag[j].data, g[i].len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * A key's row into the zone, in the poller's thread: changed in place
 * when it fits the node's chunk, else in a new node.
 */

ngx_int_t
ngx_http_llmproxy_keys_upsert(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_key_row_t *row)
{
    size_t                         size, data_len;
    ngx_http_llmproxy_key_node_t  *node, *old, **pn;

    data_len = ngx_http_llmproxy_keys_data_len(row);

    if (data_len > 65535 || row->alias.len > 65535) {
        return NGX_DECLINED;
    }

    size = offsetof(ngx_http_llmproxy_key_node_t, data) + data_len;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(zctx->sh, row->digest);
    old = pn ? *pn : NULL;

    if (old
        && size <= ngx_http_llmproxy_keys_chunk(
                       offsetof(ngx_http_llmproxy_key_node_t, data)
                       + old->data_len))
    {
        /*
         * in place: a change that fits the node's chunk (a revocation, a
         * new spend) needs no memory, so a full zone cannot delay it
         */
        node = old;

    } else {
        node = ngx_http_llmproxy_keys_renew(zctx, pn, old, size,
                                            row->digest);
        if (node == NULL) {
            /* the poller logs it once, and reports the zone full */
            ngx_shmtx_unlock(&zctx->shpool->mutex);
            return NGX_ERROR;
        }
    }

    ngx_http_llmproxy_keys_fill(node, row, data_len);

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return NGX_OK;
}


/* the bytes of a node's strings: the alias, each model and group name */

static size_t
ngx_http_llmproxy_keys_data_len(ngx_http_llmproxy_key_row_t *row)
{
    size_t        data_len;
    ngx_str_t    *s;
    ngx_uint_t    i, n;
    ngx_array_t  *lists[2];

    lists[0] = row->models;
    lists[1] = row->groups;

    data_len = row->alias.len;

    for (n = 0; n < 2; n++) {
        s = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {
            data_len += sizeof(u_short) + ngx_min(s[i].len, 65535);
        }
    }

    return data_len;
}


/*
 * A new node for a key, in its bucket, with this minute's counts and the
 * pending spend of the old node it replaces, if any; the lock is held.
 * The old node goes first, so its chunk counts for the new one; until
 * the new one fits the key is unknown (refused), and the poller reads its
 * row again.
 */

static ngx_http_llmproxy_key_node_t *
ngx_http_llmproxy_keys_renew(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_key_node_t **pn, ngx_http_llmproxy_key_node_t *old,
    size_t size, u_char *digest)
{
    double                         pending;
    uint32_t                       window, requests, tokens;
    uint32_t                       others_requests, others_tokens;
    ngx_http_llmproxy_shctx_t     *sh;
    ngx_http_llmproxy_key_node_t  *node;

    sh = zctx->sh;

    pending = 0;
    window = 0;
    requests = 0;
    tokens = 0;
    others_requests = 0;
    others_tokens = 0;

    if (old) {
        pending = old->pending;
        window = old->window;
        requests = old->requests;
        tokens = old->tokens;
        others_requests = old->others_requests;
        others_tokens = old->others_tokens;

        *pn = old->next;
        (void) ngx_atomic_fetch_add(&sh->nkeys, -1);
        ngx_slab_free_locked(zctx->shpool, old);
    }

    node = ngx_slab_alloc_locked(zctx->shpool, size);
    if (node == NULL) {
        return NULL;
    }

    node->pending = pending;
    node->window = window;
    node->requests = requests;
    node->tokens = tokens;
    node->others_requests = others_requests;
    node->others_tokens = others_tokens;

    pn = &sh->keys[ngx_http_llmproxy_keys_bucket(sh, digest)];
    node->next = *pn;
    *pn = node;
    (void) ngx_atomic_fetch_add(&sh->nkeys, 1);

    return node;
}


/*
 * The row's fields and strings into the node; this minute's counts and
 * the spend not yet in the database (usage records carry it there) stay
 * with a node changed in place.  The lock is held.
 */

static void
ngx_http_llmproxy_keys_fill(ngx_http_llmproxy_key_node_t *node,
    ngx_http_llmproxy_key_row_t *row, size_t data_len)
{
    u_char       *p;
    u_short       len;
    ngx_str_t    *s;
    ngx_uint_t    i, n;
    ngx_array_t  *lists[2];

    ngx_memcpy(node->digest, row->digest, 32);
    node->max_budget = row->max_budget;
    node->spend = row->spend;
    node->budget_reset_at = (uint32_t) row->budget_reset_at;
    node->expires_at = (uint32_t) row->expires_at;
    node->rpm = (uint32_t) ngx_min(row->rpm, 0xffffffff);
    node->tpm = (uint32_t) ngx_min(row->tpm, 0xffffffff);
    node->blocked = row->blocked;
    node->revoked = row->revoked;
    node->alias_len = (u_short) row->alias.len;
    node->nmodels = (u_short) row->models->nelts;
    node->ngroups = (u_short) row->groups->nelts;
    node->data_len = (u_short) data_len;

    lists[0] = row->models;
    lists[1] = row->groups;

    p = ngx_cpymem(node->data, row->alias.data, row->alias.len);

    for (n = 0; n < 2; n++) {
        s = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {
            len = (u_short) ngx_min(s[i].len, 65535);
            p = ngx_cpymem(p, &len, sizeof(u_short));
            p = ngx_cpymem(p, s[i].data, len);
        }
    }
}


/*
 * The memory the slab allocator gave a node of `size` bytes: a power of
 * two up to half a page, whole pages above.
 */

static size_t
ngx_http_llmproxy_keys_chunk(size_t size)
{
    size_t  chunk;

    if (size > ngx_pagesize / 2) {
        return ngx_align(size, ngx_pagesize);
    }

    for (chunk = 8; chunk < size; chunk <<= 1) {
        /* void */
    }

    return chunk;
}


/* a request's tokens and cost: tpm and budgets bite on the next one */

ngx_int_t
ngx_http_llmproxy_keys_account(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, ngx_uint_t tokens, double cost, double *spend)
{
    uint32_t                        minute;
    ngx_http_llmproxy_key_node_t  **pn;

    minute = (uint32_t) (ngx_time() / 60);

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(zctx->sh, digest);

    if (pn) {
        if ((*pn)->window != minute) {
            (*pn)->window = minute;
            (*pn)->requests = 0;
            (*pn)->tokens = 0;
            (*pn)->others_requests = 0;
            (*pn)->others_tokens = 0;
        }

        (*pn)->tokens += (uint32_t) ngx_min(tokens,
                                            0xffffffff - (*pn)->tokens);

        if ((*pn)->rpm || (*pn)->tpm) {
            zctx->sh->limited_minute = minute;
        }
        (*pn)->pending += cost;
        *spend = (*pn)->spend + (*pn)->pending;
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return pn ? NGX_OK : NGX_DECLINED;
}


static ngx_uint_t
ngx_http_llmproxy_keys_bucket(ngx_http_llmproxy_shctx_t *sh, u_char *digest)
{
    uint32_t  h;

    /*
     * the digest is uniformly distributed: its first bytes index (a
     * crc32 of it, nibble by nibble, was most of the lookup's time)
     */

    ngx_memcpy(&h, digest, sizeof(uint32_t));

    return h & sh->keys_mask;
}


static ngx_http_llmproxy_key_node_t **
ngx_http_llmproxy_keys_find(ngx_http_llmproxy_shctx_t *sh, u_char *digest)
{
    ngx_http_llmproxy_key_node_t  **pn;

    pn = &sh->keys[ngx_http_llmproxy_keys_bucket(sh, digest)];

    for ( /* void */ ; *pn; pn = &(*pn)->next) {
        if (ngx_memcmp((*pn)->digest, digest, 32) == 0) {
            return pn;
        }
    }

    return NULL;
}


/*
 * A batch of usage records reached the database: its cost for this key is
 * there now, no longer pending here; spend (< 0: unknown) is the key's
 * spend in the database after it.
 */

void
ngx_http_llmproxy_keys_settle(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, double cost, double spend)
{
    ngx_http_llmproxy_key_node_t  **pn;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(zctx->sh, digest);

    if (pn) {
        (*pn)->pending -= cost;

        if ((*pn)->pending < 1e-12) {
            (*pn)->pending = 0;
        }

        if (spend >= 0) {
            (*pn)->spend = spend;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);
}


/*
 * The key's limits in OpenAI's headers, which the SDKs read: the limit,
 * what is left of it this minute (as of the request's start) and when
 * the minute ends; on the key's own 429 (and a 429 for the deployments'
 * limits) retry-after too.  The provider's own x-ratelimit-* (of the
 * provider account, not the client's key) give way to them.
 */

ngx_int_t
ngx_http_llmproxy_keys_headers(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char           *p, *start;
    time_t            left;
    ngx_uint_t        i, retry;
    ngx_table_elt_t  *h;

    static struct {
        const char   *name;
        ngx_uint_t    which;
    } ngx_http_llmproxy_rl[] = {
        { "x-ratelimit-limit-requests", 0 },
        { "x-ratelimit-remaining-requests", 1 },
        { "x-ratelimit-reset-requests", 2 },
        { "x-ratelimit-limit-tokens", 3 },
        { "x-ratelimit-remaining-tokens", 4 },
        { "x-ratelimit-reset-tokens", 2 }
    };

    retry = (ctx->key.retry_after > 0
             && r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS);

    if (ctx->key.master || (!retry && !ctx->key.rpm && !ctx->key.tpm)) {
        return NGX_OK;
    }

    /* the provider's own limit headers give way to the key's */

    ngx_http_llmproxy_keys_hide_limits(r, ctx, retry);

    p = ngx_pnalloc(r->pool, 8 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (retry) {
        p = ngx_http_llmproxy_keys_retry_after(r, ctx, p);
        if (p == NULL) {
            return NGX_ERROR;
        }
    }

    left = ngx_max(ctx->key.reset - ngx_time(), 0);

    for (i = 0; i < 6; i++) {

        if ((i < 3 && ctx->key.rpm == 0) || (i >= 3 && ctx->key.tpm == 0)) {
            continue;
        }

        start = p;
        p = ngx_http_llmproxy_keys_limit_value(ctx,
                                               ngx_http_llmproxy_rl[i].which,
                                               left, p);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key.data = (u_char *) ngx_http_llmproxy_rl[i].name;
        h->key.len = ngx_strlen(ngx_http_llmproxy_rl[i].name);
        h->value.data = start;
        h->value.len = p - start;
    }

    return NGX_OK;
}


/* a rate limit header's value: a limit, what is left of it, or the reset */

static u_char *
ngx_http_llmproxy_keys_limit_value(ngx_http_llmproxy_ctx_t *ctx,
    ngx_uint_t which, time_t left, u_char *p)
{
    switch (which) {

    case 0:
        return ngx_sprintf(p, "%uD", ctx->key.rpm);

    case 1:
        return ngx_sprintf(p, "%uD", ctx->key.requests_left);

    case 3:
        return ngx_sprintf(p, "%uD", ctx->key.tpm);

    case 4:
        return ngx_sprintf(p, "%uD", ctx->key.tokens_left);

    default:

        /* as OpenAI writes it: "17s", "1m0s" */

        if (left >= 60) {
            return ngx_sprintf(p, "%Tm%Ts", left / 60, left % 60);
        }

        return ngx_sprintf(p, "%Ts", left);
    }
}


/* the answers' x-ratelimit-* (and retry-after, when set here) are hidden */

static void
ngx_http_llmproxy_keys_hide_limits(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t retry)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0) {
            continue;
        }

        if ((h[i].key.len > 12
             && ngx_strncasecmp(h[i].key.data, (u_char *) "x-ratelimit-", 12)
                == 0
             && (ctx->key.rpm || ctx->key.tpm))
            || (retry && h[i].key.len == 11
                && ngx_strncasecmp(h[i].key.data, (u_char *) "retry-after",
                                   11) == 0))
        {
            h[i].hash = 0;
        }
    }
}


/* retry-after, and x-should-retry beyond a minute; p has room for it */

static u_char *
ngx_http_llmproxy_keys_retry_after(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *p)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "retry-after");
    h->value.data = p;
    p = ngx_sprintf(p, "%T", ngx_max(ctx->key.retry_after, 1));
    h->value.len = p - h->value.data;

    if (ctx->key.retry_after > 60) {

        /*
         * the OpenAI and Anthropic SDKs wait for a retry-after of a
         * minute at most, else they retry at once, in vain: they obey
         * this header
         */

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NULL;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "x-should-retry");
        ngx_str_set(&h->value, "false");
    }

    return p;
}


/*
 * For the database poller, in a thread: this gateway's counts of the
 * keys with rpm or tpm that were used in `minute`, from bucket `from` on,
 * up to `max` of them (digests 32 bytes each, counts two each); *next is
 * where to go on (past the last bucket: done).  The mutex is taken for
 * 1024 buckets at a time: the workers never wait long for it.
 */

ngx_uint_t
ngx_http_llmproxy_keys_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, ngx_uint_t from, u_char *digests, uint32_t *counts,
    ngx_uint_t max, ngx_uint_t *next)
{
    ngx_uint_t                     b, end, n, k;
    ngx_http_llmproxy_shctx_t     *sh;
    ngx_http_llmproxy_key_node_t  *node;

    sh = zctx->sh;
    n = 0;
    b = from;

    /*
     * no key with limits counted in that minute or since: nothing to
     * publish, and no walk over every key (100,000 of them every half
     * poll interval, under the workers' mutex)
     */

    if (sh->limited_minute < minute) {
        *next = sh->keys_mask + 1;
        return 0;
    }

    while (b <= sh->keys_mask && n < max) {

        end = ngx_min(b + 1024, sh->keys_mask + 1);

        ngx_shmtx_lock(&zctx->shpool->mutex);

        for ( /* void */ ; b < end; b++) {

            /* a bucket is taken whole, or left for the next call */

            k = 0;

            for (node = sh->keys[b]; node; node = node->next) {
                k += ngx_http_llmproxy_keys_used(node, minute);
            }

            if (n + k > max && n > 0) {
                break;
            }

            for (node = sh->keys[b]; node && n < max; node = node->next) {
                if (ngx_http_llmproxy_keys_used(node, minute)) {
                    ngx_memcpy(digests + 32 * n, node->digest, 32);
                    counts[2 * n] = node->requests;
                    counts[2 * n + 1] = node->tokens;
                    n++;
                }
            }
        }

        ngx_shmtx_unlock(&zctx->shpool->mutex);

        if (b < end) {
            break;
        }
    }

    *next = b;

    return n;
}


/* a key with limits, used in that minute */

static ngx_uint_t
ngx_http_llmproxy_keys_used(ngx_http_llmproxy_key_node_t *node,
    uint32_t minute)
{
    return node->window == minute && (node->rpm || node->tpm)
           && (node->requests || node->tokens);
}


/* the other gateways' counts of a key in `minute`, read by the poller */

void
ngx_http_llmproxy_keys_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, uint32_t minute, uint32_t requests, uint32_t tokens)
{
    ngx_http_llmproxy_key_node_t  **pn, *node;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    pn = ngx_http_llmproxy_keys_find(zctx->sh, digest);

    if (pn) {
        node = *pn;

        if (node->window < minute) {
            node->window = minute;
            node->requests = 0;
            node->tokens = 0;
        }

        if (node->window == minute) {
            node->others_requests = requests;
            node->others_tokens = tokens;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);
}

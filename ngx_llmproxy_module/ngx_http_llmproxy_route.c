/*
 * Routing: the requested name becomes a plan (the model's target, then its
 * fallbacks in order); each upstream attempt asks for the next deployment:
 * smooth weighted round-robin over the target's deployments that are not
 * cooling down and not yet tried, up to 1 + num_retries attempts per
 * target, then the next target of the plan.  A deployment at its rpm or
 * tpm for this minute is left out, even as a last resort; when every one
 * is, the client gets 429 with retry-after.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <llmp_json_scan.h>


static ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_pick(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_uint_t last);
static ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_pick_round(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t **list,
    ngx_uint_t n, ngx_uint_t untried,
    ngx_http_llmproxy_deployment_t **cooling);
static ngx_int_t ngx_http_llmproxy_route_targets(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_group_t *g);
static ngx_uint_t ngx_http_llmproxy_planned(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t);
static ngx_uint_t ngx_http_llmproxy_untried(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_deployment_t **list, ngx_uint_t n);
static ngx_uint_t ngx_http_llmproxy_tried(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_deployment_t *d);
static ngx_uint_t ngx_http_llmproxy_usable(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t);
static ngx_uint_t ngx_http_llmproxy_candidate(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t *d);
static ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_passed(
    ngx_http_request_t *r, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_deployment_t *d);
static ngx_uint_t ngx_http_llmproxy_open(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_target_t *t);
static ngx_int_t ngx_http_llmproxy_rate(ngx_http_request_t *r,
    ngx_http_llmproxy_deployment_t *d, ngx_uint_t take, ngx_uint_t tokens);
static ngx_int_t ngx_http_llmproxy_rate_limited(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_http_llmproxy_rate_t *ngx_http_llmproxy_rate_slot(
    ngx_http_llmproxy_shctx_t *sh, uint64_t h, uint32_t minute,
    ngx_uint_t create);


#define NGX_HTTP_LLMPROXY_RATES  1024


ngx_int_t
ngx_http_llmproxy_route_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t                     usable;
    ngx_uint_t                    i;
    ngx_http_llmproxy_group_t    *g;
    ngx_http_llmproxy_target_t   *t, **plan;

    /* an exact name, else the most specific pattern that matches it */

    t = ngx_http_llmproxy_runtime_resolve(ctx->rt, r->pool, &ctx->req.model);

    if (t == NULL) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                   "invalid_request_error", "model_not_found",
                   "The model `%V` does not exist or you do not have access "
                   "to it.", &ctx->req.model);
    }

    if (!ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_FORBIDDEN,
                   "permission_error", "model_not_allowed",
                   "this key may not call model `%V`", &ctx->req.model);
    }

    g = t->group ? t->group : t->deployment->group;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: \"%V\" is \"%V\", %ui fallbacks",
                   &ctx->req.model, &t->name, g->fallbacks.nelts);

    usable = ngx_http_llmproxy_route_targets(r, ctx, t, g);

    if (usable == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (usable == 0
        && (ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS
            || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_GEMINI_COUNT))
    {
        return NGX_DECLINED;      /* counted here, roughly */
    }

    if (usable == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request_error", "interface_not_supported",
                   "no deployment of model `%V` speaks this API, and "
                   "this endpoint is not translated to another",
                   &ctx->req.model);
    }

    /* every deployment at its rpm/tpm: 429 before any attempt */

    plan = ctx->route.plan.elts;

    for (i = 0; i < ctx->route.plan.nelts; i++) {
        if (ngx_http_llmproxy_open(r, ctx, plan[i])) {
            return NGX_OK;
        }
    }

    return ngx_http_llmproxy_rate_limited(r, ctx);
}


/*
 * The plan: the target, then its fallbacks the key may call (each once);
 * returns how many of them have a deployment that speaks the request's
 * API, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_llmproxy_route_targets(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_group_t *g)
{
    ngx_uint_t                    i, usable;
    ngx_http_llmproxy_target_t  **fb, **tp;

    if (ngx_array_init(&ctx->route.plan, r->pool, 1 + g->fallbacks.nelts,
                       sizeof(ngx_http_llmproxy_target_t *))
        != NGX_OK
        || ngx_array_init(&ctx->route.tried, r->pool, 4,
                          sizeof(ngx_http_llmproxy_deployment_t *))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    tp = ngx_array_push(&ctx->route.plan);
    if (tp == NULL) {
        return NGX_ERROR;
    }

    *tp = t;
    usable = ngx_http_llmproxy_usable(ctx, t);

    fb = g->fallbacks.elts;

    for (i = 0; i < g->fallbacks.nelts; i++) {

        if (ngx_http_llmproxy_planned(ctx, fb[i])
            || !ngx_http_llmproxy_keys_allow_target(&ctx->key, fb[i]))
        {
            continue;
        }

        tp = ngx_array_push(&ctx->route.plan);
        if (tp == NULL) {
            return NGX_ERROR;
        }

        *tp = fb[i];
        usable += ngx_http_llmproxy_usable(ctx, fb[i]);
    }

    return usable;
}


/* the plan has this target already (a fallback named twice, or itself) */

static ngx_uint_t
ngx_http_llmproxy_planned(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t)
{
    ngx_uint_t                    j;
    ngx_http_llmproxy_target_t  **plan;

    plan = ctx->route.plan.elts;

    for (j = 0; j < ctx->route.plan.nelts; j++) {
        if (plan[j]->group == t->group
            && plan[j]->deployment == t->deployment
            && plan[j]->upstream.len == t->upstream.len
            && ngx_strncmp(plan[j]->upstream.data, t->upstream.data,
                           t->upstream.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_llmproxy_rate_limited(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ctx->key.retry_after = 60 - ngx_time() % 60;

    return ngx_http_llmproxy_fail(r, NGX_HTTP_TOO_MANY_REQUESTS,
               "rate_limit_error", "deployment_rate_limited",
               "every deployment of model `%V` and of its fallbacks is at "
               "its rpm/tpm limit", &ctx->req.model);
}


ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_route_next(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_uint_t                       max, last;
    ngx_http_llmproxy_target_t     **plan;
    ngx_http_llmproxy_deployment_t  *d, **tried;

    plan = ctx->route.plan.elts;
    max = 1 + ctx->rt->settings.num_retries;

    while (ctx->route.plan_index < ctx->route.plan.nelts) {

        last = (ctx->route.plan_index + 1 == ctx->route.plan.nelts);

        d = NULL;

        if (ctx->route.attempts_in_target < max) {
            d = ngx_http_llmproxy_pick(r, ctx, plan[ctx->route.plan_index],
                                       last);
        }

        if (d) {
            if (ctx->route.attempts_in_target > 0) {
                ctx->route.retries++;

            } else if (ctx->route.plan_index > 0) {
                ctx->route.fallbacks++;
            }

            ctx->route.attempts_in_target++;
            ctx->route.attempts++;

            tried = ngx_array_push(&ctx->route.tried);
            if (tried == NULL) {
                return NULL;
            }

            *tried = d;

            if (d->pattern) {
                d = ngx_http_llmproxy_passed(r, plan[ctx->route.plan_index], d);
                if (d == NULL) {
                    return NULL;
                }
            }

            ctx->route.current = d;

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llmproxy: attempt %ui of \"%V\": \"%V\"",
                           ctx->route.attempts, &ctx->req.model, &d->id);

            return d;
        }

        ctx->route.plan_index++;
        ctx->route.attempts_in_target = 0;
        ctx->route.tried.nelts = 0;
    }

    if (ctx->route.attempts == 0 && ctx->key.retry_after) {
        /*
         * the deployments reached their limits since the plan was made;
         * the upstream machinery can only say 502, the filter says this
         */
        (void) ngx_http_llmproxy_rate_limited(r, ctx);
        ctx->err.keep = 1;
    }

    return NULL;
}


void
ngx_http_llmproxy_route_failed(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_str_t                      *id;
    ngx_msec_t                      cooldown;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (ctx->route.current == NULL) {
        return;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    /* the metrics count each failure for the deployment that failed */

    if (ctx->route.failed == NULL) {
        ctx->route.failed = ngx_array_create(r->pool, 2, sizeof(ngx_str_t));
    }

    if (ctx->route.failed) {
        id = ngx_array_push(ctx->route.failed);
        if (id) {
            *id = ctx->route.current->id;
        }
    }

    cooldown = 0;

    if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_STATUS
        && ctx->route.fail_status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        cooldown = ctx->route.retry_after ? ctx->route.retry_after
                                          : ctx->rt->settings.cooldown;
    }

    ngx_http_llmproxy_cooldown_fail(lmcf->shm_zone->data, ctx->route.current,
                                    &ctx->rt->settings, cooldown);
}


/* has the target a candidate below its rpm/tpm? */

static ngx_uint_t
ngx_http_llmproxy_open(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t)
{
    ngx_uint_t                        i, n;
    ngx_http_llmproxy_deployment_t  **list;

    if (t->deployment) {
        list = &t->deployment;
        n = 1;

    } else {
        list = t->group->deployments.elts;
        n = t->group->deployments.nelts;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_llmproxy_candidate(ctx, t, list[i])
            && ngx_http_llmproxy_rate(r, list[i], 0, 0) == NGX_OK)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_llmproxy_usable(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t)
{
    ngx_uint_t                        i, n;
    ngx_http_llmproxy_deployment_t  **d;

    if (t->deployment) {
        return ngx_http_llmproxy_candidate(ctx, t, t->deployment);
    }

    n = 0;
    d = t->group->deployments.elts;

    for (i = 0; i < t->group->deployments.nelts; i++) {
        n += ngx_http_llmproxy_candidate(ctx, t, d[i]);
    }

    return n;
}


/*
 * May be used by the request's key, and speaks the client's API, or the
 * request is a conversation (chat or Responses), which is translated to
 * whatever it speaks
 */

static ngx_uint_t
ngx_http_llmproxy_candidate(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t *d)
{
    return ((d->provider->interfaces & ctx->req.iface)
            || ngx_http_llmproxy_ep_chat(ctx->req.endpoint)
            || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_RESPONSES)
           && ngx_http_llmproxy_keys_allow(&ctx->key, &t->name, d);
}


static ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_pick(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_uint_t last)
{
    ngx_uint_t                        n, untried;
    ngx_http_llmproxy_deployment_t  **list, *one, *best, *cooling;

    if (t->deployment) {
        one = t->deployment;
        list = &one;
        n = 1;

    } else {
        list = t->group->deployments.elts;
        n = t->group->deployments.nelts;
    }

    untried = ngx_http_llmproxy_untried(r, ctx, t, list, n);

again:

    best = ngx_http_llmproxy_pick_round(r, ctx, t, list, n, untried,
                                        &cooling);

    if (best) {
        if (ngx_http_llmproxy_rate(r, best, 1, 0) == NGX_BUSY) {
            /* another worker took its last request meanwhile */
            goto again;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy pick: \"%V\" of %ui untried",
                       &best->id, untried);

        return best;
    }

    /*
     * every candidate is cooling down: go on to the fallbacks, or, when
     * there are none left, try the one that failed least recently
     */

    if (!last) {
        return NULL;
    }

    return cooling;
}


/*
 * One round of smooth weighted round-robin over the candidates that are
 * neither at their rate limit nor cooling down (nor tried, while some
 * are untried); *cooling is the one of the others that failed least
 * recently, the last resort.
 */

static ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_pick_round(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_deployment_t **list, ngx_uint_t n, ngx_uint_t untried,
    ngx_http_llmproxy_deployment_t **cooling)
{
    ngx_int_t                        total;
    ngx_uint_t                       i;
    ngx_msec_t                       last_fail, oldest;
    ngx_http_llmproxy_deployment_t  *d, *best;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    best = NULL;
    *cooling = NULL;
    oldest = 0;
    total = 0;

    for (i = 0; i < n; i++) {
        d = list[i];

        if (!ngx_http_llmproxy_candidate(ctx, t, d)) {
            continue;
        }

        if (untried && ngx_http_llmproxy_tried(ctx, d)) {
            continue;
        }

        if (ngx_http_llmproxy_rate(r, d, 0, 0) == NGX_BUSY) {
            /* at its limit: skipped, not even as a last resort */
            ctx->key.retry_after = 60 - ngx_time() % 60;
            continue;
        }

        if (ngx_http_llmproxy_cooldown_check(lmcf->shm_zone->data, d,
                                             &last_fail)
            == NGX_BUSY)
        {
            if (*cooling == NULL
                || (ngx_msec_int_t) (last_fail - oldest) < 0)
            {
                *cooling = d;
                oldest = last_fail;
            }

            continue;
        }

        d->current_weight += d->weight ? d->weight : 1;
        total += d->weight ? d->weight : 1;

        if (best == NULL || d->current_weight > best->current_weight) {
            best = d;
        }
    }

    if (best) {
        best->current_weight -= total;
    }

    return best;
}


/* are there deployments not tried yet?  if not, any may be repeated */

static ngx_uint_t
ngx_http_llmproxy_untried(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t **list,
    ngx_uint_t n)
{
    ngx_uint_t  i, untried;

    untried = 0;

    for (i = 0; i < n; i++) {
        if (!ngx_http_llmproxy_tried(ctx, list[i])
            && ngx_http_llmproxy_candidate(ctx, t, list[i])
            && ngx_http_llmproxy_rate(r, list[i], 0, 0) == NGX_OK)
        {
            untried++;
        }
    }

    return untried;
}


/* an earlier attempt of this request went to d */

static ngx_uint_t
ngx_http_llmproxy_tried(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_deployment_t *d)
{
    ngx_uint_t                        i;
    ngx_http_llmproxy_deployment_t  **tried;

    tried = ctx->route.tried.elts;

    for (i = 0; i < ctx->route.tried.nelts; i++) {
        if (tried[i] == d) {
            return 1;
        }
    }

    return 0;
}


/*
 * A pattern deployment serves the requested name: the attempt gets a copy
 * of it with that name as its upstream model.  The copy keeps the id, so
 * cooldowns, health and metrics stay per pattern deployment: a bounded
 * set, whatever names clients invent.
 */

static ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_passed(ngx_http_request_t *r, ngx_http_llmproxy_target_t *t,
    ngx_http_llmproxy_deployment_t *d)
{
    u_char                           *q;
    ngx_uint_t                        i;
    ngx_http_llmproxy_deployment_t   *c;
    ngx_http_llmproxy_model_price_t  *mp;

    if (t->upstream.len == 0) {
        return d;               /* cannot happen: resolve refuses it */
    }

    c = ngx_palloc(r->pool, sizeof(ngx_http_llmproxy_deployment_t));
    q = ngx_pnalloc(r->pool, 6 * t->upstream.len + 2);

    if (c == NULL || q == NULL) {
        return NULL;
    }

    *c = *d;
    c->model = t->upstream;
    c->upstream_model = t->upstream;

    /* a pattern without prices: the shipped list's for this name */

    mp = d->model_prices ? d->model_prices->elts : NULL;

    for (i = 0; mp && i < d->model_prices->nelts; i++) {
        if (mp[i].name.len == t->upstream.len
            && ngx_strncmp(mp[i].name.data, t->upstream.data,
                           t->upstream.len)
               == 0)
        {
            c->priced = 1;
            c->input_cost = mp[i].input;
            c->output_cost = mp[i].output;
            c->cache_read_cost = mp[i].cache_read;
            c->cache_5m_cost = mp[i].cache_5m;
            c->cache_1h_cost = mp[i].cache_1h;
            break;
        }
    }

    c->upstream_model_json.data = q;
    c->upstream_model_json.len = llmp_json_escape(t->upstream.data,
                                                  t->upstream.len, q);

    return c;
}


/*
 * Per-deployment rpm/tpm: a table in the zone, by a 64-bit hash of the
 * deployment's id, counted per minute like the keys' windows, so the
 * limits hold across all workers of a gateway, and with the other
 * gateways' counts (exchanged by the poller like the keys') across all
 * gateways sharing the database.  Open addressing: a slot is never
 * emptied, a slot of an older minute is taken over by a deployment not
 * found in its chain.
 */

ngx_int_t
ngx_http_llmproxy_route_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx)
{
    zctx->sh->rates = ngx_slab_calloc(zctx->shpool,
                              NGX_HTTP_LLMPROXY_RATES
                              * sizeof(ngx_http_llmproxy_rate_t));
    if (zctx->sh->rates == NULL) {
        return NGX_ERROR;
    }

    zctx->sh->rates_mask = NGX_HTTP_LLMPROXY_RATES - 1;

    return NGX_OK;
}


/* the tokens of a request's answer, against its deployment's tpm */

void
ngx_http_llmproxy_route_account(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t tokens)
{
    if (ctx->route.current && ctx->route.current->tpm && tokens) {
        (void) ngx_http_llmproxy_rate(r, ctx->route.current, 0, tokens);
    }
}


/*
 * The deployment's slot (under the mutex): its own, or a free one or one
 * of an older minute taken over when `create`; NULL: none.
 */

static ngx_http_llmproxy_rate_t *
ngx_http_llmproxy_rate_slot(ngx_http_llmproxy_shctx_t *sh, uint64_t h,
    uint32_t minute, ngx_uint_t create)
{
    ngx_uint_t                 i;
    ngx_http_llmproxy_rate_t  *slot, *free;

    free = NULL;

    for (i = 0; i <= sh->rates_mask; i++) {
        slot = &sh->rates[(ngx_uint_t) (h + i) & sh->rates_mask];

        if (slot->hash == h) {
            break;
        }

        if (free == NULL && (slot->hash == 0 || slot->minute != minute)) {
            free = slot;
        }

        if (slot->hash == 0) {
            slot = NULL;
            break;
        }
    }

    if (i > sh->rates_mask) {
        slot = NULL;
    }

    if (slot == NULL) {
        if (free == NULL || !create) {
            return NULL;
        }

        slot = free;
        slot->hash = h;
        slot->minute = minute;
        slot->requests = 0;
        slot->tokens = 0;
        slot->others_requests = 0;
        slot->others_tokens = 0;
    }

    if (slot->minute != minute) {
        slot->minute = minute;
        slot->requests = 0;
        slot->tokens = 0;
        slot->others_requests = 0;
        slot->others_tokens = 0;
    }

    return slot;
}


/*
 * take: count a request if the deployment is below its limits; tokens:
 * count them; neither: is it below its limits?  NGX_BUSY: at a limit.
 * The other gateways' counts (the poller's) count too.
 */

static ngx_int_t
ngx_http_llmproxy_rate(ngx_http_request_t *r,
    ngx_http_llmproxy_deployment_t *d, ngx_uint_t take, ngx_uint_t tokens)
{
    u_char                         *p, *last;
    uint32_t                        minute;
    uint64_t                        h;
    ngx_int_t                       rc;
    ngx_http_llmproxy_rate_t       *rate;
    ngx_http_llmproxy_shctx_t      *sh;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (d->rpm == 0 && d->tpm == 0) {
        return NGX_OK;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;
    sh = zctx->sh;

    if (sh->rates == NULL) {
        return NGX_OK;
    }

    /* FNV-1a of the id: the same on every gateway with the config */

    h = 0xcbf29ce484222325ULL;
    last = d->id.data + d->id.len;

    for (p = d->id.data; p < last; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
    }

    if (h == 0) {
        h = 1;
    }

    minute = (uint32_t) (ngx_time() / 60);
    rc = NGX_OK;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    /* not counted yet this minute (or no room: not limited) */

    rate = ngx_http_llmproxy_rate_slot(sh, h, minute, take || tokens);

    if (rate == NULL) {
        goto done;
    }

    if (tokens) {
        rate->tokens += (uint32_t) ngx_min(tokens, 0xffffffff - rate->tokens);
        goto done;
    }

    if ((d->rpm && rate->requests + rate->others_requests >= d->rpm)
        || (d->tpm && rate->tokens + rate->others_tokens >= d->tpm))
    {
        rc = NGX_BUSY;
        goto done;
    }

    if (take) {
        rate->requests++;
    }

done:

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return rc;
}


/*
 * For the database poller, in a thread: this gateway's counts of the
 * deployments with limits used in `minute` (hashes, two counts each).
 */

ngx_uint_t
ngx_http_llmproxy_route_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, uint64_t *hashes, uint32_t *counts, ngx_uint_t max)
{
    ngx_uint_t                  i, n;
    ngx_http_llmproxy_rate_t   *slot;
    ngx_http_llmproxy_shctx_t  *sh;

    sh = zctx->sh;
    n = 0;

    if (sh->rates == NULL) {
        return 0;
    }

    ngx_shmtx_lock(&zctx->shpool->mutex);

    for (i = 0; i <= sh->rates_mask && n < max; i++) {
        slot = &sh->rates[i];

        if (slot->hash && slot->minute == minute
            && (slot->requests || slot->tokens))
        {
            hashes[n] = slot->hash;
            counts[2 * n] = slot->requests;
            counts[2 * n + 1] = slot->tokens;
            n++;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return n;
}


/* the other gateways' counts of a deployment in `minute` */

void
ngx_http_llmproxy_route_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint64_t hash, uint32_t minute, uint32_t requests, uint32_t tokens)
{
    ngx_http_llmproxy_rate_t  *slot;

    if (zctx->sh->rates == NULL || hash == 0) {
        return;
    }

    ngx_shmtx_lock(&zctx->shpool->mutex);

    slot = ngx_http_llmproxy_rate_slot(zctx->sh, hash, minute, 1);

    if (slot) {
        slot->others_requests = requests;
        slot->others_tokens = tokens;
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);
}

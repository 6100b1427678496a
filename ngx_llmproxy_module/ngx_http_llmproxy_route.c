/*
 * Routing: the requested name becomes a plan (the model's target, then its
 * fallbacks in order); each upstream attempt asks for the next deployment:
 * smooth weighted round-robin over the target's deployments that are not
 * cooling down and not yet tried, up to 1 + num_retries attempts per
 * target, then the next target of the plan.
 */

#include "ngx_http_llmproxy_module.h"


static ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_pick(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_uint_t last);
static ngx_uint_t ngx_http_llmproxy_usable(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t);
static ngx_uint_t ngx_http_llmproxy_candidate(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t *d);


ngx_int_t
ngx_http_llmproxy_route_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_uint_t                   i, j, usable;
    ngx_http_llmproxy_group_t   *g;
    ngx_http_llmproxy_target_t  *t, **fb, **tp, **plan;

    t = ngx_http_llmproxy_runtime_find(ctx->rt, &ctx->model);

    if (t == NULL) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                   "invalid_request_error", "model_not_found",
                   "The model `%V` does not exist or you do not have access "
                   "to it.", &ctx->model);
    }

    if (!ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_FORBIDDEN,
                   "permission_error", "model_not_allowed",
                   "this key may not call model `%V`", &ctx->model);
    }

    g = t->group ? t->group : t->deployment->group;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: \"%V\" is \"%V\", %ui fallbacks",
                   &ctx->model, &t->name, g->fallbacks.nelts);

    if (ngx_array_init(&ctx->plan, r->pool, 1 + g->fallbacks.nelts,
                       sizeof(ngx_http_llmproxy_target_t *))
        != NGX_OK
        || ngx_array_init(&ctx->tried, r->pool, 4,
                          sizeof(ngx_http_llmproxy_deployment_t *))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tp = ngx_array_push(&ctx->plan);
    if (tp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *tp = t;
    usable = ngx_http_llmproxy_usable(ctx, t);

    fb = g->fallbacks.elts;

    for (i = 0; i < g->fallbacks.nelts; i++) {

        plan = ctx->plan.elts;

        for (j = 0; j < ctx->plan.nelts; j++) {
            if (plan[j]->group == fb[i]->group
                && plan[j]->deployment == fb[i]->deployment)
            {
                break;
            }
        }

        if (j < ctx->plan.nelts
            || !ngx_http_llmproxy_keys_allow_target(&ctx->key, fb[i]))
        {
            continue;
        }

        tp = ngx_array_push(&ctx->plan);
        if (tp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *tp = fb[i];
        usable += ngx_http_llmproxy_usable(ctx, fb[i]);
    }

    if (usable == 0
        && (ctx->endpoint == NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS
            || ctx->endpoint == NGX_HTTP_LLMPROXY_EP_GEMINI_COUNT))
    {
        return NGX_DECLINED;      /* counted here, roughly */
    }

    if (usable == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request_error", "interface_not_supported",
                   "no deployment of model `%V` speaks this API, and "
                   "this endpoint is not translated to another",
                   &ctx->model);
    }

    return NGX_OK;
}


ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_route_next(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_uint_t                       max, last;
    ngx_http_llmproxy_target_t     **plan;
    ngx_http_llmproxy_deployment_t  *d, **tried;

    plan = ctx->plan.elts;
    max = 1 + ctx->rt->settings.num_retries;

    while (ctx->plan_index < ctx->plan.nelts) {

        last = (ctx->plan_index + 1 == ctx->plan.nelts);

        d = NULL;

        if (ctx->attempts_in_target < max) {
            d = ngx_http_llmproxy_pick(r, ctx, plan[ctx->plan_index], last);
        }

        if (d) {
            if (ctx->attempts_in_target > 0) {
                ctx->retries++;

            } else if (ctx->plan_index > 0) {
                ctx->fallbacks++;
            }

            ctx->attempts_in_target++;
            ctx->attempts++;
            ctx->current = d;

            tried = ngx_array_push(&ctx->tried);
            if (tried == NULL) {
                return NULL;
            }

            *tried = d;

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llmproxy: attempt %ui of \"%V\": \"%V\"",
                           ctx->attempts, &ctx->model, &d->id);

            return d;
        }

        ctx->plan_index++;
        ctx->attempts_in_target = 0;
        ctx->tried.nelts = 0;
    }

    return NULL;
}


void
ngx_http_llmproxy_route_failed(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_msec_t                      cooldown;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (ctx->current == NULL) {
        return;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    cooldown = 0;

    if (ctx->fail == NGX_HTTP_LLMPROXY_FAIL_STATUS
        && ctx->fail_status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        cooldown = ctx->retry_after ? ctx->retry_after
                                    : ctx->rt->settings.cooldown;
    }

    ngx_http_llmproxy_cooldown_fail(lmcf->shm_zone->data, ctx->current,
                                    &ctx->rt->settings, cooldown);
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
 * request is a conversation, which is translated to whatever it speaks
 */

static ngx_uint_t
ngx_http_llmproxy_candidate(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_http_llmproxy_deployment_t *d)
{
    return ((d->provider->interfaces & ctx->iface)
            || ngx_http_llmproxy_ep_chat(ctx->endpoint))
           && ngx_http_llmproxy_keys_allow(&ctx->key, &t->name, d);
}


static ngx_http_llmproxy_deployment_t *
ngx_http_llmproxy_pick(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_target_t *t, ngx_uint_t last)
{
    ngx_int_t                         total;
    ngx_uint_t                        i, j, n, ntried, untried;
    ngx_msec_t                        last_fail, oldest;
    ngx_http_llmproxy_deployment_t  **list, *one, *d, *best, *cooling;
    ngx_http_llmproxy_deployment_t  **tried;
    ngx_http_llmproxy_main_conf_t    *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (t->deployment) {
        one = t->deployment;
        list = &one;
        n = 1;

    } else {
        list = t->group->deployments.elts;
        n = t->group->deployments.nelts;
    }

    tried = ctx->tried.elts;
    ntried = ctx->tried.nelts;

    /* are there deployments not tried yet?  if not, any may be repeated */

    untried = 0;

    for (i = 0; i < n; i++) {
        for (j = 0; j < ntried; j++) {
            if (tried[j] == list[i]) {
                break;
            }
        }

        if (j == ntried && ngx_http_llmproxy_candidate(ctx, t, list[i])) {
            untried++;
        }
    }

    best = NULL;
    cooling = NULL;
    oldest = 0;
    total = 0;

    for (i = 0; i < n; i++) {
        d = list[i];

        if (!ngx_http_llmproxy_candidate(ctx, t, d)) {
            continue;
        }

        if (untried) {
            for (j = 0; j < ntried; j++) {
                if (tried[j] == d) {
                    break;
                }
            }

            if (j < ntried) {
                continue;
            }
        }

        if (ngx_http_llmproxy_cooldown_check(lmcf->shm_zone->data, d,
                                             &last_fail)
            == NGX_BUSY)
        {
            if (cooling == NULL
                || (ngx_msec_int_t) (last_fail - oldest) < 0)
            {
                cooling = d;
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

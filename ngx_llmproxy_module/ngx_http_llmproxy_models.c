/*
 * The models a key may call (model groups, then aliases), listed in the
 * shape of the client's interface: OpenAI's {"object":"list","data":[...]},
 * Anthropic's {"data":[...],"has_more":false,...} and Gemini's
 * {"models":[{"name":"models/..."}]}; or one of them by name.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"

#include <llmp_iface.h>
#include <llmp_json_scan.h>

#include <cjson/cJSON.h>


static u_char *ngx_http_llmproxy_model_object(u_char *p, ngx_uint_t shape,
    ngx_str_t *id, ngx_str_t *owner);
static u_char *ngx_http_llmproxy_bridge_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, cJSON *lists, u_char *p, ngx_uint_t shape,
    ngx_uint_t *n, ngx_str_t **first, ngx_str_t **last);
static ngx_int_t ngx_http_llmproxy_models_one(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t shape, ngx_str_t *id);
static size_t ngx_http_llmproxy_models_size(ngx_http_llmproxy_runtime_t *rt,
    cJSON *lists);
static u_char *ngx_http_llmproxy_config_models(ngx_http_llmproxy_ctx_t *ctx,
    u_char *p, ngx_uint_t shape, ngx_uint_t *n, ngx_str_t **first,
    ngx_str_t **last);


ngx_int_t
ngx_http_llmproxy_models(ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx,
    ngx_uint_t shape, ngx_str_t *id)
{
    u_char                          *p, *start;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                       *first, *last;
    const ngx_str_t                 *head;
    ngx_uint_t                       n;
    cJSON                           *hdoc, *lists;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (id->len) {
        return ngx_http_llmproxy_models_one(r, ctx, shape, id);
    }

    /* what bridges with model patterns list (refreshed by _health.c) */

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    hdoc = ngx_http_llmproxy_health_get(lmcf->shm_zone->data);
    lists = cJSON_GetObjectItemCaseSensitive(hdoc, "models");

    len = ngx_http_llmproxy_models_size(ctx->rt, lists);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        cJSON_Delete(hdoc);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    start = p;

    head = &ngx_http_llmproxy_iface(shape)->models_open;
    p = ngx_cpymem(p, head->data, head->len);

    n = 0;
    first = NULL;
    last = NULL;

    p = ngx_http_llmproxy_config_models(ctx, p, shape, &n, &first, &last);

    p = ngx_http_llmproxy_bridge_models(r, ctx, lists, p, shape, &n, &first,
                                        &last);
    cJSON_Delete(hdoc);

    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *p++ = ']';

    if (shape == LLMP_IFACE_ANTHROPIC) {
        p = ngx_cpymem(p, ",\"has_more\":false,\"first_id\":",
                       sizeof(",\"has_more\":false,\"first_id\":") - 1);

        if (first && first->len <= 256 && last->len <= 256) {
            p += llmp_json_escape(first->data, first->len, p);
            p = ngx_cpymem(p, ",\"last_id\":", sizeof(",\"last_id\":") - 1);
            p += llmp_json_escape(last->data, last->len, p);

        } else {
            p = ngx_cpymem(p, "null,\"last_id\":null",
                           sizeof("null,\"last_id\":null") - 1);
        }
    }

    *p++ = '}';

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy models: %ui listed", n);

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, start, p - start);
}


/* one model by name: 404 unless the key may call it */

static ngx_int_t
ngx_http_llmproxy_models_one(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t shape, ngx_str_t *id)
{
    u_char                          *p, *start;
    ngx_http_llmproxy_target_t      *t;
    ngx_http_llmproxy_deployment_t  *d;

    /* a name a pattern passes through is one of its models too */

    t = ngx_http_llmproxy_runtime_resolve(ctx->rt, r->pool, id);

    if (t == NULL || !ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                   "invalid_request_error", "model_not_found",
                   "The model `%V` does not exist or you do not have "
                   "access to it.", id);
    }

    d = t->deployment ? t->deployment
                      : ((ngx_http_llmproxy_deployment_t **)
                         t->group->deployments.elts)[0];

    p = ngx_pnalloc(r->pool, 6 * (id->len + d->provider->name.len) + 512);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    start = p;
    p = ngx_http_llmproxy_model_object(p, shape, id, &d->provider->name);

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, start, p - start);
}


/* an upper bound of the list's bytes: every name escaped, 512 each */

static size_t
ngx_http_llmproxy_models_size(ngx_http_llmproxy_runtime_t *rt, cJSON *lists)
{
    size_t                           len;
    ngx_uint_t                       i;
    cJSON                           *list, *item;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_group_t       *g;
    ngx_http_llmproxy_deployment_t  *d;

    len = sizeof("{\"object\":\"list\",\"data\":[],\"has_more\":false,"
                 "\"first_id\":,\"last_id\":}") + 2 * 6 * 256;

    cJSON_ArrayForEach(list, lists) {
        cJSON_ArrayForEach(item, list) {
            if (cJSON_IsString(item)) {
                len += 6 * (ngx_strlen(item->valuestring)
                            + ngx_strlen(list->string)) + 512;
            }
        }
    }

    g = rt->groups.elts;

    for (i = 0; i < rt->groups.nelts; i++) {
        d = ((ngx_http_llmproxy_deployment_t **) g[i].deployments.elts)[0];
        len += 6 * (g[i].name.len + d->provider->name.len) + 512;
    }

    kv = rt->aliases.elts;

    for (i = 0; i < rt->aliases.nelts; i++) {
        len += 6 * kv[i].key.len + 512 + sizeof("llmproxy");
    }

    return len;
}


/* the model groups (not patterns), then the aliases, the key may call */

static u_char *
ngx_http_llmproxy_config_models(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    ngx_uint_t shape, ngx_uint_t *n, ngx_str_t **first, ngx_str_t **last)
{
    ngx_str_t                        owner;
    ngx_uint_t                       i;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_group_t       *g;
    ngx_http_llmproxy_target_t      *t;
    ngx_http_llmproxy_runtime_t     *rt;
    ngx_http_llmproxy_deployment_t  *d;

    rt = ctx->rt;
    g = rt->groups.elts;
    kv = rt->aliases.elts;

    for (i = 0; i < rt->groups.nelts; i++) {
        if (g[i].pattern
            || !ngx_http_llmproxy_keys_allow_target(&ctx->key, &g[i].target))
        {
            continue;
        }

        d = ((ngx_http_llmproxy_deployment_t **) g[i].deployments.elts)[0];

        if ((*n)++) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_model_object(p, shape, &g[i].name,
                                           &d->provider->name);

        if (*first == NULL) {
            *first = &g[i].name;
        }

        *last = &g[i].name;
    }

    ngx_str_set(&owner, "llmproxy");

    for (i = 0; i < rt->aliases.nelts; i++) {
        t = ngx_http_llmproxy_runtime_find(rt, &kv[i].key);

        if (t == NULL || !ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
            continue;
        }

        if ((*n)++) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_model_object(p, shape, &kv[i].key, &owner);

        if (*first == NULL) {
            *first = &kv[i].key;
        }

        *last = &kv[i].key;
    }

    return p;
}


static u_char *
ngx_http_llmproxy_model_object(u_char *p, ngx_uint_t shape, ngx_str_t *id,
    ngx_str_t *owner)
{
    return ngx_http_llmproxy_iface(shape)->model_object(p, id, owner);
}


/* the rows of _iface.c's table: one model in each interface's shape */

u_char *
ngx_http_llmproxy_openai_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner)
{
    p = ngx_cpymem(p, "{\"id\":", sizeof("{\"id\":") - 1);
    p += llmp_json_escape(id->data, id->len, p);
    p = ngx_cpymem(p, ",\"object\":\"model\",\"created\":1700000000,"
                   "\"owned_by\":",
                   sizeof(",\"object\":\"model\",\"created\":1700000000,"
                          "\"owned_by\":") - 1);
    p += llmp_json_escape(owner->data, owner->len, p);
    *p++ = '}';
    return p;
}


u_char *
ngx_http_llmproxy_anthropic_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner)
{
    p = ngx_cpymem(p, "{\"type\":\"model\",\"id\":",
                   sizeof("{\"type\":\"model\",\"id\":") - 1);
    p += llmp_json_escape(id->data, id->len, p);
    p = ngx_cpymem(p, ",\"display_name\":",
                   sizeof(",\"display_name\":") - 1);
    p += llmp_json_escape(id->data, id->len, p);
    p = ngx_cpymem(p, ",\"created_at\":\"2023-11-14T22:13:20Z\"}",
                   sizeof(",\"created_at\":\"2023-11-14T22:13:20Z\"}")
                   - 1);
    return p;
}


u_char *
ngx_http_llmproxy_gemini_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner)
{
    size_t  n;

    p = ngx_cpymem(p, "{\"name\":\"models/",
                   sizeof("{\"name\":\"models/") - 1);

    /* the escaped id without its opening quote */
    n = llmp_json_escape(id->data, id->len, p);
    ngx_memmove(p, p + 1, n - 1);
    p += n - 1;

    p = ngx_cpymem(p, ",\"displayName\":",
                   sizeof(",\"displayName\":") - 1);
    p += llmp_json_escape(id->data, id->len, p);
    p = ngx_cpymem(p, ",\"supportedGenerationMethods\":"
                   "[\"generateContent\",\"streamGenerateContent\","
                   "\"countTokens\",\"embedContent\"]}",
                   sizeof(",\"supportedGenerationMethods\":"
                          "[\"generateContent\",\"streamGenerateContent\","
                          "\"countTokens\",\"embedContent\"]}") - 1);
    return p;
}


/*
 * The models a bridge reports that a pattern passes through and the key
 * may call, each once, not those the config names (listed already)
 */

static u_char *
ngx_http_llmproxy_bridge_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, cJSON *lists, u_char *p, ngx_uint_t shape,
    ngx_uint_t *n, ngx_str_t **first, ngx_str_t **last)
{
    cJSON                       *list, *item;
    ngx_str_t                    name, owner, *seen;
    ngx_uint_t                   i;
    ngx_array_t                  listed;
    ngx_http_llmproxy_target_t  *t;

    if (ngx_array_init(&listed, r->pool, 16, sizeof(ngx_str_t)) != NGX_OK) {
        return NULL;
    }

    cJSON_ArrayForEach(list, lists) {
        owner.data = (u_char *) list->string;
        owner.len = ngx_strlen(owner.data);

        cJSON_ArrayForEach(item, list) {
            if (!cJSON_IsString(item)) {
                continue;
            }

            name.data = (u_char *) item->valuestring;
            name.len = ngx_strlen(name.data);

            if (ngx_http_llmproxy_runtime_find(ctx->rt, &name)) {
                continue;
            }

            seen = listed.elts;

            for (i = 0; i < listed.nelts; i++) {
                if (seen[i].len == name.len
                    && ngx_strncmp(seen[i].data, name.data, name.len) == 0)
                {
                    break;
                }
            }

            if (i < listed.nelts) {
                continue;
            }

            t = ngx_http_llmproxy_runtime_match(ctx->rt, r->pool, &name);

            if (t == NULL
                || !ngx_http_llmproxy_keys_allow_target(&ctx->key, t))
            {
                continue;
            }

            seen = ngx_array_push(&listed);
            if (seen == NULL) {
                return NULL;
            }

            *seen = t->name;

            if ((*n)++) {
                *p++ = ',';
            }

            /* t is in the pool, the list freed after: its name stays */

            p = ngx_http_llmproxy_model_object(p, shape, &t->name, &owner);

            if (*first == NULL) {
                *first = &t->name;
            }

            *last = &t->name;
        }
    }

    return p;
}

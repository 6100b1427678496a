/*
 * Admin endpoints used by llmproxyctl, behind the master key:
 *
 *   POST /.../config   install a compiled config (validated and its hosts
 *                      resolved in a thread of the pool, saved as the last
 *                      good config, then published to every worker)
 *   GET  /.../config   the loaded config, provider api keys and header
 *                      values removed (their sha256 digests stay)
 *   GET  /.../health   health checks of deployments, providers' model
 *                      lists (_health.c)
 *   GET  /.../status   what the gateway has loaded (models, deployments,
 *                      aliases, fallbacks; no secrets), cooldowns,
 *                      the database
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_admin.h"
#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <cjson/cJSON.h>
#include <llmp_crypt.h>


#define NGX_HTTP_LLMPROXY_ADMIN_MAX_BODY  (64 * 1024 * 1024)


typedef struct {
    ngx_http_request_t             *request;   /* NULL once it is gone */
    u_char                         *blob;
    size_t                          len;
    u_char                         *current;    /* the installed config */
    size_t                          current_len;
    u_char                         *prepared;
    size_t                          prepared_len;
    ngx_str_t                       state_file;
    char                           *salt_key;
    ngx_int_t                       saved;
    u_char                          err[512];
} ngx_http_llmproxy_admin_task_t;


static void ngx_http_llmproxy_admin_body(ngx_http_request_t *r);
static u_char *ngx_http_llmproxy_admin_body_copy(ngx_http_request_t *r,
    u_char *p);
static void ngx_http_llmproxy_admin_prepare(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_admin_prepared(ngx_event_t *ev);
static void ngx_http_llmproxy_admin_request_gone(void *data);
static ngx_int_t ngx_http_llmproxy_admin_get_config(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_admin_status(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_admin_status_lists(ngx_http_request_t *r,
    cJSON *root, ngx_http_llmproxy_runtime_t *rt, ngx_keyval_t *cooling,
    ngx_uint_t n);
static void ngx_http_llmproxy_admin_status_cooldowns(cJSON *root,
    ngx_keyval_t *kv, ngx_uint_t n);
static ngx_int_t ngx_http_llmproxy_admin_status_models(
    ngx_http_request_t *r, cJSON *root, cJSON *models,
    ngx_http_llmproxy_runtime_t *rt);
static ngx_int_t ngx_http_llmproxy_admin_status_deployment(
    ngx_http_request_t *r, cJSON *deps, ngx_http_llmproxy_deployment_t *dp,
    cJSON *hdoc, ngx_keyval_t *cooling, ngx_uint_t n);
static ngx_int_t ngx_http_llmproxy_admin_send_cjson(ngx_http_request_t *r,
    cJSON *json);


static ngx_int_t
ngx_http_llmproxy_uri_ends(ngx_http_request_t *r, const char *s, size_t n)
{
    return r->uri.len >= n
           && ngx_strncmp(r->uri.data + r->uri.len - n, s, n) == 0;
}


ngx_int_t
ngx_http_llmproxy_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* LiteLLM's /key/... API: a virtual key may read its own info */
    rc = ngx_http_llmproxy_admin_keys_match(r);
    if (rc >= 0) {
        return ngx_http_llmproxy_admin_keys_handler(r, rc);
    }

    rc = ngx_http_llmproxy_check_master_key(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_llmproxy_uri_ends(r, "/config", 7)) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_llmproxy_admin_get_config(r);
        }

        if (r->method != NGX_HTTP_POST && r->method != NGX_HTTP_PUT) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                          "invalid_request_error",
                                          "method_not_allowed",
                                          "use GET or POST");
        }

        if (r->headers_in.content_length_n
            > NGX_HTTP_LLMPROXY_ADMIN_MAX_BODY)
        {
            return ngx_http_llmproxy_fail(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "invalid_request_error",
                                          "request_too_large",
                                          "config larger than 64m");
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_llmproxy_admin_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (ngx_http_llmproxy_uri_ends(r, "/health", 7)) {
        return ngx_http_llmproxy_health_admin(r);
    }

    if (ngx_http_llmproxy_uri_ends(r, "/status", 7)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_llmproxy_admin_status(r);
    }

    return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                  "invalid_request_error", "unknown_url",
                                  "unknown admin endpoint %V", &r->uri);
}


static void
ngx_http_llmproxy_admin_body(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           len;
    ngx_chain_t                     *cl;
    ngx_uint_t                       generation;
    ngx_thread_task_t               *task;
    ngx_pool_cleanup_t              *cln;
    ngx_http_llmproxy_zone_ctx_t    *zctx;
    ngx_http_llmproxy_admin_task_t  *t;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (len == 0 || len > NGX_HTTP_LLMPROXY_ADMIN_MAX_BODY) {
        ngx_http_finalize_request(r,
            ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_config",
                                   "expected a compiled config as the body"));
        return;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_llmproxy_admin_task_t),
                      r->connection->log);
    if (task == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    t = (ngx_http_llmproxy_admin_task_t *) (task + 1);
    task->ctx = t;

    t->blob = ngx_alloc(len, r->connection->log);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (t->blob == NULL || cln == NULL) {
        ngx_free(t->blob);
        ngx_free(task);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_http_llmproxy_admin_body_copy(r, t->blob);

    if (p == NULL) {
        ngx_free(t->blob);
        ngx_free(task);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    t->len = p - t->blob;
    t->request = r;
    t->current = ngx_http_llmproxy_shm_copy(zctx, &t->current_len,
                                            &generation);
    t->state_file = zctx->state_file;
    t->salt_key = zctx->salt_key;

    cln->handler = ngx_http_llmproxy_admin_request_gone;
    cln->data = t;

    task->handler = ngx_http_llmproxy_admin_prepare;
    task->event.handler = ngx_http_llmproxy_admin_prepared;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(lmcf->thread_pool, task) != NGX_OK) {
        cln->handler = NULL;
        ngx_free(t->current);
        ngx_free(t->blob);
        ngx_free(task);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
}


/* the request body, in memory or in its temporary file, to p */

static u_char *
ngx_http_llmproxy_admin_body_copy(ngx_http_request_t *r, u_char *p)
{
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            return NULL;
        }

        p += n;
    }

    return p;
}


/* in a thread of the pool: blocking work is fine here */

static void
ngx_http_llmproxy_admin_prepare(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_admin_task_t *t = data;

    t->prepared = ngx_http_llmproxy_runtime_prepare(t->blob, t->len,
                                                    t->current,
                                                    t->current_len,
                                                    &t->prepared_len, t->err,
                                                    sizeof(t->err));
    if (t->prepared == NULL || t->state_file.len == 0) {
        return;
    }

    t->saved = ngx_http_llmproxy_state_save(&t->state_file, t->prepared,
                                            t->prepared_len, t->salt_key,
                                            log);
}


static void
ngx_http_llmproxy_admin_prepared(ngx_event_t *ev)
{
    u_char                          *p;
    ngx_int_t                        rc;
    ngx_uint_t                       generation;
    ngx_thread_task_t               *task;
    ngx_http_request_t              *r;
    ngx_http_llmproxy_admin_task_t  *t;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    task = ev->data;
    t = task->ctx;
    r = t->request;

    if (r == NULL) {
        goto done;
    }

    t->request = NULL;    /* the pool cleanup must not touch t any more */

    if (t->prepared == NULL) {

        /* names in the message come from the body: no raw line breaks */

        for (p = t->err; *p; p++) {
            if (*p < ' ' || *p == 0x7f) {
                *p = '?';
            }
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: config refused: %s", t->err);

        rc = ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request_error",
                                    "invalid_config", "%s", t->err);
        goto finalize;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (ngx_http_llmproxy_shm_install(lmcf->shm_zone->data, t->prepared,
                                      t->prepared_len, &generation)
        != NGX_OK)
    {
        rc = ngx_http_llmproxy_fail(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                    "api_error", "zone_full",
                                    "the config does not fit into the "
                                    "llmproxy zone");
        goto finalize;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "llmproxy: config generation %ui installed%s", generation,
                  t->saved == NGX_OK ? "" : " (not saved to the state path)");

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto finalize;
    }

    rc = ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, p,
             ngx_sprintf(p, "{\"ok\":true,\"generation\":%ui}", generation)
             - p);

finalize:

    ngx_http_finalize_request(r, rc);

done:

    if (t->prepared) {
        cJSON_free(t->prepared);
    }

    ngx_free(t->current);
    ngx_free(t->blob);
    ngx_free(task);
}


static void
ngx_http_llmproxy_admin_request_gone(void *data)
{
    ngx_http_llmproxy_admin_task_t *t = data;

    t->request = NULL;
}


static ngx_int_t
ngx_http_llmproxy_admin_get_config(ngx_http_request_t *r)
{
    int                              rc;
    char                             hex[65];
    u_char                          *blob;
    size_t                           len;
    cJSON                           *root, *p;
    ngx_uint_t                       generation;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    blob = ngx_http_llmproxy_shm_copy(lmcf->shm_zone->data, &len,
                                      &generation);
    if (blob == NULL) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                      "invalid_request_error", "no_config",
                                      "no config loaded yet");
    }

    root = cJSON_ParseWithLength((char *) blob, len);
    ngx_free(blob);

    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* secrets never leave the gateway: sync compares their digests */

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                            "providers"))
    {
        cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key");
        cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key_enc");
        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers_enc");

        rc = llmp_headers_sha256(cJSON_GetObjectItemCaseSensitive(p,
                                                                  "headers"),
                                 hex);
        if (rc == 0) {
            continue;
        }

        /* a config pushed by an older llmproxyctl has no digest yet */

        if (rc < 0
            || (cJSON_GetObjectItemCaseSensitive(p, "headers_sha256") == NULL
                && cJSON_AddStringToObject(p, "headers_sha256", hex)
                   == NULL))
        {
            cJSON_Delete(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers");
    }

    if (cJSON_AddNumberToObject(root, "generation", (double) generation)
        == NULL)
    {
        cJSON_Delete(root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llmproxy_admin_send_cjson(r, root);
}


static ngx_int_t
ngx_http_llmproxy_admin_status(ngx_http_request_t *r)
{
    u_char                          *s;
    cJSON                           *root;
    ngx_array_t                      cooldowns;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_runtime_t     *rt;
    ngx_http_llmproxy_zone_ctx_t    *zctx;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    rt = ngx_http_llmproxy_runtime_get(r);

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cJSON_AddNumberToObject(root, "generation",
                            (double) zctx->sh->generation);
    cJSON_AddBoolToObject(root, "loaded", rt != NULL);

    /* the database's state as /health/readiness reports it */

    cJSON_AddStringToObject(root, "database",
                            lmcf->database.len == 0 ? "not configured"
                            : zctx->sh->db_ok ? "connected" : "unreachable");
    cJSON_AddNumberToObject(root, "keys", (double) zctx->sh->nkeys);

    if (lmcf->database.len) {
        cJSON_AddNumberToObject(root, "config_version",
                                (double) zctx->sh->config_version);
    }

    if (ngx_http_llmproxy_cooldown_list(zctx, r->pool, &cooldowns)
        != NGX_OK)
    {
        cooldowns.nelts = 0;
    }

    kv = cooldowns.elts;

    if (rt) {
        s = ngx_pnalloc(r->pool, rt->config_sha256.len + 1);
        if (s) {
            ngx_memcpy(s, rt->config_sha256.data, rt->config_sha256.len);
            s[rt->config_sha256.len] = '\0';
            cJSON_AddStringToObject(root, "config_sha256", (char *) s);
        }

        cJSON_AddNumberToObject(root, "providers",
                                (double) rt->providers.nelts);
        cJSON_AddNumberToObject(root, "deployments",
                                (double) rt->deployments.nelts);
        cJSON_AddNumberToObject(root, "models", (double) rt->groups.nelts);
        cJSON_AddNumberToObject(root, "aliases", (double) rt->aliases.nelts);

        if (ngx_http_llmproxy_admin_status_lists(r, root, rt, kv,
                                                 cooldowns.nelts)
            != NGX_OK)
        {
            cJSON_Delete(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_http_llmproxy_admin_status_cooldowns(root, kv, cooldowns.nelts);

    return ngx_http_llmproxy_admin_send_cjson(r, root);
}


/* the deployments cooling down, and for how long yet */

static void
ngx_http_llmproxy_admin_status_cooldowns(cJSON *root, ngx_keyval_t *kv,
    ngx_uint_t n)
{
    cJSON       *list, *item;
    ngx_int_t    ms;
    ngx_uint_t   i;

    list = cJSON_AddArrayToObject(root, "cooldowns");

    for (i = 0; list && i < n; i++) {
        item = cJSON_CreateObject();
        if (item == NULL) {
            break;
        }

        cJSON_AddItemToArray(list, item);

        /*
         * the value follows the key in one buffer: read it before the
         * key's terminator overwrites its first digit
         */

        ms = ngx_atoi(kv[i].value.data, kv[i].value.len);
        kv[i].key.data[kv[i].key.len] = '\0';

        cJSON_AddStringToObject(item, "deployment", (char *) kv[i].key.data);
        cJSON_AddNumberToObject(item, "until_ms_from_now",
                                (double) (ms > 0 ? ms : 0));
    }
}


/* names of the loaded config for llmproxyctl status: never keys */

static cJSON *
ngx_http_llmproxy_admin_str(ngx_http_request_t *r, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s->data, s->len) = '\0';

    return cJSON_CreateString((char *) p);
}


static ngx_int_t
ngx_http_llmproxy_admin_status_lists(ngx_http_request_t *r, cJSON *root,
    ngx_http_llmproxy_runtime_t *rt, ngx_keyval_t *cooling, ngx_uint_t n)
{
    cJSON                           *models, *deps, *aliases, *a, *hdoc;
    ngx_uint_t                       i;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_deployment_t  *dp;
    ngx_http_llmproxy_zone_ctx_t    *zctx;
    ngx_http_llmproxy_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    models = cJSON_AddArrayToObject(root, "model_list");
    deps = cJSON_AddArrayToObject(root, "deployment_list");
    aliases = cJSON_AddArrayToObject(root, "alias_list");

    if (models == NULL || deps == NULL || aliases == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_admin_status_models(r, root, models, rt)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    dp = rt->deployments.elts;
    hdoc = ngx_http_llmproxy_health_get(zctx);

    for (i = 0; i < rt->deployments.nelts; i++) {
        if (ngx_http_llmproxy_admin_status_deployment(r, deps, &dp[i], hdoc,
                                                      cooling, n)
            != NGX_OK)
        {
            cJSON_Delete(hdoc);
            return NGX_ERROR;
        }
    }

    cJSON_Delete(hdoc);

    kv = rt->aliases.elts;

    for (i = 0; i < rt->aliases.nelts; i++) {
        a = cJSON_CreateObject();
        if (a == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(aliases, a);
        cJSON_AddItemToObject(a, "name",
                              ngx_http_llmproxy_admin_str(r, &kv[i].key));
        cJSON_AddItemToObject(a, "model",
                              ngx_http_llmproxy_admin_str(r, &kv[i].value));
    }

    return NGX_OK;
}


/* each model group: its deployments and fallbacks, by name */

static ngx_int_t
ngx_http_llmproxy_admin_status_models(ngx_http_request_t *r, cJSON *root,
    cJSON *models, ngx_http_llmproxy_runtime_t *rt)
{
    cJSON                            *m, *names, *fbs;
    ngx_uint_t                        i, j, nfallbacks;
    ngx_http_llmproxy_group_t        *g;
    ngx_http_llmproxy_target_t      **fb;
    ngx_http_llmproxy_deployment_t  **gd;

    nfallbacks = 0;
    g = rt->groups.elts;

    for (i = 0; i < rt->groups.nelts; i++) {
        m = cJSON_CreateObject();
        names = cJSON_CreateArray();
        fbs = cJSON_CreateArray();

        if (m == NULL || names == NULL || fbs == NULL) {
            cJSON_Delete(m);
            cJSON_Delete(names);
            cJSON_Delete(fbs);
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(models, m);
        cJSON_AddItemToObject(m, "name",
                              ngx_http_llmproxy_admin_str(r, &g[i].name));
        cJSON_AddItemToObject(m, "deployments", names);
        cJSON_AddItemToObject(m, "fallbacks", fbs);

        gd = g[i].deployments.elts;

        for (j = 0; j < g[i].deployments.nelts; j++) {
            cJSON_AddItemToArray(names,
                                 ngx_http_llmproxy_admin_str(r, &gd[j]->id));
        }

        fb = g[i].fallbacks.elts;
        nfallbacks += (g[i].fallbacks.nelts > 0);    /* as in the config */

        for (j = 0; j < g[i].fallbacks.nelts; j++) {
            cJSON_AddItemToArray(fbs,
                                 ngx_http_llmproxy_admin_str(r, &fb[j]->name));
        }
    }

    cJSON_AddNumberToObject(root, "fallbacks", (double) nfallbacks);

    return NGX_OK;
}


/* a deployment: what it is, its cooldown left and its health verdict */

static ngx_int_t
ngx_http_llmproxy_admin_status_deployment(ngx_http_request_t *r,
    cJSON *deps, ngx_http_llmproxy_deployment_t *dp, cJSON *hdoc,
    ngx_keyval_t *cooling, ngx_uint_t n)
{
    cJSON         *d;
    ngx_int_t      ms;
    ngx_uint_t     j;
    const char    *health;
    ngx_keyval_t  *kv;

    d = cJSON_CreateObject();
    if (d == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(deps, d);
    cJSON_AddItemToObject(d, "id", ngx_http_llmproxy_admin_str(r, &dp->id));
    cJSON_AddItemToObject(d, "model",
                          ngx_http_llmproxy_admin_str(r, &dp->model));
    cJSON_AddItemToObject(d, "provider",
                          ngx_http_llmproxy_admin_str(r,
                                                      &dp->provider->name));
    cJSON_AddItemToObject(d, "upstream_model",
                          ngx_http_llmproxy_admin_str(r,
                                                      &dp->upstream_model));
    cJSON_AddNumberToObject(d, "weight", (double) dp->weight);

    ms = 0;

    for (j = 0; j < n; j++) {
        kv = &cooling[j];

        if (kv->key.len == dp->id.len
            && ngx_memcmp(kv->key.data, dp->id.data, kv->key.len) == 0)
        {
            ms = ngx_atoi(kv->value.data, kv->value.len);
            break;
        }
    }

    cJSON_AddNumberToObject(d, "cooldown_ms", (double) (ms > 0 ? ms : 0));

    /* with health checks on, the last one's verdict */

    health = ngx_http_llmproxy_health_of(hdoc, &dp->id);

    if (health) {
        cJSON_AddStringToObject(d, "health", health);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_admin_send_cjson(ngx_http_request_t *r, cJSON *json)
{
    u_char     *p;
    char       *s;
    size_t      len;
    ngx_str_t   out;

    s = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(s);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        cJSON_free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, s, len);
    cJSON_free(s);

    out.data = p;
    out.len = len;

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, out.data, out.len);
}

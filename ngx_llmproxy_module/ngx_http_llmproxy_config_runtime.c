/*
 * The worker-local view of the compiled config.  llmproxyctl compiles
 * config.json and pushes the result; the admin endpoint "prepares" it off
 * the event loop (validates it and resolves provider hosts to addresses)
 * and installs it in the zone; every worker then builds its own runtime
 * from the zone when the generation changes.  Requests hold a reference
 * to the runtime they started with, so a switch never disturbs them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <llmp_iface.h>
#include <llmp_json_scan.h>

#include <netdb.h>
#include <cjson/cJSON.h>
#include <llmp_crypt.h>
#include <llmp_config.h>
#include <llmp_pattern.h>


typedef struct {
    ngx_pool_t   *pool;
    u_char       *err;
    size_t        errlen;
    ngx_uint_t    failed;
} ngx_http_llmproxy_build_t;


static ngx_http_llmproxy_runtime_t *ngx_http_llmproxy_runtime_build(
    cJSON *root, ngx_uint_t generation, u_char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_keep_secrets(cJSON *root,
    u_char *current, size_t current_len, u_char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_keep_key(cJSON *p, cJSON *cur);
static ngx_int_t ngx_http_llmproxy_keep_headers(cJSON *p, cJSON *cur);
static ngx_int_t ngx_http_llmproxy_keep_digests(cJSON *root, u_char *err,
    size_t errlen);
static ngx_int_t ngx_http_llmproxy_build_settings(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *settings);
static ngx_int_t ngx_http_llmproxy_build_providers(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *list);
static ngx_int_t ngx_http_llmproxy_build_deployments(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *list);
static ngx_int_t ngx_http_llmproxy_build_provider(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_provider_t *p,
    cJSON *obj, ngx_uint_t n);
static ngx_int_t ngx_http_llmproxy_build_base(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p);
static ngx_int_t ngx_http_llmproxy_build_headers(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_provider_t *p,
    cJSON *headers);
static ngx_int_t ngx_http_llmproxy_build_addrs(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p, cJSON *resolved);
static ngx_int_t ngx_http_llmproxy_build_deployment(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    ngx_http_llmproxy_deployment_t *d, cJSON *obj, ngx_uint_t n);
static ngx_http_llmproxy_provider_t *ngx_http_llmproxy_build_find_provider(
    ngx_http_llmproxy_runtime_t *rt, ngx_str_t *name);
static ngx_int_t ngx_http_llmproxy_build_access_groups(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_deployment_t *d,
    cJSON *obj);
static void ngx_http_llmproxy_build_numbers(ngx_http_llmproxy_deployment_t *d,
    cJSON *obj);
static ngx_int_t ngx_http_llmproxy_build_model_prices(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_deployment_t *d,
    cJSON *obj);
static ngx_int_t ngx_http_llmproxy_build_link(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, ngx_http_llmproxy_deployment_t *d);
static ngx_http_llmproxy_group_t *ngx_http_llmproxy_build_group(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    ngx_str_t *name, ngx_uint_t pattern);
static ngx_int_t ngx_http_llmproxy_build_names(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *aliases, cJSON *fallbacks);
static ngx_int_t ngx_http_llmproxy_build_aliases(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *aliases);
static ngx_int_t ngx_http_llmproxy_build_fallbacks(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *fallbacks);
static ngx_int_t ngx_http_llmproxy_names_add(ngx_http_llmproxy_runtime_t *rt,
    ngx_http_llmproxy_target_t *t);
static ngx_int_t ngx_http_llmproxy_build_patterns(
    ngx_http_llmproxy_build_t *b, ngx_http_llmproxy_runtime_t *rt,
    cJSON *aliases, cJSON *fallbacks);
static ngx_int_t ngx_http_llmproxy_pattern_cmp(const void *one,
    const void *two);
static ngx_uint_t ngx_http_llmproxy_shadows(ngx_http_llmproxy_runtime_t *rt,
    ngx_str_t *name);
static ngx_int_t ngx_http_llmproxy_parse_base(ngx_str_t *base,
    ngx_str_t *host, ngx_str_t *hostport, ngx_str_t *path, in_port_t *port,
    ngx_uint_t *ssl);
static ngx_int_t ngx_http_llmproxy_parse_host(u_char **pp, u_char *last,
    ngx_str_t *host, in_port_t *port);
static ngx_int_t ngx_http_llmproxy_str(ngx_http_llmproxy_build_t *b,
    cJSON *obj, const char *key, ngx_str_t *out);
static void ngx_http_llmproxy_runtime_release(void *data);
static ngx_int_t ngx_http_llmproxy_runtime_validate(cJSON *root, u_char *err,
    size_t errlen);
static ngx_int_t ngx_http_llmproxy_prepare_resolve(cJSON *p);


static ngx_http_llmproxy_runtime_t  *ngx_http_llmproxy_current;
static ngx_uint_t                    ngx_http_llmproxy_failed_generation;


#define ngx_http_llmproxy_build_error(b, ...)                                \
    do {                                                                     \
        if (!(b)->failed) {                                                  \
            *ngx_slprintf((b)->err, (b)->err + (b)->errlen - 1, __VA_ARGS__) \
                = '\0';                                                      \
        }                                                                    \
        (b)->failed = 1;                                                     \
    } while (0)


ngx_http_llmproxy_runtime_t *
ngx_http_llmproxy_runtime_get(ngx_http_request_t *r)
{
    u_char                         *blob, err[512];
    size_t                          len;
    cJSON                          *root;
    ngx_uint_t                      generation;
    ngx_pool_cleanup_t             *cln;
    ngx_http_llmproxy_runtime_t    *rt, *old;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    generation = zctx->sh->generation;
    rt = ngx_http_llmproxy_current;

    if (generation
        && (rt == NULL || rt->generation != generation)
        && generation != ngx_http_llmproxy_failed_generation)
    {
        blob = ngx_http_llmproxy_shm_copy(zctx, &len, &generation);
        root = blob ? cJSON_ParseWithLength((char *) blob, len) : NULL;
        ngx_free(blob);

        rt = NULL;

        if (root) {
            rt = ngx_http_llmproxy_runtime_build(root, generation, err,
                                                 sizeof(err));
            cJSON_Delete(root);

        } else {
            ngx_cpystrn(err, (u_char *) "no memory or invalid JSON",
                        sizeof(err));
        }

        if (rt == NULL) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "llmproxy: config generation %ui not loaded: %s",
                          generation, err);
            ngx_http_llmproxy_failed_generation = generation;
            rt = ngx_http_llmproxy_current;

        } else {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "llmproxy: config generation %ui loaded",
                          generation);

            old = ngx_http_llmproxy_current;
            ngx_http_llmproxy_current = rt;
            rt->refcount = 1;

            if (old) {
                ngx_http_llmproxy_runtime_release(old);
            }
        }
    }

    if (rt == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    rt->refcount++;
    cln->handler = ngx_http_llmproxy_runtime_release;
    cln->data = rt;

    return rt;
}


static void
ngx_http_llmproxy_runtime_release(void *data)
{
    ngx_http_llmproxy_runtime_t *rt = data;

    if (--rt->refcount == 0) {
        ngx_destroy_pool(rt->pool);
    }
}


ngx_http_llmproxy_target_t *
ngx_http_llmproxy_runtime_find(ngx_http_llmproxy_runtime_t *rt,
    ngx_str_t *name)
{
    ngx_uint_t                   i;
    ngx_http_llmproxy_target_t  *t;

    i = ngx_hash_key(name->data, name->len) & rt->names_mask;

    for ( ;; ) {
        t = rt->names[i];

        if (t == NULL) {
            return NULL;
        }

        if (t->name.len == name->len
            && ngx_memcmp(t->name.data, name->data, name->len) == 0)
        {
            return t;
        }

        i = (i + 1) & rt->names_mask;
    }
}


/*
 * Validates a compiled config and resolves its providers' hosts.  Runs in
 * a thread of the pool (or in the master at start): it may block, and
 * uses nothing of the worker but malloc.  Returns the config to install,
 * with a "resolved" array of addresses in each provider.
 */

u_char *
ngx_http_llmproxy_runtime_prepare(u_char *blob, size_t len, u_char *current,
    size_t current_len, size_t *out_len, u_char *err, size_t errlen)
{
    u_char                       *out;
    cJSON                        *root, *providers, *p;
    ngx_http_llmproxy_runtime_t  *rt;

    root = cJSON_ParseWithLength((char *) blob, len);
    if (root == NULL) {
        ngx_cpystrn(err, (u_char *) "the config is not valid JSON", errlen);
        return NULL;
    }

    /*
     * llmproxyctl never reads provider keys back: a provider it sends
     * with "api_key_sha256" alone keeps the key the gateway has
     */

    if (ngx_http_llmproxy_keep_secrets(root, current, current_len, err,
                                       errlen)
        != NGX_OK)
    {
        cJSON_Delete(root);
        return NULL;
    }

    if (ngx_http_llmproxy_runtime_validate(root, err, errlen) != NGX_OK) {
        cJSON_Delete(root);
        return NULL;
    }

    /* validate everything: building a runtime does */

    rt = ngx_http_llmproxy_runtime_build(root, 0, err, errlen);
    if (rt == NULL) {
        cJSON_Delete(root);
        return NULL;
    }

    ngx_destroy_pool(rt->pool);

    providers = cJSON_GetObjectItemCaseSensitive(root, "providers");

    cJSON_ArrayForEach(p, providers) {
        if (ngx_http_llmproxy_prepare_resolve(p) != NGX_OK) {
            goto nomem;
        }
    }

    out = (u_char *) cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (out == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NULL;
    }

    *out_len = ngx_strlen(out);

    return out;

nomem:

    cJSON_Delete(root);
    ngx_cpystrn(err, (u_char *) "no memory", errlen);

    return NULL;
}


/*
 * A provider's host resolved, into its "resolved" array of addresses; a
 * host that does not resolve gets a "resolve_error" instead (the config
 * is still installed).  NGX_ERROR: no memory.
 */

static ngx_int_t
ngx_http_llmproxy_prepare_resolve(cJSON *p)
{
    int               rc;
    char              port[8], addr[NGX_SOCKADDR_STRLEN + 8];
    u_char            host[256];
    size_t            len;
    cJSON            *base, *resolved, *item;
    in_port_t         nport;
    ngx_str_t         b, h, hp, path;
    ngx_uint_t        ssl;
    struct addrinfo   hints, *res, *ai;

    base = cJSON_GetObjectItemCaseSensitive(p, "api_base");

    b.data = (u_char *) base->valuestring;
    b.len = ngx_strlen(b.data);

    if (ngx_http_llmproxy_parse_base(&b, &h, &hp, &path, &nport, &ssl)
        != NGX_OK || h.len >= sizeof(host))
    {
        return NGX_OK;   /* cannot happen: build checked it */
    }

    ngx_memcpy(host, h.data, h.len);
    host[h.len] = '\0';

    if (host[0] == '[') {
        ngx_memmove(host, host + 1, h.len - 2);
        host[h.len - 2] = '\0';
    }

    ngx_sprintf((u_char *) port, "%d%Z", (int) nport);

    ngx_memzero(&hints, sizeof(struct addrinfo));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    cJSON_DeleteItemFromObjectCaseSensitive(p, "resolved");
    cJSON_DeleteItemFromObjectCaseSensitive(p, "resolve_error");

    resolved = cJSON_AddArrayToObject(p, "resolved");
    if (resolved == NULL) {
        return NGX_ERROR;
    }

    rc = getaddrinfo((char *) host, port, &hints, &res);

    if (rc != 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "llmproxy: provider host \"%s\" not resolved: %s",
                      host, gai_strerror(rc));

        if (cJSON_AddStringToObject(p, "resolve_error", gai_strerror(rc))
            == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    for (ai = res; ai; ai = ai->ai_next) {
        len = ngx_sock_ntop(ai->ai_addr, ai->ai_addrlen, (u_char *) addr,
                            NGX_SOCKADDR_STRLEN, 1);
        addr[len] = '\0';

        item = cJSON_CreateString(addr);
        if (item == NULL || !cJSON_AddItemToArray(resolved, item)) {
            freeaddrinfo(res);
            return NGX_ERROR;
        }
    }

    freeaddrinfo(res);

    return NGX_OK;
}


/*
 * The compiler's rules (common/llmp_config.c), the ones llmproxyctl
 * checked before it sent the document, on what the gateway was sent: the
 * addresses of a previous preparation are the gateway's own
 */

static ngx_int_t
ngx_http_llmproxy_runtime_validate(cJSON *root, u_char *err, size_t errlen)
{
    u_char         *p, *last;
    cJSON          *doc, *pv;
    size_t          i;
    llmp_errors_t   errs;

    doc = cJSON_Duplicate(root, 1);
    if (doc == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(pv, cJSON_GetObjectItemCaseSensitive(doc,
                                                            "providers"))
    {
        cJSON_DeleteItemFromObjectCaseSensitive(pv, "resolved");
        cJSON_DeleteItemFromObjectCaseSensitive(pv, "resolve_error");
    }

    llmp_errors_init(&errs);

    if (llmp_compiled_validate(doc, &errs) == 0 && !errs.oom) {
        cJSON_Delete(doc);
        llmp_errors_free(&errs);
        return NGX_OK;
    }

    p = err;
    last = err + errlen - 1;

    for (i = 0; i < errs.n && p < last; i++) {
        p = ngx_slprintf(p, last, "%s%s", i ? "; " : "", errs.items[i]);
    }

    if (errs.n == 0) {
        p = ngx_slprintf(p, last, "no memory");
    }

    *p = '\0';

    cJSON_Delete(doc);
    llmp_errors_free(&errs);

    return NGX_ERROR;
}


/* for messages: the name is checked later, when the runtime is built */

static const char *
ngx_http_llmproxy_provider_name(const cJSON *p)
{
    const char  *name;

    name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));

    return name ? name : "?";
}


static ngx_int_t
ngx_http_llmproxy_keep_secrets(cJSON *root, u_char *current,
    size_t current_len, u_char *err, size_t errlen)
{
    cJSON       *cur, *p;
    const char  *what;

    cur = current ? cJSON_ParseWithLength((char *) current, current_len)
                  : NULL;

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                           "providers"))
    {
        what = NULL;

        if (ngx_http_llmproxy_keep_key(p, cur) != NGX_OK) {
            what = "api_key";

        } else if (ngx_http_llmproxy_keep_headers(p, cur) != NGX_OK) {
            what = "headers";
        }

        if (what) {
            ngx_snprintf(err, errlen, "providers.%s.%s: not sent and "
                         "not known to the gateway: sync with --force%Z",
                         ngx_http_llmproxy_provider_name(p), what);
            cJSON_Delete(cur);
            return NGX_ERROR;
        }
    }

    cJSON_Delete(cur);

    return ngx_http_llmproxy_keep_digests(root, err, errlen);
}


/*
 * A provider sent with "api_key_sha256" and no key gets the key of the
 * current config's provider with that digest; NGX_ERROR: none has it.
 */

static ngx_int_t
ngx_http_llmproxy_keep_key(cJSON *p, cJSON *cur)
{
    cJSON  *c, *sha, *csha, *ckey;

    sha = cJSON_GetObjectItemCaseSensitive(p, "api_key_sha256");

    if (!cJSON_IsString(sha)
        || cJSON_GetObjectItemCaseSensitive(p, "api_key"))
    {
        return NGX_OK;
    }

    ckey = NULL;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cur,
                                                           "providers"))
    {
        csha = cJSON_GetObjectItemCaseSensitive(c, "api_key_sha256");

        if (cJSON_IsString(csha)
            && ngx_strcmp(csha->valuestring, sha->valuestring) == 0)
        {
            ckey = cJSON_GetObjectItemCaseSensitive(c, "api_key");
            break;
        }
    }

    if (!cJSON_IsString(ckey)
        || cJSON_AddStringToObject(p, "api_key", ckey->valuestring) == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the same for headers, by the digest of the ones the gateway has */

static ngx_int_t
ngx_http_llmproxy_keep_headers(cJSON *p, cJSON *cur)
{
    int     rc;
    char    hex[65];
    cJSON  *c, *hsha, *ch;

    hsha = cJSON_GetObjectItemCaseSensitive(p, "headers_sha256");

    if (!cJSON_IsString(hsha)
        || cJSON_GetObjectItemCaseSensitive(p, "headers"))
    {
        return NGX_OK;
    }

    ch = NULL;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cur,
                                                           "providers"))
    {
        ch = cJSON_GetObjectItemCaseSensitive(c, "headers");
        rc = llmp_headers_sha256(ch, hex);

        if (rc == 1 && ngx_strcmp(hex, hsha->valuestring) == 0) {
            break;
        }

        ch = NULL;
    }

    if (ch == NULL || (ch = cJSON_Duplicate(ch, 1)) == NULL
        || !cJSON_AddItemToObject(p, "headers", ch))
    {
        cJSON_Delete(ch);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The digest the admin output and the state report is the one of the
 * headers the gateway sends, whatever a posted config claimed; the
 * encrypted forms belong to the database and the state file only.
 */

static ngx_int_t
ngx_http_llmproxy_keep_digests(cJSON *root, u_char *err, size_t errlen)
{
    int     rc;
    char    hex[65];
    cJSON  *p;

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                           "providers"))
    {
        cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key_enc");
        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers_enc");
        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers_sha256");

        rc = llmp_headers_sha256(cJSON_GetObjectItemCaseSensitive(p,
                                                                  "headers"),
                                 hex);

        if (rc < 0
            || (rc == 1
                && cJSON_AddStringToObject(p, "headers_sha256", hex) == NULL))
        {
            ngx_cpystrn(err, (u_char *) "no memory", errlen);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_llmproxy_runtime_t *
ngx_http_llmproxy_runtime_build(cJSON *root, ngx_uint_t generation,
    u_char *err, size_t errlen)
{
    ngx_pool_t                   *pool;
    ngx_http_llmproxy_build_t     b;
    ngx_http_llmproxy_runtime_t  *rt;

    pool = ngx_create_pool(16384, ngx_cycle->log);
    if (pool == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NULL;
    }

    b.pool = pool;
    b.err = err;
    b.errlen = errlen;
    b.failed = 0;

    rt = ngx_pcalloc(pool, sizeof(ngx_http_llmproxy_runtime_t));
    if (rt == NULL) {
        goto failed;
    }

    rt->pool = pool;
    rt->generation = generation;

    /* a prepared document: runtime_validate() checked it */

    if (ngx_http_llmproxy_str(&b, root, "config_sha256", &rt->config_sha256)
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_llmproxy_build_settings(&b, rt,
            cJSON_GetObjectItemCaseSensitive(root, "settings"))
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_llmproxy_build_providers(&b, rt,
            cJSON_GetObjectItemCaseSensitive(root, "providers"))
        != NGX_OK
        || ngx_http_llmproxy_build_deployments(&b, rt,
               cJSON_GetObjectItemCaseSensitive(root, "deployments"))
           != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_llmproxy_build_names(&b, rt,
            cJSON_GetObjectItemCaseSensitive(root, "aliases"),
            cJSON_GetObjectItemCaseSensitive(root, "fallbacks"))
        != NGX_OK)
    {
        goto failed;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "llmproxy: runtime %ui built: %ui providers, "
                   "%ui deployments, %ui groups", generation,
                   rt->providers.nelts, rt->deployments.nelts,
                   rt->groups.nelts);

    return rt;

failed:

    if (!b.failed) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
    }

    ngx_destroy_pool(pool);

    return NULL;
}


static ngx_int_t
ngx_http_llmproxy_build_providers(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *list)
{
    cJSON                         *item;
    ngx_uint_t                     n, i;
    ngx_http_llmproxy_provider_t  *p;

    n = cJSON_GetArraySize(list);

    if (ngx_array_init(&rt->providers, b->pool, n ? n : 1,
                       sizeof(ngx_http_llmproxy_provider_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(item, list) {
        p = ngx_array_push(&rt->providers);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_llmproxy_build_provider(b, p, item, i++) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* deployments, grouped by public model name */

static ngx_int_t
ngx_http_llmproxy_build_deployments(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *list)
{
    cJSON                           *item;
    ngx_uint_t                       n, i;
    ngx_http_llmproxy_deployment_t  *d;

    n = cJSON_GetArraySize(list);

    if (ngx_array_init(&rt->deployments, b->pool, n ? n : 1,
                       sizeof(ngx_http_llmproxy_deployment_t))
        != NGX_OK
        || ngx_array_init(&rt->groups, b->pool, n ? n : 1,
                          sizeof(ngx_http_llmproxy_group_t))
           != NGX_OK
        || ngx_array_init(&rt->targets, b->pool, 2 * n + 4,
                          sizeof(ngx_http_llmproxy_target_t *))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(item, list) {
        d = ngx_array_push(&rt->deployments);
        if (d == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_llmproxy_build_deployment(b, rt, d, item, i++)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_build_settings(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *settings)
{
    cJSON                         *v;
    ngx_http_llmproxy_settings_t  *s;

    s = &rt->settings;

    s->num_retries = 1;
    s->allowed_fails = 3;
    s->cooldown = 5000;
    s->request_timeout = 600000;
    s->first_byte_timeout = 0;
    s->stream_idle_timeout = 0;

    cJSON_ArrayForEach(v, settings) {

        if (!cJSON_IsNumber(v)) {
            continue;
        }

        if (ngx_strcmp(v->string, "num_retries") == 0) {
            s->num_retries = (ngx_uint_t) v->valuedouble;

        } else if (ngx_strcmp(v->string, "allowed_fails") == 0) {
            s->allowed_fails = (ngx_uint_t) v->valuedouble;

            if (s->allowed_fails == 0) {
                s->allowed_fails = 1;
            }

        } else if (ngx_strcmp(v->string, "cooldown_seconds") == 0) {
            s->cooldown = (ngx_msec_t) (v->valuedouble * 1000);

        } else if (ngx_strcmp(v->string, "health_check_interval_seconds")
                   == 0)
        {
            /* at least 1 s, or 0: common's validator checked it */
            s->health_interval = (ngx_msec_t) (v->valuedouble * 1000);

        } else if (ngx_strcmp(v->string, "request_timeout_seconds") == 0) {
            s->request_timeout = (ngx_msec_t) (v->valuedouble * 1000);

            if (s->request_timeout == 0) {
                s->request_timeout = 1;   /* positive, under a millisecond */
            }

        } else if (ngx_strcmp(v->string, "first_byte_timeout_seconds") == 0)
        {
            s->first_byte_timeout = (ngx_msec_t) (v->valuedouble * 1000);

        } else if (ngx_strcmp(v->string, "stream_idle_timeout_seconds") == 0)
        {
            s->stream_idle_timeout = (ngx_msec_t) (v->valuedouble * 1000);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_build_provider(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p, cJSON *obj, ngx_uint_t n)
{
    cJSON  *item, *v;

    ngx_memzero(p, sizeof(ngx_http_llmproxy_provider_t));

    if (ngx_http_llmproxy_str(b, obj, "name", &p->name) != NGX_OK
        || ngx_http_llmproxy_str(b, obj, "api_base", &p->api_base) != NGX_OK
        || ngx_http_llmproxy_str(b, obj, "api_key", &p->api_key) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_build_base(b, p) != NGX_OK) {
        return NGX_ERROR;
    }

    item = cJSON_GetObjectItemCaseSensitive(obj, "interfaces");

    cJSON_ArrayForEach(v, item) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        p->interfaces |= llmp_iface_by_name(v->valuestring,
                                            ngx_strlen(v->valuestring));
    }

    if (ngx_http_llmproxy_build_headers(b, p,
            cJSON_GetObjectItemCaseSensitive(obj, "headers"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_build_addrs(b, p,
               cJSON_GetObjectItemCaseSensitive(obj, "resolved"));
}


/* the api_base into host, port, TLS and the path before the version */

static ngx_int_t
ngx_http_llmproxy_build_base(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p)
{
    in_port_t   port;
    ngx_str_t   hostport;
    ngx_uint_t  ssl;

    if (ngx_http_llmproxy_parse_base(&p->api_base, &p->ssl_name, &hostport,
                                     &p->path, &port, &ssl)
        != NGX_OK)
    {
        ngx_http_llmproxy_build_error(b, "providers.%V.api_base: expected "
                                      "http://host[:port][/path] or https://"
                                      "...", &p->name);
        return NGX_ERROR;
    }

#if !(NGX_HTTP_SSL)
    if (ssl) {
        ngx_http_llmproxy_build_error(b, "providers.%V.api_base: https needs "
                                      "nginx built with SSL", &p->name);
        return NGX_ERROR;
    }
#endif

    p->ssl = ssl;
    p->host = hostport;

    /* the version is the interface's to add: ".../v1", ".../v1beta" */

    if (p->path.len >= 3
        && ngx_strncmp(p->path.data + p->path.len - 3, "/v1", 3) == 0)
    {
        p->path.len -= 3;
        p->has_v1 = 1;

    } else if (p->path.len >= 7
               && ngx_strncmp(p->path.data + p->path.len - 7, "/v1beta", 7)
                  == 0)
    {
        p->path.len -= 7;
        p->has_v1 = 1;
    }

    return NGX_OK;
}


/* the provider's extra headers, rendered once for every request */

static ngx_int_t
ngx_http_llmproxy_build_headers(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p, cJSON *headers)
{
    u_char  *q;
    size_t   len;
    cJSON   *v;

    len = 0;

    cJSON_ArrayForEach(v, headers) {
        if (cJSON_IsString(v)) {
            len += ngx_strlen(v->string) + ngx_strlen(v->valuestring) + 4;
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    q = ngx_pnalloc(b->pool, len);
    if (q == NULL) {
        return NGX_ERROR;
    }

    p->extra_headers.data = q;

    cJSON_ArrayForEach(v, headers) {
        if (cJSON_IsString(v)) {
            q = ngx_sprintf(q, "%s: %s\r\n", v->string, v->valuestring);
        }
    }

    p->extra_headers.len = q - p->extra_headers.data;

    return NGX_OK;
}


/* the addresses the preparation resolved, if the config was prepared */

static ngx_int_t
ngx_http_llmproxy_build_addrs(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_provider_t *p, cJSON *resolved)
{
    size_t      len;
    cJSON      *v;
    ngx_str_t   s;

    len = cJSON_GetArraySize(resolved);

    if (len == 0) {
        return NGX_OK;
    }

    p->addrs = ngx_pcalloc(b->pool, len * sizeof(ngx_addr_t));
    if (p->addrs == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(v, resolved) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        s.data = (u_char *) v->valuestring;
        s.len = ngx_strlen(s.data);

        if (ngx_parse_addr_port(b->pool, &p->addrs[p->naddrs], s.data, s.len)
            != NGX_OK)
        {
            ngx_http_llmproxy_build_error(b, "providers.%V.resolved: invalid "
                                          "address \"%V\"", &p->name, &s);
            return NGX_ERROR;
        }

        p->addrs[p->naddrs].name.data = ngx_pstrdup(b->pool, &s);
        if (p->addrs[p->naddrs].name.data == NULL) {
            return NGX_ERROR;
        }

        p->addrs[p->naddrs].name.len = s.len;
        p->naddrs++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_build_deployment(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, ngx_http_llmproxy_deployment_t *d,
    cJSON *obj, ngx_uint_t n)
{
    u_char     *q;
    ngx_str_t   provider;

    ngx_memzero(d, sizeof(ngx_http_llmproxy_deployment_t));

    if (ngx_http_llmproxy_str(b, obj, "id", &d->id) != NGX_OK
        || ngx_http_llmproxy_str(b, obj, "provider", &provider) != NGX_OK
        || ngx_http_llmproxy_str(b, obj, "model", &d->model) != NGX_OK
        || ngx_http_llmproxy_str(b, obj, "upstream_model", &d->upstream_model)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (d->upstream_model.len == 0) {
        d->upstream_model = d->model;
    }

    /* a pattern passes the requested name through (see route.c) */

    d->pattern = llmp_pattern_is((char *) d->model.data, d->model.len);

    q = ngx_pnalloc(b->pool, 6 * d->upstream_model.len + 2);
    if (q == NULL) {
        return NGX_ERROR;
    }

    d->upstream_model_json.data = q;
    d->upstream_model_json.len = llmp_json_escape(d->upstream_model.data,
                                                  d->upstream_model.len, q);

    d->provider = ngx_http_llmproxy_build_find_provider(rt, &provider);

    if (d->provider == NULL) {
        ngx_http_llmproxy_build_error(b, "deployments.%V.provider: unknown "
                                      "provider \"%V\"", &d->id, &provider);
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_build_access_groups(b, d, obj) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_llmproxy_build_numbers(d, obj);

    if (ngx_http_llmproxy_build_model_prices(b, d, obj) != NGX_OK) {
        return NGX_ERROR;
    }

    d->hash = ngx_crc32_short(d->id.data, d->id.len);

    return ngx_http_llmproxy_build_link(b, rt, d);
}


static ngx_http_llmproxy_provider_t *
ngx_http_llmproxy_build_find_provider(ngx_http_llmproxy_runtime_t *rt,
    ngx_str_t *name)
{
    ngx_uint_t                     i;
    ngx_http_llmproxy_provider_t  *p;

    p = rt->providers.elts;

    for (i = 0; i < rt->providers.nelts; i++) {
        if (p[i].name.len == name->len
            && ngx_strncmp(p[i].name.data, name->data, name->len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_llmproxy_build_access_groups(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_deployment_t *d, cJSON *obj)
{
    cJSON      *item, *v;
    ngx_str_t  *s;

    item = cJSON_GetObjectItemCaseSensitive(obj, "access_groups");

    if (ngx_array_init(&d->access_groups, b->pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(v, item) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        s = ngx_array_push(&d->access_groups);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->len = ngx_strlen(v->valuestring);
        s->data = ngx_pstrdup(b->pool, &(ngx_str_t) { s->len,
                                         (u_char *) v->valuestring });
        if (s->data == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* prices, limits, weight and timeouts: none of them can fail */

static void
ngx_http_llmproxy_build_numbers(ngx_http_llmproxy_deployment_t *d,
    cJSON *obj)
{
    cJSON  *item;

    /* numbers within the compiler's bounds (0 to 1e15, integers) */

#define ngx_http_llmproxy_num(key, field, type)                              \
    item = cJSON_GetObjectItemCaseSensitive(obj, key);                       \
    if (cJSON_IsNumber(item)) {                                              \
        d->field = (type) item->valuedouble;                                 \
    }

    /*
     * a model priced nowhere (not in config.json, not in the price list)
     * has no prices: its requests are recorded as unpriced, not as $0
     */

    d->priced = (cJSON_GetObjectItemCaseSensitive(obj,
                     "input_cost_per_million") != NULL
                 || cJSON_GetObjectItemCaseSensitive(obj,
                     "output_cost_per_million") != NULL);

    ngx_http_llmproxy_num("input_cost_per_million", input_cost, double);
    ngx_http_llmproxy_num("output_cost_per_million", output_cost, double);

    /* an older llmproxyctl's config: cached input at the input price */

    d->cache_read_cost = d->input_cost;
    d->cache_5m_cost = d->input_cost;
    d->cache_1h_cost = d->input_cost;
    ngx_http_llmproxy_num("cache_read_input_cost_per_million",
                          cache_read_cost, double);
    ngx_http_llmproxy_num("cache_creation_input_cost_per_million",
                          cache_5m_cost, double);
    ngx_http_llmproxy_num("cache_creation_1h_input_cost_per_million",
                          cache_1h_cost, double);
    ngx_http_llmproxy_num("rpm", rpm, ngx_uint_t);
    ngx_http_llmproxy_num("tpm", tpm, ngx_uint_t);

    d->weight = 1;
    ngx_http_llmproxy_num("weight", weight, ngx_int_t);

#undef ngx_http_llmproxy_num

    /* seconds (the validator's bounds); unset: the settings' value */

#define ngx_http_llmproxy_timeout(key, field)                                \
    d->field = NGX_CONF_UNSET_MSEC;                                          \
    item = cJSON_GetObjectItemCaseSensitive(obj, key);                       \
    if (cJSON_IsNumber(item)) {                                              \
        d->field = (ngx_msec_t) (item->valuedouble * 1000);                  \
    }

    ngx_http_llmproxy_timeout("first_byte_timeout_seconds",
                              first_byte_timeout);
    ngx_http_llmproxy_timeout("stream_idle_timeout_seconds",
                              stream_idle_timeout);

#undef ngx_http_llmproxy_timeout
}


/* a pattern priced by the list, model by model (see _route.c) */

static ngx_int_t
ngx_http_llmproxy_build_model_prices(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_deployment_t *d, cJSON *obj)
{
    cJSON                            *item, *v;
    ngx_http_llmproxy_model_price_t  *mp;

    item = cJSON_GetObjectItemCaseSensitive(obj, "model_prices");

    if (!d->pattern || d->priced || cJSON_GetArraySize(item) <= 0) {
        return NGX_OK;
    }

    d->model_prices = ngx_array_create(b->pool, cJSON_GetArraySize(item),
                          sizeof(ngx_http_llmproxy_model_price_t));
    if (d->model_prices == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(v, item) {
        mp = ngx_array_push(d->model_prices);
        if (mp == NULL) {
            return NGX_ERROR;
        }

        mp->name.len = ngx_strlen(v->string);
        mp->name.data = ngx_pstrdup(b->pool, &(ngx_str_t) {
                                        mp->name.len,
                                        (u_char *) v->string });
        if (mp->name.data == NULL) {
            return NGX_ERROR;
        }

#define ngx_http_llmproxy_mp(key, field, dflt)                               \
        mp->field = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, key)) \
            ? cJSON_GetObjectItemCaseSensitive(v, key)->valuedouble          \
            : (dflt)

        ngx_http_llmproxy_mp("input_cost_per_million", input, 0);
        ngx_http_llmproxy_mp("output_cost_per_million", output, 0);
        ngx_http_llmproxy_mp("cache_read_input_cost_per_million",
                             cache_read, mp->input);
        ngx_http_llmproxy_mp("cache_creation_input_cost_per_million",
                             cache_5m, mp->input);
        ngx_http_llmproxy_mp("cache_creation_1h_input_cost_per_million",
                             cache_1h, mp->input);

#undef ngx_http_llmproxy_mp
    }

    return NGX_OK;
}


/*
 * The deployment into its model group (made on its first deployment) and
 * as a target of its own: PROVIDER/MODEL addresses the deployment itself.
 */

static ngx_int_t
ngx_http_llmproxy_build_link(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, ngx_http_llmproxy_deployment_t *d)
{
    ngx_http_llmproxy_group_t        *g;
    ngx_http_llmproxy_target_t       *t, **tp;
    ngx_http_llmproxy_deployment_t  **dp;

    g = ngx_http_llmproxy_build_group(b, rt, &d->model, d->pattern);
    if (g == NULL) {
        return NGX_ERROR;
    }

    dp = ngx_array_push(&g->deployments);
    if (dp == NULL) {
        return NGX_ERROR;
    }

    *dp = d;
    d->group = g;

    t = ngx_pcalloc(b->pool, sizeof(ngx_http_llmproxy_target_t));
    tp = ngx_array_push(&rt->targets);
    if (t == NULL || tp == NULL) {
        return NGX_ERROR;
    }

    t->name = d->id;
    t->deployment = d;
    *tp = t;

    return NGX_OK;
}


/* the model group of a name, a new one (and target) for a new name */

static ngx_http_llmproxy_group_t *
ngx_http_llmproxy_build_group(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, ngx_str_t *name, ngx_uint_t pattern)
{
    ngx_uint_t                   i;
    ngx_http_llmproxy_group_t   *g, *groups;
    ngx_http_llmproxy_target_t **tp;

    groups = rt->groups.elts;

    for (i = 0; i < rt->groups.nelts; i++) {
        if (groups[i].name.len == name->len
            && ngx_strncmp(groups[i].name.data, name->data, name->len) == 0)
        {
            return &groups[i];
        }
    }

    g = ngx_array_push(&rt->groups);
    if (g == NULL) {
        return NULL;
    }

    ngx_memzero(g, sizeof(ngx_http_llmproxy_group_t));
    g->name = *name;
    g->target.name = *name;
    g->target.group = g;
    g->pattern = pattern;

    if (ngx_array_init(&g->deployments, b->pool, 2,
                       sizeof(ngx_http_llmproxy_deployment_t *))
        != NGX_OK
        || ngx_array_init(&g->fallbacks, b->pool, 1,
                          sizeof(ngx_http_llmproxy_target_t *))
           != NGX_OK)
    {
        return NULL;
    }

    tp = ngx_array_push(&rt->targets);
    if (tp == NULL) {
        return NULL;
    }

    *tp = &g->target;

    return g;
}


static ngx_int_t
ngx_http_llmproxy_build_names(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *aliases, cJSON *fallbacks)
{
    ngx_uint_t                    i, size;
    ngx_http_llmproxy_target_t  **targets;

    /*
     * The groups array must not move any more: targets point into it.
     * It was sized for one group per deployment, so it never grew.
     */

    size = 8;

    while (size < 2 * (rt->targets.nelts + cJSON_GetArraySize(aliases)
                       + cJSON_GetArraySize(fallbacks)))
    {
        size <<= 1;
    }

    rt->names = ngx_pcalloc(b->pool,
                            size * sizeof(ngx_http_llmproxy_target_t *));
    if (rt->names == NULL) {
        return NGX_ERROR;
    }

    rt->names_mask = size - 1;

    targets = rt->targets.elts;

    for (i = 0; i < rt->targets.nelts; i++) {
        if (ngx_http_llmproxy_runtime_find(rt, &targets[i]->name)) {
            ngx_http_llmproxy_build_error(b, "deployments: duplicate name "
                                          "\"%V\"", &targets[i]->name);
            return NGX_ERROR;
        }

        if (ngx_http_llmproxy_names_add(rt, targets[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llmproxy_build_patterns(b, rt, aliases, fallbacks)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_build_aliases(b, rt, aliases) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_build_fallbacks(b, rt, fallbacks);
}


/* an alias is a name of its own for a target, not a model's name */

static ngx_int_t
ngx_http_llmproxy_build_aliases(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *aliases)
{
    cJSON                       *item;
    ngx_str_t                    name;
    ngx_keyval_t                *kv;
    ngx_http_llmproxy_target_t  *t, *a;

    if (ngx_array_init(&rt->aliases, b->pool, 4, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(item, aliases) {
        if (!cJSON_IsString(item)) {
            continue;
        }

        name.data = (u_char *) item->valuestring;
        name.len = ngx_strlen(name.data);

        t = ngx_http_llmproxy_runtime_resolve(rt, b->pool, &name);
        if (t == NULL) {
            ngx_http_llmproxy_build_error(b, "aliases.%s: unknown model "
                                          "\"%V\"", item->string, &name);
            return NGX_ERROR;
        }

        a = ngx_pcalloc(b->pool, sizeof(ngx_http_llmproxy_target_t));
        kv = ngx_array_push(&rt->aliases);
        if (a == NULL || kv == NULL) {
            return NGX_ERROR;
        }

        a->name.len = ngx_strlen(item->string);
        a->name.data = ngx_pstrdup(b->pool, &(ngx_str_t) { a->name.len,
                                           (u_char *) item->string });
        kv->value.data = ngx_pstrdup(b->pool, &name);

        if (a->name.data == NULL || kv->value.data == NULL) {
            return NGX_ERROR;
        }

        kv->key = a->name;
        kv->value.len = name.len;
        a->group = t->group;
        a->deployment = t->deployment;
        a->upstream = t->upstream;

        if (ngx_http_llmproxy_runtime_find(rt, &a->name)) {
            ngx_http_llmproxy_build_error(b, "aliases.%s: the name of a "
                                          "model", item->string);
            return NGX_ERROR;
        }

        if (ngx_http_llmproxy_names_add(rt, a) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* each model's fallbacks, in order, into its group */

static ngx_int_t
ngx_http_llmproxy_build_fallbacks(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *fallbacks)
{
    cJSON                        *item, *v;
    ngx_str_t                     name;
    ngx_http_llmproxy_group_t    *g;
    ngx_http_llmproxy_target_t   *t, *a, **tp;

    cJSON_ArrayForEach(item, fallbacks) {
        name.data = (u_char *) item->string;
        name.len = ngx_strlen(name.data);

        t = ngx_http_llmproxy_runtime_find(rt, &name);

        if (t == NULL) {
            ngx_http_llmproxy_build_error(b, "fallbacks.%s: unknown model",
                                          item->string);
            return NGX_ERROR;
        }

        g = t->group ? t->group : t->deployment->group;

        cJSON_ArrayForEach(v, item) {
            if (!cJSON_IsString(v)) {
                continue;
            }

            name.data = (u_char *) v->valuestring;
            name.len = ngx_strlen(name.data);

            a = ngx_http_llmproxy_runtime_resolve(rt, b->pool, &name);
            if (a == NULL) {
                ngx_http_llmproxy_build_error(b, "fallbacks.%s: unknown "
                                              "model \"%V\"", item->string,
                                              &name);
                return NGX_ERROR;
            }

            tp = ngx_array_push(&g->fallbacks);
            if (tp == NULL) {
                return NGX_ERROR;
            }

            *tp = a;
        }
    }

    return NGX_OK;
}


/*
 * Model patterns.  A pattern deployment ("cliproxy/claude-*") belongs to
 * the group of its pattern ("claude-*"); both are targets whose names
 * have a "*".  A requested name that is no exact name (model, alias or
 * PROVIDER/MODEL) is matched against them, the most specific first
 * (most literal characters; on a tie the first by deployment id), and
 * becomes a target of its own that routes to the pattern's deployments
 * with their access groups and prices, the name passed through as the
 * upstream model.  A fallback key that only a pattern matches gets a
 * group of its own here, to hold its fallbacks.
 */

static ngx_int_t
ngx_http_llmproxy_build_patterns(ngx_http_llmproxy_build_t *b,
    ngx_http_llmproxy_runtime_t *rt, cJSON *aliases, cJSON *fallbacks)
{
    cJSON                        *item;
    ngx_str_t                     name;
    ngx_uint_t                    i;
    ngx_http_llmproxy_group_t    *g;
    ngx_http_llmproxy_target_t   *t, **tp, **targets;

    if (ngx_array_init(&rt->patterns, b->pool, 4,
                       sizeof(ngx_http_llmproxy_target_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    targets = rt->targets.elts;

    for (i = 0; i < rt->targets.nelts; i++) {
        if (!llmp_pattern_is((char *) targets[i]->name.data,
                             targets[i]->name.len))
        {
            continue;
        }

        tp = ngx_array_push(&rt->patterns);
        if (tp == NULL) {
            return NGX_ERROR;
        }

        *tp = targets[i];
    }

    /* insertion sort: stable, so ties keep the compiled order */

    ngx_sort(rt->patterns.elts, rt->patterns.nelts,
             sizeof(ngx_http_llmproxy_target_t *),
             ngx_http_llmproxy_pattern_cmp);

    if (!cJSON_IsObject(fallbacks)) {
        return NGX_OK;
    }

    cJSON_ArrayForEach(item, fallbacks) {
        name.data = (u_char *) item->string;
        name.len = ngx_strlen(name.data);

        /*
         * an alias is added after this and falls back as its target
         * does; a group of the pattern's here would take its name first
         */

        if (ngx_http_llmproxy_runtime_find(rt, &name)
            || cJSON_GetObjectItemCaseSensitive(aliases, item->string))
        {
            continue;
        }

        t = ngx_http_llmproxy_runtime_match(rt, b->pool, &name);
        if (t == NULL) {
            continue;           /* reported as unknown by the caller */
        }

        g = ngx_palloc(b->pool, sizeof(ngx_http_llmproxy_group_t));
        if (g == NULL) {
            return NGX_ERROR;
        }

        *g = t->group ? *t->group : *t->deployment->group;
        g->name = t->name;
        g->target = *t;
        g->target.group = g;

        if (ngx_array_init(&g->fallbacks, b->pool, 1,
                           sizeof(ngx_http_llmproxy_target_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_llmproxy_names_add(rt, &g->target) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_pattern_cmp(const void *one, const void *two)
{
    size_t                       a, b;
    ngx_http_llmproxy_target_t  *t1, *t2;

    t1 = *(ngx_http_llmproxy_target_t **) one;
    t2 = *(ngx_http_llmproxy_target_t **) two;

    a = llmp_pattern_specificity((char *) t1->name.data, t1->name.len);
    b = llmp_pattern_specificity((char *) t2->name.data, t2->name.len);

    return (a < b) ? 1 : (a > b) ? -1 : 0;
}


/* an exact name or a pattern-passed one */

ngx_http_llmproxy_target_t *
ngx_http_llmproxy_runtime_resolve(ngx_http_llmproxy_runtime_t *rt,
    ngx_pool_t *pool, ngx_str_t *name)
{
    ngx_http_llmproxy_target_t  *t;

    t = ngx_http_llmproxy_runtime_find(rt, name);

    /* a pattern itself is no model: "claude-*" is not sent upstream */

    if (t && t->upstream.len == 0
        && (t->deployment ? t->deployment->pattern : t->group->pattern))
    {
        return NULL;
    }

    if (t) {
        return t;
    }

    return ngx_http_llmproxy_runtime_match(rt, pool, name);
}


ngx_http_llmproxy_target_t *
ngx_http_llmproxy_runtime_match(ngx_http_llmproxy_runtime_t *rt,
    ngx_pool_t *pool, ngx_str_t *name)
{
    size_t                        skip;
    ngx_uint_t                    i;
    ngx_http_llmproxy_target_t   *t, *p, **pt;

    if (rt->patterns.nelts == 0
        || !llmp_pattern_name_ok((char *) name->data, name->len)
        || ngx_http_llmproxy_shadows(rt, name))
    {
        return NULL;
    }

    pt = rt->patterns.elts;

    for (i = 0; i < rt->patterns.nelts; i++) {
        p = pt[i];

        if (!llmp_pattern_match((char *) p->name.data, p->name.len,
                                (char *) name->data, name->len))
        {
            continue;
        }

        t = ngx_pcalloc(pool, sizeof(ngx_http_llmproxy_target_t));
        if (t == NULL) {
            return NULL;
        }

        t->name.data = ngx_pstrdup(pool, name);
        if (t->name.data == NULL) {
            return NULL;
        }

        t->name.len = name->len;
        t->group = p->group;
        t->deployment = p->deployment;
        t->upstream = t->name;

        /* "cliproxy/claude-x" by "cliproxy/claude-*": "claude-x" upstream */

        if (p->deployment) {
            skip = p->deployment->provider->name.len + 1;

            if (skip >= t->name.len) {
                return NULL;
            }

            t->upstream.data += skip;
            t->upstream.len -= skip;
        }

        return t;
    }

    return NULL;
}


/*
 * A name passed through could reach, at a provider that reads names
 * loosely, a model the config names exactly, with other access groups:
 * "GPT-5", "models/gemini-2.5-pro", "CLIPROXY/gpt-5".  Such a name is not
 * passed through; clients use the exact one.
 */

static ngx_uint_t
ngx_http_llmproxy_shadows(ngx_http_llmproxy_runtime_t *rt, ngx_str_t *name)
{
    ngx_str_t                        n, *s;
    ngx_uint_t                       i, j;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_target_t     **t;
    ngx_http_llmproxy_deployment_t  *d;

    n = *name;

    if (n.len > 7 && ngx_strncasecmp(n.data, (u_char *) "models/", 7) == 0)
    {
        n.data += 7;
        n.len -= 7;
    }

    t = rt->targets.elts;
    d = rt->deployments.elts;
    kv = rt->aliases.elts;

    for (i = 0; i < rt->targets.nelts + rt->deployments.nelts
                    + rt->aliases.nelts; i++)
    {
        if (i < rt->targets.nelts) {
            s = &t[i]->name;

        } else if ((j = i - rt->targets.nelts) < rt->deployments.nelts) {
            s = &d[j].upstream_model;

        } else {
            s = &kv[j - rt->deployments.nelts].key;
        }

        if (s->len == n.len && ngx_strncasecmp(s->data, n.data, n.len) == 0
            && !llmp_pattern_is((char *) s->data, s->len))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_llmproxy_names_add(ngx_http_llmproxy_runtime_t *rt,
    ngx_http_llmproxy_target_t *t)
{
    ngx_uint_t  i;

    i = ngx_hash_key(t->name.data, t->name.len) & rt->names_mask;

    while (rt->names[i]) {
        i = (i + 1) & rt->names_mask;
    }

    rt->names[i] = t;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_parse_base(ngx_str_t *base, ngx_str_t *host,
    ngx_str_t *hostport, ngx_str_t *path, in_port_t *port, ngx_uint_t *ssl)
{
    u_char  *p, *last, *h;

    p = base->data;
    last = base->data + base->len;

    if (base->len > 7 && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0) {
        p += 7;
        *ssl = 0;
        *port = 80;

    } else if (base->len > 8
               && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        p += 8;
        *ssl = 1;
        *port = 443;

    } else {
        return NGX_ERROR;
    }

    h = p;

    if (ngx_http_llmproxy_parse_host(&p, last, host, port) != NGX_OK) {
        return NGX_ERROR;
    }

    hostport->data = h;
    hostport->len = p - h;

    path->data = p;
    path->len = last - p;

    while (path->len && path->data[path->len - 1] == '/') {
        path->len--;
    }

    for (p = base->data; p < last; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The host, a name or an [IPv6] address, and an optional port, from *pp
 * to the path; *pp is left at the path.
 */

static ngx_int_t
ngx_http_llmproxy_parse_host(u_char **pp, u_char *last, ngx_str_t *host,
    in_port_t *port)
{
    u_char     *p, *h, *colon;
    ngx_int_t   n;

    p = *pp;
    h = p;

    if (*p == '[') {
        p = ngx_strlchr(p, last, ']');
        if (p == NULL) {
            return NGX_ERROR;
        }

        p++;
        colon = (p < last && *p == ':') ? p : NULL;

    } else {
        while (p < last && *p != ':' && *p != '/') {
            p++;
        }

        colon = (p < last && *p == ':') ? p : NULL;
    }

    host->data = h;
    host->len = (colon ? colon : p) - h;

    if (host->len == 0) {
        return NGX_ERROR;
    }

    if (colon) {
        p = colon + 1;

        while (p < last && *p != '/') {
            p++;
        }

        n = ngx_atoi(colon + 1, p - colon - 1);
        if (n < 1 || n > 65535) {
            return NGX_ERROR;
        }

        *port = (in_port_t) n;
    }

    *pp = p;

    return NGX_OK;
}


/* a string member copied into the runtime's pool; absent: empty */

static ngx_int_t
ngx_http_llmproxy_str(ngx_http_llmproxy_build_t *b, cJSON *obj,
    const char *key, ngx_str_t *out)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsString(v)) {
        ngx_str_null(out);
        return NGX_OK;
    }

    out->len = ngx_strlen(v->valuestring);
    out->data = ngx_pnalloc(b->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, v->valuestring, out->len);

    return NGX_OK;
}


u_char *
ngx_http_llmproxy_read_file(ngx_str_t *path, size_t *len, ngx_log_t *log)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", path);
        return NULL;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_fd_info_n " \"%V\" failed", path);
        ngx_close_file(fd);
        return NULL;
    }

    *len = (size_t) ngx_file_size(&fi);

    buf = ngx_alloc(*len + 1, log);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NULL;
    }

    n = ngx_read_fd(fd, buf, *len);

    if (n != (ssize_t) *len) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_read_fd_n " \"%V\" failed", path);
        ngx_free(buf);
        ngx_close_file(fd);
        return NULL;
    }

    buf[*len] = '\0';

    ngx_close_file(fd);

    return buf;
}


ngx_int_t
ngx_http_llmproxy_write_file(ngx_str_t *path, u_char *data, size_t len,
    ngx_log_t *log)
{
    u_char    tmp[NGX_MAX_PATH];
    ssize_t   n;
    ngx_fd_t  fd;

    if (path->len + sizeof(".tmp") > NGX_MAX_PATH) {
        return NGX_ERROR;
    }

    ngx_sprintf(tmp, "%V.tmp%Z", path);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", tmp);
        return NGX_ERROR;
    }

    n = ngx_write_fd(fd, data, len);

    if (n != (ssize_t) len || fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_write_fd_n " \"%s\" failed", tmp);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    ngx_close_file(fd);

    if (ngx_rename_file(tmp, path->data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" to \"%V\" failed", tmp,
                      path);
        return NGX_ERROR;
    }

    return NGX_OK;
}

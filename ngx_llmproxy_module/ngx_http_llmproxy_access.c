/*
 * Who is asking: the key a request carries (Authorization: Bearer,
 * x-api-key, x-goog-api-key, api-key, x-litellm-api-key or ?key=) is the
 * master key or a virtual key of the zone (_keys.c).
 *
 * It is checked at the access phase, as nginx's own auth modules do, and
 * last in that phase, so that "allow"/"deny", auth_basic and auth_request
 * compose with it: with "satisfy all" each must pass, a denied address
 * refused before its key is looked at.  With "satisfy any" the key is no
 * alternative to the others: it is needed in any case, as every record,
 * budget and limit is a key's, and a key must not open a fence (an
 * address range, a password) to whoever holds it.  The others decide
 * among themselves at the access phase, and the content handler checks
 * the key of what they let through (check_key(), check_master_key()).
 *
 * What needs the request's endpoint or body (the key's budget and
 * per-minute limits, its models) is decided by the content handler.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"


typedef enum {
    NGX_HTTP_LLMPROXY_KEY_NONE = 0,       /* no endpoint: not looked at */
    NGX_HTTP_LLMPROXY_KEY_ANY,            /* a virtual or the master key */
    NGX_HTTP_LLMPROXY_KEY_MASTER
} ngx_http_llmproxy_key_need_e;


static ngx_uint_t ngx_http_llmproxy_access_need(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_loc_conf_t *llcf);
static ngx_int_t ngx_http_llmproxy_authenticate(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t master_only);
static ngx_uint_t ngx_http_llmproxy_is_master_key(
    ngx_http_llmproxy_main_conf_t *lmcf, ngx_str_t *key);
static ngx_int_t ngx_http_llmproxy_find_key(ngx_http_request_t *r,
    ngx_str_t *key);


/*
 * Whether an admin URL is one a virtual key may call (LiteLLM's /key/info,
 * for itself): the admin floor's routes, registered by _module.c so that
 * this floor names nothing above it
 */
static ngx_http_llmproxy_access_self_pt  ngx_http_llmproxy_access_self;


void
ngx_http_llmproxy_access_register_self(ngx_http_llmproxy_access_self_pt self)
{
    ngx_http_llmproxy_access_self = self;
}


ngx_int_t
ngx_http_llmproxy_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_uint_t                     need;
    ngx_http_llmproxy_ctx_t       *ctx;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (llcf->role == NGX_HTTP_LLMPROXY_OFF) {
        return NGX_DECLINED;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy access: satisfy any, the key is checked "
                       "after");
        return NGX_DECLINED;
    }

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    need = ngx_http_llmproxy_access_need(r, ctx, llcf);

    if (need == NGX_HTTP_LLMPROXY_KEY_NONE) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy access: no key needed for \"%V\"",
                       &r->uri);
        return NGX_DECLINED;
    }

    rc = ngx_http_llmproxy_authenticate(r, ctx,
                                        need == NGX_HTTP_LLMPROXY_KEY_MASTER);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy access: %i", rc);

    return rc;
}


/*
 * Which key a URL needs, as the content handlers route it; none for
 * what is no endpoint, so that an unknown URL is a 404 before a 401, and
 * for the dashboard's data asked for with another method than GET, a 405
 * first
 */

static ngx_uint_t
ngx_http_llmproxy_access_need(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_loc_conf_t *llcf)
{
    if (llcf->role == NGX_HTTP_LLMPROXY_ADMIN) {

        /* LiteLLM's /key/... API: a virtual key may read its own info */

        return (ngx_http_llmproxy_access_self
                && ngx_http_llmproxy_access_self(r))
               ? NGX_HTTP_LLMPROXY_KEY_ANY : NGX_HTTP_LLMPROXY_KEY_MASTER;
    }

    if (r->uri.len > 17
        && ngx_strncmp(r->uri.data, "/llmproxy/ui/api/", 17) == 0)
    {
        return (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
               ? NGX_HTTP_LLMPROXY_KEY_ANY : NGX_HTTP_LLMPROXY_KEY_NONE;
    }

    if (ctx->req.url.endpoint == NGX_HTTP_LLMPROXY_EP_NONE
        && !ctx->req.url.list)
    {
        return NGX_HTTP_LLMPROXY_KEY_NONE;     /* /metrics, /health/... */
    }

    /* a model call: a 401 is one in the records and metrics */

    ngx_http_llmproxy_iface_take(ctx);

    return NGX_HTTP_LLMPROXY_KEY_ANY;
}


/* the content phase: the master key, authenticated if it was not yet */

ngx_int_t
ngx_http_llmproxy_check_master_key(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->key.checked && ctx->key.master) {
        return NGX_OK;
    }

    return ngx_http_llmproxy_authenticate(r, ctx, 1);
}


/*
 * The content phase: any key, authenticated if it was not yet; then a
 * virtual key's budget and, for a model call (ctx->req.endpoint), its
 * per-minute limits
 */

ngx_int_t
ngx_http_llmproxy_check_key(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (!ctx->key.checked) {
        rc = ngx_http_llmproxy_authenticate(r, ctx, 0);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->key.master) {
        return NGX_OK;
    }

    rc = ngx_http_llmproxy_keys_limit(r, ctx);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: limits of \"%V\": %i", &ctx->key.alias, rc);

    return rc;
}


/* the master key, or (unless master_only) a virtual key from the zone */

static ngx_int_t
ngx_http_llmproxy_authenticate(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t master_only)
{
    ngx_int_t                       rc;
    ngx_str_t                       key;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (ngx_http_llmproxy_find_key(r, &key) != NGX_OK) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_UNAUTHORIZED,
                   "authentication_error", "missing_api_key",
                   "no API key: pass it as \"Authorization: Bearer KEY\"");
    }

    if (ngx_http_llmproxy_is_master_key(lmcf, &key)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy: the master key");

        ctx->key.master = 1;
        ctx->key.all_models = 1;
        ctx->key.checked = 1;
        ngx_str_set(&ctx->key.alias, "master");
        return NGX_OK;
    }

    if (master_only || lmcf->database.len == 0) {
        ngx_log_error(lmcf->log_level, r->connection->log, 0,
                      "llmproxy: invalid %s key \"%*s...\"",
                      master_only ? "master" : "API",
                      ngx_min(key.len, 7), key.data);

        return ngx_http_llmproxy_fail(r, NGX_HTTP_UNAUTHORIZED,
                                      "authentication_error",
                                      "invalid_api_key", "invalid API key");
    }

    rc = ngx_http_llmproxy_keys_check(r, ctx, &key);

    if (rc == NGX_OK) {
        ctx->key.checked = 1;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: virtual key \"%V\": %i", &ctx->key.alias, rc);

    return rc;
}


static ngx_uint_t
ngx_http_llmproxy_is_master_key(ngx_http_llmproxy_main_conf_t *lmcf,
    ngx_str_t *key)
{
    u_char  diff;
    size_t  i;

    if (lmcf->master_key.len == 0 || key->len != lmcf->master_key.len) {
        return 0;
    }

    /* constant time */

    diff = 0;

    for (i = 0; i < key->len; i++) {
        diff |= key->data[i] ^ lmcf->master_key.data[i];
    }

    return diff == 0;
}


static ngx_int_t
ngx_http_llmproxy_find_key(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char           *name;
    ngx_str_t         v;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

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

        v = h[i].value;
        name = h[i].lowcase_key;        /* lowercased by nginx's parser */

        if (h[i].key.len == 13
            && ngx_memcmp(name, "authorization", 13) == 0)
        {
            if (v.len > 7 && ngx_strncasecmp(v.data, (u_char *) "Bearer ", 7)
                             == 0)
            {
                v.data += 7;
                v.len -= 7;

            } else if (v.len > 6
                       && ngx_strncasecmp(v.data, (u_char *) "Basic ", 6)
                          == 0)
            {
                continue;       /* auth_basic's, in front of the gateway */
            }

        } else if (!((h[i].key.len == 9
                      && ngx_memcmp(name, "x-api-key", 9) == 0)
                     || (h[i].key.len == 14
                         && ngx_memcmp(name, "x-goog-api-key", 14) == 0)
                     || (h[i].key.len == 7
                         && ngx_memcmp(name, "api-key", 7) == 0)
                     || (h[i].key.len == 17
                         && ngx_memcmp(name, "x-litellm-api-key", 17) == 0)))
        {
            continue;
        }

        while (v.len && v.data[0] == ' ') {
            v.data++;
            v.len--;
        }

        if (v.len) {
            *key = v;
            return NGX_OK;
        }
    }

    if (ngx_http_arg(r, (u_char *) "key", 3, &v) == NGX_OK && v.len) {
        *key = v;
        ngx_http_llmproxy_strip_key_arg(r);
        return NGX_OK;
    }

    return NGX_DECLINED;
}

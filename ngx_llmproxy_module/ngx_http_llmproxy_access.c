/*
 * Who is asking: the key a request carries (Authorization: Bearer,
 * x-api-key, x-goog-api-key, api-key, x-litellm-api-key or ?key=) is the
 * master key or a virtual key of the zone (_keys.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_response.h"


static ngx_int_t ngx_http_llmproxy_authorize(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t master_only);
static ngx_uint_t ngx_http_llmproxy_is_master_key(
    ngx_http_llmproxy_main_conf_t *lmcf, ngx_str_t *key);
static ngx_int_t ngx_http_llmproxy_find_key(ngx_http_request_t *r,
    ngx_str_t *key);


ngx_int_t
ngx_http_llmproxy_check_master_key(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llmproxy_authorize(r, ctx, 1);
}


ngx_int_t
ngx_http_llmproxy_check_key(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    return ngx_http_llmproxy_authorize(r, ctx, 0);
}


/* the master key, or (unless master_only) a virtual key from the zone */

static ngx_int_t
ngx_http_llmproxy_authorize(ngx_http_request_t *r,
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

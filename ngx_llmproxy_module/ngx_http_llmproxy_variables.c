/*
 * $llmproxy_* variables: what the gateway knows of a request, for
 * log_format (an access log in JSON, for example).  Most are known only
 * when the request ends, so none is cached.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_usage.h"

#include <llmp_iface.h>


enum {
    NGX_HTTP_LLMPROXY_VAR_REQUEST_ID = 0,
    NGX_HTTP_LLMPROXY_VAR_KEY_ALIAS,
    NGX_HTTP_LLMPROXY_VAR_KEY_HASH,
    NGX_HTTP_LLMPROXY_VAR_MODEL,
    NGX_HTTP_LLMPROXY_VAR_DEPLOYMENT,
    NGX_HTTP_LLMPROXY_VAR_INTERFACE,
    NGX_HTTP_LLMPROXY_VAR_STREAM,
    NGX_HTTP_LLMPROXY_VAR_PROMPT_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_COMPLETION_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_TOTAL_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_COST,
    NGX_HTTP_LLMPROXY_VAR_ATTEMPTS,
    NGX_HTTP_LLMPROXY_VAR_RETRIES,
    NGX_HTTP_LLMPROXY_VAR_FALLBACKS,
    NGX_HTTP_LLMPROXY_VAR_ERROR,
    NGX_HTTP_LLMPROXY_VAR_CACHE_READ_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_CACHE_CREATION_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_REASONING_TOKENS,
    NGX_HTTP_LLMPROXY_VAR_UNPRICED
};


static ngx_int_t ngx_http_llmproxy_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static int64_t ngx_http_llmproxy_variable_num(ngx_http_llmproxy_ctx_t *ctx,
    uintptr_t data);
static ngx_int_t ngx_http_llmproxy_variable_str(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, uintptr_t data, ngx_str_t *s);
static ngx_int_t ngx_http_llmproxy_variable_key_hash(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *s);
static ngx_int_t ngx_http_llmproxy_variable_cost(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *s);


static ngx_http_variable_t  ngx_http_llmproxy_vars[] = {

    { ngx_string("llmproxy_request_id"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_REQUEST_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_key_alias"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_KEY_ALIAS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_key_hash"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_KEY_HASH, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_model"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_deployment"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_DEPLOYMENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_interface"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_INTERFACE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_stream"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_STREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_prompt_tokens"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_completion_tokens"), NULL,
      ngx_http_llmproxy_variable, NGX_HTTP_LLMPROXY_VAR_COMPLETION_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_total_tokens"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_TOTAL_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_cost"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_COST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_attempts"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_ATTEMPTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_retries"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_RETRIES, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_fallbacks"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_FALLBACKS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_error"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_ERROR, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_cache_read_tokens"), NULL,
      ngx_http_llmproxy_variable, NGX_HTTP_LLMPROXY_VAR_CACHE_READ_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_cache_creation_tokens"), NULL,
      ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_CACHE_CREATION_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_reasoning_tokens"), NULL,
      ngx_http_llmproxy_variable, NGX_HTTP_LLMPROXY_VAR_REASONING_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llmproxy_unpriced"), NULL, ngx_http_llmproxy_variable,
      NGX_HTTP_LLMPROXY_VAR_UNPRICED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_llmproxy_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    int64_t                   n;
    ngx_str_t                 s;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_llmproxy_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&s);

    n = ngx_http_llmproxy_variable_num(ctx, data);

    if (n >= 0) {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s.data = p;
        s.len = ngx_sprintf(p, "%L", n) - p;

    } else if (ngx_http_llmproxy_variable_str(r, ctx, data, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s.len;
    v->data = s.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the counts, once the request went upstream; -1: none, or not a count */

static int64_t
ngx_http_llmproxy_variable_num(ngx_http_llmproxy_ctx_t *ctx, uintptr_t data)
{
    if (!ctx->up.started) {
        return -1;
    }

    switch (data) {

    case NGX_HTTP_LLMPROXY_VAR_PROMPT_TOKENS:
        return ngx_max(ctx->usage.prompt_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_COMPLETION_TOKENS:
        return ngx_max(ctx->usage.completion_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_TOTAL_TOKENS:
        return ctx->usage.total_tokens >= 0
               ? ctx->usage.total_tokens
               : ngx_max(ctx->usage.prompt_tokens, 0)
                 + ngx_max(ctx->usage.completion_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_CACHE_READ_TOKENS:
        return ngx_max(ctx->usage.cache_read_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_CACHE_CREATION_TOKENS:
        return ctx->usage.cache_in_prompt
               ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_REASONING_TOKENS:
        return ngx_max(ctx->usage.reasoning_tokens, 0);

    case NGX_HTTP_LLMPROXY_VAR_ATTEMPTS:
        return (int64_t) ctx->route.attempts;

    case NGX_HTTP_LLMPROXY_VAR_RETRIES:
        return (int64_t) ctx->route.retries;

    case NGX_HTTP_LLMPROXY_VAR_FALLBACKS:
        return (int64_t) ctx->route.fallbacks;
    }

    return -1;
}


/* the other variables, as strings; empty: not found */

static ngx_int_t
ngx_http_llmproxy_variable_str(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, uintptr_t data, ngx_str_t *s)
{
    switch (data) {

    case NGX_HTTP_LLMPROXY_VAR_REQUEST_ID:
        *s = ctx->request_id;
        break;

    case NGX_HTTP_LLMPROXY_VAR_KEY_ALIAS:
        *s = ctx->key.alias;
        break;

    case NGX_HTTP_LLMPROXY_VAR_KEY_HASH:
        return ngx_http_llmproxy_variable_key_hash(r, ctx, s);

    case NGX_HTTP_LLMPROXY_VAR_MODEL:
        *s = ctx->req.model;
        break;

    case NGX_HTTP_LLMPROXY_VAR_DEPLOYMENT:
        if (ctx->route.current) {
            *s = ctx->route.current->id;
        }

        break;

    case NGX_HTTP_LLMPROXY_VAR_INTERFACE:
        if (ctx->req.endpoint) {
            s->data = (u_char *) llmp_iface_name(ctx->req.iface);
            s->len = ngx_strlen(s->data);
        }

        break;

    case NGX_HTTP_LLMPROXY_VAR_STREAM:
        if (ctx->req.endpoint) {
            ngx_str_set(s, "false");

            if (ctx->req.stream) {
                ngx_str_set(s, "true");
            }
        }

        break;

    case NGX_HTTP_LLMPROXY_VAR_COST:
        return ngx_http_llmproxy_variable_cost(r, ctx, s);

    case NGX_HTTP_LLMPROXY_VAR_UNPRICED:
        if (ctx->up.started) {
            ngx_str_set(s, "false");

            if (ctx->usage.unpriced) {
                ngx_str_set(s, "true");
            }
        }

        break;

    case NGX_HTTP_LLMPROXY_VAR_ERROR:
        if (ctx->err.status && ctx->err.code) {
            s->data = (u_char *) ctx->err.code;
            s->len = ngx_strlen(ctx->err.code);
        }

        break;
    }

    return NGX_OK;
}


/* the first 16 hex digits of the key's SHA-256: never the key */

static ngx_int_t
ngx_http_llmproxy_variable_key_hash(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *s)
{
    u_char  *p;

    if (ctx->key.master || ctx->key.alias.len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 16);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s->data = p;
    s->len = ngx_hex_dump(p, ctx->key.digest, 8) - p;

    return NGX_OK;
}


/* a model priced nowhere has no cost, rather than $0 */

static ngx_int_t
ngx_http_llmproxy_variable_cost(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *s)
{
    u_char  *p;

    if (!ctx->up.started || ctx->usage.unpriced) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 32);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s->data = p;
    s->len = ngx_sprintf(p, "%.8f", ctx->usage.cost) - p;

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_llmproxy_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}

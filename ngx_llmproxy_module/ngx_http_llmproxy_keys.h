/*
 * Virtual keys in the zone (_keys.c) and the key a request
 * carries (_access.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_KEYS_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_KEYS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"


/* _access.c: the master key or a virtual key */
typedef ngx_uint_t (*ngx_http_llmproxy_access_self_pt)(
    ngx_http_request_t *r);

ngx_int_t ngx_http_llmproxy_access_handler(ngx_http_request_t *r);
void ngx_http_llmproxy_access_register_self(
    ngx_http_llmproxy_access_self_pt self);
ngx_int_t ngx_http_llmproxy_check_master_key(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_check_key(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* a key as the database holds it, for the zone */

typedef struct {
    u_char                        digest[32];
    ngx_str_t                     alias;
    ngx_array_t                  *models;         /* of ngx_str_t */
    ngx_array_t                  *groups;         /* of ngx_str_t */
    double                        max_budget;     /* < 0: none */
    double                        spend;
    time_t                        budget_reset_at;
    time_t                        expires_at;
    ngx_uint_t                    rpm;
    ngx_uint_t                    tpm;
    unsigned                      blocked:1;
    unsigned                      revoked:1;
} ngx_http_llmproxy_key_row_t;

/* _keys.c */
ngx_int_t ngx_http_llmproxy_keys_upsert(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_key_row_t *row);
ngx_int_t ngx_http_llmproxy_keys_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx);
ngx_int_t ngx_http_llmproxy_keys_limit(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_keys_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *key);
ngx_uint_t ngx_http_llmproxy_keys_allow(ngx_http_llmproxy_key_t *key,
    ngx_str_t *name, ngx_http_llmproxy_deployment_t *d);
ngx_int_t ngx_http_llmproxy_keys_allow_target(ngx_http_llmproxy_key_t *key,
    ngx_http_llmproxy_target_t *t);

ngx_int_t ngx_http_llmproxy_keys_account(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, ngx_uint_t tokens, double cost, double *spend);
void ngx_http_llmproxy_keys_settle(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, double cost, double spend);
ngx_int_t ngx_http_llmproxy_keys_headers(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_uint_t ngx_http_llmproxy_keys_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, ngx_uint_t from, u_char *digests, uint32_t *counts,
    ngx_uint_t max, ngx_uint_t *next);
void ngx_http_llmproxy_keys_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, uint32_t minute, uint32_t requests, uint32_t tokens);


#endif /* _NGX_HTTP_LLMPROXY_KEYS_H_INCLUDED_ */

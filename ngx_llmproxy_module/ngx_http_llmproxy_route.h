/*
 * A model to a plan of targets, each attempt's deployment
 * (_route.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_ROUTE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_ROUTE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"


/* _route.c */
ngx_int_t ngx_http_llmproxy_route_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_route_next(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx);
void ngx_http_llmproxy_route_failed(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_route_init_zone(
    ngx_http_llmproxy_zone_ctx_t *zctx);
void ngx_http_llmproxy_route_account(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t tokens);
ngx_uint_t ngx_http_llmproxy_route_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, uint64_t *hashes, uint32_t *counts, ngx_uint_t max);
void ngx_http_llmproxy_route_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint64_t hash, uint32_t minute, uint32_t requests, uint32_t tokens);


#endif /* _NGX_HTTP_LLMPROXY_ROUTE_H_INCLUDED_ */

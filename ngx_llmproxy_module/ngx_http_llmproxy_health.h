/*
 * Health checks of deployments, providers' model lists
 * (_health.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_HEALTH_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_HEALTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_zone.h"


/* _health.c: background health checks, providers' model lists */
ngx_int_t ngx_http_llmproxy_health_init_process(ngx_cycle_t *cycle);
struct cJSON *ngx_http_llmproxy_health_get(
    ngx_http_llmproxy_zone_ctx_t *zctx);
const char *ngx_http_llmproxy_health_of(struct cJSON *doc, ngx_str_t *id);
ngx_int_t ngx_http_llmproxy_health_metrics(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *out);
ngx_int_t ngx_http_llmproxy_health_admin(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LLMPROXY_HEALTH_H_INCLUDED_ */

/*
 * What a request used: tokens and cost (_usage.c), usage records
 * (_usage_records*.c, _usage_retention.c), metrics (_metrics.c),
 * log variables (_variables.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_USAGE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_USAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_zone.h"


/* _usage_records.c: usage records to PostgreSQL */
ngx_int_t ngx_http_llmproxy_records_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llmproxy_records_init_process(ngx_cycle_t *cycle);
void ngx_http_llmproxy_records_exit_process(ngx_cycle_t *cycle);

/* _usage.c */
void ngx_http_llmproxy_usage_reset(ngx_http_llmproxy_ctx_t *ctx);
void ngx_http_llmproxy_usage_scan(ngx_http_llmproxy_ctx_t *ctx, u_char *pos,
    u_char *last);
void ngx_http_llmproxy_usage_account(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _usage_retention.c: old usage records deleted */
char *ngx_http_llmproxy_usage_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_llmproxy_retention_init_process(ngx_cycle_t *cycle);

/* _metrics.c */
ngx_int_t ngx_http_llmproxy_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llmproxy_metrics_init_zone(
    ngx_http_llmproxy_zone_ctx_t *zctx, size_t size);
ngx_int_t ngx_http_llmproxy_metrics_handler(ngx_http_request_t *r);

/* _variables.c */
ngx_int_t ngx_http_llmproxy_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_LLMPROXY_USAGE_H_INCLUDED_ */

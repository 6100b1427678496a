/*
 * The admin API (_admin.c), LiteLLM's /key/ API
 * (_admin_keys.c), the dashboard's data (_ui_api.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_ADMIN_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_ADMIN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"


/* _ui_api.c: the dashboard's data */
ngx_int_t ngx_http_llmproxy_ui_api_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _admin.c */
ngx_int_t ngx_http_llmproxy_admin_handler(ngx_http_request_t *r);

/* _admin_keys.c: LiteLLM's /key/... API */
ngx_int_t ngx_http_llmproxy_admin_keys_match(ngx_http_request_t *r);
ngx_uint_t ngx_http_llmproxy_admin_keys_self(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_admin_keys_handler(ngx_http_request_t *r,
    ngx_int_t op);


#endif /* _NGX_HTTP_LLMPROXY_ADMIN_H_INCLUDED_ */

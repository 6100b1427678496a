/*
 * A model request's body: read whole, checked, routed
 * (_request.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_REQUEST_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <llmp_json_scan.h>

#include "ngx_http_llmproxy_ctx.h"


/* _request.c: a model request's body, read whole, checked, routed */
ngx_int_t ngx_http_llmproxy_request_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_request_prepare(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_request_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_request_json_fail(ngx_http_request_t *r,
    llmp_json_rc_e rc, const char *name, size_t offset);


#endif /* _NGX_HTTP_LLMPROXY_REQUEST_H_INCLUDED_ */

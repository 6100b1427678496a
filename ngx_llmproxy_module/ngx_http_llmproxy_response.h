/*
 * The bottom floor: the context, the gateway's errors, JSON
 * answers (_response.c); no key in any log (_scrub.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_RESPONSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"


/* _response.c: context, errors, JSON answers (the bottom floor) */
ngx_http_llmproxy_ctx_t *ngx_http_llmproxy_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *fmt, ...);
ngx_int_t ngx_http_llmproxy_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len);
ngx_int_t ngx_http_llmproxy_send_body(ngx_http_request_t *r, u_char *data,
    size_t len);
u_char *ngx_http_llmproxy_format_uint(u_char *p, uint64_t n);
u_char *ngx_http_llmproxy_format_fixed8(u_char *p, double f);
ngx_uint_t ngx_http_llmproxy_has_header(ngx_http_request_t *r,
    const char *name);

/* _scrub.c: no key in any log */
void ngx_http_llmproxy_strip_key_arg(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_post_read(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_log_scrub(ngx_http_request_t *r);
void ngx_http_llmproxy_scrub_logs(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_LLMPROXY_RESPONSE_H_INCLUDED_ */

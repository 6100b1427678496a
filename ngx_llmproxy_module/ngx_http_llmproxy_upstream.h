/*
 * An attempt at a provider (_upstream.c), its answer translated
 * (_translate.c), streamed (_sse.c) and filtered (_filter.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_UPSTREAM_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_UPSTREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_runtime.h"


/* the largest non-streamed answer held whole (for its cost header) */
#define NGX_HTTP_LLMPROXY_HOLD_MAX   (32 * 1024 * 1024)

/* _filter.c */
ngx_int_t ngx_http_llmproxy_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llmproxy_stream_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _upstream.c */
ngx_int_t ngx_http_llmproxy_upstream_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_upstream_init_conf(ngx_conf_t *cf,
    ngx_http_llmproxy_loc_conf_t *prev, ngx_http_llmproxy_loc_conf_t *conf);
ngx_int_t ngx_http_llmproxy_keepalive_init(ngx_cycle_t *cycle);

/* _translate.c: to and from a provider of another interface */
ngx_uint_t ngx_http_llmproxy_translate_target(ngx_uint_t interfaces);
ngx_int_t ngx_http_llmproxy_translate_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *out);
ngx_int_t ngx_http_llmproxy_translate_response(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *body);
ngx_int_t ngx_http_llmproxy_translate_answer(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t status, u_char *data,
    size_t len);
ngx_int_t ngx_http_llmproxy_translate_stream_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_translate_stream(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *data, size_t len, ngx_uint_t last,
    void *out);
void *ngx_http_llmproxy_translate_buf(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_gemini_embed_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *out);

/* _sse.c */
ngx_int_t ngx_http_llmproxy_sse_filter(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next);
void ngx_http_llmproxy_sse_count(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last);
void ngx_http_llmproxy_sse_estimate(ngx_http_llmproxy_ctx_t *ctx);


#endif /* _NGX_HTTP_LLMPROXY_UPSTREAM_H_INCLUDED_ */

/*
 * The three interfaces: the row of each (_iface.c), their
 * handlers (_openai.c, _anthropic.c, _gemini.c), model lists (_models.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_IFACE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_IFACE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"


/* _openai.c */
void ngx_http_llmproxy_openai_url(ngx_str_t *path,
    ngx_http_llmproxy_url_t *url);
ngx_int_t ngx_http_llmproxy_openai_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_openai_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _anthropic.c */
void ngx_http_llmproxy_anthropic_url(ngx_str_t *path,
    ngx_http_llmproxy_url_t *url);
ngx_int_t ngx_http_llmproxy_anthropic_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_anthropic_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _gemini.c */
void ngx_http_llmproxy_gemini_url(ngx_str_t *path,
    ngx_http_llmproxy_url_t *url);
ngx_int_t ngx_http_llmproxy_gemini_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_gemini_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/*
 * _iface.c: what differs between the three interfaces, one row each,
 * looked up by ctx->req.iface (client side) or ctx->up.iface (provider side)
 */

typedef ngx_int_t (*ngx_http_llmproxy_iface_pt)(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

typedef u_char *(*ngx_http_llmproxy_model_pt)(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);

typedef struct {
    ngx_uint_t                    iface;           /* LLMP_IFACE_* */
    void                        (*url)(ngx_str_t *path,
                                    ngx_http_llmproxy_url_t *url);
                                                   /* API path -> endpoint */
    ngx_http_llmproxy_iface_pt    check;           /* the request body */
    ngx_int_t                   (*error_body)(ngx_http_request_t *r,
                                    ngx_http_llmproxy_ctx_t *ctx,
                                    ngx_str_t *out);
    ngx_str_t                     key_header;      /* "name: prefix" */
    ngx_str_t                     version_header;  /* unless the client's */
    ngx_str_t                     version_name;    /* its name, lowercase */
    ngx_str_t                     chat_path;       /* a translated chat's;
                                                      empty: in the URL */
    const char                   *count_tokens;    /* the answer's format */
    ngx_str_t                     sse_error;       /* an error event's
                                                      start, its JSON next */
    ngx_str_t                     models_open;     /* a model list's start */
    ngx_http_llmproxy_model_pt    model_object;    /* one model in a list */
} ngx_http_llmproxy_iface_t;

extern const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_openai_iface;
extern const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_anthropic_iface;
extern const ngx_http_llmproxy_iface_t  ngx_http_llmproxy_gemini_iface;

void ngx_http_llmproxy_iface_register(const ngx_http_llmproxy_iface_t *row);
const ngx_http_llmproxy_iface_t *ngx_http_llmproxy_iface(ngx_uint_t iface);
ngx_uint_t ngx_http_llmproxy_api_path(ngx_str_t *uri, ngx_str_t *path);
ngx_uint_t ngx_http_llmproxy_iface_of(ngx_http_request_t *r);
ngx_uint_t ngx_http_llmproxy_iface_parse(ngx_str_t *uri,
    ngx_http_llmproxy_url_t *url);
void ngx_http_llmproxy_iface_take(ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _models.c: the model list, in the client's shape */
u_char *ngx_http_llmproxy_openai_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
u_char *ngx_http_llmproxy_anthropic_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
u_char *ngx_http_llmproxy_gemini_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
ngx_int_t ngx_http_llmproxy_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t shape, ngx_str_t *id);


#endif /* _NGX_HTTP_LLMPROXY_IFACE_H_INCLUDED_ */

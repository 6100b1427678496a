/*
 * The compiled config, each worker's read-only view of it
 * (_config_runtime.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_RUNTIME_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_RUNTIME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the worker-local view of a compiled config */

typedef struct ngx_http_llmproxy_runtime_s  ngx_http_llmproxy_runtime_t;

typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     api_base;
    ngx_uint_t                    interfaces;      /* IFACE_* bits */
    ngx_str_t                     host;            /* Host header value */
    ngx_str_t                     ssl_name;        /* host without port */
    ngx_str_t                     path;            /* api_base path, no /v1 */
    ngx_str_t                     auth_header;     /* "Authorization: ..." */
    ngx_str_t                     api_key;
    ngx_str_t                     extra_headers;   /* "K: V\r\n"... */
    ngx_addr_t                   *addrs;
    ngx_uint_t                    naddrs;
    ngx_uint_t                    next_addr;
    unsigned                      ssl:1;
    unsigned                      has_v1:1;
} ngx_http_llmproxy_provider_t;


typedef struct ngx_http_llmproxy_group_s  ngx_http_llmproxy_group_t;

/* a pattern's list price of one model it passes (per million) */

typedef struct {
    ngx_str_t                     name;
    double                        input;
    double                        output;
    double                        cache_read;
    double                        cache_5m;
    double                        cache_1h;
} ngx_http_llmproxy_model_price_t;

typedef struct {
    ngx_str_t                     id;              /* "provider/model" */
    ngx_str_t                     model;           /* public name */
    ngx_str_t                     upstream_model;
    ngx_str_t                     upstream_model_json;  /* quoted */
    ngx_http_llmproxy_provider_t *provider;
    ngx_array_t                   access_groups;   /* of ngx_str_t */
    double                        input_cost;      /* per million */
    double                        output_cost;
    double                        cache_read_cost;
    double                        cache_5m_cost;   /* cache writes */
    double                        cache_1h_cost;
    ngx_uint_t                    rpm;
    ngx_uint_t                    tpm;
    ngx_int_t                     weight;
    ngx_msec_t                    first_byte_timeout;   /* UNSET: settings' */
    ngx_msec_t                    stream_idle_timeout;
    ngx_int_t                     current_weight;  /* smooth WRR state */
    uint32_t                      hash;            /* crc32 of id */
    ngx_http_llmproxy_group_t    *group;
    unsigned                      priced:1;        /* has prices at all */
    unsigned                      pattern:1;       /* "claude-*" */
    ngx_array_t                  *model_prices;    /* a pattern's, of
                                                      model_price_t */
} ngx_http_llmproxy_deployment_t;


/* what a requested name resolves to: a model group or one deployment */

typedef struct {
    ngx_str_t                       name;
    ngx_http_llmproxy_group_t      *group;
    ngx_http_llmproxy_deployment_t *deployment;
    ngx_str_t                       upstream;   /* a name a pattern passes
                                                   through, len 0: none */
} ngx_http_llmproxy_target_t;


struct ngx_http_llmproxy_group_s {
    ngx_str_t                     name;
    ngx_array_t                   deployments;  /* of deployment_t * */
    ngx_array_t                   fallbacks;    /* of target_t * */
    ngx_http_llmproxy_target_t    target;       /* the group as a target */
    unsigned                      pattern:1;    /* of pattern deployments */
};


typedef struct {
    ngx_uint_t                    num_retries;
    ngx_uint_t                    allowed_fails;
    ngx_msec_t                    cooldown;
    ngx_msec_t                    request_timeout;
    ngx_msec_t                    first_byte_timeout;   /* 0: off */
    ngx_msec_t                    stream_idle_timeout;  /* 0: off */
    ngx_msec_t                    health_interval;  /* 0: no checks */
} ngx_http_llmproxy_settings_t;


struct ngx_http_llmproxy_runtime_s {
    ngx_pool_t                   *pool;
    ngx_uint_t                    refcount;
    ngx_uint_t                    generation;
    ngx_str_t                     config_sha256;
    ngx_http_llmproxy_settings_t  settings;
    ngx_array_t                   providers;    /* of provider_t */
    ngx_array_t                   deployments;  /* of deployment_t */
    ngx_array_t                   groups;       /* of group_t */
    ngx_array_t                   aliases;      /* of ngx_keyval_t */
    ngx_array_t                   targets;      /* of target_t * */
    ngx_http_llmproxy_target_t  **names;        /* open addressing table */
    ngx_uint_t                    names_mask;
    ngx_array_t                   patterns;     /* of target_t *, the most
                                                   specific first */
};

/* _config_runtime.c */
ngx_http_llmproxy_runtime_t *ngx_http_llmproxy_runtime_get(
    ngx_http_request_t *r);
u_char *ngx_http_llmproxy_runtime_prepare(u_char *blob, size_t len,
    u_char *current, size_t current_len, size_t *out_len, u_char *err,
    size_t errlen);
ngx_http_llmproxy_target_t *ngx_http_llmproxy_runtime_find(
    ngx_http_llmproxy_runtime_t *rt, ngx_str_t *name);
ngx_http_llmproxy_target_t *ngx_http_llmproxy_runtime_match(
    ngx_http_llmproxy_runtime_t *rt, ngx_pool_t *pool, ngx_str_t *name);
ngx_http_llmproxy_target_t *ngx_http_llmproxy_runtime_resolve(
    ngx_http_llmproxy_runtime_t *rt, ngx_pool_t *pool, ngx_str_t *name);
u_char *ngx_http_llmproxy_read_file(ngx_str_t *path, size_t *len,
    ngx_log_t *log);
ngx_int_t ngx_http_llmproxy_write_file(ngx_str_t *path, u_char *data,
    size_t len, ngx_log_t *log);


#endif /* _NGX_HTTP_LLMPROXY_RUNTIME_H_INCLUDED_ */

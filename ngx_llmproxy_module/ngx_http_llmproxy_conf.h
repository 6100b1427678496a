/*
 * The configuration: directives' structs, the module object.
 */

#ifndef _NGX_HTTP_LLMPROXY_CONF_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* configuration */

typedef struct {
    ngx_flag_t                    gateway;        /* llmproxy(_admin) */
} ngx_http_llmproxy_srv_conf_t;

typedef struct {
    ngx_shm_zone_t               *shm_zone;
    ngx_str_t                     master_key;      /* read from the file */
    ngx_str_t                     database;        /* PostgreSQL URI */
    ngx_str_t                     salt_key;        /* provider keys */
    ngx_str_t                     salt_key_file;
    ngx_msec_t                    database_poll;
    ngx_str_t                     master_key_file;
    ngx_str_t                     state_path;
    ngx_str_t                     thread_pool_name;
    ngx_thread_pool_t            *thread_pool;
    ngx_uint_t                    keepalive;       /* cached connections */
    ngx_msec_t                    keepalive_timeout;
    ngx_uint_t                    log_level;
    ngx_msec_t                    resolve_interval;
    ngx_str_t                     ssl_trusted_certificate;
    ngx_flag_t                    ssl_verify;
    ngx_flag_t                    usage_records;   /* to the database */
    size_t                        usage_buffer;    /* records in memory */
    ngx_msec_t                    usage_flush;
    time_t                        usage_retention; /* seconds, 0: off */
    ngx_msec_t                    usage_retention_every;
    ngx_flag_t                    litellm_headers; /* x-litellm-* too */
    ngx_msec_t                    stream_drain;    /* after a client left */
#if (NGX_HTTP_SSL)
    ngx_ssl_t                    *ssl;             /* upstream TLS */
#endif
} ngx_http_llmproxy_main_conf_t;


typedef enum {
    NGX_HTTP_LLMPROXY_OFF = 0,
    NGX_HTTP_LLMPROXY_GATEWAY,
    NGX_HTTP_LLMPROXY_ADMIN
} ngx_http_llmproxy_role_e;


typedef struct {
    ngx_uint_t                    role;
    size_t                        max_body_size;
    ngx_http_upstream_conf_t      upstream;
} ngx_http_llmproxy_loc_conf_t;

extern ngx_module_t  ngx_http_llmproxy_module;


#endif /* _NGX_HTTP_LLMPROXY_CONF_H_INCLUDED_ */

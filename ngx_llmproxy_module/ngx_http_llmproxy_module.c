/*
 * ngx_http_llmproxy_module: directives, configuration, process init and
 * the gateway's entry point, which dispatches a request to its interface.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_admin.h"
#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_request.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_upstream.h"
#include "ngx_http_llmproxy_usage.h"
#include "ngx_http_llmproxy_zone.h"

#include <llmp_iface.h>

#include <libpq-fe.h>

#if (NGX_LINUX)
#include <malloc.h>
#endif


static ngx_int_t ngx_http_llmproxy_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_health(ngx_http_request_t *r,
    ngx_uint_t readiness);
static ngx_int_t ngx_http_llmproxy_read_salt_key(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf);
static ngx_int_t ngx_http_llmproxy_read_secret(ngx_conf_t *cf,
    ngx_str_t *file, const char *directive, size_t min, ngx_str_t *out);

static void *ngx_http_llmproxy_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_llmproxy_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_llmproxy_init_state_path(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf);
static void *ngx_http_llmproxy_create_srv_conf(ngx_conf_t *cf);
static void *ngx_http_llmproxy_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_llmproxy_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_llmproxy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_llmproxy_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_llmproxy_zone_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_llmproxy_check_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_llmproxy_check_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_llmproxy_check_str(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_llmproxy_check_database(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_llmproxy_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_llmproxy_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_llmproxy_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_llmproxy_init_process(ngx_cycle_t *cycle);
static void ngx_http_llmproxy_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_llmproxy_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


/*
 * The smallest values that can work, checked by "nginx -t" with the file and
 * line of the directive: below them a worker spins (usage_flush 0), floods
 * the database (database_poll 0) or fails every request (buffer_size 1,
 * connect_timeout 0, max_body_size 0).  "zero" is set where 0 is the
 * documented "off".
 */

typedef struct {
    ngx_conf_post_handler_pt      post_handler;
    size_t                        min;            /* bytes or milliseconds */
    ngx_uint_t                    zero;           /* 0 allowed, means off */
    char                         *reason;
} ngx_http_llmproxy_conf_min_t;


static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_database_poll_min = {
    ngx_http_llmproxy_check_msec, 100, 0,
    "must be at least 100ms: every poll is a database transaction"
};

static ngx_conf_num_bounds_t  ngx_http_llmproxy_keepalive_bounds = {
    ngx_conf_check_num_bounds, 0, 65535
};

static ngx_http_llmproxy_conf_min_t
    ngx_http_llmproxy_keepalive_timeout_min = {
    ngx_http_llmproxy_check_msec, 1, 0,
    "must be at least 1ms (\"llmproxy_upstream_keepalive 0\" keeps no "
    "idle connections)"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_resolve_interval_min = {
    ngx_http_llmproxy_check_msec, 100, 1,
    "must be 0 (resolve only when a config is installed) or at least 100ms"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_max_body_size_min = {
    ngx_http_llmproxy_check_size, 1024, 0,
    "must be at least 1k"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_buffer_size_min = {
    ngx_http_llmproxy_check_size, 4096, 0,
    "must be at least 4k: a provider's response headers must fit in it"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_connect_timeout_min = {
    ngx_http_llmproxy_check_msec, 1, 0,
    "must be at least 1ms"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_usage_buffer_min = {
    ngx_http_llmproxy_check_size, 1024 * 1024, 0,
    "must be at least 1m"
};

static ngx_http_llmproxy_conf_min_t  ngx_http_llmproxy_usage_flush_min = {
    ngx_http_llmproxy_check_msec, 10, 0,
    "must be at least 10ms: a worker writes its usage records this often"
};


/* an empty path, name or URI is a mistake, never "off" */

static ngx_conf_post_t  ngx_http_llmproxy_non_empty = {
    ngx_http_llmproxy_check_str
};

static ngx_conf_post_t  ngx_http_llmproxy_database_post = {
    ngx_http_llmproxy_check_database
};


/*
 * The key table alone takes 1m of the zone; the config, the keys and the
 * metrics need room beside it.
 */

#define NGX_HTTP_LLMPROXY_ZONE_MIN  (256 * 1024)


static ngx_command_t  ngx_http_llmproxy_commands[] = {

    { ngx_string("llmproxy_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_llmproxy_zone_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llmproxy_master_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, master_key_file),
      &ngx_http_llmproxy_non_empty },

    { ngx_string("llmproxy_database"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, database),
      &ngx_http_llmproxy_database_post },

    { ngx_string("llmproxy_salt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, salt_key_file),
      &ngx_http_llmproxy_non_empty },

    { ngx_string("llmproxy_database_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, database_poll),
      &ngx_http_llmproxy_database_poll_min },

    { ngx_string("llmproxy_state_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, state_path),
      &ngx_http_llmproxy_non_empty },

    { ngx_string("llmproxy_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, thread_pool_name),
      &ngx_http_llmproxy_non_empty },

    { ngx_string("llmproxy_upstream_keepalive"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, keepalive),
      &ngx_http_llmproxy_keepalive_bounds },

    /* how long a stream the client left is read on for its usage; 0: off */
    { ngx_string("llmproxy_stream_drain_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, stream_drain),
      NULL },

    { ngx_string("llmproxy_upstream_keepalive_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, keepalive_timeout),
      &ngx_http_llmproxy_keepalive_timeout_min },

    { ngx_string("llmproxy_resolve_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, resolve_interval),
      &ngx_http_llmproxy_resolve_interval_min },

    { ngx_string("llmproxy_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, ssl_trusted_certificate),
      &ngx_http_llmproxy_non_empty },

    { ngx_string("llmproxy_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, ssl_verify),
      NULL },

    { ngx_string("llmproxy_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, log_level),
      &ngx_http_llmproxy_log_levels },

    { ngx_string("llmproxy"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_llmproxy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llmproxy_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_llmproxy_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llmproxy_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_loc_conf_t, max_body_size),
      &ngx_http_llmproxy_max_body_size_min },

    { ngx_string("llmproxy_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_loc_conf_t, upstream.buffer_size),
      &ngx_http_llmproxy_buffer_size_min },

    { ngx_string("llmproxy_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_loc_conf_t, upstream.connect_timeout),
      &ngx_http_llmproxy_connect_timeout_min },

    { ngx_string("llmproxy_usage_records"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, usage_records),
      NULL },

    { ngx_string("llmproxy_litellm_headers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, litellm_headers),
      NULL },

    /* usage records older than this are deleted; daily totals stay */
    { ngx_string("llmproxy_usage_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_llmproxy_usage_retention,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llmproxy_usage_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, usage_buffer),
      &ngx_http_llmproxy_usage_buffer_min },

    { ngx_string("llmproxy_usage_flush"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_llmproxy_main_conf_t, usage_flush),
      &ngx_http_llmproxy_usage_flush_min },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_llmproxy_module_ctx = {
    ngx_http_llmproxy_preconfiguration,    /* preconfiguration */
    ngx_http_llmproxy_postconfiguration,   /* postconfiguration */

    ngx_http_llmproxy_create_main_conf,    /* create main configuration */
    ngx_http_llmproxy_init_main_conf,      /* init main configuration */

    ngx_http_llmproxy_create_srv_conf,     /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_llmproxy_create_loc_conf,     /* create location configuration */
    ngx_http_llmproxy_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_llmproxy_module = {
    NGX_MODULE_V1,
    &ngx_http_llmproxy_module_ctx,         /* module context */
    ngx_http_llmproxy_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_llmproxy_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_llmproxy_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_llmproxy_handler(ngx_http_request_t *r)
{
    ngx_str_t                 uri;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    uri = r->uri;

    if (uri.len == 8 && ngx_strncmp(uri.data, "/metrics", 8) == 0) {
        return ngx_http_llmproxy_metrics_handler(r);
    }

    if (uri.len > 17 && ngx_strncmp(uri.data, "/llmproxy/ui/api/", 17) == 0) {
        return ngx_http_llmproxy_ui_api_handler(r, ctx);
    }

    if (uri.len >= 8 && ngx_strncmp(uri.data, "/health/", 8) == 0) {
        uri.data += 8;
        uri.len -= 8;

        if ((uri.len == 10 && ngx_strncmp(uri.data, "liveliness", 10) == 0)
            || (uri.len == 8 && ngx_strncmp(uri.data, "liveness", 8) == 0))
        {
            return ngx_http_llmproxy_health(r, 0);
        }

        if (uri.len == 9 && ngx_strncmp(uri.data, "readiness", 9) == 0) {
            return ngx_http_llmproxy_health(r, 1);
        }

        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                      "invalid_request_error", "not_found",
                                      "unknown health endpoint");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: %V as %s", &r->uri,
                   llmp_iface_name(ctx->req.iface));

    return ngx_http_llmproxy_request_handler(r, ctx);
}


static ngx_int_t
ngx_http_llmproxy_health(ngx_http_request_t *r, ngx_uint_t readiness)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_str_t                       db;
    ngx_uint_t                      generation;
    ngx_http_llmproxy_shctx_t      *sh;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed",
                                      "use GET for health endpoints");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!readiness) {
        return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK,
                                          (u_char *) "{\"status\":\"healthy\"}",
                                          sizeof("{\"status\":\"healthy\"}")
                                          - 1);
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;
    sh = zctx->sh;
    generation = sh->generation;

    p = ngx_pnalloc(r->pool, 256);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (lmcf->database.len == 0) {
        ngx_str_set(&db, "\"not configured\"");

    } else if (sh->db_ok) {
        ngx_str_set(&db, "\"connected\"");

    } else {
        ngx_str_set(&db, "\"unreachable\"");
    }

    /*
     * keys or a config that did not fit: this gateway refuses keys that
     * work elsewhere, or serves an older config
     */

    if (sh->zone_full || sh->config_full) {
        return ngx_http_llmproxy_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, p,
                   ngx_sprintf(p, "{\"status\":\"not ready\","
                               "\"reason\":\"no memory in the zone for a "
                               "key or a config\",\"zone\":\"full\","
                               "\"keys\":%uA,\"database\":%V}",
                               sh->nkeys, &db)
                   - p);
    }

    if (generation == 0 || (lmcf->database.len && !sh->keys_loaded)) {
        return ngx_http_llmproxy_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, p,
                   ngx_sprintf(p, "{\"status\":\"not ready\","
                               "\"reason\":\"%s\",\"database\":%V}",
                               generation == 0 ? "no configuration loaded"
                                               : "keys not loaded yet",
                               &db)
                   - p);
    }

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, p,
               ngx_sprintf(p, "{\"status\":\"ready\","
                           "\"config_generation\":%ui,\"keys\":%uA,"
                           "\"database\":%V}",
                           generation, sh->nkeys, &db) - p);
}


static void *
ngx_http_llmproxy_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llmproxy_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->shm_zone = NULL;
     *     lmcf->master_key = { 0, NULL };
     *     lmcf->master_key_file = { 0, NULL };
     *     lmcf->state_path = { 0, NULL };
     *     lmcf->thread_pool_name = { 0, NULL };
     *     lmcf->thread_pool = NULL;
     */

    lmcf->database_poll = NGX_CONF_UNSET_MSEC;
    lmcf->ssl_verify = NGX_CONF_UNSET;
    lmcf->resolve_interval = NGX_CONF_UNSET_MSEC;
    lmcf->keepalive = NGX_CONF_UNSET_UINT;
    lmcf->keepalive_timeout = NGX_CONF_UNSET_MSEC;
    lmcf->log_level = NGX_CONF_UNSET_UINT;
    lmcf->usage_records = NGX_CONF_UNSET;
    lmcf->usage_buffer = NGX_CONF_UNSET_SIZE;
    lmcf->usage_flush = NGX_CONF_UNSET_MSEC;
    lmcf->usage_retention = NGX_CONF_UNSET;
    lmcf->usage_retention_every = NGX_CONF_UNSET_MSEC;
    lmcf->litellm_headers = NGX_CONF_UNSET;
    lmcf->stream_drain = NGX_CONF_UNSET_MSEC;

    return lmcf;
}


static char *
ngx_http_llmproxy_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_llmproxy_main_conf_t *lmcf = conf;

    ngx_http_llmproxy_zone_ctx_t  *zctx;

    ngx_conf_init_msec_value(lmcf->database_poll, 1000);
    ngx_conf_init_value(lmcf->ssl_verify, 1);
    ngx_conf_init_msec_value(lmcf->resolve_interval, 30000);

    if (lmcf->ssl_trusted_certificate.len == 0) {
        ngx_str_set(&lmcf->ssl_trusted_certificate,
                    "/etc/ssl/certs/ca-certificates.crt");
    }
    ngx_conf_init_uint_value(lmcf->keepalive, 64);
    ngx_conf_init_msec_value(lmcf->keepalive_timeout, 60000);
    /* refused keys: anyone can send them, so not at [error] */
    ngx_conf_init_uint_value(lmcf->log_level, NGX_LOG_INFO);
    ngx_conf_init_value(lmcf->usage_records, 1);
    ngx_conf_init_size_value(lmcf->usage_buffer, 8 * 1024 * 1024);
    ngx_conf_init_msec_value(lmcf->usage_flush, 200);
    ngx_conf_init_value(lmcf->usage_retention, 90 * 86400);
    ngx_conf_init_msec_value(lmcf->usage_retention_every, 3600000);
    ngx_conf_init_value(lmcf->litellm_headers, 0);
    ngx_conf_init_msec_value(lmcf->stream_drain, 30000);

    if (lmcf->thread_pool_name.len == 0) {
        ngx_str_set(&lmcf->thread_pool_name, "default");
    }

    lmcf->thread_pool = ngx_thread_pool_add(cf, &lmcf->thread_pool_name);
    if (lmcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->state_path.len
        && ngx_http_llmproxy_init_state_path(cf, lmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llmproxy_read_salt_key(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->shm_zone && lmcf->salt_key.len) {
        zctx = lmcf->shm_zone->data;
        zctx->salt_key = (char *) lmcf->salt_key.data;
    }

    if (lmcf->master_key_file.len == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_http_llmproxy_read_secret(cf, &lmcf->master_key_file,
                                      "llmproxy_master_key_file", 8,
                                      &lmcf->master_key)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * llmproxy_state_path: a directory nginx creates at start, and the state
 * file in it the zone's config is saved to.
 */

static ngx_int_t
ngx_http_llmproxy_init_state_path(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf)
{
    u_char                        *p;
    size_t                         len;
    ngx_path_t                    *path;
    ngx_http_llmproxy_zone_ctx_t  *zctx;

    if (ngx_conf_full_name(cf->cycle, &lmcf->state_path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    /* nginx creates it at start, owned by the workers' user */

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name = lmcf->state_path;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    if (lmcf->shm_zone) {
        zctx = lmcf->shm_zone->data;

        len = lmcf->state_path.len + sizeof("/config.json") - 1;

        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(p, "%V/config.json%Z", &lmcf->state_path);

        zctx->state_file.data = p;
        zctx->state_file.len = len;
    }

    return NGX_OK;
}


/* a secret from a file, trimmed of white space, NUL-terminated */

static ngx_int_t
ngx_http_llmproxy_read_secret(ngx_conf_t *cf, ngx_str_t *file,
    const char *directive, size_t min, ngx_str_t *out)
{
    u_char  *data, *p;
    size_t   len, size;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    data = ngx_http_llmproxy_read_file(file, &size, cf->log);
    if (data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot read \"%s\" \"%V\"", directive, file);
        return NGX_ERROR;
    }

    p = data;
    len = size;

    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'
                   || p[len - 1] == ' ' || p[len - 1] == '\t'))
    {
        len--;
    }

    while (len && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
        len--;
    }

    if (len < min) {
        ngx_explicit_memzero(data, size);
        ngx_free(data);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the secret in \"%V\" is shorter than %uz "
                           "characters", file, min);
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(cf->pool, len + 1);
    if (out->data == NULL) {
        ngx_explicit_memzero(data, size);
        ngx_free(data);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, p, len);
    out->data[len] = '\0';
    out->len = len;

    ngx_explicit_memzero(data, size);
    ngx_free(data);

    return NGX_OK;
}


/*
 * The key that decrypts provider keys stored in PostgreSQL: from
 * llmproxy_salt_key_file, else from LLMPROXY_SALT_KEY in the environment
 * nginx was started with (read here, in the master, at configuration).
 */

static ngx_int_t
ngx_http_llmproxy_read_salt_key(ngx_conf_t *cf,
    ngx_http_llmproxy_main_conf_t *lmcf)
{
    char  *env;

    if (lmcf->salt_key_file.len == 0) {
        env = getenv("LLMPROXY_SALT_KEY");

        if (env && env[0]) {
            lmcf->salt_key.len = ngx_strlen(env);
            lmcf->salt_key.data = ngx_pnalloc(cf->pool,
                                              lmcf->salt_key.len + 1);
            if (lmcf->salt_key.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(lmcf->salt_key.data, env, lmcf->salt_key.len + 1);
        }

        return NGX_OK;
    }

    return ngx_http_llmproxy_read_secret(cf, &lmcf->salt_key_file,
                                         "llmproxy_salt_key_file", 8,
                                         &lmcf->salt_key);
}


static void *
ngx_http_llmproxy_create_srv_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): gateway = 0 */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_llmproxy_srv_conf_t));
}


static void *
ngx_http_llmproxy_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_llmproxy_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llmproxy_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->role = NGX_HTTP_LLMPROXY_OFF;
     *     conf->upstream.* = 0 / NULL, completed when merging
     */

    conf->max_body_size = NGX_CONF_UNSET_SIZE;
    conf->upstream.buffer_size = NGX_CONF_UNSET_SIZE;
    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    conf->upstream.pass_headers = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_llmproxy_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_llmproxy_loc_conf_t *prev = parent;
    ngx_http_llmproxy_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              16 * 1024 * 1024);

    if (ngx_http_llmproxy_upstream_init_conf(cf, prev, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->role != NGX_HTTP_LLMPROXY_GATEWAY) {
        return NGX_CONF_OK;
    }

    /*
     * The gateway enforces its own body limit so that a body too large is
     * answered in the client's error shape; the body is read into memory
     * whole (the "model" member is spliced, never reparsed), so the core
     * limits are set to match.
     */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->client_max_body_size = 0;

    if (clcf->client_body_buffer_size < 1024 * 1024) {
        clcf->client_body_buffer_size = 1024 * 1024;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llmproxy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llmproxy_loc_conf_t *llcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_llmproxy_srv_conf_t   *lscf;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (llcf->role != NGX_HTTP_LLMPROXY_OFF) {
        return "is duplicate";
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llmproxy_module);

    if (lmcf->shm_zone == NULL) {
        return "requires \"llmproxy_zone\" to be set before it";
    }

    llcf->role = NGX_HTTP_LLMPROXY_GATEWAY;

    lscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_llmproxy_module);
    lscf->gateway = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llmproxy_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_llmproxy_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llmproxy_loc_conf_t *llcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_llmproxy_srv_conf_t   *lscf;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (llcf->role != NGX_HTTP_LLMPROXY_OFF) {
        return "is duplicate";
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_llmproxy_module);

    if (lmcf->shm_zone == NULL) {
        return "requires \"llmproxy_zone\" to be set before it";
    }

    if (lmcf->master_key_file.len == 0) {
        return "requires \"llmproxy_master_key_file\" to be set before it";
    }

    llcf->role = NGX_HTTP_LLMPROXY_ADMIN;

    lscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_llmproxy_module);
    lscf->gateway = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llmproxy_admin_handler;

    return NGX_CONF_OK;
}


/*
 * llmproxy_zone NAME:SIZE: a size too small for the zone's fixed tables is
 * refused here, with the minimum, rather than by a failed allocation at
 * start; the rest is ngx_http_llmproxy_zone()'s.
 */

static char *
ngx_http_llmproxy_zone_size(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, s;

    value = cf->args->elts;

    p = ngx_strlchr(value[1].data, value[1].data + value[1].len, ':');

    if (p) {
        s.data = p + 1;
        s.len = value[1].data + value[1].len - s.data;

        size = ngx_parse_size(&s);

        if (size != NGX_ERROR && size < NGX_HTTP_LLMPROXY_ZONE_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "llmproxy_zone \"%*s\" is too small: "
                               "at least %uzk", p - value[1].data,
                               value[1].data,
                               (size_t) NGX_HTTP_LLMPROXY_ZONE_MIN / 1024);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_llmproxy_zone(cf, cmd, conf,
                                  ngx_http_llmproxy_init_zone);
}


/*
 * nginx's init of the zone: the zone's own part, then each floor's
 * tables in it (keys, routing counters, metrics), then the last good
 * config from disk; a zone that already exists keeps all of them.
 */

static ngx_int_t
ngx_http_llmproxy_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_int_t                      rc;
    ngx_http_llmproxy_zone_ctx_t  *zctx;

    rc = ngx_http_llmproxy_zone_attach(shm_zone, data);

    if (rc != NGX_OK) {
        return rc == NGX_DONE ? NGX_OK : NGX_ERROR;
    }

    zctx = shm_zone->data;

    if (ngx_http_llmproxy_keys_init_zone(zctx) != NGX_OK
        || ngx_http_llmproxy_route_init_zone(zctx) != NGX_OK
        || ngx_http_llmproxy_metrics_init_zone(zctx, shm_zone->shm.size)
           != NGX_OK
        || ngx_http_llmproxy_zone_name_log(shm_zone) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_llmproxy_state_restore(zctx);

    return NGX_OK;
}


static char *
ngx_http_llmproxy_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_llmproxy_conf_min_t *m = post;

    ngx_msec_t  *mp = data;

    if (*mp >= m->min || (*mp == 0 && m->zero)) {
        return NGX_CONF_OK;
    }

    return m->reason;
}


static char *
ngx_http_llmproxy_check_str(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *s = data;

    return s->len ? NGX_CONF_OK : "must not be empty";
}


/*
 * What libpq reads as a URI or a connection string must parse (a plain
 * word is a database name).  libpq's message is not shown: it can quote
 * the whole URI, password included.
 */

static char *
ngx_http_llmproxy_check_database(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *s = data;

    char                *err;
    PQconninfoOption    *opts;

    if (s->len == 0) {
        return "must not be empty";
    }

    if (ngx_strlchr(s->data, s->data + s->len, '=') == NULL
        && ngx_strncmp(s->data, "postgresql://", 13) != 0
        && ngx_strncmp(s->data, "postgres://", 11) != 0)
    {
        return NGX_CONF_OK;
    }

    /* the value is NUL-terminated by the configuration parser */

    err = NULL;
    opts = PQconninfoParse((char *) s->data, &err);

    if (err) {
        PQfreemem(err);
    }

    if (opts == NULL) {
        return "is not a valid PostgreSQL URI or connection string";
    }

    PQconninfoFree(opts);

    return NGX_CONF_OK;
}


static char *
ngx_http_llmproxy_check_size(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_llmproxy_conf_min_t *m = post;

    size_t  *sp = data;

    if (*sp >= m->min || (*sp == 0 && m->zero)) {
        return NGX_CONF_OK;
    }

    return m->reason;
}


/* the interfaces' rows, before anything can look one up */

static ngx_int_t
ngx_http_llmproxy_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_llmproxy_iface_register(&ngx_http_llmproxy_openai_iface);
    ngx_http_llmproxy_iface_register(&ngx_http_llmproxy_anthropic_iface);
    ngx_http_llmproxy_iface_register(&ngx_http_llmproxy_gemini_iface);
    ngx_http_llmproxy_access_register_self(ngx_http_llmproxy_admin_keys_self);

    return ngx_http_llmproxy_add_variables(cf);
}


static ngx_int_t
ngx_http_llmproxy_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                  n;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_llmproxy_metrics_init(cf) != NGX_OK
        || ngx_http_llmproxy_records_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llmproxy_post_read;

    /*
     * The key check goes last in the access phase (the phase runs its
     * handlers from the end of this array): "allow"/"deny", auth_basic
     * and auth_request decide first, so that with "satisfy all" a denied
     * address is refused before any key is looked at.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers.nelts;

    ngx_memmove(&h[1], &h[0], (n - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_llmproxy_access_handler;

    /*
     * The scrubbing log handler goes first, before the access log's (whose
     * module configured itself before this one).
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

    ngx_memmove(&h[1], &h[0], (n - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_llmproxy_log_scrub;

    return ngx_http_llmproxy_filter_init(cf);
}


static ngx_int_t
ngx_http_llmproxy_init_process(ngx_cycle_t *cycle)
{
#if (NGX_LINUX) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)

    /*
     * Request bodies up to client_body_buffer_size (1m in gateway
     * locations) are allocated whole.  By default glibc maps such a block
     * and unmaps it when the request ends (or trims it off the heap), so a
     * 256 KB body costs a page fault per page on every request.  Kept in
     * the heap, the memory is reused: 4 to 5 times less CPU per request.
     */

    if (mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024) != 1
        || mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024) != 1)
    {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "llmproxy: mallopt() failed");
    }

#endif

#if (NGX_LINUX) && defined(M_ARENA_MAX)

    /*
     * The threads of the pool (the database poller, the usage writer, the
     * resolver, admin tasks) allocate in the main arena.  By default glibc
     * gives each thread an arena of its own, and with M_TRIM_THRESHOLD
     * raised each arena keeps what the largest query result it held had
     * touched: 14 arenas of 1.2 MB in a worker that loaded 100,000 keys.
     * The threads work milliseconds at a time; contention with the event
     * loop for the one arena is negligible.
     */

    if (getenv("LLMP_NO_ARENA") == NULL && mallopt(M_ARENA_MAX, 1) != 1) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "llmproxy: mallopt(M_ARENA_MAX) failed");
    }

#endif

    ngx_http_llmproxy_scrub_logs(cycle);

    if (ngx_http_llmproxy_keepalive_init(cycle) != NGX_OK
        || ngx_http_llmproxy_resolve_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_health_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_records_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_retention_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_db_init_process(cycle);
}


static void
ngx_http_llmproxy_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_records_exit_process(cycle);
}


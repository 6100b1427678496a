/*
 * The shared zone: keys, cooldowns, counters, the config blob
 * (_zone.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_ZONE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_runtime.h"


#define NGX_HTTP_LLMPROXY_COOLDOWN_WINDOW  60000

/* shared memory */

/* a virtual key in the zone: one slab chunk, strings at the end */

typedef struct ngx_http_llmproxy_key_node_s  ngx_http_llmproxy_key_node_t;

struct ngx_http_llmproxy_key_node_s {
    ngx_http_llmproxy_key_node_t *next;           /* bucket chain */
    u_char                        digest[32];     /* SHA-256 of the key */
    double                        max_budget;     /* < 0: no budget */
    double                        spend;          /* as the database has */
    double                        pending;        /* counted since, here */

    /* 32-bit fields keep a key with a short alias in 128 bytes */
    uint32_t                      budget_reset_at;  /* epoch s, 0: never */
    uint32_t                      expires_at;       /* epoch s, 0: never */
    uint32_t                      rpm;              /* 0: unlimited */
    uint32_t                      tpm;
    uint32_t                      window;         /* minute of the counts */
    uint32_t                      requests;       /* in that minute */
    uint32_t                      tokens;
    uint32_t                      others_requests;  /* other gateways', */
    uint32_t                      others_tokens;    /* in that minute */
    u_char                        blocked;
    u_char                        revoked;
    u_short                       alias_len;
    u_short                       nmodels;
    u_short                       ngroups;
    u_short                       data_len;
    u_char                        data[1];  /* alias, then u_short-length
                                               prefixed models and groups */
};

typedef struct {
    ngx_rbtree_node_t             node;           /* key: crc32 of id */
    ngx_msec_t                    window_start;
    ngx_msec_t                    cooldown_until;
    ngx_msec_t                    last_fail;
    ngx_uint_t                    fails;
    u_short                       len;
    u_char                        id[1];
} ngx_http_llmproxy_cooldown_node_t;


/* a deployment's requests and tokens in the current minute */

typedef struct {
    uint64_t                      hash;           /* of its id, 0: free */
    uint32_t                      minute;
    uint32_t                      requests;
    uint32_t                      tokens;
    uint32_t                      others_requests;  /* other gateways' */
    uint32_t                      others_tokens;
} ngx_http_llmproxy_rate_t;


typedef struct {
    ngx_atomic_t                  generation;
    ngx_atomic_t                  cooling;        /* nodes in cooldown */
    u_char                       *blob;
    size_t                        blob_len;
    ngx_rbtree_t                  cooldowns;
    ngx_rbtree_node_t             sentinel;

    ngx_rbtree_t                  metrics;        /* of metrics_node_t */
    ngx_rbtree_node_t             metrics_sentinel;
    ngx_uint_t                    metrics_full;

    ngx_http_llmproxy_key_node_t **keys;          /* hash buckets */
    ngx_uint_t                    keys_mask;
    ngx_atomic_t                  nkeys;
    int64_t                       keys_seq;       /* last change applied */
    int64_t                       config_version; /* of the database's */
    ngx_atomic_t                  keys_loaded;    /* first load done */
    ngx_atomic_t                  db_ok;
    time_t                        db_failed_at;

    /*
     * last: the fields above keep their offsets in a zone kept over a
     * reload from a module built before it
     */
    uint64_t                      metrics_stamp;  /* this zone's series */

    /*
     * the series live in a slab pool of their own inside the zone, so
     * they can never take the memory that keys and configs need
     */
    ngx_slab_pool_t              *metrics_pool;
    ngx_uint_t                    metrics_series;
    ngx_uint_t                    metrics_max;
    ngx_atomic_t                  metrics_dropped;  /* requests uncounted */
    ngx_uint_t                    metrics_generation;  /* pruned for */

    ngx_atomic_t                  zone_full;      /* keys did not fit */
    int64_t                       keys_retry;     /* the first of them */
    ngx_atomic_t                  config_full;    /* the last config did
                                                     not fit */

    /* per-deployment rpm/tpm counts (_route.c), and this gateway's name */
    ngx_http_llmproxy_rate_t     *rates;
    ngx_uint_t                    rates_mask;
    uint64_t                      node_id;
    /* health checks and bridges' model lists, JSON (see _health.c) */
    u_char                       *health;
    size_t                        health_len;
    /* the last minute a key with rpm or tpm was counted in */
    uint32_t                      limited_minute;
} ngx_http_llmproxy_shctx_t;


typedef struct {
    ngx_http_llmproxy_shctx_t    *sh;
    ngx_slab_pool_t              *shpool;
    ngx_str_t                     state_file;
    char                         *salt_key;       /* NULL: none */
    ngx_log_t                    *log;
} ngx_http_llmproxy_zone_ctx_t;

/* _zone.c */
char *ngx_http_llmproxy_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf,
    ngx_shm_zone_init_pt init);
ngx_int_t ngx_http_llmproxy_zone_attach(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_llmproxy_zone_name_log(ngx_shm_zone_t *shm_zone);
ngx_int_t ngx_http_llmproxy_shm_install(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *blob, size_t len, ngx_uint_t *generation);
ngx_int_t ngx_http_llmproxy_shm_install_if(
    ngx_http_llmproxy_zone_ctx_t *zctx, u_char *blob, size_t len,
    ngx_uint_t expect, ngx_uint_t *generation);
u_char *ngx_http_llmproxy_shm_copy(ngx_http_llmproxy_zone_ctx_t *zctx,
    size_t *len, ngx_uint_t *generation);
ngx_int_t ngx_http_llmproxy_cooldown_check(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_http_llmproxy_deployment_t *d,
    ngx_msec_t *last_fail);
void ngx_http_llmproxy_cooldown_fail(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_deployment_t *d, ngx_http_llmproxy_settings_t *s,
    ngx_msec_t cooldown);
ngx_int_t ngx_http_llmproxy_cooldown_list(
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_pool_t *pool, ngx_array_t *out);


#endif /* _NGX_HTTP_LLMPROXY_ZONE_H_INCLUDED_ */

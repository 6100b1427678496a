/*
 * ngx_http_llmproxy_module: an LLM API gateway inside nginx.
 *
 * Shared declarations of the module's files, grouped by file.  The files
 * and the order a request meets them: README.md, "Module map".
 */

#ifndef _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <llmp_iface.h>
#include <llmp_json_scan.h>


#define NGX_HTTP_LLMPROXY_COOLDOWN_WINDOW  60000

/* the largest non-streamed answer held whole (for its cost header) */
#define NGX_HTTP_LLMPROXY_HOLD_MAX   (32 * 1024 * 1024)


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


/* what a request learned about its key */

typedef struct {
    ngx_str_t                     alias;
    ngx_str_t                     prefix;         /* for logs: "sk-AbC..." */
    ngx_array_t                   models;         /* of ngx_str_t */
    ngx_array_t                   groups;         /* of ngx_str_t */
    u_char                        digest[32];

    /* for the x-ratelimit-* headers: the key's limits and what is left */
    uint32_t                      rpm;            /* 0: none */
    uint32_t                      tpm;
    uint32_t                      requests_left;
    uint32_t                      tokens_left;
    time_t                        reset;          /* the minute's end */
    time_t                        retry_after;    /* s, on a 429 */

    unsigned                      master:1;
    unsigned                      all_models:1;
} ngx_http_llmproxy_key_t;


/* one request */

typedef enum {
    NGX_HTTP_LLMPROXY_EP_NONE = 0,
    NGX_HTTP_LLMPROXY_EP_CHAT,               /* OpenAI */
    NGX_HTTP_LLMPROXY_EP_COMPLETIONS,
    NGX_HTTP_LLMPROXY_EP_EMBEDDINGS,
    NGX_HTTP_LLMPROXY_EP_RESPONSES,
    NGX_HTTP_LLMPROXY_EP_MESSAGES,           /* Anthropic */
    NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS,
    NGX_HTTP_LLMPROXY_EP_GENERATE,           /* Gemini, streamed or not */
    NGX_HTTP_LLMPROXY_EP_GEMINI_COUNT,
    NGX_HTTP_LLMPROXY_EP_EMBED_CONTENT
} ngx_http_llmproxy_endpoint_e;


/* the conversational endpoints, which translate between interfaces */
#define ngx_http_llmproxy_ep_chat(ep)                                        \
    ((ep) == NGX_HTTP_LLMPROXY_EP_CHAT                                       \
     || (ep) == NGX_HTTP_LLMPROXY_EP_MESSAGES                                \
     || (ep) == NGX_HTTP_LLMPROXY_EP_GENERATE)


typedef enum {
    NGX_HTTP_LLMPROXY_FAIL_NONE = 0,
    NGX_HTTP_LLMPROXY_FAIL_CONNECT,
    NGX_HTTP_LLMPROXY_FAIL_TIMEOUT,
    NGX_HTTP_LLMPROXY_FAIL_STATUS,
    NGX_HTTP_LLMPROXY_FAIL_INVALID,
    NGX_HTTP_LLMPROXY_FAIL_TRUNCATED,     /* the body ended too soon */
    NGX_HTTP_LLMPROXY_FAIL_TRANSLATE      /* the answer was untranslatable */
} ngx_http_llmproxy_fail_e;


typedef struct ngx_http_llmproxy_sse_s  ngx_http_llmproxy_sse_t;

/* where a value is in the request body: [start, end) */
typedef struct {
    size_t                          start;
    size_t                          end;
} ngx_http_llmproxy_span_t;


/*
 * The request context, grouped by concern.  Each group is embedded by
 * value (no allocation of its own); scripts/refactor/ctx-groups.pl moved
 * the code from the old flat fields to these and can be run again.
 */

/* what the client asked for: its interface, endpoint and request body */
typedef struct {
    ngx_uint_t                      iface;          /* client's interface */
    ngx_uint_t                      endpoint;
    ngx_str_t                       endpoint_path;  /* "/chat/completions" */

    /* the request body and where its top-level members are */
    u_char                         *body;
    size_t                          body_len;
    llmp_json_top_t                 top;
    ngx_str_t                       model;          /* as requested */

    ngx_str_t                       action;         /* Gemini's method */

    /* Gemini's embeddings: the "model" values of the body, of span_t */
    ngx_array_t                    *embed_models;

    /* besides "model": stream_options.include_usage, added if missing */
    size_t                          edit_start;
    size_t                          edit_end;
    ngx_str_t                       edit;           /* len 0: none */

    unsigned                        stream:1;
    /* the edit asked for usage the client did not: kept from it */
    unsigned                        hide_usage:1;
} ngx_http_llmproxy_req_state_t;


/* when things happened, in ngx_current_msec */
typedef struct {
    ngx_msec_t                      start;          /* the request's */
    ngx_msec_t                      upstream_start; /* the first attempt's */
    ngx_msec_t                      attempt_start;  /* this attempt's */
    ngx_msec_t                      ttfb;           /* +1, 0: none yet */
} ngx_http_llmproxy_times_t;


/*
 * the attempt plan and where it stands: groups[0] is the requested one,
 * then fallbacks; and why the last attempt failed
 */
typedef struct {
    ngx_array_t                     plan;           /* of target_t * */
    ngx_uint_t                      plan_index;
    ngx_uint_t                      attempts_in_target;
    ngx_array_t                     tried;          /* of deployment_t * */
    ngx_http_llmproxy_deployment_t *current;
    ngx_uint_t                      attempts;
    ngx_uint_t                      addr_tries;     /* of this attempt */
    ngx_uint_t                      retries;
    ngx_uint_t                      fallbacks;
    ngx_array_t                    *failed;         /* ids, of ngx_str_t */

    ngx_uint_t                      fail;           /* fail_e */
    ngx_uint_t                      fail_status;
    ngx_msec_t                      retry_after;

    unsigned                        repeat:1;       /* current once more */
} ngx_http_llmproxy_route_state_t;


/* the attempt in flight: the interface it speaks, its answer's parser */
typedef struct {
    ngx_uint_t                      iface;
    ngx_http_status_t               status;
    ngx_http_chunked_t              chunked;

    unsigned                        started:1;      /* once, for good */
    unsigned                        first_byte_wait:1;
} ngx_http_llmproxy_up_state_t;


/* an error of ours, rendered by the filter in the client's shape */
typedef struct {
    ngx_uint_t                      status;
    ngx_str_t                       message;        /* then the body */
    const char                     *type;
    const char                     *code;

    unsigned                        keep:1;         /* status stands */
    unsigned                        rendered:1;     /* message is the body */
    unsigned                        sent:1;
} ngx_http_llmproxy_err_state_t;


/* usage the provider reported, as the response passes through; its cost */
typedef struct {
    int64_t                         prompt_tokens;      /* -1: unknown */
    int64_t                         input_tokens;       /* as reported */
    int64_t                         completion_tokens;
    int64_t                         total_tokens;
    int64_t                         candidates_tokens;  /* Gemini's */
    int64_t                         thoughts_tokens;
    int64_t                         cache_read_tokens;
    int64_t                         cache_creation_tokens;  /* all writes */
    int64_t                         cache_1h_tokens;    /* of them 1-hour */
    int64_t                         reasoning_tokens;
    double                          cost;               /* USD */
    double                          key_spend;          /* after it */

    /* the end of the last buffer scanned, for a member cut across two */
    u_char                          tail[64];
    size_t                          tail_len;

    unsigned                        cache_in_prompt:1;  /* OpenAI, Gemini */
    unsigned                        unpriced:1;
    unsigned                        estimated:1;
    unsigned                        accounted:1;        /* in the key */
    unsigned                        recorded:1;         /* a usage record */
} ngx_http_llmproxy_usage_state_t;


/*
 * a non-streamed answer: held to send its cost in its headers, or read
 * whole before it is passed on (a cut one is a failed attempt): its bytes
 * so far, chunks decoded in place
 */
typedef struct {
    u_char                         *held;
    size_t                          held_len;
    size_t                          held_size;

    size_t                          body_read;
    ngx_http_chunked_t              body_chunked;
    ngx_str_t                       xlated;         /* it, translated */

    unsigned                        hold:1;
    unsigned                        body_wait:1;    /* reading it whole */
    unsigned                        body_plain:1;   /* its start decoded */
} ngx_http_llmproxy_answer_state_t;


/*
 * a streamed answer: rewritten or translated event by event; the bytes
 * of its text content so far (for an estimate of its output when its
 * usage never comes), the idle timeout it runs with, and when a drain
 * after the client left ends
 */
typedef struct {
    ngx_http_llmproxy_sse_t        *sse;            /* a rewritten stream */
    void                           *xlate;          /* llmp_stream_t */

    size_t                          text_bytes;
    ngx_msec_t                      idle_timeout;
    ngx_msec_t                      drain_end;

    unsigned                        xlate_broken:1;
    unsigned                        text_string:2;  /* in a text value */
    unsigned                        client_left:1;
    unsigned                        draining:1;     /* read for its usage */
    unsigned                        stream_end:1;   /* its last event sent */
} ngx_http_llmproxy_stream_state_t;


typedef struct {
    ngx_http_llmproxy_runtime_t      *rt;
    ngx_http_llmproxy_key_t           key;
    ngx_str_t                         request_id;

    ngx_http_llmproxy_req_state_t     req;
    ngx_http_llmproxy_times_t         time;
    ngx_http_llmproxy_route_state_t   route;
    ngx_http_llmproxy_up_state_t      up;
    ngx_http_llmproxy_err_state_t     err;
    ngx_http_llmproxy_usage_state_t   usage;
    ngx_http_llmproxy_answer_state_t  answer;
    ngx_http_llmproxy_stream_state_t  streaming;
} ngx_http_llmproxy_ctx_t;


extern ngx_module_t  ngx_http_llmproxy_module;


/* _module.c: directives, configuration, init, the entry point */
ngx_uint_t ngx_http_llmproxy_before_location(ngx_http_request_t *r);

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

/* _access.c: the master key or a virtual key */
ngx_int_t ngx_http_llmproxy_check_master_key(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_check_key(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _scrub.c: no key in any log */
void ngx_http_llmproxy_strip_key_arg(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_post_read(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_log_scrub(ngx_http_request_t *r);
void ngx_http_llmproxy_scrub_logs(ngx_cycle_t *cycle);

/* a key as the database holds it, for the zone */

typedef struct {
    u_char                        digest[32];
    ngx_str_t                     alias;
    ngx_array_t                  *models;         /* of ngx_str_t */
    ngx_array_t                  *groups;         /* of ngx_str_t */
    double                        max_budget;     /* < 0: none */
    double                        spend;
    time_t                        budget_reset_at;
    time_t                        expires_at;
    ngx_uint_t                    rpm;
    ngx_uint_t                    tpm;
    unsigned                      blocked:1;
    unsigned                      revoked:1;
} ngx_http_llmproxy_key_row_t;


/* _keys.c */
ngx_int_t ngx_http_llmproxy_keys_upsert(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_key_row_t *row);
ngx_int_t ngx_http_llmproxy_keys_init_zone(ngx_http_llmproxy_zone_ctx_t *zctx);
ngx_int_t ngx_http_llmproxy_keys_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *key);
ngx_uint_t ngx_http_llmproxy_keys_allow(ngx_http_llmproxy_key_t *key,
    ngx_str_t *name, ngx_http_llmproxy_deployment_t *d);
ngx_int_t ngx_http_llmproxy_keys_allow_target(ngx_http_llmproxy_key_t *key,
    ngx_http_llmproxy_target_t *t);

ngx_int_t ngx_http_llmproxy_keys_account(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, ngx_uint_t tokens, double cost, double *spend);
void ngx_http_llmproxy_keys_settle(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, double cost, double spend);
ngx_int_t ngx_http_llmproxy_keys_headers(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_uint_t ngx_http_llmproxy_keys_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, ngx_uint_t from, u_char *digests, uint32_t *counts,
    ngx_uint_t max, ngx_uint_t *next);
void ngx_http_llmproxy_keys_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *digest, uint32_t minute, uint32_t requests, uint32_t tokens);

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

/* _keys_poll.c: virtual keys from PostgreSQL into the zone */
ngx_int_t ngx_http_llmproxy_db_init_process(ngx_cycle_t *cycle);
struct pg_conn *ngx_http_llmproxy_db_connect(const char *uri,
    const char *options, const char *application);

/* _config_disk.c: the last good config on disk */
ngx_int_t ngx_http_llmproxy_state_save(ngx_str_t *file, u_char *blob,
    size_t len, const char *salt_key, ngx_log_t *log);
u_char *ngx_http_llmproxy_state_load(ngx_str_t *file, const char *salt_key,
    size_t *len, ngx_log_t *log, u_char *err, size_t errlen);
ngx_int_t ngx_http_llmproxy_decrypt_keys(void *json, const char *salt_key,
    char *err, size_t errlen);

/* _metrics.c */
ngx_int_t ngx_http_llmproxy_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llmproxy_metrics_init_zone(
    ngx_http_llmproxy_zone_ctx_t *zctx, size_t size);
ngx_int_t ngx_http_llmproxy_metrics_handler(ngx_http_request_t *r);

/* _ui_api.c: the dashboard's data */
ngx_int_t ngx_http_llmproxy_ui_api_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _config_resolve.c */
ngx_int_t ngx_http_llmproxy_resolve_init_process(ngx_cycle_t *cycle);

/* _config_poll.c: the config stored by llmproxyctl sync in PostgreSQL */

typedef struct {
    int64_t                       since;     /* the version we have */
    int64_t                       version;   /* fetched; 0: nothing new */
    u_char                       *prepared;  /* to install, or NULL */
    size_t                        len;
    ngx_int_t                     saved;
    char                          err[256];
} ngx_http_llmproxy_db_config_t;

ngx_int_t ngx_http_llmproxy_db_config_fetch(void *conn,
    ngx_http_llmproxy_db_config_t *dc, const char *salt_key,
    ngx_str_t *state_file, ngx_log_t *log);
void ngx_http_llmproxy_db_config_apply(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_db_config_t *dc, ngx_log_t *log);

/* _variables.c */
ngx_int_t ngx_http_llmproxy_add_variables(ngx_conf_t *cf);

/* _filter.c */
ngx_int_t ngx_http_llmproxy_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_llmproxy_stream_error(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);

/* _zone.c */
char *ngx_http_llmproxy_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
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

/* _route.c */
ngx_int_t ngx_http_llmproxy_route_plan(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_http_llmproxy_deployment_t *ngx_http_llmproxy_route_next(
    ngx_http_request_t *r, ngx_http_llmproxy_ctx_t *ctx);
void ngx_http_llmproxy_route_failed(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_route_init_zone(
    ngx_http_llmproxy_zone_ctx_t *zctx);
void ngx_http_llmproxy_route_account(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t tokens);
ngx_uint_t ngx_http_llmproxy_route_windows(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint32_t minute, uint64_t *hashes, uint32_t *counts, ngx_uint_t max);
void ngx_http_llmproxy_route_others(ngx_http_llmproxy_zone_ctx_t *zctx,
    uint64_t hash, uint32_t minute, uint32_t requests, uint32_t tokens);

/* _upstream.c */
ngx_int_t ngx_http_llmproxy_upstream_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_upstream_init_conf(ngx_conf_t *cf,
    ngx_http_llmproxy_loc_conf_t *prev, ngx_http_llmproxy_loc_conf_t *conf);
ngx_int_t ngx_http_llmproxy_keepalive_init(ngx_cycle_t *cycle);

/* _openai.c */
ngx_int_t ngx_http_llmproxy_openai_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_openai_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_openai_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _anthropic.c */
ngx_int_t ngx_http_llmproxy_anthropic_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_anthropic_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_anthropic_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _gemini.c */
ngx_int_t ngx_http_llmproxy_gemini_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_gemini_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_gemini_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);
ngx_int_t ngx_http_llmproxy_gemini_embed_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_deployment_t *d,
    ngx_str_t *out);

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
    ngx_http_llmproxy_iface_pt    handler;         /* URL -> endpoint */
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

const ngx_http_llmproxy_iface_t *ngx_http_llmproxy_iface(ngx_uint_t iface);
ngx_uint_t ngx_http_llmproxy_api_path(ngx_str_t *uri, ngx_str_t *path);
ngx_uint_t ngx_http_llmproxy_iface_of(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out);

/* _request.c: a model request's body, read whole, checked, routed */
ngx_int_t ngx_http_llmproxy_request_prepare(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_int_t ngx_http_llmproxy_request_start(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
ngx_uint_t ngx_http_llmproxy_has_header(ngx_http_request_t *r,
    const char *name);
ngx_int_t ngx_http_llmproxy_request_json_fail(ngx_http_request_t *r,
    llmp_json_rc_e rc, const char *name, size_t offset);

/* _health.c: background health checks, providers' model lists */
ngx_int_t ngx_http_llmproxy_health_init_process(ngx_cycle_t *cycle);
struct cJSON *ngx_http_llmproxy_health_get(
    ngx_http_llmproxy_zone_ctx_t *zctx);
const char *ngx_http_llmproxy_health_of(struct cJSON *doc, ngx_str_t *id);
ngx_int_t ngx_http_llmproxy_health_metrics(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *out);
ngx_int_t ngx_http_llmproxy_health_admin(ngx_http_request_t *r);

/* _models.c: the model list, in the client's shape */
u_char *ngx_http_llmproxy_openai_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
u_char *ngx_http_llmproxy_anthropic_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
u_char *ngx_http_llmproxy_gemini_model_json(u_char *p, ngx_str_t *id,
    ngx_str_t *owner);
ngx_int_t ngx_http_llmproxy_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t shape, ngx_str_t *id);

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

/* _sse.c */
ngx_int_t ngx_http_llmproxy_sse_filter(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next);
void ngx_http_llmproxy_sse_count(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last);
void ngx_http_llmproxy_sse_estimate(ngx_http_llmproxy_ctx_t *ctx);

/* _admin.c */
ngx_int_t ngx_http_llmproxy_admin_handler(ngx_http_request_t *r);

/* _admin_keys.c: LiteLLM's /key/... API */
ngx_int_t ngx_http_llmproxy_admin_keys_match(ngx_http_request_t *r);
ngx_int_t ngx_http_llmproxy_admin_keys_handler(ngx_http_request_t *r,
    ngx_int_t op);


#endif /* _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_ */

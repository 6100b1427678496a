/*
 * One request: its context and what it learned about its key.
 */

#ifndef _NGX_HTTP_LLMPROXY_CTX_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_CTX_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <llmp_json_scan.h>

#include "ngx_http_llmproxy_runtime.h"


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
    unsigned                      checked:1;      /* authenticated */
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


/*
 * What a gateway URL means, parsed once when the request's context is
 * made (_iface.c); endpoint NONE and not a list: no endpoint (404)
 */

typedef struct {
    ngx_uint_t                      endpoint;
    ngx_str_t                       path;           /* "/chat/completions" */
    ngx_str_t                       model;          /* Gemini's; a list's id */
    ngx_str_t                       action;         /* Gemini's method */
    unsigned                        list:1;         /* GET .../models[/ID] */
    unsigned                        stream:1;       /* Gemini's stream */
} ngx_http_llmproxy_url_t;


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
    ngx_http_llmproxy_url_t         url;            /* the URL, parsed */
    ngx_uint_t                      endpoint;       /* url's, once taken */
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


#endif /* _NGX_HTTP_LLMPROXY_CTX_H_INCLUDED_ */

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

typedef struct {
    ngx_http_llmproxy_runtime_t    *rt;
    ngx_http_llmproxy_key_t         key;
    ngx_str_t                       request_id;
    ngx_msec_t                      start;
    ngx_msec_t                      upstream_start;
    ngx_msec_t                      ttfb;           /* +1, 0: none yet */
    ngx_uint_t                      iface;          /* client's interface */
    ngx_uint_t                      up_iface;       /* this attempt's */
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

    /* the attempt plan: groups[0] is the requested one, then fallbacks */
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

    /* why the last attempt failed */
    ngx_uint_t                      fail;
    ngx_uint_t                      fail_status;
    ngx_msec_t                      retry_after;

    /* an error of ours, rendered by the filter in the client's shape */
    ngx_uint_t                      err_status;
    ngx_str_t                       err_message;
    const char                     *err_type;
    const char                     *err_code;

    ngx_http_status_t               status;
    ngx_http_chunked_t              chunked;

    /* usage the provider reported, as the response passes through */
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

    /* a non-streamed answer, held to send its cost in its headers */
    u_char                         *held;
    size_t                          held_len;
    size_t                          held_size;
    u_char                          usage_tail[64];
    size_t                          usage_tail_len;

    /*
     * a non-streamed answer read whole before it is passed on (a cut one
     * is a failed attempt): its bytes so far, chunks decoded in place
     */
    size_t                          body_read;
    ngx_http_chunked_t              body_chunked;
    ngx_str_t                       xlated;         /* it, translated */

    ngx_http_llmproxy_sse_t        *sse;            /* a rewritten stream */
    void                           *xlate;          /* llmp_stream_t */

    /*
     * a stream: the bytes of its text content so far (for an estimate of
     * its output when its usage never comes), the idle timeout it runs
     * with, and when a drain after the client left ends
     */
    size_t                          text_bytes;
    ngx_msec_t                      idle_timeout;
    ngx_msec_t                      drain_end;
    ngx_msec_t                      attempt_start;

    unsigned                        stream:1;
    unsigned                        repeat:1;
    unsigned                        accounted:1;
    unsigned                        cache_in_prompt:1;  /* OpenAI, Gemini */
    unsigned                        unpriced:1;
    unsigned                        hold:1;
    unsigned                        upstream_started:1;
    unsigned                        error_body:1;
    unsigned                        error_sent:1;
    unsigned                        recorded:1;
    unsigned                        hide_usage:1;
    unsigned                        xlate_broken:1;
    unsigned                        err_keep:1;     /* err_status stands */
    unsigned                        body_wait:1;    /* reading it whole */
    unsigned                        body_plain:1;   /* its start decoded */
    unsigned                        text_string:2;  /* in a text value */
    unsigned                        client_left:1;
    unsigned                        draining:1;     /* read for its usage */
    unsigned                        stream_end:1;   /* its last event sent */
    unsigned                        usage_estimated:1;
    unsigned                        first_byte_wait:1;
} ngx_http_llmproxy_ctx_t;


#endif /* _NGX_HTTP_LLMPROXY_CTX_H_INCLUDED_ */

/*
 * Usage as the provider reports it.  The response body is watched as it
 * passes to the client, without buffering or parsing it: the scanner
 * looks for the token counters of OpenAI's usage objects
 * ("prompt_tokens", "completion_tokens", "total_tokens", and in their
 * details "cached_tokens" and "reasoning_tokens"), Anthropic's and the
 * Responses API's ("input_tokens", "output_tokens", Anthropic's
 * "cache_read_input_tokens", "cache_creation_input_tokens" and its split
 * "ephemeral_1h_input_tokens") or Gemini's usageMetadata
 * ("promptTokenCount", "cachedContentTokenCount", "thoughtsTokenCount",
 * ...), keeping the last value of each, so a stream's final usage chunk
 * wins.  A short tail of each buffer is kept to catch a counter split
 * between two reads.  When the request ends, the tokens are priced the
 * way the provider bills them, and the tokens and cost count against the
 * key's per-minute token limit and its spend, in the zone.
 *
 * The styles count cached input differently: OpenAI's prompt_tokens (and
 * the Responses API's input_tokens) and Gemini's promptTokenCount include
 * the cached tokens, Anthropic's input_tokens excludes both cache reads
 * and cache writes.  Reasoning tokens are part of OpenAI's output tokens;
 * Gemini's thoughts are reported apart and billed as output.  Which rule
 * applies follows from the counter seen ("cached_tokens",
 * "cachedContentTokenCount": included), not from the interface, so a
 * bridge passing another style's usage through is priced right too.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_usage.h"

#include <llmp_iface.h>

#include <string.h>


typedef struct {
    ngx_str_t    name;       /* with quotes and colon */
    ngx_uint_t   which;
} ngx_http_llmproxy_counter_t;


enum {
    NGX_HTTP_LLMPROXY_PROMPT = 0,
    NGX_HTTP_LLMPROXY_COMPLETION,
    NGX_HTTP_LLMPROXY_TOTAL,
    NGX_HTTP_LLMPROXY_CANDIDATES,       /* Gemini: the answer's tokens */
    NGX_HTTP_LLMPROXY_THOUGHTS,         /* Gemini: thinking, billed too */
    NGX_HTTP_LLMPROXY_CACHED,           /* cache reads, in the prompt */
    NGX_HTTP_LLMPROXY_CACHE_READ,       /* Anthropic: beside the input */
    NGX_HTTP_LLMPROXY_CACHE_CREATION,
    NGX_HTTP_LLMPROXY_CACHE_1H,
    NGX_HTTP_LLMPROXY_REASONING
};


/* OpenAI's and Anthropic's counters end in _tokens", Gemini's in Count" */

static ngx_http_llmproxy_counter_t  ngx_http_llmproxy_counters[] = {
    { ngx_string("\"prompt_tokens\":"), NGX_HTTP_LLMPROXY_PROMPT },
    { ngx_string("\"input_tokens\":"), NGX_HTTP_LLMPROXY_PROMPT },
    { ngx_string("\"completion_tokens\":"), NGX_HTTP_LLMPROXY_COMPLETION },
    { ngx_string("\"output_tokens\":"), NGX_HTTP_LLMPROXY_COMPLETION },
    { ngx_string("\"total_tokens\":"), NGX_HTTP_LLMPROXY_TOTAL },
    { ngx_string("\"cached_tokens\":"), NGX_HTTP_LLMPROXY_CACHED },
    { ngx_string("\"reasoning_tokens\":"), NGX_HTTP_LLMPROXY_REASONING },
    { ngx_string("\"cache_read_input_tokens\":"),
      NGX_HTTP_LLMPROXY_CACHE_READ },
    { ngx_string("\"cache_creation_input_tokens\":"),
      NGX_HTTP_LLMPROXY_CACHE_CREATION },
    { ngx_string("\"ephemeral_1h_input_tokens\":"),
      NGX_HTTP_LLMPROXY_CACHE_1H },
    { ngx_null_string, 0 }
};


static ngx_http_llmproxy_counter_t  ngx_http_llmproxy_gemini_counters[] = {
    { ngx_string("\"promptTokenCount\":"), NGX_HTTP_LLMPROXY_PROMPT },
    { ngx_string("\"candidatesTokenCount\":"),
      NGX_HTTP_LLMPROXY_CANDIDATES },
    { ngx_string("\"thoughtsTokenCount\":"), NGX_HTTP_LLMPROXY_THOUGHTS },
    { ngx_string("\"cachedContentTokenCount\":"),
      NGX_HTTP_LLMPROXY_CACHED },
    { ngx_string("\"totalTokenCount\":"), NGX_HTTP_LLMPROXY_TOTAL },
    { ngx_null_string, 0 }
};


static void ngx_http_llmproxy_usage_find(ngx_http_llmproxy_ctx_t *ctx,
    u_char *p, u_char *last, ngx_str_t *suffix,
    ngx_http_llmproxy_counter_t *counters);
static u_char *ngx_http_llmproxy_usage_next(u_char *p, u_char *last,
    ngx_str_t *suffix);
static ngx_http_llmproxy_counter_t *ngx_http_llmproxy_usage_counter(
    u_char *start, u_char *p, ngx_http_llmproxy_counter_t *counters);
static ngx_int_t ngx_http_llmproxy_usage_number(u_char **pp, u_char *last,
    int64_t *v);
static void ngx_http_llmproxy_usage_set(ngx_http_llmproxy_ctx_t *ctx,
    ngx_uint_t which, int64_t v);
static void ngx_http_llmproxy_usage_prompt(ngx_http_llmproxy_ctx_t *ctx);


static ngx_str_t  ngx_http_llmproxy_tokens_suffix = ngx_string("_tokens\":");
static ngx_str_t  ngx_http_llmproxy_count_suffix = ngx_string("Count\":");


static void ngx_http_llmproxy_usage_scan_all(ngx_http_llmproxy_ctx_t *ctx,
    u_char *p, u_char *last);


void
ngx_http_llmproxy_usage_reset(ngx_http_llmproxy_ctx_t *ctx)
{
    ctx->usage.prompt_tokens = -1;
    ctx->usage.input_tokens = -1;
    ctx->usage.completion_tokens = -1;
    ctx->usage.total_tokens = -1;
    ctx->usage.candidates_tokens = -1;
    ctx->usage.thoughts_tokens = -1;
    ctx->usage.cache_read_tokens = -1;
    ctx->usage.cache_creation_tokens = -1;
    ctx->usage.cache_1h_tokens = -1;
    ctx->usage.reasoning_tokens = -1;
    ctx->usage.cache_in_prompt = 0;
    ctx->usage.unpriced = 0;
    ctx->usage.tail_len = 0;
}


void
ngx_http_llmproxy_usage_scan(ngx_http_llmproxy_ctx_t *ctx, u_char *pos,
    u_char *last)
{
    size_t  n, head;
    u_char  window[128];

    if (pos == last) {
        return;
    }

    /* the junction with the previous buffer first, then this buffer */

    if (ctx->usage.tail_len) {
        head = ngx_min((size_t) (last - pos),
                       sizeof(window) - ctx->usage.tail_len);
        ngx_memcpy(window, ctx->usage.tail, ctx->usage.tail_len);
        ngx_memcpy(window + ctx->usage.tail_len, pos, head);
        ngx_http_llmproxy_usage_scan_all(ctx, window,
                                         window + ctx->usage.tail_len + head);
    }

    ngx_http_llmproxy_usage_scan_all(ctx, pos, last);

    n = ngx_min((size_t) (last - pos), sizeof(ctx->usage.tail));
    ngx_memcpy(ctx->usage.tail, last - n, n);
    ctx->usage.tail_len = n;
}


static void
ngx_http_llmproxy_usage_scan_all(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last)
{
    if (ctx->up.iface == LLMP_IFACE_GEMINI) {
        ngx_http_llmproxy_usage_find(ctx, p, last,
                                     &ngx_http_llmproxy_count_suffix,
                                     ngx_http_llmproxy_gemini_counters);
        return;
    }

    ngx_http_llmproxy_usage_find(ctx, p, last,
                                 &ngx_http_llmproxy_tokens_suffix,
                                 ngx_http_llmproxy_counters);
}


/*
 * The body is scanned for the suffix all counters of a style share; each
 * hit is matched against the counter names ending there, and the number
 * after it read into the context.
 */

static void
ngx_http_llmproxy_usage_find(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last, ngx_str_t *suffix, ngx_http_llmproxy_counter_t *counters)
{
    u_char                       *q, *start;
    int64_t                       v;
    ngx_http_llmproxy_counter_t  *c;

    start = p;

    for ( ;; ) {
        q = ngx_http_llmproxy_usage_next(p, last, suffix);
        if (q == NULL) {
            return;
        }

        p = q + suffix->len;

        c = ngx_http_llmproxy_usage_counter(start, p, counters);
        if (c == NULL) {
            continue;
        }

        if (ngx_http_llmproxy_usage_number(&p, last, &v) != NGX_OK) {
            continue;
        }

        ngx_http_llmproxy_usage_set(ctx, c->which, v);
        ngx_http_llmproxy_usage_prompt(ctx);
    }
}


/* the counter whose name ends at p, if the scanned text holds all of it */

static ngx_http_llmproxy_counter_t *
ngx_http_llmproxy_usage_counter(u_char *start, u_char *p,
    ngx_http_llmproxy_counter_t *counters)
{
    u_char                       *d;
    ngx_http_llmproxy_counter_t  *c;

    for (c = counters; c->name.len; c++) {
        d = p - c->name.len;

        if (d >= start && ngx_strncmp(d, c->name.data, c->name.len) == 0) {
            return c;
        }
    }

    return NULL;
}


/*
 * The counter's value: at most 15 digits, which no token count reaches
 * and int64_t holds; *pp is left after what was read.
 */

static ngx_int_t
ngx_http_llmproxy_usage_number(u_char **pp, u_char *last, int64_t *v)
{
    u_char  *p, *d;

    p = *pp;

    while (p < last && *p == ' ') {
        p++;
    }

    *v = 0;
    d = p;

    while (p < last && *p >= '0' && *p <= '9' && p - d < 15) {
        *v = *v * 10 + (*p++ - '0');
    }

    *pp = p;

    return (p == d) ? NGX_DECLINED : NGX_OK;
}


static void
ngx_http_llmproxy_usage_set(ngx_http_llmproxy_ctx_t *ctx, ngx_uint_t which,
    int64_t v)
{
    switch (which) {
    case NGX_HTTP_LLMPROXY_PROMPT:
        ctx->usage.input_tokens = v;
        break;

    case NGX_HTTP_LLMPROXY_COMPLETION:
        ctx->usage.completion_tokens = v;
        break;

    /* Gemini bills thinking as output, reported apart from the answer */

    case NGX_HTTP_LLMPROXY_CANDIDATES:
        ctx->usage.candidates_tokens = v;
        ctx->usage.completion_tokens =
                                v + ngx_max(ctx->usage.thoughts_tokens, 0);
        break;

    case NGX_HTTP_LLMPROXY_THOUGHTS:
        ctx->usage.thoughts_tokens = v;
        ctx->usage.reasoning_tokens = v;
        ctx->usage.completion_tokens =
                              v + ngx_max(ctx->usage.candidates_tokens, 0);
        break;

    case NGX_HTTP_LLMPROXY_CACHED:
        ctx->usage.cache_read_tokens = v;
        ctx->usage.cache_in_prompt = 1;
        break;

    case NGX_HTTP_LLMPROXY_CACHE_READ:
        ctx->usage.cache_read_tokens = v;
        ctx->usage.cache_in_prompt = 0;
        break;

    case NGX_HTTP_LLMPROXY_CACHE_CREATION:
        ctx->usage.cache_creation_tokens = v;
        break;

    case NGX_HTTP_LLMPROXY_CACHE_1H:
        ctx->usage.cache_1h_tokens = v;
        break;

    case NGX_HTTP_LLMPROXY_REASONING:
        ctx->usage.reasoning_tokens = v;
        break;

    default:
        ctx->usage.total_tokens = v;
    }
}


/*
 * The prompt tokens are all input tokens, as OpenAI counts them:
 * Anthropic's cache reads and writes are added to its input.
 */

static void
ngx_http_llmproxy_usage_prompt(ngx_http_llmproxy_ctx_t *ctx)
{
    if (ctx->usage.input_tokens < 0) {
        return;
    }

    ctx->usage.prompt_tokens = ctx->usage.input_tokens;

    if (!ctx->usage.cache_in_prompt) {
        ctx->usage.prompt_tokens += ngx_max(ctx->usage.cache_read_tokens, 0)
                              + ngx_max(ctx->usage.cache_creation_tokens, 0);
    }
}


/*
 * The first occurrence of the suffix, as memmem() would find it: memchr()
 * for its first byte, which is rare in an answer ('_' or 'C'), then the
 * rest compared.  glibc's memmem() sets up a shift table on every call,
 * which costs more than the short scans here.
 */

static u_char *
ngx_http_llmproxy_usage_next(u_char *p, u_char *last, ngx_str_t *suffix)
{
    u_char  *q;
    size_t   n;

    n = suffix->len;

    while ((size_t) (last - p) >= n) {
        q = memchr(p, suffix->data[0], (last - p) - n + 1);
        if (q == NULL) {
            return NULL;
        }

        if (ngx_memcmp(q + 1, suffix->data + 1, n - 1) == 0) {
            return q;
        }

        p = q + 1;
    }

    return NULL;
}


/*
 * The request is over: its tokens priced as the provider bills them, and
 * counted against the key.  The prompt tokens (the scanner made them all
 * input tokens, cached or not, in every style) less the cache's are the
 * uncached input.  A model priced nowhere costs nothing against the key
 * and is recorded as unpriced.
 */

void
ngx_http_llmproxy_usage_account(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    double                          cost;
    int64_t                         prompt, completion, total, read,
                                    created, hour, input;
    ngx_http_llmproxy_deployment_t *d;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    if (ctx->usage.accounted) {
        return;
    }

    ctx->usage.accounted = 1;

    /*
     * a token count (Anthropic's count_tokens, Gemini's countTokens) is
     * free at the provider: its number is an answer, not usage
     */

    if (ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_COUNT_TOKENS
        || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_GEMINI_COUNT)
    {
        ngx_http_llmproxy_usage_reset(ctx);
    }

    prompt = ngx_max(ctx->usage.prompt_tokens, 0);
    completion = ngx_max(ctx->usage.completion_tokens, 0);
    read = ngx_max(ctx->usage.cache_read_tokens, 0);
    created = ngx_max(ctx->usage.cache_creation_tokens, 0);
    hour = ngx_min(ngx_max(ctx->usage.cache_1h_tokens, 0), created);

    if (ctx->usage.cache_in_prompt) {
        created = 0;
        hour = 0;
    }

    /* uncached input: Anthropic reports it, the others include the cache */

    input = ngx_max(prompt - read - created, 0);

    total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens
                                         : prompt + completion;

    d = ctx->route.current;
    cost = 0;

    if (d && d->priced) {
        cost = ((double) input * d->input_cost
                + (double) read * d->cache_read_cost
                + (double) (created - hour) * d->cache_5m_cost
                + (double) hour * d->cache_1h_cost
                + (double) completion * d->output_cost) / 1e6;

    } else if (d && (prompt || completion)) {
        ctx->usage.unpriced = 1;
    }

    ctx->usage.cost = cost;

    ngx_http_llmproxy_route_account(r, ctx, (ngx_uint_t) total);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: usage %L prompt (%L cache read, %L written), "
                   "%L completion, %L total, cost %.8f", prompt, read,
                   created, completion, total, cost);

    if (ctx->key.master) {
        return;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    (void) ngx_http_llmproxy_keys_account(lmcf->shm_zone->data,
                                          ctx->key.digest,
                                          (ngx_uint_t) total, cost,
                                          &ctx->usage.key_spend);
}

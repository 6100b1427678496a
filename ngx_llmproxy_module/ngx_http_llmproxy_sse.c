/*
 * Streams rewritten on their way to the client, event by event.  A stream
 * that needs no change never comes here.  One from a provider of another
 * interface goes through the translation library as it arrives.  One
 * whose usage chunk the gateway asked for on the client's behalf (and
 * must not reach a client that did not ask for it) is cut into
 * server-sent events at their blank lines: every complete event is passed
 * on as soon as it is complete, a partial one waits for the rest of it.
 * In both cases what was written is sent at once.  Output buffers are the
 * filter's
 * own, recycled once sent, so the upstream's read buffer is free to be
 * reused at once.
 */

#include "ngx_http_llmproxy_module.h"

#include <string.h>
#include <llmp_translate.h>


#define NGX_HTTP_LLMPROXY_SSE_BUF  1024


struct ngx_http_llmproxy_sse_s {
    u_char                        *data;       /* a partial event */
    size_t                         len;
    size_t                         size;
    llmp_buf_t                    *xbuf;       /* translated, not yet sent */
    ngx_chain_t                   *free;
    ngx_chain_t                   *busy;
};


static ngx_uint_t ngx_http_llmproxy_sse_clean(ngx_chain_t *in);
static size_t ngx_http_llmproxy_sse_event_end(u_char *p, u_char *last);
static ngx_uint_t ngx_http_llmproxy_sse_is_usage_only(u_char *p,
    u_char *last);
static u_char *ngx_http_llmproxy_sse_after(u_char *p, u_char *last,
    const char *name, size_t len);
static ngx_int_t ngx_http_llmproxy_sse_take(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_sse_t *sse,
    ngx_chain_t *in, ngx_uint_t *last_buf, ngx_uint_t *flush);
static ngx_chain_t *ngx_http_llmproxy_sse_out(ngx_http_request_t *r,
    ngx_http_llmproxy_sse_t *sse, size_t need);
static void ngx_http_llmproxy_sse_events(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_sse_t *sse, ngx_buf_t *b, ngx_uint_t last_buf);


ngx_int_t
ngx_http_llmproxy_sse_filter(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_uint_t                 last_buf, flush;
    ngx_chain_t               *cl, *out;
    ngx_http_llmproxy_sse_t   *sse;

    sse = ctx->streaming.sse;

    if (sse == NULL) {
        sse = ngx_pcalloc(r->pool, sizeof(ngx_http_llmproxy_sse_t));
        if (sse == NULL) {
            return NGX_ERROR;
        }

        ctx->streaming.sse = sse;
    }

    /*
     * the usual case: whole events, none to keep from the client, nothing
     * waiting from before: passed on as they are
     */

    if (!ctx->streaming.xlate && sse->len == 0
        && ngx_http_llmproxy_sse_clean(in))
    {
        return next(r, in);
    }

    if (ctx->streaming.xlate && sse->xbuf == NULL) {
        sse->xbuf = ngx_http_llmproxy_translate_buf(r);
        if (sse->xbuf == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llmproxy_sse_take(r, ctx, sse, in, &last_buf, &flush)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* complete events, minus those the client must not see */

    cl = ngx_http_llmproxy_sse_out(r, sse, ctx->streaming.xlate
                                           ? sse->xbuf->len : sse->len);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;

    if (ctx->streaming.xlate) {
        b->last = ngx_cpymem(b->last, sse->xbuf->data, sse->xbuf->len);
        sse->xbuf->len = 0;

    } else {
        ngx_http_llmproxy_sse_events(ctx, sse, b, last_buf);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: stream events of %uz bytes out, %uz waiting%s",
                   (size_t) (b->last - b->pos), sse->len,
                   last_buf ? ", the last" : "");

    if (b->last == b->pos && !last_buf && !flush) {
        cl->next = sse->free;
        sse->free = cl;
        return NGX_OK;
    }

    b->last_buf = last_buf;
    b->flush = 1;
    b->memory = 0;
    cl->next = NULL;

    if (b->last == b->pos) {
        b->temporary = 0;
        b->sync = 1;
    }

    out = cl;

    rc = next(r, out);

    ngx_chain_update_chains(r->pool, &sse->free, &sse->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_llmproxy_module);

    return rc;
}


/* what came joins the partial event, or goes to the translator */

static ngx_int_t
ngx_http_llmproxy_sse_take(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_sse_t *sse,
    ngx_chain_t *in, ngx_uint_t *last_buf, ngx_uint_t *flush)
{
    u_char       *p;
    size_t        n, need;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *last_buf = 0;
    *flush = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf || b->last_in_chain) {
            *last_buf = b->last_buf;
            *flush = 1;
        }

        if (b->flush) {
            *flush = 1;
        }

        if (!ngx_buf_in_memory(b)) {
            continue;
        }

        n = b->last - b->pos;

        if (ctx->streaming.xlate) {
            if (ngx_http_llmproxy_translate_stream(r, ctx, b->pos, n, 0,
                                                   sse->xbuf)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            b->pos = b->last;
            continue;
        }

        if (sse->len + n > sse->size) {
            need = ngx_max(2 * sse->size, sse->len + n);
            need = ngx_max(need, NGX_HTTP_LLMPROXY_SSE_BUF);

            p = ngx_pnalloc(r->pool, need);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (sse->len) {
                ngx_memcpy(p, sse->data, sse->len);
            }

            sse->data = p;
            sse->size = need;
        }

        ngx_memcpy(sse->data + sse->len, b->pos, n);
        sse->len += n;
        b->pos = b->last;
    }

    if (ctx->streaming.xlate && *last_buf) {
        /* the provider's stream ended: the client's closing events */
        if (ngx_http_llmproxy_translate_stream(r, ctx, NULL, 0, 1, sse->xbuf)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* an output buffer of the filter's own, of at least need bytes, empty */

static ngx_chain_t *
ngx_http_llmproxy_sse_out(ngx_http_request_t *r, ngx_http_llmproxy_sse_t *sse,
    size_t need)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &sse->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;

    if (b->start == NULL || (size_t) (b->end - b->start) < need) {
        need = ngx_max(need, NGX_HTTP_LLMPROXY_SSE_BUF);

        b->start = ngx_palloc(r->pool, need);
        if (b->start == NULL) {
            return NULL;
        }

        b->end = b->start + need;
    }

    b->pos = b->start;
    b->last = b->start;
    b->temporary = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_llmproxy_module;
    b->last_buf = 0;
    b->flush = 0;

    return cl;
}


/*
 * The complete events into b, but a usage chunk the client did not ask
 * for; a partial one waits for the rest of it, unless the stream ended
 */

static void
ngx_http_llmproxy_sse_events(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_sse_t *sse, ngx_buf_t *b, ngx_uint_t last_buf)
{
    u_char  *start, *last;
    size_t   end;

    start = sse->data;
    last = sse->data + sse->len;

    while (start < last) {
        end = ngx_http_llmproxy_sse_event_end(start, last);

        if (end == 0) {
            break;
        }

        if (!(ctx->req.hide_usage
              && ngx_http_llmproxy_sse_is_usage_only(start, start + end)))
        {
            b->last = ngx_cpymem(b->last, start, end);
        }

        start += end;
    }

    if (last_buf && start < last) {
        /* the stream ended inside an event: pass what there is */
        b->last = ngx_cpymem(b->last, start, last - start);
        start = last;
    }

    sse->len = last - start;

    if (sse->len) {
        ngx_memmove(sse->data, start, sse->len);
    }
}


/* only complete events, and none of them the usage chunk */

static ngx_uint_t
ngx_http_llmproxy_sse_clean(ngx_chain_t *in)
{
    u_char     *p, *last;
    size_t      end;
    ngx_buf_t  *b;

    for ( /* void */ ; in; in = in->next) {
        b = in->buf;

        if (!ngx_buf_in_memory(b)) {
            continue;
        }

        p = b->pos;
        last = b->last;

        while (p < last) {
            end = ngx_http_llmproxy_sse_event_end(p, last);

            if (end == 0
                || ngx_http_llmproxy_sse_is_usage_only(p, p + end))
            {
                return 0;
            }

            p += end;
        }
    }

    return 1;
}


/* the length of the first complete event, blank line included; 0: none */

static size_t
ngx_http_llmproxy_sse_event_end(u_char *p, u_char *last)
{
    u_char  *q, *start;

    start = p;

    for ( ;; ) {
        q = memchr(p, '\n', last - p);

        if (q == NULL || q + 1 >= last) {
            return 0;
        }

        p = q + 1;

        if (*p == '\r' && p + 1 < last) {
            p++;
        }

        if (*p == '\n') {
            return p + 1 - start;
        }
    }
}


/*
 * The chunk a stream ends with when the request asked for usage:
 * "choices":[] and a "usage" object
 */

static ngx_uint_t
ngx_http_llmproxy_sse_is_usage_only(u_char *p, u_char *last)
{
    u_char  *q;

    q = ngx_http_llmproxy_sse_after(p, last, "\"choices\":",
                                    sizeof("\"choices\":") - 1);

    if (q == NULL || q == last || *q != '[') {
        return 0;
    }

    for (q++; q < last && (*q == ' ' || *q == '\n' || *q == '\r'); q++) {
        /* void */
    }

    if (q == last || *q != ']') {
        return 0;
    }

    q = ngx_http_llmproxy_sse_after(p, last, "\"usage\":",
                                    sizeof("\"usage\":") - 1);

    return (q && q < last && *q == '{');
}


/* where the value after a member name starts, blanks skipped */

static u_char *
ngx_http_llmproxy_sse_after(u_char *p, u_char *last, const char *name,
    size_t len)
{
    u_char  *q;

    q = memmem(p, last - p, name, len);

    if (q == NULL) {
        return NULL;
    }

    for (q += len; q < last && (*q == ' ' || *q == '\t'); q++) {
        /* void */
    }

    return q;
}


/*
 * The bytes of a stream's text as the provider sends it (the string
 * values of the members its text, thinking and tool arguments come in,
 * in each interface), for an estimate of the output when the stream ends
 * before its usage: a client left and the drain ran out, the provider cut
 * or stalled it.  Counted on the provider's side of a translation; a
 * member name split between two reads is missed, which an estimate can
 * bear.
 */

static ngx_str_t  ngx_http_llmproxy_text_keys[] = {
    ngx_string("\"content\""),
    ngx_string("\"text\""),
    ngx_string("\"thinking\""),
    ngx_string("\"partial_json\""),
    ngx_string("\"arguments\""),
    ngx_string("\"reasoning_content\""),
    ngx_string("\"refusal\""),
    ngx_null_string
};


void
ngx_http_llmproxy_sse_count(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last)
{
    u_char     *q, *start;
    ngx_str_t  *k;

    start = p;

    for ( ;; ) {

        /* in a text value: to its closing quote, escapes skipped */

        while (ctx->streaming.text_string && p < last) {

            if (ctx->streaming.text_string == 2) {
                ctx->streaming.text_string = 1;

            } else if (*p == '\\') {
                ctx->streaming.text_string = 2;
                p++;
                continue;

            } else if (*p == '"') {
                ctx->streaming.text_string = 0;
                p++;
                break;
            }

            ctx->streaming.text_bytes++;
            p++;
        }

        if (p >= last) {
            return;
        }

        q = memchr(p, ':', last - p);
        if (q == NULL) {
            return;
        }

        p = q + 1;

        if (q == start || q[-1] != '"') {
            continue;
        }

        for (k = ngx_http_llmproxy_text_keys; k->len; k++) {
            if ((size_t) (q - start) >= k->len
                && ngx_memcmp(q - k->len, k->data, k->len) == 0)
            {
                break;
            }
        }

        if (k->len == 0) {
            continue;
        }

        while (p < last && *p == ' ') {
            p++;
        }

        if (p < last && *p == '"') {
            ctx->streaming.text_string = 1;
            p++;
        }
    }
}


/*
 * A stream that ended before its usage came: about four bytes of text a
 * token for the output (what the provider reported, if more), the request
 * body likewise for the input when its count never came; the record says
 * the usage was estimated
 */

void
ngx_http_llmproxy_sse_estimate(ngx_http_llmproxy_ctx_t *ctx)
{
    int64_t  n;

    n = (int64_t) (ctx->streaming.text_bytes + 3) / 4;

    if (ctx->usage.completion_tokens < n) {
        ctx->usage.completion_tokens = n;
        ctx->usage.estimated = 1;
    }

    if (ctx->usage.prompt_tokens < 0) {
        ctx->usage.prompt_tokens = (int64_t) (ctx->req.body_len + 3) / 4;
        ctx->usage.estimated = 1;
    }

    if (ctx->usage.estimated) {
        /* the provider's total, if any, was of a partial count */
        ctx->usage.total_tokens = -1;
    }
}

/*
 * Streams rewritten on their way to the client, event by event.  A stream
 * that needs no change never comes here.  One from a provider of another
 * interface goes through the translation library as it arrives.  One
 * whose usage chunk the gateway asked for on the client's behalf (and
 * must not reach a client that did not ask for it) is cut into
 * server-sent events at their blank lines.  When a read holds whole
 * events only (the usual case), the usage chunk is cut out of the
 * upstream's buffer in place and the read goes on as it is.  Otherwise
 * every complete event is passed on as soon as it is complete, a partial
 * one waits for the rest of it, in output buffers of the filter's own,
 * recycled once sent, so the upstream's read buffer is free to be reused
 * at once.  In every case what was written is sent at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_upstream.h"

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


static ngx_uint_t ngx_http_llmproxy_sse_clean(ngx_http_request_t *r,
    ngx_chain_t *in);
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
        && ngx_http_llmproxy_sse_clean(r, in))
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


/*
 * Only complete events: the usage chunk, if any, is cut out of the
 * buffer in place, and the buffers go on as they are.  They are the
 * upstream's own (its read buffer, which the gateway allocated): moving
 * the rest of one buffer over the chunk touches only that buffer's bytes
 * (the relay buffers of ngx_http_llmproxy_relay_buf() and copy_filter).
 * Before, a buffer with the usage chunk was checked here, then copied
 * whole into the partial-event buffer, checked event by event again and
 * copied again into an output buffer.  0: a partial event, or a buffer
 * of another kind: the caller takes the events one by one (a usage chunk
 * cut here already is simply not there any more).
 */

static ngx_uint_t
ngx_http_llmproxy_sse_clean(ngx_http_request_t *r, ngx_chain_t *in)
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

            if (end == 0) {
                return 0;
            }

            if (!ngx_http_llmproxy_sse_is_usage_only(p, p + end)) {
                p += end;
                continue;
            }

            if (b->in_file || r->upstream == NULL
                || b->tag != r->upstream->output.tag)
            {
                return 0;
            }

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llmproxy: stream usage chunk of %uz bytes "
                           "cut in place", end);

            ngx_memmove(p, p + end, last - (p + end));
            last -= end;
            b->last = last;

            if (b->pos == b->last) {
                /*
                 * nothing left: a flush only, as an empty buffer in
                 * memory is an error to the write filter; the upstream
                 * marks it as memory again when it reuses it
                 */
                b->memory = 0;
                b->flush = 1;
            }
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

    /*
     * most events have no empty array at all: one memchr() per '[' tells
     * them apart before any member is looked for
     */

    q = p;

    for ( ;; ) {
        q = memchr(q, '[', last - q);

        if (q == NULL) {
            return 0;
        }

        for (q++; q < last && (*q == ' ' || *q == '\n' || *q == '\r'); q++) {
            /* void */
        }

        if (q < last && *q == ']') {
            break;
        }

        if (q == last) {
            return 0;
        }
    }

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


/*
 * Where the value after a member name (quotes and colon included) starts,
 * blanks skipped: the first colon that ends the name.  Found colon by
 * colon with memchr, as memmem() set up its search tables on every call
 * (a third of the stream filter's instructions).
 */

static u_char *
ngx_http_llmproxy_sse_after(u_char *p, u_char *last, const char *name,
    size_t len)
{
    u_char  *q, *start;

    start = p;

    /* the name without its colon: the bytes before a colon */
    len--;

    for ( ;; ) {
        q = memchr(p, ':', last - p);

        if (q == NULL) {
            return NULL;
        }

        p = q + 1;

        if ((size_t) (q - start) >= len
            && q[-1] == '"'
            && q[-(ssize_t) len] == '"'
            && ngx_memcmp(q - len, name, len) == 0)
        {
            break;
        }
    }

    for (q = p; q < last && (*q == ' ' || *q == '\t'); q++) {
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

#define ngx_http_llmproxy_sse_key(q, n, name)                               \
    ((n) >= sizeof(name) + 1                                                  \
     && (q)[-(ssize_t) sizeof(name) - 1] == '"'                              \
     && (q)[-(ssize_t) sizeof(name)] == (name)[0]                             \
     && ngx_memcmp((q) - sizeof(name), name, sizeof(name) - 1) == 0)


/*
 * Whether the member name that ends just before the colon q (n bytes
 * after the start of the read) is one of the text members: content, text,
 * thinking, partial_json, arguments, reasoning_content, refusal.  Tried
 * by the name's last letter, so that most names cost one compare.
 */

static ngx_inline ngx_uint_t
ngx_http_llmproxy_sse_text_key(u_char *q, size_t n)
{
    switch (q[-2]) {

    case 't':
        return ngx_http_llmproxy_sse_key(q, n, "content")
               || ngx_http_llmproxy_sse_key(q, n, "text")
               || ngx_http_llmproxy_sse_key(q, n, "reasoning_content");

    case 'g':
        return ngx_http_llmproxy_sse_key(q, n, "thinking");

    case 'n':
        return ngx_http_llmproxy_sse_key(q, n, "partial_json");

    case 's':
        return ngx_http_llmproxy_sse_key(q, n, "arguments");

    case 'l':
        return ngx_http_llmproxy_sse_key(q, n, "refusal");

    default:
        return 0;
    }
}


void
ngx_http_llmproxy_sse_count(ngx_http_llmproxy_ctx_t *ctx, u_char *p,
    u_char *last)
{
    u_char      *q, *s, *start;
    size_t       bytes;
    ngx_uint_t   state;

    /*
     * every byte of a stream comes here: the state is kept in locals
     * (through ctx, every byte was a load and a store the compiler could
     * not keep in a register), a text value is skipped a run at a time,
     * and a member name is compared only with the keys of its last letter
     */

    start = p;
    state = ctx->streaming.text_string;
    bytes = ctx->streaming.text_bytes;

    for ( ;; ) {

        /* in a text value: to its closing quote, escapes skipped */

        while (state && p < last) {

            if (state == 2) {
                /* the escaped character counts */
                state = 1;
                bytes++;
                p++;
                continue;
            }

            for (s = p; p < last && *p != '"' && *p != '\\'; p++) {
                /* void */
            }

            bytes += p - s;

            if (p == last) {
                break;
            }

            p++;

            if (p[-1] == '\\') {
                state = 2;

            } else {
                state = 0;
            }
        }

        if (p >= last) {
            break;
        }

        q = memchr(p, ':', last - p);
        if (q == NULL) {
            break;
        }

        p = q + 1;

        if (q == start || q[-1] != '"') {
            continue;
        }

        if (!ngx_http_llmproxy_sse_text_key(q, q - start)) {
            continue;
        }

        while (p < last && *p == ' ') {
            p++;
        }

        if (p < last && *p == '"') {
            state = 1;
            p++;
        }
    }

    ctx->streaming.text_string = state;
    ctx->streaming.text_bytes = bytes;
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

/*
 * Usage records in COPY's binary format: the log phase writes a record as
 * one tuple, the writer reads the tuples back for the cost by key.  Binary
 * rather than text: PostgreSQL takes each value as it is stored (no
 * parsing of timestamps, uuids and numbers, about a quarter of its time in
 * a text COPY), and the gateway writes them without printf.
 *
 * A tuple: a 16-bit count of fields, then each field as a 32-bit length
 * (-1: NULL) and its bytes, integers in network order.  A batch holds
 * tuples only; the stream's header and trailer are added when it is sent
 * or spilled.  Text fields are made valid UTF-8 without NUL bytes, as
 * PostgreSQL would refuse the whole COPY for one bad byte in a model name
 * a client sent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"

#include <llmp_iface.h>

#include "ngx_http_llmproxy_usage_records.h"


#define NGX_HTTP_LLMPROXY_PG_EPOCH   946684800     /* 2000-01-01, Unix */


const u_char  ngx_http_llmproxy_copy_header[NGX_HTTP_LLMPROXY_COPY_HEADER] =
    "PGCOPY\n\377\r\n\0" "\0\0\0\0" "\0\0\0\0";


/* a record's tokens, as written */

typedef struct {
    int64_t                         prompt;
    int64_t                         completion;
    int64_t                         total;
    int64_t                         read;        /* from the cache */
    int64_t                         written;     /* to the cache */
    int64_t                         hour;        /* of those, for 1 hour */
    int64_t                         reasoning;
} ngx_http_llmproxy_tuple_tokens_t;


static void ngx_http_llmproxy_tuple_count(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_tuple_tokens_t *t);
static u_char *ngx_http_llmproxy_tuple_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *id, u_char *p, u_char *last);
static u_char *ngx_http_llmproxy_tuple_outcome(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_tuple_tokens_t *t,
    u_char *p, u_char *last);
static u_char *ngx_http_llmproxy_tuple_kinds(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_tuple_tokens_t *t, u_char *p);
static u_char *ngx_http_llmproxy_copy_text(u_char *p, u_char *last,
    u_char *s, size_t len, size_t max);
static ngx_uint_t ngx_http_llmproxy_utf8_char(u_char *s, u_char *end);
static ngx_int_t ngx_http_llmproxy_uuid_bytes(u_char *id, ngx_str_t *s);


/* fields of fixed size: the length, then the value */

static ngx_inline u_char *
ngx_http_llmproxy_field_null(u_char *p)
{
    return ngx_http_llmproxy_put32(p, 0xffffffff);
}


static ngx_inline u_char *
ngx_http_llmproxy_field_int4(u_char *p, int64_t v)
{
    v = ngx_min(ngx_max(v, 0), NGX_MAX_INT32_VALUE);

    p = ngx_http_llmproxy_put32(p, 4);
    return ngx_http_llmproxy_put32(p, (uint32_t) v);
}


static ngx_inline u_char *
ngx_http_llmproxy_field_int8(u_char *p, int64_t v)
{
    p = ngx_http_llmproxy_put32(p, 8);
    return ngx_http_llmproxy_put64(p, (uint64_t) v);
}


static ngx_inline u_char *
ngx_http_llmproxy_field_float8(u_char *p, double v)
{
    uint64_t  bits;

    ngx_memcpy(&bits, &v, sizeof(double));

    p = ngx_http_llmproxy_put32(p, 8);
    return ngx_http_llmproxy_put64(p, bits);
}


/*
 * The request's record as one tuple, in the order of
 * NGX_HTTP_LLMPROXY_COLUMNS: request_id, created_at, key_hash, key_alias,
 * model, deployment, interface, endpoint, stream, status, prompt_tokens,
 * completion_tokens, total_tokens, cost (NULL: unpriced), latency_ms,
 * ttfb_ms, attempts, fallbacks, error, cache_read_tokens,
 * cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
 * unpriced, usage_estimated (schema 8).  NULL: no request id, or no
 * room (last - p must be at least
 * NGX_HTTP_LLMPROXY_RECORD_MAX).
 */

u_char *
ngx_http_llmproxy_records_tuple(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *p, u_char *last)
{
    u_char                             id[16];
    ngx_http_llmproxy_tuple_tokens_t   t;

    if (last - p < NGX_HTTP_LLMPROXY_RECORD_MAX
        || ngx_http_llmproxy_uuid_bytes(id, &ctx->request_id) != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llmproxy: usage record: no room or no request id");
        return NULL;
    }

    ngx_http_llmproxy_tuple_count(ctx, &t);

    p = ngx_http_llmproxy_put16(p, NGX_HTTP_LLMPROXY_COPY_FIELDS);
    p = ngx_http_llmproxy_tuple_request(r, ctx, id, p, last);
    p = ngx_http_llmproxy_tuple_outcome(r, ctx, &t, p, last);
    p = ngx_http_llmproxy_tuple_kinds(ctx, &t, p);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy: usage record: %L prompt, %L completion "
                   "tokens, estimated:%ui", t.prompt, t.completion,
                   (ngx_uint_t) ctx->usage.estimated);

    return p;
}


/* the tokens as recorded: none when no provider was reached */

static void
ngx_http_llmproxy_tuple_count(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_tuple_tokens_t *t)
{
    if (!ctx->up.started) {
        ngx_memzero(t, sizeof(ngx_http_llmproxy_tuple_tokens_t));
        return;
    }

    t->prompt = ngx_max(ctx->usage.prompt_tokens, 0);
    t->completion = ngx_max(ctx->usage.completion_tokens, 0);
    t->total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens
                                      : t->prompt + t->completion;

    t->read = ngx_max(ctx->usage.cache_read_tokens, 0);
    t->written = ctx->usage.cache_in_prompt
                 ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
    t->hour = ngx_min(ngx_max(ctx->usage.cache_1h_tokens, 0), t->written);
    t->reasoning = ngx_max(ctx->usage.reasoning_tokens, 0);
}


/*
 * What was asked, by whom: request_id, created_at, key_hash, key_alias,
 * model, deployment, interface, endpoint, stream
 */

static u_char *
ngx_http_llmproxy_tuple_request(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *id, u_char *p, u_char *last)
{
    int64_t      created;
    const char  *iface;

    created = ((int64_t) r->start_sec - NGX_HTTP_LLMPROXY_PG_EPOCH) * 1000000
              + (int64_t) r->start_msec * 1000;

    p = ngx_http_llmproxy_put32(p, 16);
    p = ngx_cpymem(p, id, 16);

    p = ngx_http_llmproxy_field_int8(p, created);

    if (ctx->key.master) {
        p = ngx_http_llmproxy_field_null(p);
        p = ngx_http_llmproxy_field_null(p);

    } else {
        p = ngx_http_llmproxy_put32(p, 64);
        p = ngx_hex_dump(p, ctx->key.digest, 32);
        p = ngx_http_llmproxy_copy_text(p, last, ctx->key.alias.data,
                                        ctx->key.alias.len, 256);
    }

    p = ngx_http_llmproxy_copy_text(p, last, ctx->req.model.data,
                                    ctx->req.model.len, 1024);

    if (ctx->route.current) {
        p = ngx_http_llmproxy_copy_text(p, last, ctx->route.current->id.data,
                                        ctx->route.current->id.len, 1024);

    } else {
        p = ngx_http_llmproxy_field_null(p);
    }

    iface = llmp_iface_name(ctx->req.iface);
    p = ngx_http_llmproxy_copy_text(p, last, (u_char *) iface,
                                    ngx_strlen(iface), 64);

    if (ctx->req.endpoint_path.len > 1) {
        p = ngx_http_llmproxy_copy_text(p, last,
                                        ctx->req.endpoint_path.data + 1,
                                        ctx->req.endpoint_path.len - 1, 256);

    } else {
        p = ngx_http_llmproxy_copy_text(p, last, (u_char *) "", 0, 0);
    }

    p = ngx_http_llmproxy_put32(p, 1);
    *p++ = ctx->req.stream ? 1 : 0;

    return p;
}


/*
 * How it went: status, prompt_tokens, completion_tokens, total_tokens,
 * cost (NULL: unpriced), latency_ms, ttfb_ms, attempts, fallbacks, error
 */

static u_char *
ngx_http_llmproxy_tuple_outcome(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_http_llmproxy_tuple_tokens_t *t,
    u_char *p, u_char *last)
{
    ngx_uint_t  status;

    status = r->err_status ? r->err_status : r->headers_out.status;

    p = ngx_http_llmproxy_field_int4(p, status);
    p = ngx_http_llmproxy_field_int8(p, t->prompt);
    p = ngx_http_llmproxy_field_int8(p, t->completion);
    p = ngx_http_llmproxy_field_int8(p, t->total);

    if (ctx->usage.unpriced) {
        p = ngx_http_llmproxy_field_null(p);

    } else {
        p = ngx_http_llmproxy_field_float8(p, ctx->usage.cost);
    }

    p = ngx_http_llmproxy_field_int4(p, ngx_current_msec - ctx->time.start);

    if (ctx->time.ttfb) {
        p = ngx_http_llmproxy_field_int4(p, ctx->time.ttfb - 1);

    } else {
        p = ngx_http_llmproxy_field_null(p);
    }

    p = ngx_http_llmproxy_field_int4(p, ctx->route.attempts);
    p = ngx_http_llmproxy_field_int4(p, ctx->route.fallbacks);

    if (ctx->err.status && ctx->err.code) {
        p = ngx_http_llmproxy_copy_text(p, last, (u_char *) ctx->err.code,
                                        ngx_strlen(ctx->err.code), 128);

    } else {
        p = ngx_http_llmproxy_field_null(p);
    }

    return p;
}


/*
 * The token kinds (schema 6) and usage_estimated (schema 8):
 * cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens,
 * reasoning_tokens, unpriced, usage_estimated
 */

static u_char *
ngx_http_llmproxy_tuple_kinds(ngx_http_llmproxy_ctx_t *ctx,
    ngx_http_llmproxy_tuple_tokens_t *t, u_char *p)
{
    p = ngx_http_llmproxy_field_int8(p, t->read);
    p = ngx_http_llmproxy_field_int8(p, t->written);
    p = ngx_http_llmproxy_field_int8(p, t->hour);
    p = ngx_http_llmproxy_field_int8(p, t->reasoning);

    p = ngx_http_llmproxy_put32(p, 1);
    *p++ = ctx->usage.unpriced ? 1 : 0;

    p = ngx_http_llmproxy_put32(p, 1);
    *p++ = ctx->usage.estimated ? 1 : 0;

    return p;
}


/*
 * A text field: up to max bytes of s, valid UTF-8 (other bytes and NUL
 * become '?'); an empty string is NULL, as the columns have it.  The
 * caller's room covers every field at its max.
 */

static u_char *
ngx_http_llmproxy_copy_text(u_char *p, u_char *last, u_char *s, size_t len,
    size_t max)
{
    u_char      *start, *end, *limit;
    ngx_uint_t   n;

    if (len == 0) {
        return ngx_http_llmproxy_field_null(p);
    }

    start = p + 4;
    end = s + len;
    limit = start + ngx_min(max, (size_t) (last - start));
    p = start;

    while (s < end && p < limit) {
        if (*s >= 0x01 && *s < 0x80) {
            *p++ = *s++;
            continue;
        }

        n = ngx_http_llmproxy_utf8_char(s, end);

        if (n == 0) {
            *p++ = '?';
            s++;
            continue;
        }

        if ((size_t) (limit - p) < n) {
            break;
        }

        p = ngx_cpymem(p, s, n);
        s += n;
    }

    (void) ngx_http_llmproxy_put32(start - 4, (uint32_t) (p - start));

    return p;
}


/* the length of the valid UTF-8 character at s (not ASCII), or 0 */

static ngx_uint_t
ngx_http_llmproxy_utf8_char(u_char *s, u_char *end)
{
    uint32_t    c, min;
    ngx_uint_t  i, n;

    if (*s >= 0xc2 && *s <= 0xdf) {
        n = 2; c = *s & 0x1f; min = 0x80;

    } else if (*s >= 0xe0 && *s <= 0xef) {
        n = 3; c = *s & 0x0f; min = 0x800;

    } else if (*s >= 0xf0 && *s <= 0xf4) {
        n = 4; c = *s & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (end - s) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = c << 6 | (s[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" to its 16 bytes */

static ngx_int_t
ngx_http_llmproxy_uuid_bytes(u_char *id, ngx_str_t *s)
{
    u_char      c, *p, *end;
    ngx_uint_t  i, v;

    if (s->len != 36) {
        return NGX_ERROR;
    }

    end = s->data + s->len;
    v = 0;

    for (i = 0, p = s->data; p < end; p++) {
        c = *p;

        if (c == '-') {
            continue;
        }

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else {
            c |= 0x20;

            if (c < 'a' || c > 'f') {
                return NGX_ERROR;
            }

            c = c - 'a' + 10;
        }

        if (i & 1) {
            id[i / 2] = (u_char) (v << 4 | c);

        } else {
            v = c;
        }

        if (++i > 32) {
            return NGX_ERROR;
        }
    }

    return (i == 32) ? NGX_OK : NGX_ERROR;
}


/*
 * Walks a batch's tuples: their number and their number of fields (of
 * this version, or of the one before the token kinds; the same in all),
 * and for each with a key and a cost, handler(data, key, cost).
 * NGX_ERROR: the batch is not whole tuples of ours, or the handler
 * failed.
 */

ngx_int_t
ngx_http_llmproxy_copy_tuples(u_char *p, u_char *last, ngx_uint_t *count,
    ngx_uint_t *fields, ngx_int_t (*handler)(void *data, u_char *key,
    double cost), void *data)
{
    double      cost;
    u_char     *key;
    uint32_t    len;
    uint64_t    bits;
    ngx_uint_t  col, n, nf;

    n = 0;
    nf = 0;

    while (p < last) {
        if (last - p < 2) {
            return NGX_ERROR;
        }

        if (nf == 0) {
            nf = p[0] << 8 | p[1];

            if (nf != NGX_HTTP_LLMPROXY_COPY_FIELDS
                && nf != NGX_HTTP_LLMPROXY_COPY_FIELDS1)
            {
                return NGX_ERROR;
            }
        }

        if ((ngx_uint_t) (p[0] << 8 | p[1]) != nf) {
            return NGX_ERROR;
        }

        p += 2;
        key = NULL;
        cost = 0;

        for (col = 0; col < nf; col++) {
            if (last - p < 4) {
                return NGX_ERROR;
            }

            len = ngx_http_llmproxy_get32(p);
            p += 4;

            if (len == 0xffffffff) {
                continue;
            }

            if ((size_t) (last - p) < len) {
                return NGX_ERROR;
            }

            if (col == 2 && len == 64) {
                key = p;

            } else if (col == 13 && len == 8) {
                bits = (uint64_t) ngx_http_llmproxy_get32(p) << 32
                       | ngx_http_llmproxy_get32(p + 4);
                ngx_memcpy(&cost, &bits, sizeof(double));
            }

            p += len;
        }

        n++;

        if (handler && key && cost != 0 && handler(data, key, cost) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (count) {
        *count = n;
    }

    if (fields) {
        *fields = nf ? nf : NGX_HTTP_LLMPROXY_COPY_FIELDS;
    }

    return NGX_OK;
}


/*
 * Each tuple's fields to a handler: f[i].data NULL for an SQL NULL.  The
 * tuples are whole (ngx_http_llmproxy_copy_tuples found them so, or the
 * COPY took them); NGX_ERROR: they are not, or the handler failed.
 */

ngx_int_t
ngx_http_llmproxy_copy_fields(u_char *p, u_char *last,
    ngx_int_t (*handler)(void *data, ngx_http_llmproxy_field_t *f,
    ngx_uint_t n), void *data)
{
    uint32_t                   len;
    ngx_uint_t                 col, nf;
    ngx_http_llmproxy_field_t  f[NGX_HTTP_LLMPROXY_COPY_FIELDS];

    while (p < last) {
        if (last - p < 2) {
            return NGX_ERROR;
        }

        nf = p[0] << 8 | p[1];
        p += 2;

        if (nf > NGX_HTTP_LLMPROXY_COPY_FIELDS) {
            return NGX_ERROR;
        }

        for (col = 0; col < nf; col++) {
            if (last - p < 4) {
                return NGX_ERROR;
            }

            len = ngx_http_llmproxy_get32(p);
            p += 4;

            if (len == 0xffffffff) {
                f[col].data = NULL;
                f[col].len = 0;
                continue;
            }

            if ((size_t) (last - p) < len) {
                return NGX_ERROR;
            }

            f[col].data = p;
            f[col].len = len;
            p += len;
        }

        if (handler(data, f, nf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}

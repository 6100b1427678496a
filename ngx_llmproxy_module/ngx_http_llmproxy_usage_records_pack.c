/*
 * Usage records into packs (schema 10): the writer turns the tuples of a
 * transaction's new batches into rows of llmproxy_usage_packs, each up to
 * 16 records as lines of text with the texts they repeat (key hash,
 * alias, model, deployment, interface, endpoint, error) once in an array.
 * A row per record cost PostgreSQL ~3 us of CPU; a pack, small enough to
 * stay in its page uncompressed, costs it a few tenths of that a record.
 * The format is in configs/schema/010_usage_packs.sql; the view
 * llmproxy_usage reads it back.
 *
 * This runs in a thread of the pool, on the batches' memory, and builds
 * one binary COPY stream for all of them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_usage_records.h"

#include <stdlib.h>


#define NGX_HTTP_LLMPROXY_PACK_RECORDS   16
#define NGX_HTTP_LLMPROXY_PACK_TEXTS     7       /* text columns a record */
#define NGX_HTTP_LLMPROXY_PACK_STRINGS                                       \
    (NGX_HTTP_LLMPROXY_PACK_RECORDS * NGX_HTTP_LLMPROXY_PACK_TEXTS)

/*
 * A pack's row stays under PostgreSQL's 2032 bytes, above which it would
 * be compressed or moved out of its page (TOAST): lines and texts, with
 * room for the row's header and the array's.
 */
#define NGX_HTTP_LLMPROXY_PACK_SIZE      1800

/* a line's fields after the created_at offset, at most */
#define NGX_HTTP_LLMPROXY_PACK_LINE      512

#define NGX_HTTP_LLMPROXY_OID_TEXT       25

/* the tuple's columns that are texts, in the order of their fields */
static const ngx_uint_t  ngx_http_llmproxy_pack_texts[] = {
    2, 3, 4, 5, 6, 7, 18
};


typedef struct {
    /* the COPY stream: malloc()ed, grown as needed */
    u_char                         *buf;
    u_char                         *last;
    u_char                         *end;

    ngx_http_llmproxy_days_t       *days;        /* their daily totals */

    /* the pack being filled */
    ngx_uint_t                      n;
    int64_t                         at[NGX_HTTP_LLMPROXY_PACK_RECORDS];
    int64_t                         first;
    int64_t                         latest;
    ngx_str_t                       strings[NGX_HTTP_LLMPROXY_PACK_STRINGS];
    ngx_uint_t                      nstrings;
    size_t                          size;        /* lines and texts */
    ngx_uint_t                      hit[NGX_HTTP_LLMPROXY_PACK_TEXTS];

    /* each line: request id, then its fields from the third on */
    u_char                         *line[NGX_HTTP_LLMPROXY_PACK_RECORDS];
    u_char                          lines[NGX_HTTP_LLMPROXY_PACK_RECORDS]
                                         [NGX_HTTP_LLMPROXY_PACK_LINE];
    size_t                          len[NGX_HTTP_LLMPROXY_PACK_RECORDS];
} ngx_http_llmproxy_pack_t;


static ngx_int_t ngx_http_llmproxy_pack_record(void *data,
    ngx_http_llmproxy_field_t *f, ngx_uint_t n);
static u_char *ngx_http_llmproxy_pack_line(ngx_http_llmproxy_pack_t *pk,
    ngx_http_llmproxy_field_t *f, u_char *p, ngx_uint_t *added);
static ngx_uint_t ngx_http_llmproxy_pack_string(ngx_http_llmproxy_pack_t *pk,
    ngx_http_llmproxy_field_t *f, ngx_uint_t k);
static ngx_int_t ngx_http_llmproxy_pack_close(ngx_http_llmproxy_pack_t *pk);
static u_char *ngx_http_llmproxy_pack_strings(ngx_http_llmproxy_pack_t *pk,
    u_char *p);
static ngx_int_t ngx_http_llmproxy_pack_room(ngx_http_llmproxy_pack_t *pk,
    size_t size);
static u_char *ngx_http_llmproxy_pack_int(u_char *p, int64_t v);
static ngx_uint_t ngx_http_llmproxy_pack_digits(uint64_t v);
static u_char *ngx_http_llmproxy_pack_float(u_char *p, double v);


/*
 * The new batches of this version's tuples as one binary COPY stream of
 * packs (header, tuples, trailer) in *out, malloc()ed, of *len bytes;
 * *out NULL when there are none.  NGX_ERROR: out of memory, or a batch is
 * not whole tuples of ours.
 */

ngx_int_t
ngx_http_llmproxy_packs_build(ngx_http_llmproxy_batch_t *batches,
    ngx_http_llmproxy_days_t *days, u_char **out, size_t *len)
{
    size_t                      size;
    ngx_http_llmproxy_pack_t   *pk;
    ngx_http_llmproxy_batch_t  *b;

    *out = NULL;
    *len = 0;

    /* the lines need no zeroing: all before them does */

    pk = malloc(sizeof(ngx_http_llmproxy_pack_t));
    if (pk == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(pk, offsetof(ngx_http_llmproxy_pack_t, lines));
    pk->days = days;

    /* packs take less room than the tuples they hold, mostly */

    size = NGX_HTTP_LLMPROXY_COPY_HEADER + 2;

    for (b = batches; b; b = b->next) {
        size += b->last - b->data;
    }

    if (ngx_http_llmproxy_pack_room(pk, size) != NGX_OK) {
        goto failed;
    }

    pk->last = ngx_cpymem(pk->last, ngx_http_llmproxy_copy_header,
                          NGX_HTTP_LLMPROXY_COPY_HEADER);

    for (b = batches; b; b = b->next) {
        if (b->known || ngx_http_llmproxy_batch_format(b) != 0
            || b->last == b->data)
        {
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "llmproxy: packing a batch of %ui records",
                       b->records);

        if (ngx_http_llmproxy_copy_fields(b->data, b->last,
                                          ngx_http_llmproxy_pack_record, pk)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (ngx_http_llmproxy_pack_close(pk) != NGX_OK
        || ngx_http_llmproxy_pack_room(pk, 2) != NGX_OK)
    {
        goto failed;
    }

    if (pk->last - pk->buf == NGX_HTTP_LLMPROXY_COPY_HEADER) {
        free(pk->buf);
        free(pk);
        return NGX_OK;
    }

    /* the trailer: a field count of -1 */
    pk->last = ngx_http_llmproxy_put16(pk->last, 0xffff);

    *out = pk->buf;
    *len = pk->last - pk->buf;

    free(pk);

    return NGX_OK;

failed:

    free(pk->buf);
    free(pk);

    return NGX_ERROR;
}


/* one record into the pack, the pack into the stream when it is full */

static ngx_int_t
ngx_http_llmproxy_pack_record(void *data, ngx_http_llmproxy_field_t *f,
    ngx_uint_t n)
{
    ngx_http_llmproxy_pack_t *pk = data;

    u_char      *p;
    size_t       size;
    int64_t      at, span;
    ngx_uint_t   i, added, nstrings;

    if (n != NGX_HTTP_LLMPROXY_COPY_FIELDS || f[0].len != 16
        || f[1].len != 8)
    {
        return NGX_ERROR;
    }

    at = ngx_http_llmproxy_field_int(&f[1]);

    for ( ;; ) {
        if (pk->n == NGX_HTTP_LLMPROXY_PACK_RECORDS
            && ngx_http_llmproxy_pack_close(pk) != NGX_OK)
        {
            return NGX_ERROR;
        }

        nstrings = pk->nstrings;
        i = pk->n;

        p = ngx_http_llmproxy_pack_line(pk, f, pk->lines[i], &added);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /*
         * the line, its request id and tab, '\n'; then every line's
         * created_at offset, at most as long as the pack's span
         */
        size = (p - pk->lines[i]) + 33 + 1;

        if (pk->n == 0) {
            break;
        }

        span = ngx_max(pk->latest, at) - ngx_min(pk->first, at);

        if (pk->size + size + added
            + (pk->n + 1) * ngx_http_llmproxy_pack_digits(span)
            <= NGX_HTTP_LLMPROXY_PACK_SIZE)
        {
            break;
        }

        /* it does not fit: take back its texts, close the pack, again */

        pk->nstrings = nstrings;

        if (ngx_http_llmproxy_pack_close(pk) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    pk->len[i] = p - pk->lines[i];
    pk->at[i] = at;
    pk->size += size + added;

    if (pk->n == 0 || at < pk->first) {
        pk->first = at;
    }

    if (pk->n == 0 || at > pk->latest) {
        pk->latest = at;
    }

    pk->line[i] = f[0].data;
    pk->n++;

    if (pk->days) {
        return ngx_http_llmproxy_daily_add(pk->days, f, n);
    }

    return NGX_OK;
}


/*
 * A line's fields from the key hash on, each after a tab, at p; the bytes
 * of the texts it added to the pack in *added.  NULL: a text too long for
 * a line of its own pack (never for records the gateway writes).
 */

static u_char *
ngx_http_llmproxy_pack_line(ngx_http_llmproxy_pack_t *pk,
    ngx_http_llmproxy_field_t *f, u_char *p, ngx_uint_t *added)
{
    double      cost;
    uint64_t    bits;
    ngx_uint_t  col, k, s, before;

    *added = 0;
    k = 0;

    for (col = 2; col < NGX_HTTP_LLMPROXY_COPY_FIELDS; col++) {
        *p++ = '\t';

        if (f[col].data == NULL) {
            if (k < NGX_HTTP_LLMPROXY_PACK_TEXTS
                && ngx_http_llmproxy_pack_texts[k] == col)
            {
                k++;
            }

            continue;
        }

        if (k < NGX_HTTP_LLMPROXY_PACK_TEXTS
            && ngx_http_llmproxy_pack_texts[k] == col)
        {
            before = pk->nstrings;

            s = ngx_http_llmproxy_pack_string(pk, &f[col], k++);
            if (s == 0) {
                return NULL;
            }

            if (pk->nstrings != before) {
                *added += f[col].len + 4;
            }

            p = ngx_http_llmproxy_pack_int(p, (int64_t) s);
            continue;
        }

        if (col == 13 && f[col].len == 8) {
            bits = ngx_http_llmproxy_get64(f[col].data);
            ngx_memcpy(&cost, &bits, sizeof(double));
            p = ngx_http_llmproxy_pack_float(p, cost);
            continue;
        }

        if (f[col].len == 1) {
            *p++ = f[col].data[0] ? '1' : '0';
            continue;
        }

        p = ngx_http_llmproxy_pack_int(p, ngx_http_llmproxy_field_int(&f[col]));
    }

    return p;
}


/*
 * The number (1-based) of a text of column k in the pack, added if new;
 * 0: no room.  The column's last one is tried first: consecutive records
 * mostly share their key, model and deployment.
 */

static ngx_uint_t
ngx_http_llmproxy_pack_string(ngx_http_llmproxy_pack_t *pk,
    ngx_http_llmproxy_field_t *f, ngx_uint_t k)
{
    ngx_uint_t   i;
    ngx_str_t   *s;

    i = pk->hit[k];

    if (i && i <= pk->nstrings) {
        s = &pk->strings[i - 1];

        if (s->len == f->len && ngx_memcmp(s->data, f->data, f->len) == 0) {
            return i;
        }
    }

    for (i = 0; i < pk->nstrings; i++) {
        s = &pk->strings[i];

        if (s->len == f->len && ngx_memcmp(s->data, f->data, f->len) == 0) {
            pk->hit[k] = i + 1;
            return i + 1;
        }
    }

    if (pk->nstrings == NGX_HTTP_LLMPROXY_PACK_STRINGS) {
        return 0;
    }

    s = &pk->strings[pk->nstrings++];
    s->data = f->data;
    s->len = f->len;

    pk->hit[k] = pk->nstrings;

    return pk->nstrings;
}


/* the pack as a tuple of (first_at, last_at, n, strings, records) */

static ngx_int_t
ngx_http_llmproxy_pack_close(ngx_http_llmproxy_pack_t *pk)
{
    u_char      *p, *records, *start;
    size_t       size;
    ngx_uint_t   i, j;

    static u_char  hex[] = "0123456789abcdef";

    if (pk->n == 0) {
        return NGX_OK;
    }

    size = 2 + 3 * 12 + 4 + 20 + pk->nstrings * 4 + 4 + pk->size
           + pk->n * NGX_INT64_LEN;

    for (i = 0; i < pk->nstrings; i++) {
        size += pk->strings[i].len;
    }

    if (ngx_http_llmproxy_pack_room(pk, size) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_http_llmproxy_put16(pk->last, 5);

    p = ngx_http_llmproxy_put32(p, 8);
    p = ngx_http_llmproxy_put64(p, (uint64_t) pk->first);
    p = ngx_http_llmproxy_put32(p, 8);
    p = ngx_http_llmproxy_put64(p, (uint64_t) pk->latest);
    p = ngx_http_llmproxy_put32(p, 4);
    p = ngx_http_llmproxy_put32(p, (uint32_t) pk->n);

    p = ngx_http_llmproxy_pack_strings(pk, p);

    /* the records' text: its length goes before it once known */

    records = p;
    p += 4;
    start = p;

    for (i = 0; i < pk->n; i++) {
        if (i) {
            *p++ = '\n';
        }

        for (j = 0; j < 16; j++) {
            *p++ = hex[pk->line[i][j] >> 4];
            *p++ = hex[pk->line[i][j] & 0xf];
        }

        *p++ = '\t';
        p = ngx_http_llmproxy_pack_int(p, pk->at[i] - pk->first);
        p = ngx_cpymem(p, pk->lines[i], pk->len[i]);
    }

    (void) ngx_http_llmproxy_put32(records, (uint32_t) (p - start));

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "llmproxy: pack of %ui records, %ui texts, %uz bytes",
                   pk->n, pk->nstrings, (size_t) (p - pk->last));

    pk->last = p;
    pk->n = 0;
    pk->nstrings = 0;
    pk->size = 0;

    return NGX_OK;
}


/* the texts as a binary text[] of one dimension */

static u_char *
ngx_http_llmproxy_pack_strings(ngx_http_llmproxy_pack_t *pk, u_char *p)
{
    u_char      *start;
    ngx_uint_t   i;

    start = p;
    p += 4;

    p = ngx_http_llmproxy_put32(p, pk->nstrings ? 1 : 0);    /* dimensions */
    p = ngx_http_llmproxy_put32(p, 0);                        /* no NULLs */
    p = ngx_http_llmproxy_put32(p, NGX_HTTP_LLMPROXY_OID_TEXT);

    if (pk->nstrings) {
        p = ngx_http_llmproxy_put32(p, (uint32_t) pk->nstrings);
        p = ngx_http_llmproxy_put32(p, 1);                    /* lower bound */
    }

    for (i = 0; i < pk->nstrings; i++) {
        p = ngx_http_llmproxy_put32(p, (uint32_t) pk->strings[i].len);
        p = ngx_cpymem(p, pk->strings[i].data, pk->strings[i].len);
    }

    (void) ngx_http_llmproxy_put32(start, (uint32_t) (p - start - 4));

    return p;
}


static ngx_int_t
ngx_http_llmproxy_pack_room(ngx_http_llmproxy_pack_t *pk, size_t size)
{
    u_char  *buf;
    size_t   len, want;

    if ((size_t) (pk->end - pk->last) >= size) {
        return NGX_OK;
    }

    len = pk->last - pk->buf;
    want = ngx_max(2 * (size_t) (pk->end - pk->buf), len + size);
    want = ngx_max(want, 65536);

    buf = realloc(pk->buf, want);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    pk->buf = buf;
    pk->last = buf + len;
    pk->end = buf + want;

    return NGX_OK;
}


static u_char *
ngx_http_llmproxy_pack_int(u_char *p, int64_t v)
{
    u_char     *end;
    uint64_t    u, t;
    ngx_uint_t  n;

    static const u_char  pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";

    if (v >= 0 && v < 10) {                   /* most of them */
        *p++ = (u_char) ('0' + v);
        return p;
    }

    if (v < 0) {
        *p++ = '-';
        u = (uint64_t) 0 - (uint64_t) v;

    } else {
        u = (uint64_t) v;
    }

    for (n = 1, t = u; t >= 10; t /= 10) {
        n++;
    }

    end = p + n;
    p = end;

    while (u >= 100) {
        t = (u % 100) * 2;
        u /= 100;
        *--p = pairs[t + 1];
        *--p = pairs[t];
    }

    if (u >= 10) {
        *--p = pairs[u * 2 + 1];
        *--p = pairs[u * 2];

    } else {
        *--p = (u_char) ('0' + u);
    }

    return end;
}


static ngx_uint_t
ngx_http_llmproxy_pack_digits(uint64_t v)
{
    ngx_uint_t  n;

    for (n = 1; v >= 10; v /= 10) {
        n++;
    }

    return n;
}


/*
 * A float8 as a C99 hexadecimal constant ("0x1.8p-3"): exact, and made
 * without printf (a decimal that reads back exactly took snprintf() and
 * strtod(), 3,000 instructions a record).  PostgreSQL's float8in reads
 * it with the C library's strtod(), which C99 requires to take this
 * form; "NaN" and "Infinity" are its own words.
 */

static u_char *
ngx_http_llmproxy_pack_float(u_char *p, double v)
{
    int        shift;
    int64_t    exp;
    uint64_t   bits, mant;

    static u_char  hex[] = "0123456789abcdef";

    ngx_memcpy(&bits, &v, sizeof(double));

    exp = (int64_t) ((bits >> 52) & 0x7ff);
    mant = bits & 0xfffffffffffffULL;

    if (exp == 0x7ff) {
        if (mant) {
            return ngx_cpymem(p, "NaN", 3);
        }

        return (bits >> 63) ? ngx_cpymem(p, "-Infinity", 9)
                            : ngx_cpymem(p, "Infinity", 8);
    }

    if (bits >> 63) {
        *p++ = '-';
    }

    if (exp == 0 && mant == 0) {
        *p++ = '0';
        return p;
    }

    *p++ = '0';
    *p++ = 'x';
    *p++ = (exp == 0) ? '0' : '1';            /* subnormal or normal */

    if (mant) {
        *p++ = '.';

        for (shift = 48; mant; shift -= 4) {
            *p++ = hex[(mant >> shift) & 0xf];
            mant &= ((uint64_t) 1 << shift) - 1;
        }
    }

    *p++ = 'p';

    return ngx_http_llmproxy_pack_int(p, exp ? exp - 1023 : -1022);
}

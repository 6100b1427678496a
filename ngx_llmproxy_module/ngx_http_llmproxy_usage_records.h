/*
 * Usage records: what the collecting side (_usage_records.c) and the database
 * side (_usage_records_db.c) share.
 */

#ifndef _NGX_HTTP_LLMPROXY_USAGE_RECORDS_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_USAGE_RECORDS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"

#include <libpq-fe.h>


/*
 * Records as tuples of COPY's binary format (_usage_records_copy.c), with an id
 * for the batch.  A spill file left by an earlier version holds lines of
 * COPY's text format, or tuples of the 19 columns before the token kinds
 * (schema 6): such a batch is replayed into those columns, the others
 * taking their defaults.
 */

#define NGX_HTTP_LLMPROXY_COPY_HEADER   19      /* signature, flags, ext */
#define NGX_HTTP_LLMPROXY_COPY_FIELDS   25      /* columns written */
#define NGX_HTTP_LLMPROXY_COPY_FIELDS1  19      /* before the token kinds */

#define NGX_HTTP_LLMPROXY_COLUMNS1                                           \
    "request_id, created_at, key_hash, key_alias, model, deployment, "     \
    "interface, endpoint, stream, status, prompt_tokens, "                 \
    "completion_tokens, total_tokens, cost, latency_ms, ttfb_ms, "         \
    "attempts, fallbacks, error"

#define NGX_HTTP_LLMPROXY_COLUMNS                                            \
    NGX_HTTP_LLMPROXY_COLUMNS1 ", cache_read_tokens, "                      \
    "cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens, "  \
    "unpriced, usage_estimated"
#define NGX_HTTP_LLMPROXY_RECORD_MAX    4096    /* room a tuple may need */

typedef struct ngx_http_llmproxy_batch_s  ngx_http_llmproxy_batch_t;

struct ngx_http_llmproxy_batch_s {
    ngx_http_llmproxy_batch_t      *next;
    u_char                         *last;
    u_char                         *end;
    ngx_uint_t                      records;
    u_char                          id[16];      /* written once, by id */
    unsigned                        known:1;     /* found already written */
    unsigned                        text:1;      /* an old spill file */
    unsigned                        fields1:1;   /* of 19 columns */
    u_char                          data[1];
};


/* a transaction's daily totals, by day, key, model, deployment */

typedef struct ngx_http_llmproxy_days_s  ngx_http_llmproxy_days_t;


/* per key: the cost of the records a transaction wrote, and the spend */

typedef struct {
    u_char                          key[64];     /* hex SHA-256 */
    double                          cost;        /* all of them */
    double                          added;       /* of those new to it */
    double                          spend;       /* after; < 0: unknown */
    ngx_uint_t                      used;
} ngx_http_llmproxy_key_cost_t;


typedef struct {
    ngx_http_llmproxy_key_cost_t   *slots;
    ngx_uint_t                      size;        /* a power of 2 */
    ngx_uint_t                      n;
} ngx_http_llmproxy_costs_t;


/* a field of a tuple: data NULL for an SQL NULL */

typedef struct {
    u_char                         *data;
    uint32_t                        len;
} ngx_http_llmproxy_field_t;


/* integers in network order, as COPY's binary format has them */

static ngx_inline u_char *
ngx_http_llmproxy_put16(u_char *p, uint16_t v)
{
    *p++ = (u_char) (v >> 8);
    *p++ = (u_char) v;
    return p;
}


static ngx_inline u_char *
ngx_http_llmproxy_put32(u_char *p, uint32_t v)
{
    *p++ = (u_char) (v >> 24);
    *p++ = (u_char) (v >> 16);
    *p++ = (u_char) (v >> 8);
    *p++ = (u_char) v;
    return p;
}


static ngx_inline u_char *
ngx_http_llmproxy_put64(u_char *p, uint64_t v)
{
    p = ngx_http_llmproxy_put32(p, (uint32_t) (v >> 32));
    return ngx_http_llmproxy_put32(p, (uint32_t) v);
}


static ngx_inline uint32_t
ngx_http_llmproxy_get32(u_char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static ngx_inline uint64_t
ngx_http_llmproxy_get64(u_char *p)
{
    return (uint64_t) ngx_http_llmproxy_get32(p) << 32
           | ngx_http_llmproxy_get32(p + 4);
}


/* an integer field of 4 or 8 bytes; 0 for NULL or another size */

static ngx_inline int64_t
ngx_http_llmproxy_field_int(ngx_http_llmproxy_field_t *f)
{
    if (f->data == NULL) {
        return 0;
    }

    if (f->len == 4) {
        return (int32_t) ngx_http_llmproxy_get32(f->data);
    }

    return (f->len == 8) ? (int64_t) ngx_http_llmproxy_get64(f->data) : 0;
}


/*
 * What the database's schema lets the writer do: add the daily totals
 * itself (schema 9), write its records in packs (schema 10).
 */
#define NGX_HTTP_LLMPROXY_DB_DAILY      0x01
#define NGX_HTTP_LLMPROXY_DB_PACKS      0x02
#define NGX_HTTP_LLMPROXY_DB_ALL        0x03


/* 0: tuples of this version, 1: of 19 columns, 2: COPY's text */
#define ngx_http_llmproxy_batch_format(b)                                    \
    ((ngx_uint_t) ((b)->text ? 2 : (b)->fields1 ? 1 : 0))


extern const u_char
    ngx_http_llmproxy_copy_header[NGX_HTTP_LLMPROXY_COPY_HEADER];

u_char *ngx_http_llmproxy_records_tuple(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, u_char *p, u_char *last);
ngx_int_t ngx_http_llmproxy_copy_tuples(u_char *p, u_char *last,
    ngx_uint_t *count, ngx_uint_t *fields, ngx_int_t (*handler)(void *data,
    u_char *key, double cost), void *data);
ngx_int_t ngx_http_llmproxy_copy_fields(u_char *p, u_char *last,
    ngx_int_t (*handler)(void *data, ngx_http_llmproxy_field_t *f,
    ngx_uint_t n), void *data);
ngx_int_t ngx_http_llmproxy_records_db_write(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_costs_t *costs,
    ngx_uint_t schema, char *err, size_t errlen);
ngx_uint_t ngx_http_llmproxy_records_db_schema(PGconn *conn);
ngx_int_t ngx_http_llmproxy_packs_build(ngx_http_llmproxy_batch_t *batches,
    ngx_http_llmproxy_days_t *days, u_char **out, size_t *len);
ngx_http_llmproxy_days_t *ngx_http_llmproxy_daily_create(void);
void ngx_http_llmproxy_daily_free(ngx_http_llmproxy_days_t *days);
ngx_int_t ngx_http_llmproxy_daily_add(void *days,
    ngx_http_llmproxy_field_t *f, ngx_uint_t n);
ngx_int_t ngx_http_llmproxy_records_db_daily(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_days_t *days,
    ngx_uint_t packed, char *err, size_t errlen);
void ngx_http_llmproxy_costs_free(ngx_http_llmproxy_costs_t *costs);
u_char *ngx_http_llmproxy_batch_uuid(u_char *p, u_char *id);


#endif /* _NGX_HTTP_LLMPROXY_USAGE_RECORDS_H_INCLUDED_ */

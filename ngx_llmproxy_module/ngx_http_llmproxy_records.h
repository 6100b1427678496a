/*
 * Usage records: what the collecting side (_records.c) and the database
 * side (_records_db.c) share.
 */

#ifndef _NGX_HTTP_LLMPROXY_RECORDS_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_RECORDS_H_INCLUDED_


#include "ngx_http_llmproxy_module.h"

#include <libpq-fe.h>


/* records as lines of COPY's text format, with an id for the batch */

typedef struct ngx_http_llmproxy_batch_s  ngx_http_llmproxy_batch_t;

struct ngx_http_llmproxy_batch_s {
    ngx_http_llmproxy_batch_t      *next;
    u_char                         *last;
    u_char                         *end;
    ngx_uint_t                      records;
    u_char                          id[16];      /* written once, by id */
    unsigned                        known:1;     /* found already written */
    u_char                          data[1];
};


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


ngx_int_t ngx_http_llmproxy_records_db_write(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_costs_t *costs,
    char *err, size_t errlen);
void ngx_http_llmproxy_costs_free(ngx_http_llmproxy_costs_t *costs);
u_char *ngx_http_llmproxy_batch_uuid(u_char *p, u_char *id);


#endif /* _NGX_HTTP_LLMPROXY_RECORDS_H_INCLUDED_ */

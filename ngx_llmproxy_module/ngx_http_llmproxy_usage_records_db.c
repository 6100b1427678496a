/*
 * Usage records into PostgreSQL, in a thread of the pool: one transaction
 * for a group of batches.  Each batch carries an id; the ids are inserted
 * into llmproxy_usage_batches first, and only the batches whose id is new
 * are copied, so a batch written twice (its commit was
 * lost on the way back, or a spill file was replayed twice) counts once,
 * without a unique index on the records themselves.  The cost of the new
 * records is added to their keys' spend by llmproxy_usage_spend(), which
 * returns the keys' spend; the cost of every record of the transaction,
 * new or not, is what the zone no longer needs to count as pending.  The
 * dashboard's daily totals follow in the same transaction: added up here
 * (_usage_records_daily.c) when the database has schema 9, whose trigger
 * then leaves our binary COPYs alone (SET LOCAL llmproxy.usage_daily); by
 * the statement trigger of schema 5 otherwise, and for an old spill file
 * in COPY's text format.  Since schema 10 the records of this version go
 * in packs (_usage_records_pack.c) into llmproxy_usage_packs, an old
 * spill file's into llmproxy_usage_rows; before, all into the table
 * llmproxy_usage.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_usage_records.h"


/* the cost by key of one batch's records: new to the database or not */

typedef struct {
    ngx_http_llmproxy_costs_t     *costs;
    ngx_uint_t                     fresh;
} ngx_http_llmproxy_costs_ctx_t;


static ngx_int_t ngx_http_llmproxy_records_db_copy(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_uint_t fmt, ngx_uint_t rows,
    char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_records_db_packs(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_days_t *days,
    char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_records_db_send(PGconn *conn,
    const char *sql, u_char *data, size_t len, char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_records_db_ids(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_records_db_spend(PGconn *conn,
    ngx_http_llmproxy_costs_t *costs, char *err, size_t errlen);
static ngx_int_t ngx_http_llmproxy_costs_batch(
    ngx_http_llmproxy_costs_t *costs, ngx_http_llmproxy_batch_t *b);
static ngx_int_t ngx_http_llmproxy_costs_add(void *data, u_char *key,
    double cost);
static ngx_int_t ngx_http_llmproxy_costs_text(
    ngx_http_llmproxy_costs_ctx_t *cc, ngx_http_llmproxy_batch_t *b);
static ngx_http_llmproxy_key_cost_t *ngx_http_llmproxy_costs_get(
    ngx_http_llmproxy_costs_t *costs, u_char *key);
static ngx_int_t ngx_http_llmproxy_records_db_exec(PGconn *conn,
    const char *sql, char *err, size_t errlen);


/*
 * What this database's schema leaves to the writer: the daily totals
 * (schema 9: its trigger leaves our COPYs alone), packs (schema 10)
 */

ngx_uint_t
ngx_http_llmproxy_records_db_schema(PGconn *conn)
{
    char        *v;
    PGresult    *res;
    ngx_uint_t   schema;

    res = PQexec(conn, "SELECT to_regprocedure("
                       "'llmproxy_usage_daily_merge(json)') IS NOT NULL,"
                       " to_regclass('llmproxy_usage_packs') IS NOT NULL");

    schema = 0;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && PQnfields(res) == 2)
    {
        v = PQgetvalue(res, 0, 0);
        schema |= (v[0] == 't') ? NGX_HTTP_LLMPROXY_DB_DAILY : 0;

        v = PQgetvalue(res, 0, 1);
        schema |= (v[0] == 't') ? NGX_HTTP_LLMPROXY_DB_PACKS : 0;
    }

    PQclear(res);

    return schema;
}


/*
 * NGX_OK; NGX_DECLINED: the database refused the data itself (and will
 * again); NGX_ERROR: the connection failed (the caller closes it)
 */

ngx_int_t
ngx_http_llmproxy_records_db_write(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_costs_t *costs,
    ngx_uint_t schema, char *err, size_t errlen)
{
    PGresult                   *res;
    ngx_int_t                   rc;
    ngx_uint_t                  fresh, fmt, daily, packs, packed;
    ngx_http_llmproxy_days_t   *days;
    ngx_http_llmproxy_batch_t  *b;

    daily = schema & NGX_HTTP_LLMPROXY_DB_DAILY;
    packs = schema & NGX_HTTP_LLMPROXY_DB_PACKS;
    packed = 0;
    days = NULL;

    if (daily) {
        days = ngx_http_llmproxy_daily_create();
        if (days == NULL) {
            ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
            return NGX_DECLINED;
        }
    }

    rc = ngx_http_llmproxy_records_db_exec(conn,
             daily ? "BEGIN; SET LOCAL llmproxy.usage_daily = 'writer'"
                   : "BEGIN",
             err, errlen);
    if (rc != NGX_OK) {
        ngx_http_llmproxy_daily_free(days);
        return NGX_ERROR;
    }

    rc = ngx_http_llmproxy_records_db_ids(conn, batches, err, errlen);
    if (rc != NGX_OK) {
        goto failed;
    }

    /*
     * our batches in one binary COPY, of packs since schema 10; an old
     * spill file (binary of fewer columns, or text) in another, of rows
     */

    for (fmt = 0; fmt < 3; fmt++) {
        fresh = 0;

        for (b = batches; b; b = b->next) {
            fresh += (!b->known && ngx_http_llmproxy_batch_format(b) == fmt
                      && b->last > b->data);
        }

        if (fresh == 0) {
            continue;
        }

        if (fmt == 2 && daily) {
            /* COPY's text is not read back here: the trigger adds it */
            rc = ngx_http_llmproxy_records_db_exec(conn,
                     "SET LOCAL llmproxy.usage_daily = ''", err, errlen);
            if (rc != NGX_OK) {
                goto failed;
            }
        }

        if (fmt == 0 && packs) {
            /* the packs' pass over the tuples adds their daily totals */
            rc = ngx_http_llmproxy_records_db_packs(conn, batches, days, err,
                                                    errlen);
            packed = 1;

        } else {
            rc = ngx_http_llmproxy_records_db_copy(conn, batches, fmt, packs,
                                                   err, errlen);
        }

        if (rc == NGX_ERROR) {
            ngx_http_llmproxy_daily_free(days);
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            goto failed;
        }
    }

    for (b = batches; b; b = b->next) {
        if (ngx_http_llmproxy_costs_batch(costs, b) != NGX_OK) {
            ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
            rc = NGX_DECLINED;
            goto failed;
        }
    }

    if (daily) {
        rc = ngx_http_llmproxy_records_db_daily(conn, batches, days, packed,
                                                err, errlen);
        if (rc != NGX_OK) {
            goto failed;
        }
    }

    rc = ngx_http_llmproxy_records_db_spend(conn, costs, err, errlen);
    if (rc != NGX_OK) {
        goto failed;
    }

    ngx_http_llmproxy_daily_free(days);
    days = NULL;

    if (ngx_http_llmproxy_records_db_exec(conn, "COMMIT", err, errlen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_http_llmproxy_daily_free(days);
    ngx_http_llmproxy_costs_free(costs);

    res = PQexec(conn, "ROLLBACK");
    PQclear(res);

    return (PQstatus(conn) == CONNECTION_OK) ? rc : NGX_ERROR;
}


/*
 * The new batches of one format as rows: into llmproxy_usage_rows since
 * schema 10 (rows), into the table llmproxy_usage before.  NGX_DECLINED:
 * the data refused; NGX_ERROR: the connection failed.
 */

static ngx_int_t
ngx_http_llmproxy_records_db_copy(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_uint_t fmt, ngx_uint_t rows,
    char *err, size_t errlen)
{
    u_char                     *data, *p;
    size_t                      len;
    ngx_int_t                   rc;
    ngx_uint_t                  text;
    ngx_http_llmproxy_batch_t  *b;

    /* by column names: the table may have more than a format writes */

    static const char  *copy[2][3] = {
        {
            "COPY llmproxy_usage (" NGX_HTTP_LLMPROXY_COLUMNS ")"
            " FROM STDIN (FORMAT binary)",
            "COPY llmproxy_usage (" NGX_HTTP_LLMPROXY_COLUMNS1 ")"
            " FROM STDIN (FORMAT binary)",
            "COPY llmproxy_usage (" NGX_HTTP_LLMPROXY_COLUMNS1 ") FROM STDIN"
        },
        {
            "COPY llmproxy_usage_rows (" NGX_HTTP_LLMPROXY_COLUMNS ")"
            " FROM STDIN (FORMAT binary)",
            "COPY llmproxy_usage_rows (" NGX_HTTP_LLMPROXY_COLUMNS1 ")"
            " FROM STDIN (FORMAT binary)",
            "COPY llmproxy_usage_rows (" NGX_HTTP_LLMPROXY_COLUMNS1 ")"
            " FROM STDIN"
        }
    };

    text = (fmt == 2);

    /* one stream: the binary header, the batches' tuples, the trailer */

    len = text ? 0 : NGX_HTTP_LLMPROXY_COPY_HEADER + 2;

    for (b = batches; b; b = b->next) {
        if (!b->known && ngx_http_llmproxy_batch_format(b) == fmt) {
            len += b->last - b->data;
        }
    }

    data = malloc(len ? len : 1);
    if (data == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_DECLINED;
    }

    p = data;

    if (!text) {
        p = ngx_cpymem(p, ngx_http_llmproxy_copy_header,
                       NGX_HTTP_LLMPROXY_COPY_HEADER);
    }

    for (b = batches; b; b = b->next) {
        if (!b->known && ngx_http_llmproxy_batch_format(b) == fmt) {
            p = ngx_cpymem(p, b->data, b->last - b->data);
        }
    }

    if (!text) {
        p = ngx_http_llmproxy_put16(p, 0xffff);
    }

    rc = ngx_http_llmproxy_records_db_send(conn, copy[rows ? 1 : 0][fmt],
                                           data, p - data, err, errlen);
    free(data);

    return rc;
}


/* the new batches of this version's tuples as packs (schema 10) */

static ngx_int_t
ngx_http_llmproxy_records_db_packs(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_days_t *days,
    char *err, size_t errlen)
{
    u_char     *data;
    size_t      len;
    ngx_int_t   rc;

    if (ngx_http_llmproxy_packs_build(batches, days, &data, &len) != NGX_OK) {
        ngx_cpystrn((u_char *) err,
                    (u_char *) "out of memory, or a batch not whole", errlen);
        return NGX_DECLINED;
    }

    if (data == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_llmproxy_records_db_send(conn,
             "COPY llmproxy_usage_packs (first_at, last_at, n, strings,"
             " records) FROM STDIN (FORMAT binary)",
             data, len, err, errlen);
    free(data);

    return rc;
}


/*
 * A whole COPY stream to a COPY statement.  NGX_DECLINED: the statement
 * or the data refused; NGX_ERROR: the connection failed.
 */

static ngx_int_t
ngx_http_llmproxy_records_db_send(PGconn *conn, const char *sql,
    u_char *data, size_t len, char *err, size_t errlen)
{
    PGresult   *res;
    ngx_int_t   rc;

    res = PQexec(conn, sql);
    rc = (PQresultStatus(res) == PGRES_COPY_IN) ? NGX_OK : NGX_DECLINED;

    if (rc != NGX_OK) {
        ngx_cpystrn((u_char *) err, (u_char *) PQresultErrorMessage(res),
                    errlen);
    }

    PQclear(res);

    if (rc != NGX_OK) {
        return (PQstatus(conn) == CONNECTION_OK) ? NGX_DECLINED : NGX_ERROR;
    }

    if ((len && PQputCopyData(conn, (char *) data, (int) len) != 1)
        || PQputCopyEnd(conn, NULL) != 1)
    {
        ngx_cpystrn((u_char *) err, (u_char *) PQerrorMessage(conn), errlen);
        return NGX_ERROR;
    }

    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            ngx_cpystrn((u_char *) err, (u_char *) PQresultErrorMessage(res),
                        errlen);
            rc = NGX_DECLINED;
        }

        PQclear(res);
    }

    return rc;
}


/* registers the batches' ids; the ones already there are "known" */

static ngx_int_t
ngx_http_llmproxy_records_db_ids(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, char *err, size_t errlen)
{
    int                         i, n;
    u_char                     *p, *list, id[36];
    size_t                      len;
    PGresult                   *res;
    ngx_int_t                   rc;
    const char                 *values[1];
    ngx_http_llmproxy_batch_t  *b;

    len = 3;

    for (b = batches; b; b = b->next) {
        len += 37;
    }

    list = malloc(len);
    if (list == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_DECLINED;
    }

    p = list;
    *p++ = '{';

    for (b = batches; b; b = b->next) {
        if (b != batches) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_batch_uuid(p, b->id);
        b->known = 1;
    }

    *p++ = '}';
    *p = '\0';

    values[0] = (char *) list;

    res = PQexecParams(conn,
                       "INSERT INTO llmproxy_usage_batches (batch_id)"
                       " SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING"
                       " RETURNING batch_id::text",
                       1, NULL, values, NULL, NULL, 0);

    free(list);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_cpystrn((u_char *) err, (u_char *) PQresultErrorMessage(res),
                    errlen);
        PQclear(res);
        return NGX_DECLINED;
    }

    n = PQntuples(res);
    rc = NGX_OK;

    for (i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) != 36) {
            continue;
        }

        for (b = batches; b; b = b->next) {
            (void) ngx_http_llmproxy_batch_uuid(id, b->id);

            if (ngx_strncmp(id, PQgetvalue(res, i, 0), 36) == 0) {
                b->known = 0;
                break;
            }
        }
    }

    PQclear(res);

    return rc;
}


/* the keys' new cost into their spend; their spend comes back */

static ngx_int_t
ngx_http_llmproxy_records_db_spend(PGconn *conn,
    ngx_http_llmproxy_costs_t *costs, char *err, size_t errlen)
{
    int                            i, n;
    u_char                        *keys, *amounts, *k, *a;
    PGresult                      *res;
    ngx_uint_t                     j, count;
    const char                    *values[2];
    ngx_http_llmproxy_key_cost_t  *c;

    count = 0;

    for (j = 0; j < costs->size; j++) {
        count += (costs->slots[j].used && costs->slots[j].added != 0);
    }

    if (count == 0) {
        return NGX_OK;
    }

    keys = malloc(count * 65 + 3);
    amounts = malloc(count * 32 + 3);

    if (keys == NULL || amounts == NULL) {
        free(keys);
        free(amounts);
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        return NGX_DECLINED;
    }

    k = keys;
    a = amounts;
    *k++ = '{';
    *a++ = '{';

    for (j = 0; j < costs->size; j++) {
        c = &costs->slots[j];

        if (!c->used || c->added == 0) {
            continue;
        }

        if (k > keys + 1) {
            *k++ = ',';
            *a++ = ',';
        }

        k = ngx_cpymem(k, c->key, 64);
        a = ngx_snprintf(a, 31, "%.12f", c->added);
    }

    *k++ = '}';
    *a++ = '}';
    *k = '\0';
    *a = '\0';

    values[0] = (char *) keys;
    values[1] = (char *) amounts;

    res = PQexecParams(conn,
                       "SELECT key_hash, spend FROM"
                       " llmproxy_usage_spend($1::text[], $2::float8[])",
                       2, NULL, values, NULL, NULL, 0);

    free(keys);
    free(amounts);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_cpystrn((u_char *) err, (u_char *) PQresultErrorMessage(res),
                    errlen);
        PQclear(res);
        return NGX_DECLINED;
    }

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) != 64) {
            continue;
        }

        c = ngx_http_llmproxy_costs_get(costs,
                                        (u_char *) PQgetvalue(res, i, 0));
        if (c) {
            c->spend = strtod(PQgetvalue(res, i, 1), NULL);
        }
    }

    PQclear(res);

    return NGX_OK;
}


/* the cost of a batch's records by key */

static ngx_int_t
ngx_http_llmproxy_costs_add(void *data, u_char *key, double cost)
{
    ngx_http_llmproxy_costs_ctx_t *cc = data;

    ngx_http_llmproxy_key_cost_t  *c;

    c = ngx_http_llmproxy_costs_get(cc->costs, key);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->cost += cost;

    if (cc->fresh) {
        c->added += cost;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_costs_batch(ngx_http_llmproxy_costs_t *costs,
    ngx_http_llmproxy_batch_t *b)
{
    ngx_http_llmproxy_costs_ctx_t  cc;

    cc.costs = costs;
    cc.fresh = !b->known;

    if (b->text) {
        return ngx_http_llmproxy_costs_text(&cc, b);
    }

    /* not whole tuples would have been refused by the COPY */

    return ngx_http_llmproxy_copy_tuples(b->data, b->last, NULL, NULL,
                                         ngx_http_llmproxy_costs_add, &cc);
}


/*
 * An old spill file's lines: the third column is the key's hash (\N for
 * the master key), the fourteenth the cost
 */

static ngx_int_t
ngx_http_llmproxy_costs_text(ngx_http_llmproxy_costs_ctx_t *cc,
    ngx_http_llmproxy_batch_t *b)
{
    u_char      *p, *line, *end, *key, *tab;
    double       cost;
    ngx_uint_t   col;

    for (line = b->data; line < b->last; line = end + 1) {
        end = memchr(line, '\n', b->last - line);
        if (end == NULL) {
            break;
        }

        key = NULL;
        cost = 0;
        p = line;

        for (col = 0; col < 14 && p < end; col++) {
            tab = memchr(p, '\t', end - p);
            if (tab == NULL) {
                tab = end;
            }

            if (col == 2 && tab - p == 64) {
                key = p;

            } else if (col == 13) {
                cost = strtod((char *) p, NULL);
            }

            p = tab + 1;
        }

        if (key && cost != 0
            && ngx_http_llmproxy_costs_add(cc, key, cost) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the slot of a key, added when missing; NULL: out of memory */

static ngx_http_llmproxy_key_cost_t *
ngx_http_llmproxy_costs_get(ngx_http_llmproxy_costs_t *costs, u_char *key)
{
    ngx_uint_t                     i, j, size;
    ngx_http_llmproxy_key_cost_t  *slots, *c;

    if (costs->n * 2 >= costs->size) {
        size = costs->size ? costs->size * 2 : 64;

        slots = calloc(size, sizeof(ngx_http_llmproxy_key_cost_t));
        if (slots == NULL) {
            return NULL;
        }

        for (i = 0; i < costs->size; i++) {
            if (!costs->slots[i].used) {
                continue;
            }

            j = ngx_hash_key(costs->slots[i].key, 16) & (size - 1);

            while (slots[j].used) {
                j = (j + 1) & (size - 1);
            }

            slots[j] = costs->slots[i];
        }

        free(costs->slots);
        costs->slots = slots;
        costs->size = size;
    }

    /* hex of a uniform digest: its first characters spread well */

    j = ngx_hash_key(key, 16) & (costs->size - 1);

    for ( ;; ) {
        c = &costs->slots[j];

        if (!c->used) {
            ngx_memcpy(c->key, key, 64);
            c->spend = -1;
            c->used = 1;
            costs->n++;
            return c;
        }

        if (ngx_strncmp(c->key, key, 64) == 0) {
            return c;
        }

        j = (j + 1) & (costs->size - 1);
    }
}


void
ngx_http_llmproxy_costs_free(ngx_http_llmproxy_costs_t *costs)
{
    free(costs->slots);
    costs->slots = NULL;
    costs->size = 0;
    costs->n = 0;
}


/* 16 bytes as a UUID's text */

u_char *
ngx_http_llmproxy_batch_uuid(u_char *p, u_char *id)
{
    p = ngx_hex_dump(p, id, 4);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 4, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 6, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, id + 8, 2);
    *p++ = '-';

    return ngx_hex_dump(p, id + 10, 6);
}


static ngx_int_t
ngx_http_llmproxy_records_db_exec(PGconn *conn, const char *sql, char *err,
    size_t errlen)
{
    PGresult        *res;
    ExecStatusType   st;

    res = PQexec(conn, sql);
    st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK) {
        ngx_cpystrn((u_char *) err,
                    (u_char *) (res ? PQresultErrorMessage(res)
                                    : PQerrorMessage(conn)),
                    errlen);
    }

    PQclear(res);

    return (st == PGRES_COMMAND_OK) ? NGX_OK : NGX_ERROR;
}

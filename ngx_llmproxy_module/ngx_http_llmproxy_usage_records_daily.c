/*
 * The daily totals (llmproxy_usage_daily, schema 5) of a transaction's new
 * records, added up by the writer itself (schema 9): one row per UTC day,
 * key, model and deployment, sent to llmproxy_usage_daily_merge() as JSON.
 * PostgreSQL's statement trigger did the same over every COPY's rows, at
 * about 0.4 us of its CPU a record; here it costs a pass over tuples the
 * writer reads anyway, in a thread of the pool.  What the trigger does is
 * the contract: the same groups, sums, cumulative latency histogram, and
 * a cost that is the priced records' (an unpriced record's is NULL).
 */

#include "ngx_http_llmproxy_usage_records.h"

#include <math.h>


#define NGX_HTTP_LLMPROXY_DAILY_BOUNDS  19


/* the histogram's bounds, as llmproxy_usage_bounds() (schema 5) */

static const int64_t  ngx_http_llmproxy_daily_bounds[] = {
    25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500,
    10000, 15000, 20000, 30000, 60000, 120000
};


typedef struct {
    ngx_uint_t                      used;
    uint32_t                        hash;
    int64_t                         day;         /* since 1970-01-01 */
    ngx_http_llmproxy_field_t       key;         /* data NULL: '' */
    ngx_http_llmproxy_field_t       model;
    ngx_http_llmproxy_field_t       deployment;  /* data NULL: '' */
    ngx_http_llmproxy_field_t       alias;       /* the last one seen */
    int64_t                         requests;
    int64_t                         errors;
    int64_t                         prompt;
    int64_t                         completion;
    double                          cost;
    int64_t                         latency_sum;
    int64_t                         latency_max;
    int64_t                         below[NGX_HTTP_LLMPROXY_DAILY_BOUNDS + 1];
    int64_t                         read;
    int64_t                         creation;
    int64_t                         reasoning;
    int64_t                         unpriced;
} ngx_http_llmproxy_day_t;


struct ngx_http_llmproxy_days_s {
    ngx_http_llmproxy_day_t        *slots;
    ngx_uint_t                      size;        /* a power of 2 */
    ngx_uint_t                      n;
    ngx_http_llmproxy_day_t        *last;        /* the last record's */
};


static ngx_http_llmproxy_day_t *ngx_http_llmproxy_daily_get(
    ngx_http_llmproxy_days_t *days, int64_t day,
    ngx_http_llmproxy_field_t *f);
static ngx_int_t ngx_http_llmproxy_daily_grow(
    ngx_http_llmproxy_days_t *days);
static u_char *ngx_http_llmproxy_daily_json(ngx_http_llmproxy_days_t *days);
static u_char *ngx_http_llmproxy_daily_row(u_char *p,
    ngx_http_llmproxy_day_t *d);
static u_char *ngx_http_llmproxy_json_str(u_char *p,
    ngx_http_llmproxy_field_t *s);


ngx_http_llmproxy_days_t *
ngx_http_llmproxy_daily_create(void)
{
    return calloc(1, sizeof(ngx_http_llmproxy_days_t));
}


void
ngx_http_llmproxy_daily_free(ngx_http_llmproxy_days_t *days)
{
    if (days) {
        free(days->slots);
        free(days);
    }
}


/*
 * The totals of the new batches of our binary formats (COPY's text of an
 * old spill file is left to the trigger), into the database.  The
 * batches of this version's tuples are in days already when "packed" (the
 * writer added them as it made the packs): only the others are read.
 * NGX_DECLINED: refused or out of memory.
 */

ngx_int_t
ngx_http_llmproxy_records_db_daily(PGconn *conn,
    ngx_http_llmproxy_batch_t *batches, ngx_http_llmproxy_days_t *days,
    ngx_uint_t packed, char *err, size_t errlen)
{
    u_char                     *json;
    PGresult                   *res;
    ngx_int_t                   rc;
    const char                 *values[1];
    ngx_http_llmproxy_batch_t  *b;

    rc = NGX_OK;

    for (b = batches; b && rc == NGX_OK; b = b->next) {
        if (b->known || b->text || (packed && !b->fields1)) {
            continue;
        }

        rc = ngx_http_llmproxy_copy_fields(b->data, b->last,
                                           ngx_http_llmproxy_daily_add,
                                           days);
    }

    if (rc != NGX_OK) {
        ngx_cpystrn((u_char *) err, (u_char *) "daily totals: out of memory",
                    errlen);
        return NGX_DECLINED;
    }

    if (days->n == 0) {
        return NGX_OK;
    }

    json = ngx_http_llmproxy_daily_json(days);

    if (json == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "daily totals: out of memory",
                    errlen);
        return NGX_DECLINED;
    }

    values[0] = (char *) json;

    res = PQexecParams(conn, "SELECT llmproxy_usage_daily_merge($1::json)",
                       1, NULL, values, NULL, NULL, 0);

    free(json);

    rc = NGX_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_cpystrn((u_char *) err, (u_char *) PQresultErrorMessage(res),
                    errlen);
        rc = NGX_DECLINED;
    }

    PQclear(res);

    return rc;
}


/* one record into its day's totals (a handler of copy_fields) */

ngx_int_t
ngx_http_llmproxy_daily_add(void *data, ngx_http_llmproxy_field_t *f,
    ngx_uint_t n)
{
    ngx_http_llmproxy_days_t *days = data;

    double                    cost;
    int64_t                   created, day, latency;
    uint64_t                  bits;
    ngx_uint_t                i;
    ngx_http_llmproxy_day_t  *d;

    if (n < NGX_HTTP_LLMPROXY_COPY_FIELDS1) {
        return NGX_ERROR;
    }

    /* microseconds since 2000-01-01 UTC to days since 1970-01-01 */

    created = ngx_http_llmproxy_field_int(&f[1]);
    day = created / 86400000000LL;

    if (created < 0 && created % 86400000000LL) {
        day--;
    }

    day += 10957;

    d = ngx_http_llmproxy_daily_get(days, day, f);
    if (d == NULL) {
        return NGX_ERROR;
    }

    if (f[3].data) {
        d->alias = f[3];
    }

    d->requests++;
    d->errors += (ngx_http_llmproxy_field_int(&f[9]) >= 400);
    d->prompt += ngx_http_llmproxy_field_int(&f[10]);
    d->completion += ngx_http_llmproxy_field_int(&f[11]);

    if (f[13].data && f[13].len == 8) {
        bits = (uint64_t) ngx_http_llmproxy_field_int(&f[13]);
        ngx_memcpy(&cost, &bits, sizeof(double));
        d->cost += cost;
    }

    latency = ngx_http_llmproxy_field_int(&f[14]);
    d->latency_sum += latency;
    d->latency_max = ngx_max(d->latency_max, latency);

    for (i = 0; i < NGX_HTTP_LLMPROXY_DAILY_BOUNDS; i++) {
        if (latency < ngx_http_llmproxy_daily_bounds[i]) {
            break;
        }
    }

    d->below[i]++;                  /* its bucket; cumulated when sent */

    if (n >= NGX_HTTP_LLMPROXY_COPY_FIELDS1 + 5) {
        d->read += ngx_http_llmproxy_field_int(&f[19]);
        d->creation += ngx_http_llmproxy_field_int(&f[20]);
        d->reasoning += ngx_http_llmproxy_field_int(&f[22]);
        d->unpriced += (f[23].data && f[23].len == 1 && f[23].data[0]);
    }

    return NGX_OK;
}


static ngx_inline ngx_uint_t
ngx_http_llmproxy_field_eq(ngx_http_llmproxy_field_t *a,
    ngx_http_llmproxy_field_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


/* the totals of a day, key, model and deployment; NULL: out of memory */

static ngx_http_llmproxy_day_t *
ngx_http_llmproxy_daily_get(ngx_http_llmproxy_days_t *days, int64_t day,
    ngx_http_llmproxy_field_t *f)
{
    uint32_t                  hash;
    ngx_uint_t                j;
    ngx_http_llmproxy_day_t  *d;

    /* records in a row mostly share a key, model and deployment */

    d = days->last;

    if (d && d->day == day
        && ngx_http_llmproxy_field_eq(&d->key, &f[2])
        && ngx_http_llmproxy_field_eq(&d->model, &f[4])
        && ngx_http_llmproxy_field_eq(&d->deployment, &f[5]))
    {
        return d;
    }

    if (days->n * 2 >= days->size
        && ngx_http_llmproxy_daily_grow(days) != NGX_OK)
    {
        return NULL;
    }

    /*
     * murmur reads 4 bytes a step: a key's 64 hex digits cost a tenth of
     * what crc32_short's nibble table did, once a record
     */

    hash = (uint32_t) day * 2654435761u;
    hash ^= ngx_murmur_hash2(f[2].data ? f[2].data : (u_char *) "",
                             f[2].len);
    hash ^= ngx_murmur_hash2(f[4].data ? f[4].data : (u_char *) "",
                             f[4].len) * 31;
    hash ^= ngx_murmur_hash2(f[5].data ? f[5].data : (u_char *) "",
                             f[5].len) * 17;

    for (j = hash & (days->size - 1); /* void */;
         j = (j + 1) & (days->size - 1))
    {
        d = &days->slots[j];

        if (!d->used) {
            d->used = 1;
            d->hash = hash;
            d->day = day;
            d->key = f[2];
            d->model = f[4];
            d->deployment = f[5];
            days->n++;
            days->last = d;
            return d;
        }

        if (d->hash == hash && d->day == day
            && ngx_http_llmproxy_field_eq(&d->key, &f[2])
            && ngx_http_llmproxy_field_eq(&d->model, &f[4])
            && ngx_http_llmproxy_field_eq(&d->deployment, &f[5]))
        {
            days->last = d;
            return d;
        }
    }
}


static ngx_int_t
ngx_http_llmproxy_daily_grow(ngx_http_llmproxy_days_t *days)
{
    ngx_uint_t                i, j, size;
    ngx_http_llmproxy_day_t  *slots;

    size = days->size ? days->size * 2 : 16;

    slots = calloc(size, sizeof(ngx_http_llmproxy_day_t));
    if (slots == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < days->size; i++) {
        if (!days->slots[i].used) {
            continue;
        }

        for (j = days->slots[i].hash & (size - 1); slots[j].used;
             j = (j + 1) & (size - 1))
        {
            /* void */
        }

        slots[j] = days->slots[i];
    }

    free(days->slots);
    days->slots = slots;
    days->size = size;
    days->last = NULL;

    return NGX_OK;
}


/*
 * [{"day":"2026-01-15","key_hash":"...","model":"...",...,"lt":[...]}]:
 * strings escaped as JSON (they are valid UTF-8 without NUL: the log
 * phase made them so)
 */

static u_char *
ngx_http_llmproxy_daily_json(ngx_http_llmproxy_days_t *days)
{
    u_char                   *json, *p;
    size_t                    len;
    ngx_uint_t                i;
    ngx_http_llmproxy_day_t  *d;

    /* a string's byte may become \u00XX; the rest fits in 1536 */

    len = 3;

    for (i = 0; i < days->size; i++) {
        d = &days->slots[i];

        if (d->used) {
            len += 1536 + 6 * (d->key.len + d->model.len + d->deployment.len
                               + d->alias.len);
        }
    }

    json = malloc(len);
    if (json == NULL) {
        return NULL;
    }

    p = json;
    *p++ = '[';

    for (i = 0; i < days->size; i++) {
        d = &days->slots[i];

        if (!d->used) {
            continue;
        }

        if (p > json + 1) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_daily_row(p, d);
    }

    *p++ = ']';
    *p = '\0';

    return json;
}


/* one group as a JSON object */

static u_char *
ngx_http_llmproxy_daily_row(u_char *p, ngx_http_llmproxy_day_t *d)
{
    int64_t     below;
    ngx_tm_t    tm;
    ngx_uint_t  k;

    ngx_gmtime((time_t) (d->day * 86400), &tm);

    p = ngx_sprintf(p, "{\"day\":\"%04d-%02d-%02d\",\"key_hash\":",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
    p = ngx_http_llmproxy_json_str(p, &d->key);
    p = ngx_cpymem(p, ",\"model\":", sizeof(",\"model\":") - 1);
    p = ngx_http_llmproxy_json_str(p, &d->model);
    p = ngx_cpymem(p, ",\"deployment\":",
                   sizeof(",\"deployment\":") - 1);
    p = ngx_http_llmproxy_json_str(p, &d->deployment);

    if (d->alias.data) {
        p = ngx_cpymem(p, ",\"key_alias\":",
                       sizeof(",\"key_alias\":") - 1);
        p = ngx_http_llmproxy_json_str(p, &d->alias);
    }

    p = ngx_sprintf(p, ",\"requests\":%L,\"errors\":%L,"
                    "\"prompt_tokens\":%L,\"completion_tokens\":%L,"
                    "\"cost\":",
                    d->requests, d->errors, d->prompt, d->completion);

    /*
     * every digit of the double (ngx_sprintf() has no %g); JSON has
     * no Infinity or NaN, float8's input takes them as strings
     */
    if (isfinite(d->cost)) {
        p += snprintf((char *) p, 32, "%.17g", d->cost);

    } else {
        p += snprintf((char *) p, 32, "\"%s\"",
                      isnan(d->cost) ? "NaN"
                      : d->cost > 0 ? "Infinity" : "-Infinity");
    }

    p = ngx_sprintf(p, ",\"latency_ms_sum\":%L,"
                    "\"latency_ms_max\":%L,\"lt\":[",
                    d->latency_sum, d->latency_max);

    /* cumulative: lt[k] counts the requests below the k-th bound */

    below = 0;

    for (k = 0; k < NGX_HTTP_LLMPROXY_DAILY_BOUNDS; k++) {
        below += d->below[k];
        p = ngx_sprintf(p, "%s%L", k ? "," : "", below);
    }

    p = ngx_sprintf(p, "],\"cache_read_tokens\":%L,"
                    "\"cache_creation_tokens\":%L,"
                    "\"reasoning_tokens\":%L,\"unpriced\":%L}",
                    d->read, d->creation, d->reasoning, d->unpriced);

    return p;
}


static u_char *
ngx_http_llmproxy_json_str(u_char *p, ngx_http_llmproxy_field_t *s)
{
    u_char   c;
    size_t   i;

    static u_char  hex[] = "0123456789abcdef";

    *p++ = '"';

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20) {
            p = ngx_cpymem(p, "\\u00", 4);
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            *p++ = c;
        }
    }

    *p++ = '"';

    return p;
}

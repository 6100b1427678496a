/*
 * The database poller: one worker (the first) asks PostgreSQL every
 * llmproxy_database_poll for the keys changed since the last change number
 * it applied, in a thread of the pool (libpq blocks there, never on the
 * event loop), and writes them into the zone for every worker, row by row
 * from the query's result, in that thread.  When the database is
 * unreachable the gateway keeps serving the keys it has, says so in its
 * log and in /health/readiness, and tries again.
 *
 * A key that does not fit in the zone is skipped, so that the changes
 * after it (a revocation changes its key in place) still apply; the zone
 * is reported full, and the rows from the first skipped one are read again
 * every NGX_HTTP_LLMPROXY_DB_RETRY seconds until they all fit.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_zone.h"

#include <libpq-fe.h>
#include <cjson/cJSON.h>



#define NGX_HTTP_LLMPROXY_DB_BATCH  2000
#define NGX_HTTP_LLMPROXY_DB_RETRY  10

/* keys per statement of the rate windows, and minutes kept */
#define NGX_HTTP_LLMPROXY_DB_WINDOWS       1024
#define NGX_HTTP_LLMPROXY_DB_WINDOWS_KEEP  5


typedef struct {
    PGconn                         *conn;       /* used in the thread only */
    char                           *uri;
    int64_t                         since;
    int64_t                         max_seq;    /* last row applied */
    ngx_pool_t                     *pool;       /* one row, in the thread */
    ngx_uint_t                      applied;    /* keys of this poll */
    ngx_int_t                       rc;
    ngx_uint_t                      more;
    ngx_uint_t                      zone_full;
    int64_t                         skipped;    /* first seq not applied */
    time_t                          retry_at;
    ngx_uint_t                      rescan;     /* reading from retry */
    ngx_uint_t                      rescan_ok;
    int64_t                         rescan_seq;
    ngx_uint_t                      busy;
    ngx_uint_t                      failing;
    char                            err[256];
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_msec_t                      interval;
    ngx_thread_pool_t              *thread_pool;
    ngx_thread_task_t              *task;
    ngx_event_t                     timer;
    const char                     *salt_key;
    ngx_str_t                       state_file;
    ngx_http_llmproxy_db_config_t   config;

    /* this gateway's key counts out, the others' in (rate windows) */
    char                           *node;
    u_char                         *digests;
    uint32_t                       *counts;
    char                           *arrays[3];
    time_t                          cleaned;
    time_t                          windows_at;     /* last tried */
    ngx_uint_t                      windows_only;   /* this poll */
    ngx_uint_t                      windows_ran;
    ngx_uint_t                      tick;
    ngx_uint_t                      windows_failing;
    char                            windows_err[256];
} ngx_http_llmproxy_db_t;


static void ngx_http_llmproxy_db_poll(ngx_event_t *ev);
static void ngx_http_llmproxy_db_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_db_done(ngx_event_t *ev);
static ngx_int_t ngx_http_llmproxy_db_row(ngx_http_llmproxy_db_t *db,
    PGresult *res, int i, ngx_http_llmproxy_key_row_t *row);
static void ngx_http_llmproxy_db_apply(ngx_http_llmproxy_db_t *db,
    PGresult *res);
static ngx_array_t *ngx_http_llmproxy_db_list(ngx_pool_t *pool,
    const char *json);
static void ngx_http_llmproxy_db_zone(ngx_http_llmproxy_db_t *db);
static void ngx_http_llmproxy_db_windows(ngx_http_llmproxy_db_t *db);
static void ngx_http_llmproxy_db_windows_done(ngx_http_llmproxy_db_t *db,
    ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_db_windows_out(ngx_http_llmproxy_db_t *db,
    uint32_t minute, const char *start);
static void ngx_http_llmproxy_db_windows_arrays(ngx_http_llmproxy_db_t *db,
    ngx_uint_t n, ngx_uint_t deployments);
static ngx_int_t ngx_http_llmproxy_db_windows_insert(
    ngx_http_llmproxy_db_t *db, const char *start);
static ngx_int_t ngx_http_llmproxy_db_windows_in(ngx_http_llmproxy_db_t *db,
    uint32_t minute, const char *start);


static ngx_http_llmproxy_db_t  ngx_http_llmproxy_db;


ngx_int_t
ngx_http_llmproxy_db_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_db_t         *db;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);

    if (lmcf == NULL || lmcf->database.len == 0 || lmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    /* one poller per node is enough: the zone is shared */

    if (ngx_process != NGX_PROCESS_SINGLE && ngx_worker != 0) {
        return NGX_OK;
    }

    db = &ngx_http_llmproxy_db;
    ngx_memzero(db, sizeof(ngx_http_llmproxy_db_t));

    db->uri = (char *) lmcf->database.data;     /* null-terminated */
    db->zctx = lmcf->shm_zone->data;
    db->interval = lmcf->database_poll;
    db->thread_pool = lmcf->thread_pool;
    db->salt_key = lmcf->salt_key.len ? (char *) lmcf->salt_key.data : NULL;
    db->state_file = db->zctx->state_file;

    db->pool = ngx_create_pool(4096, cycle->log);
    if (db->pool == NULL) {
        return NGX_ERROR;
    }

    /* "host/zone id": unique per gateway, and readable in the table */

    db->node = ngx_pcalloc(cycle->pool, cycle->hostname.len + 20);
    db->digests = ngx_alloc(32 * NGX_HTTP_LLMPROXY_DB_WINDOWS, cycle->log);
    db->counts = ngx_alloc(2 * sizeof(uint32_t) * NGX_HTTP_LLMPROXY_DB_WINDOWS,
                           cycle->log);
    db->arrays[0] = ngx_alloc(66 * NGX_HTTP_LLMPROXY_DB_WINDOWS + 3,
                              cycle->log);
    db->arrays[1] = ngx_alloc(12 * NGX_HTTP_LLMPROXY_DB_WINDOWS + 3,
                              cycle->log);
    db->arrays[2] = ngx_alloc(12 * NGX_HTTP_LLMPROXY_DB_WINDOWS + 3,
                              cycle->log);

    if (db->node == NULL || db->digests == NULL || db->counts == NULL
        || db->arrays[0] == NULL || db->arrays[1] == NULL
        || db->arrays[2] == NULL)
    {
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) db->node, "%V/%016xL%Z", &cycle->hostname,
                db->zctx->sh->node_id);

    db->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (db->task == NULL) {
        return NGX_ERROR;
    }

    db->task->ctx = db;
    db->task->handler = ngx_http_llmproxy_db_thread;
    db->task->event.handler = ngx_http_llmproxy_db_done;
    db->task->event.data = db;
    db->task->event.log = cycle->log;

    db->timer.handler = ngx_http_llmproxy_db_poll;
    db->timer.data = db;
    db->timer.log = cycle->log;
    db->timer.cancelable = 1;

    ngx_add_timer(&db->timer, 1);

    return NGX_OK;
}


static void
ngx_http_llmproxy_db_poll(ngx_event_t *ev)
{
    ngx_http_llmproxy_db_t  *db = ev->data;

    if (ngx_exiting || ngx_terminate || db->busy) {
        return;
    }

    /*
     * every other poll, half an interval after the last, only the rate
     * windows are exchanged: the others' counts are then at most about
     * one poll interval old (half theirs to write, half ours to read)
     */

    db->windows_only = !db->more && !db->failing && (db->tick++ & 1);
    db->windows_ran = 0;
    db->windows_err[0] = '\0';

    if (db->windows_only) {
        db->rc = NGX_OK;

        if (ngx_thread_task_post(db->thread_pool, db->task) != NGX_OK) {
            ngx_add_timer(&db->timer, db->interval / 2);
            return;
        }

        db->busy = 1;
        return;
    }

    db->since = db->zctx->sh->keys_seq;

    if (db->rescan) {
        db->since = db->rescan_seq;

    } else if (db->zctx->sh->keys_retry && ngx_time() >= db->retry_at) {
        db->rescan = 1;
        db->rescan_ok = 1;
        db->since = db->zctx->sh->keys_retry - 1;
        db->rescan_seq = db->since;
    }

    db->max_seq = db->since;
    db->skipped = 0;
    db->config.since = db->zctx->sh->config_version;
    db->config.version = 0;
    db->config.prepared = NULL;
    db->applied = 0;
    db->rc = NGX_OK;
    db->more = 0;
    db->zone_full = 0;
    db->err[0] = '\0';

    if (ngx_thread_task_post(db->thread_pool, db->task) != NGX_OK) {
        ngx_add_timer(&db->timer, db->interval);
        return;
    }

    db->busy = 1;
}


/* in a thread of the pool */

static void
ngx_http_llmproxy_db_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_db_t *db = data;

    char         since[32];
    PGresult    *res;
    const char  *values[1];

    if (db->windows_only) {
        /* a connection is the keys' poll's business */

        if (db->conn && PQstatus(db->conn) == CONNECTION_OK) {
            ngx_http_llmproxy_db_windows(db);
        }

        return;
    }

    if (db->conn && PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
    }

    if (db->conn == NULL) {
        db->conn = ngx_http_llmproxy_db_connect(db->uri,
                                       "-c statement_timeout=10000",
                                       "llmproxy-gateway");

        if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
            ngx_cpystrn((u_char *) db->err,
                        (u_char *) (db->conn ? PQerrorMessage(db->conn)
                                             : "out of memory"),
                        sizeof(db->err));
            PQfinish(db->conn);
            db->conn = NULL;
            db->rc = NGX_ERROR;
            return;
        }
    }

    ngx_sprintf((u_char *) since, "%L%Z", db->since);
    values[0] = since;

    res = PQexecParams(db->conn,
        "SELECT key_hash, coalesce(alias, ''),"
        " array_to_json(models)::text, array_to_json(access_groups)::text,"
        " coalesce(max_budget, -1),"
        " coalesce(ceil(extract(epoch from budget_reset_at))::bigint, 0),"
        " spend, coalesce(rpm, 0), coalesce(tpm, 0),"
        " coalesce(extract(epoch from expires_at)::bigint, 0),"
        " blocked::int, (revoked_at IS NOT NULL)::int, change_seq"
        " FROM llmproxy_keys WHERE change_seq > $1::bigint"
        " ORDER BY change_seq LIMIT 2000",
        1, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_cpystrn((u_char *) db->err, (u_char *) PQerrorMessage(db->conn),
                    sizeof(db->err));
        PQclear(res);
        db->rc = NGX_ERROR;
        return;
    }

    /* the keys go into the zone before the result is freed */

    ngx_http_llmproxy_db_apply(db, res);

    PQclear(res);

    if (ngx_http_llmproxy_db_config_fetch(db->conn, &db->config,
                                          db->salt_key, &db->state_file, log)
        == NGX_ERROR)
    {
        ngx_cpystrn((u_char *) db->err, (u_char *) db->config.err,
                    sizeof(db->err));
        db->rc = NGX_ERROR;
        return;
    }

    ngx_http_llmproxy_db_windows(db);
}


/*
 * In the thread: the key rpm/tpm of all gateways sharing the database.
 * This gateway's counts of this minute go out (for the keys with limits
 * that were used), the sums of the other gateways come in and are added
 * to the local counts at every check.  This runs every half poll
 * interval, so the others' counts are at most about one interval old
 * (half since their write, half since our read): a cluster lets through
 * at most what the other gateways let through in that interval above a
 * limit.
 * A failure here (a database not migrated yet) leaves the limits per
 * gateway, and the keys and config polling unharmed.
 */

static void
ngx_http_llmproxy_db_windows(ngx_http_llmproxy_db_t *db)
{
    char       start[32], old[32];
    time_t     now;
    uint32_t   minute;
    PGresult  *res;

    const char  *values[1];

    now = time(NULL);
    minute = (uint32_t) (now / 60);

    if (db->windows_failing && now - db->windows_at < 60) {
        /* a database without the table: not an error every poll */
        return;
    }

    db->windows_at = now;
    db->windows_ran = 1;

    ngx_sprintf((u_char *) start, "%T%Z", (time_t) minute * 60);

    if (ngx_http_llmproxy_db_windows_out(db, minute, start) != NGX_OK
        || ngx_http_llmproxy_db_windows_in(db, minute, start) != NGX_OK)
    {
        return;
    }

    if (now - db->cleaned < 60) {
        return;
    }

    db->cleaned = now;

    ngx_sprintf((u_char *) old, "%T%Z",
                (time_t) (minute - NGX_HTTP_LLMPROXY_DB_WINDOWS_KEEP) * 60);
    values[0] = old;

    res = PQexecParams(db->conn,
        "DELETE FROM llmproxy_rate_windows"
        " WHERE window_start < to_timestamp($1::bigint)",
        1, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_cpystrn((u_char *) db->windows_err,
                    (u_char *) PQerrorMessage(db->conn),
                    sizeof(db->windows_err));
    }

    PQclear(res);
}


/*
 * This gateway's counts out: the deployments' (named "deployment:" and
 * the hash of their id), then the keys', NGX_HTTP_LLMPROXY_DB_WINDOWS at
 * a time
 */

static ngx_int_t
ngx_http_llmproxy_db_windows_out(ngx_http_llmproxy_db_t *db, uint32_t minute,
    const char *start)
{
    ngx_uint_t  n, from, keys;

    from = 0;
    keys = 0;

    for ( ;; ) {

        if (!keys) {
            n = ngx_http_llmproxy_route_windows(db->zctx, minute,
                                            (uint64_t *) db->digests,
                                            db->counts,
                                            NGX_HTTP_LLMPROXY_DB_WINDOWS);
            keys = 1;

        } else if (from <= db->zctx->sh->keys_mask) {
            n = ngx_http_llmproxy_keys_windows(db->zctx, minute, from,
                                               db->digests, db->counts,
                                               NGX_HTTP_LLMPROXY_DB_WINDOWS,
                                               &from);
            if (n == 0) {
                break;
            }

            keys = 2;

        } else {
            break;
        }

        if (n == 0) {
            continue;
        }

        ngx_http_llmproxy_db_windows_arrays(db, n, keys == 1);

        if (ngx_http_llmproxy_db_windows_insert(db, start) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The windows read as three PostgreSQL array literals: the key hashes (or
 * "deployment:" and a deployment's hash), the requests and the tokens.
 */

static void
ngx_http_llmproxy_db_windows_arrays(ngx_http_llmproxy_db_t *db,
    ngx_uint_t n, ngx_uint_t deployments)
{
    u_char      *k, *r, *t;
    ngx_uint_t   i, j;

    static u_char  hex[] = "0123456789abcdef";

    k = (u_char *) db->arrays[0];
    r = (u_char *) db->arrays[1];
    t = (u_char *) db->arrays[2];

    *k++ = '{';
    *r++ = '{';
    *t++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *k++ = ',';
            *r++ = ',';
            *t++ = ',';
        }

        if (deployments) {
            k = ngx_sprintf(k, "deployment:%016xL",
                            ((uint64_t *) db->digests)[i]);

        } else {
            for (j = 0; j < 32; j++) {
                *k++ = hex[db->digests[32 * i + j] >> 4];
                *k++ = hex[db->digests[32 * i + j] & 0xf];
            }
        }

        r = ngx_sprintf(r, "%uD", db->counts[2 * i]);
        t = ngx_sprintf(t, "%uD", db->counts[2 * i + 1]);
    }

    *k++ = '}';
    *r++ = '}';
    *t++ = '}';
    *k = '\0';
    *r = '\0';
    *t = '\0';
}


/* this node's counts of one minute, replacing what it wrote before */

static ngx_int_t
ngx_http_llmproxy_db_windows_insert(ngx_http_llmproxy_db_t *db,
    const char *start)
{
    PGresult    *res;
    const char  *values[5];

    values[0] = db->node;
    values[1] = start;
    values[2] = db->arrays[0];
    values[3] = db->arrays[1];
    values[4] = db->arrays[2];

    res = PQexecParams(db->conn,
        "INSERT INTO llmproxy_rate_windows"
        " (node, key_hash, window_start, requests, tokens)"
        " SELECT $1, k, to_timestamp($2::bigint), r, t"
        " FROM unnest($3::text[], $4::bigint[], $5::bigint[])"
        " AS u(k, r, t)"
        " ON CONFLICT (window_start, key_hash, node) DO UPDATE"
        " SET requests = excluded.requests, tokens = excluded.tokens",
        5, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_cpystrn((u_char *) db->windows_err,
                    (u_char *) PQerrorMessage(db->conn),
                    sizeof(db->windows_err));
        PQclear(res);
        return NGX_ERROR;
    }

    PQclear(res);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_db_windows_in(ngx_http_llmproxy_db_t *db, uint32_t minute,
    const char *start)
{
    int          i, n;
    u_char      *p, digest[32];
    uint64_t     requests, tokens, hash;
    ngx_int_t    hi, lo;
    ngx_uint_t   k;
    PGresult    *res;

    const char  *values[2];

    values[0] = db->node;
    values[1] = start;

    res = PQexecParams(db->conn,
        "SELECT key_hash, sum(requests), sum(tokens)"
        " FROM llmproxy_rate_windows"
        " WHERE window_start = to_timestamp($2::bigint) AND node <> $1"
        " GROUP BY key_hash",
        2, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_cpystrn((u_char *) db->windows_err,
                    (u_char *) PQerrorMessage(db->conn),
                    sizeof(db->windows_err));
        PQclear(res);
        return NGX_ERROR;
    }

    n = PQntuples(res);

    for (i = 0; i < n; i++) {

        p = (u_char *) PQgetvalue(res, i, 0);

        requests = strtoull(PQgetvalue(res, i, 1), NULL, 10);
        tokens = strtoull(PQgetvalue(res, i, 2), NULL, 10);

        requests = ngx_min(requests, 0xffffffff);
        tokens = ngx_min(tokens, 0xffffffff);

        if (PQgetlength(res, i, 0) == 27
            && ngx_strncmp(p, "deployment:", 11) == 0)
        {
            hash = strtoull((char *) p + 11, NULL, 16);

            ngx_http_llmproxy_route_others(db->zctx, hash, minute,
                                           (uint32_t) requests,
                                           (uint32_t) tokens);
            continue;
        }

        if (PQgetlength(res, i, 0) != 64) {
            continue;
        }

        for (k = 0; k < 32; k++) {
            hi = ngx_hextoi(p + 2 * k, 1);
            lo = ngx_hextoi(p + 2 * k + 1, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                break;
            }

            digest[k] = (u_char) (hi << 4 | lo);
        }

        if (k < 32) {
            continue;
        }

        ngx_http_llmproxy_keys_others(db->zctx, digest, minute,
                                      (uint32_t) requests, (uint32_t) tokens);
    }

    PQclear(res);

    return NGX_OK;
}


/*
 * In the thread: one row after the other, under the zone's mutex for each
 * (the event loop of any worker waits for one key at most).  A row that
 * does not parse is skipped, and so is a key that does not fit in the
 * zone (remembered, to be tried again).
 */

static void
ngx_http_llmproxy_db_apply(ngx_http_llmproxy_db_t *db, PGresult *res)
{
    int                          i, n;
    int64_t                      seq;
    ngx_int_t                    rc;
    ngx_http_llmproxy_key_row_t  row;

    n = PQntuples(res);

    db->more = (n == NGX_HTTP_LLMPROXY_DB_BATCH);

    for (i = 0; i < n; i++) {
        seq = ngx_atoof((u_char *) PQgetvalue(res, i, 12),
                        PQgetlength(res, i, 12));

        rc = ngx_http_llmproxy_db_row(db, res, i, &row);

        if (rc == NGX_OK) {
            rc = ngx_http_llmproxy_keys_upsert(db->zctx, &row);

            if (rc == NGX_ERROR) {
                db->zone_full = 1;

                if (db->skipped == 0) {
                    db->skipped = seq;
                }
            }

            if (rc == NGX_OK) {
                db->applied++;
            }
        }

        ngx_reset_pool(db->pool);

        if (seq > db->max_seq) {
            db->max_seq = seq;
        }
    }
}


static ngx_int_t
ngx_http_llmproxy_db_row(ngx_http_llmproxy_db_t *db, PGresult *res, int i,
    ngx_http_llmproxy_key_row_t *row)
{
    u_char      *hex;
    ngx_int_t    hi, lo;
    ngx_uint_t   k;

    ngx_memzero(row, sizeof(ngx_http_llmproxy_key_row_t));

    hex = (u_char *) PQgetvalue(res, i, 0);

    if (PQgetlength(res, i, 0) != 64) {
        return NGX_ERROR;
    }

    for (k = 0; k < 32; k++) {
        hi = ngx_hextoi(hex + 2 * k, 1);
        lo = ngx_hextoi(hex + 2 * k + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        row->digest[k] = (u_char) (hi << 4 | lo);
    }

    row->alias.len = PQgetlength(res, i, 1);
    row->alias.data = (u_char *) PQgetvalue(res, i, 1);

    row->models = ngx_http_llmproxy_db_list(db->pool, PQgetvalue(res, i, 2));
    row->groups = ngx_http_llmproxy_db_list(db->pool, PQgetvalue(res, i, 3));

    if (row->models == NULL || row->groups == NULL) {
        return NGX_ERROR;
    }

    row->max_budget = strtod(PQgetvalue(res, i, 4), NULL);
    row->budget_reset_at = (time_t) strtoll(PQgetvalue(res, i, 5), NULL, 10);
    row->spend = strtod(PQgetvalue(res, i, 6), NULL);
    row->rpm = (ngx_uint_t) strtoul(PQgetvalue(res, i, 7), NULL, 10);
    row->tpm = (ngx_uint_t) strtoul(PQgetvalue(res, i, 8), NULL, 10);
    row->expires_at = (time_t) strtoll(PQgetvalue(res, i, 9), NULL, 10);
    row->blocked = (PQgetvalue(res, i, 10)[0] == '1');
    row->revoked = (PQgetvalue(res, i, 11)[0] == '1');

    return NGX_OK;
}


static ngx_array_t *
ngx_http_llmproxy_db_list(ngx_pool_t *pool, const char *json)
{
    cJSON        *root, *item;
    ngx_str_t    *s;
    ngx_array_t  *a;

    a = ngx_array_create(pool, 2, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    root = cJSON_Parse(json);

    cJSON_ArrayForEach(item, root) {
        if (!cJSON_IsString(item)) {
            continue;
        }

        s = ngx_array_push(a);
        if (s == NULL) {
            cJSON_Delete(root);
            return NULL;
        }

        s->len = ngx_strlen(item->valuestring);
        s->data = ngx_pnalloc(pool, s->len + 1);
        if (s->data == NULL) {
            cJSON_Delete(root);
            return NULL;
        }

        ngx_memcpy(s->data, item->valuestring, s->len + 1);
    }

    cJSON_Delete(root);

    return a;
}


/* back on the event loop */

static void
ngx_http_llmproxy_db_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_db_t *db = ev->data;

    ngx_http_llmproxy_shctx_t  *sh;

    db->busy = 0;
    sh = db->zctx->sh;

    if (db->windows_only) {
        ngx_http_llmproxy_db_windows_done(db, ev->log);
        goto next;
    }

    /* the rows the thread applied, even if a later query failed */

    if (!db->rescan) {
        sh->keys_seq = db->max_seq;

    } else if (db->max_seq > db->rescan_seq) {
        db->rescan_seq = db->max_seq;
    }

    ngx_http_llmproxy_db_zone(db);

    if (db->rc != NGX_OK) {
        if (!db->failing) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "llmproxy: database unreachable, serving the keys "
                          "loaded so far: %s", db->err);
        }

        db->failing = 1;
        db->more = 0;
        sh->db_ok = 0;
        sh->db_failed_at = ngx_time();
        goto next;
    }

    if (db->failing) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "llmproxy: database reachable again");
    }

    ngx_http_llmproxy_db_config_apply(db->zctx, &db->config, ev->log);
    ngx_http_llmproxy_db_windows_done(db, ev->log);

    db->failing = 0;
    sh->db_ok = 1;

    if (db->rescan) {
        goto next;
    }

    if (!db->more) {
        if (!sh->keys_loaded) {
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "llmproxy: %ui keys loaded from the database",
                          (ngx_uint_t) sh->nkeys);
        }

        sh->keys_loaded = 1;

    } else {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "llmproxy: %ui keys loaded, more to come", db->applied);
    }

next:

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(&db->timer, db->more ? 1
                              : db->failing ? db->interval
                              : db->interval / 2);
}


static void
ngx_http_llmproxy_db_windows_done(ngx_http_llmproxy_db_t *db, ngx_log_t *log)
{
    if (!db->windows_ran) {
        return;
    }

    if (db->windows_err[0] && !db->windows_failing) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "llmproxy: key rpm/tpm hold per gateway only, the "
                      "other gateways' counts are not available (is the "
                      "database migrated?): %s", db->windows_err);

    } else if (!db->windows_err[0] && db->windows_failing) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "llmproxy: key rpm/tpm counts shared again");
    }

    db->windows_failing = (db->windows_err[0] != '\0');
}


/*
 * Keys skipped because the zone is full: the first of them is where the
 * next rescan starts, and the zone is full until a rescan applied all.
 */

static void
ngx_http_llmproxy_db_zone(ngx_http_llmproxy_db_t *db)
{
    ngx_http_llmproxy_shctx_t  *sh;

    sh = db->zctx->sh;

    if (db->rescan) {

        if (db->rc != NGX_OK) {
            db->rescan = 0;
            db->retry_at = ngx_time() + NGX_HTTP_LLMPROXY_DB_RETRY;
            return;
        }

        if (db->skipped) {
            if (db->rescan_ok) {
                sh->keys_retry = db->skipped;
            }

            db->rescan_ok = 0;
        }

        if (db->more) {
            return;
        }

        /* the rescan reached the last change */

        db->rescan = 0;

        if (db->rescan_ok) {
            sh->keys_retry = 0;
            sh->zone_full = 0;

            ngx_log_error(NGX_LOG_NOTICE, db->task->event.log, 0,
                          "llmproxy: the keys that did not fit are in the "
                          "zone now");
            return;
        }

        db->retry_at = ngx_time() + NGX_HTTP_LLMPROXY_DB_RETRY;
        return;
    }

    if (db->skipped) {
        if (sh->keys_retry == 0 || db->skipped < sh->keys_retry) {
            sh->keys_retry = db->skipped;
        }

        if (!sh->zone_full) {
            db->retry_at = ngx_time() + NGX_HTTP_LLMPROXY_DB_RETRY;
            sh->zone_full = 1;

            ngx_log_error(NGX_LOG_ALERT, db->task->event.log, 0,
                          "llmproxy: no memory in the zone for more keys "
                          "(%uA loaded), the others are refused: increase "
                          "the size of \"llmproxy_zone\"", sh->nkeys);
        }
    }
}

/*
 * Usage records older than llmproxy_usage_retention are deleted (SPEC
 * section 8), by the worker that polls the keys, in a thread of the pool:
 * libpq blocks there, never on the event loop.
 *
 * The daily totals (llmproxy_usage_daily) are kept: their trigger adds
 * inserted rows only, so a delete changes neither them nor the keys'
 * spend, and reports over old days still answer from them.
 *
 * Rows go in batches of NGX_HTTP_LLMPROXY_RETENTION_BATCH, each its own
 * transaction found through the BRIN index on their time and deleted by
 * ctid, so that no lock is held for long and the usage writers' COPYs go
 * on between them.  A task deletes at most NGX_HTTP_LLMPROXY_RETENTION_RUN
 * batches, then gives its thread back; the next task follows a pause.
 * Gateways sharing a database do not fight: each run takes an advisory
 * lock, and a gateway that finds it taken leaves the run to its holder.
 *
 * llmproxy_usage_batches is pruned after 30 days by every write of records
 * (llmproxy_usage_spend(), schema 3): nothing to do for it here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_usage.h"

#include <libpq-fe.h>


#define NGX_HTTP_LLMPROXY_RETENTION_BATCH  "5000"
#define NGX_HTTP_LLMPROXY_RETENTION_NBATCH  5000
#define NGX_HTTP_LLMPROXY_RETENTION_RUN    20
#define NGX_HTTP_LLMPROXY_RETENTION_PAUSE  200      /* ms between tasks */
#define NGX_HTTP_LLMPROXY_RETENTION_FIRST  60000    /* ms after start */


typedef struct {
    PGconn                         *conn;       /* used in the thread only */
    char                           *uri;
    time_t                          retention;  /* seconds */
    ngx_msec_t                      every;
    ngx_thread_pool_t              *thread_pool;
    ngx_thread_task_t              *task;
    ngx_event_t                     timer;
    ngx_uint_t                      busy;
    ngx_uint_t                      failing;

    /* results of a task */
    ngx_int_t                       rc;
    ngx_uint_t                      locked;     /* by another gateway */
    ngx_uint_t                      more;
    uint64_t                        deleted;    /* this task */
    uint64_t                        total;      /* this run */
    char                            err[256];
} ngx_http_llmproxy_retention_t;


static void ngx_http_llmproxy_retention_start(ngx_event_t *ev);
static void ngx_http_llmproxy_retention_thread(void *data, ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_retention_connect(
    ngx_http_llmproxy_retention_t *rt);
static ngx_int_t ngx_http_llmproxy_retention_delete(
    ngx_http_llmproxy_retention_t *rt);
static void ngx_http_llmproxy_retention_failed(
    ngx_http_llmproxy_retention_t *rt, PGresult *res);
static void ngx_http_llmproxy_retention_done(ngx_event_t *ev);


static ngx_http_llmproxy_retention_t  ngx_http_llmproxy_retention;


/*
 * llmproxy_usage_retention off | TIME [every=TIME];
 * "every" is how often a run starts (1h); shorter is for tests.
 */

char *
ngx_http_llmproxy_usage_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_llmproxy_main_conf_t *lmcf = conf;

    time_t      t;
    ngx_str_t  *value, s;
    ngx_msec_t  every;

    if (lmcf->usage_retention != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        t = 0;

    } else {
        t = ngx_parse_time(&value[1], 1);

        if (t == (time_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid retention \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        if (t != 0 && t < 86400) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"llmproxy_usage_retention\" must be \"off\""
                               ", 0 or at least 1d: the current day's "
                               "records are reported from");
            return NGX_CONF_ERROR;
        }
    }

    lmcf->usage_retention = t;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "every=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 6;
        s.len = value[2].len - 6;

        every = ngx_parse_time(&s, 0);

        if (every == (ngx_msec_t) NGX_ERROR || every < 1000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"every\" must be at least 1s");
            return NGX_CONF_ERROR;
        }

        lmcf->usage_retention_every = every;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_llmproxy_retention_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_retention_t  *rt;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);

    if (lmcf == NULL || lmcf->database.len == 0 || lmcf->shm_zone == NULL
        || lmcf->usage_retention == 0)
    {
        return NGX_OK;
    }

    /* the keys' poller's worker: one per gateway (see _keys_poll.c) */

    if (ngx_process != NGX_PROCESS_SINGLE && ngx_worker != 0) {
        return NGX_OK;
    }

    rt = &ngx_http_llmproxy_retention;
    ngx_memzero(rt, sizeof(ngx_http_llmproxy_retention_t));

    rt->uri = (char *) lmcf->database.data;     /* null-terminated */
    rt->retention = lmcf->usage_retention;
    rt->every = lmcf->usage_retention_every;
    rt->thread_pool = lmcf->thread_pool;

    rt->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (rt->task == NULL) {
        return NGX_ERROR;
    }

    rt->task->ctx = rt;
    rt->task->handler = ngx_http_llmproxy_retention_thread;
    rt->task->event.handler = ngx_http_llmproxy_retention_done;
    rt->task->event.data = rt;
    rt->task->event.log = cycle->log;

    rt->timer.handler = ngx_http_llmproxy_retention_start;
    rt->timer.data = rt;
    rt->timer.log = cycle->log;
    rt->timer.cancelable = 1;

    /* not at once: a gateway starting is busy enough loading its keys */

    ngx_add_timer(&rt->timer,
                  ngx_min(rt->every, NGX_HTTP_LLMPROXY_RETENTION_FIRST));

    return NGX_OK;
}


static void
ngx_http_llmproxy_retention_start(ngx_event_t *ev)
{
    ngx_http_llmproxy_retention_t  *rt = ev->data;

    if (ngx_exiting || ngx_terminate || rt->busy) {
        return;
    }

    if (!rt->more) {
        rt->total = 0;
    }

    rt->rc = NGX_OK;
    rt->locked = 0;
    rt->more = 0;
    rt->deleted = 0;
    rt->err[0] = '\0';

    if (ngx_thread_task_post(rt->thread_pool, rt->task) != NGX_OK) {
        ngx_add_timer(&rt->timer, rt->every);
        return;
    }

    rt->busy = 1;
}


/* in a thread of the pool */

static void
ngx_http_llmproxy_retention_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_retention_t *rt = data;

    PGresult  *res;

    if (ngx_http_llmproxy_retention_connect(rt) != NGX_OK) {
        return;
    }

    /* one gateway at a time; the lock goes with the session if it dies */

    res = PQexec(rt->conn, "SELECT pg_try_advisory_lock("
                           "hashtext('llmproxy_usage_retention'))");

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_llmproxy_retention_failed(rt, res);
        return;
    }

    if (PQgetvalue(res, 0, 0)[0] != 't') {
        PQclear(res);
        rt->locked = 1;
        return;
    }

    PQclear(res);

    if (ngx_http_llmproxy_retention_delete(rt) != NGX_OK) {
        return;
    }

    res = PQexec(rt->conn, "SELECT pg_advisory_unlock("
                           "hashtext('llmproxy_usage_retention'))");
    PQclear(res);
}


/* the session of the last run, or a new one */

static ngx_int_t
ngx_http_llmproxy_retention_connect(ngx_http_llmproxy_retention_t *rt)
{
    if (rt->conn && PQstatus(rt->conn) != CONNECTION_OK) {
        PQfinish(rt->conn);
        rt->conn = NULL;
    }

    if (rt->conn) {
        return NGX_OK;
    }

    rt->conn = ngx_http_llmproxy_db_connect(rt->uri,
                                            "-c statement_timeout=60000",
                                            "llmproxy-retention");

    if (rt->conn == NULL || PQstatus(rt->conn) != CONNECTION_OK) {
        ngx_cpystrn((u_char *) rt->err,
                    (u_char *) (rt->conn ? PQerrorMessage(rt->conn)
                                         : "out of memory"),
                    sizeof(rt->err));
        PQfinish(rt->conn);
        rt->conn = NULL;
        rt->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * At most NGX_HTTP_LLMPROXY_RETENTION_RUN batches of old rows; rt->more
 * when there may be more of them.  Since schema 10 the records are in
 * llmproxy_usage_packs (the gateways') and llmproxy_usage_rows (the
 * others), llmproxy_usage being a view over both: a pack goes once its
 * latest record is old, which keeps its others a flush interval longer.
 */

static ngx_int_t
ngx_http_llmproxy_retention_delete(ngx_http_llmproxy_retention_t *rt)
{
    char                 secs[32];
    ngx_uint_t           i, s, packs;
    PGresult            *res;
    const char          *values[1];
    unsigned long long   n;

    /* the BRIN indexes find the old rows; ctids delete them; n: records */

    static const char  *sql[] = {
        "WITH d AS (DELETE FROM llmproxy_usage WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM llmproxy_usage"
        " WHERE created_at < now() - make_interval(secs => $1::bigint)"
        " LIMIT " NGX_HTTP_LLMPROXY_RETENTION_BATCH ")) RETURNING 1 AS n)"
        " SELECT count(*), count(*) FROM d",

        "WITH d AS (DELETE FROM llmproxy_usage_rows WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM llmproxy_usage_rows"
        " WHERE created_at < now() - make_interval(secs => $1::bigint)"
        " LIMIT " NGX_HTTP_LLMPROXY_RETENTION_BATCH ")) RETURNING 1 AS n)"
        " SELECT count(*), count(*) FROM d",

        "WITH d AS (DELETE FROM llmproxy_usage_packs WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM llmproxy_usage_packs"
        " WHERE last_at < now() - make_interval(secs => $1::bigint)"
        " LIMIT " NGX_HTTP_LLMPROXY_RETENTION_BATCH ")) RETURNING n)"
        " SELECT count(*), coalesce(sum(n), 0) FROM d"
    };

    res = PQexec(rt->conn,
                 "SELECT to_regclass('llmproxy_usage_packs') IS NOT NULL");

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_llmproxy_retention_failed(rt, res);
        return NGX_ERROR;
    }

    packs = (PQgetvalue(res, 0, 0)[0] == 't');
    PQclear(res);

    ngx_sprintf((u_char *) secs, "%T%Z", rt->retention);
    values[0] = secs;

    s = packs ? 1 : 0;
    i = 0;

    while (i < NGX_HTTP_LLMPROXY_RETENTION_RUN) {

        res = PQexecParams(rt->conn, sql[s], 1, NULL, values, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            ngx_http_llmproxy_retention_failed(rt, res);
            return NGX_ERROR;
        }

        n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        rt->deleted += strtoull(PQgetvalue(res, 0, 1), NULL, 10);

        PQclear(res);

        i++;

        if (n < NGX_HTTP_LLMPROXY_RETENTION_NBATCH) {
            /* this table is done: the packs after the rows */

            if (s != 1) {
                return NGX_OK;
            }

            s = 2;
        }
    }

    rt->more = 1;

    return NGX_OK;
}


static void
ngx_http_llmproxy_retention_failed(ngx_http_llmproxy_retention_t *rt,
    PGresult *res)
{
    ngx_cpystrn((u_char *) rt->err, (u_char *) PQerrorMessage(rt->conn),
                sizeof(rt->err));
    PQclear(res);
    rt->rc = NGX_ERROR;

    /* a new session for the next run: it drops the lock too */

    PQfinish(rt->conn);
    rt->conn = NULL;
}


/* back on the event loop */

static void
ngx_http_llmproxy_retention_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_retention_t *rt = ev->data;

    rt->busy = 0;
    rt->total += rt->deleted;

    if (rt->rc != NGX_OK) {
        if (!rt->failing) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "llmproxy: usage retention failed, trying again "
                          "later: %s", rt->err);
        }

        rt->failing = 1;
        rt->more = 0;

    } else {
        rt->failing = 0;

        if (rt->locked) {
            ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                          "llmproxy: usage retention runs on another "
                          "gateway");

        } else if (!rt->more && rt->total) {
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "llmproxy: usage retention deleted %uL records "
                          "older than %T s", rt->total, rt->retention);
        }
    }

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(&rt->timer, rt->more ? NGX_HTTP_LLMPROXY_RETENTION_PAUSE
                                       : rt->every);
}

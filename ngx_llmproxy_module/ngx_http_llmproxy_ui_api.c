/*
 * The dashboard's data (SPEC section 13), under /llmproxy/ui/api/ of a
 * gateway location:
 *
 *   GET summary?days=N   usage of the last N UTC days (1 to 400, default
 *                        7) from the daily totals (llmproxy_usage_daily,
 *                        kept by a trigger on the records), budgets, the
 *                        errors of the last 24 hours: one JSON document
 *                        that PostgreSQL builds, in a thread of the pool
 *   GET live             who is signed in; deployments in cooldown now,
 *                        from the zone
 *
 * One rule for both: the master key sees everything; a virtual key sees
 * its own usage, budget and limits only (its hash bounds every query), and
 * no cooldowns.  A key over its budget may still look at what it spent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_admin.h"
#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_zone.h"

#include <libpq-fe.h>


#define NGX_HTTP_LLMPROXY_UI_CONNS     4     /* kept per worker */
#define NGX_HTTP_LLMPROXY_UI_MAX_DAYS  400


/* a connection and what its database has */
typedef struct {
    PGconn                         *conn;
    ngx_uint_t                      between;   /* llmproxy_usage_between() */
} ngx_http_llmproxy_ui_conn_t;


typedef struct {
    ngx_http_request_t             *request;   /* NULL once it is gone */
    ngx_http_llmproxy_ui_conn_t     db;
    const char                     *uri;
    char                            days[8];
    char                            key[65];   /* "": the master key */
    char                           *json;      /* malloc()ed */
    size_t                          len;
    ngx_uint_t                      status;
    ngx_uint_t                      old_schema;  /* no daily totals yet */
    char                            err[256];
} ngx_http_llmproxy_ui_task_t;


static ngx_int_t ngx_http_llmproxy_ui_summary(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_ui_query(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_ui_done(ngx_event_t *ev);
static void ngx_http_llmproxy_ui_request_gone(void *data);
static ngx_int_t ngx_http_llmproxy_ui_live(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_ui_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len);


/* idle connections of this worker, handed to one task at a time */
static ngx_http_llmproxy_ui_conn_t
    ngx_http_llmproxy_ui_free[NGX_HTTP_LLMPROXY_UI_CONNS];
static ngx_uint_t  ngx_http_llmproxy_ui_nfree;


/*
 * $1: days, $2: the key's hash ('' for everyone).  Whole days and today
 * alike come from the daily totals, which the records' trigger keeps up to
 * date in the transaction that writes them; only the recent errors read
 * the records (the last 24 hours: llmproxy_usage_between() reads only
 * those packs and rows, through their BRIN indexes, where the view
 * llmproxy_usage would decode every pack of a year; a database of schema
 * 9, which the gateway still writes to, has the table llmproxy_usage and
 * its BRIN index instead).  Keys and models beyond the 8 costliest are
 * "(other)" in the charts' series.  The totals are read three times (by
 * day and model, by day and key, by deployment for the latency); the rest
 * derives from those few rows.
 */

#define NGX_HTTP_LLMPROXY_UI_SUMMARY_SQL(records)                              \
    "WITH p AS ( "                                                             \
    "  SELECT (now() AT TIME ZONE 'UTC')::date - ($1::int - 1) AS since, "     \
    "         (now() AT TIME ZONE 'UTC')::date AS today, "                     \
    "         nullif($2::text, '') AS me "                                     \
    "), d AS NOT MATERIALIZED ( "                                              \
    "  SELECT u.* FROM llmproxy_usage_daily u "                                \
    "  WHERE u.day >= (now() AT TIME ZONE 'UTC')::date - ($1::int - 1) "       \
    "    AND ($2::text = '' OR u.key_hash = $2::text) "                        \
    "), days AS ( "                                                            \
    "  SELECT day::date FROM p, "                                              \
    "         generate_series(p.since, p.today, interval '1 day') AS day "     \
    "), dm AS ( "                                                              \
    "  SELECT day, model, sum(requests) AS requests, sum(errors) AS errors, "  \
    "         sum(prompt_tokens) AS prompt_tokens, "                           \
    "         sum(completion_tokens) AS completion_tokens, sum(cost) AS cost " \
    "  FROM d GROUP BY day, model "                                            \
    "), dk AS ( "                                                              \
    "  SELECT day, key_hash, max(key_alias) AS alias, "                        \
    "         sum(requests) AS requests, sum(errors) AS errors, "              \
    "         sum(prompt_tokens) AS prompt_tokens, "                           \
    "         sum(completion_tokens) AS completion_tokens, sum(cost) AS cost " \
    "  FROM d GROUP BY day, key_hash "                                         \
    "), keys AS ( "                                                            \
    "  SELECT key_hash, "                                                      \
    "         coalesce(max(alias), CASE WHEN key_hash = '' THEN "              \
    "                  '(master key)' ELSE left(key_hash, 16) END) AS name, "  \
    "         sum(requests) AS requests, sum(errors) AS errors, "              \
    "         sum(prompt_tokens) AS prompt_tokens, "                           \
    "         sum(completion_tokens) AS completion_tokens, "                   \
    "         sum(cost) AS cost, "                                             \
    "         row_number() OVER (ORDER BY sum(cost) DESC, "                    \
    "                            sum(requests) DESC, key_hash) AS rank "       \
    "  FROM dk GROUP BY key_hash "                                             \
    "), models AS ( "                                                          \
    "  SELECT model AS name, sum(requests) AS requests, "                      \
    "         sum(errors) AS errors, sum(prompt_tokens) AS prompt_tokens, "    \
    "         sum(completion_tokens) AS completion_tokens, "                   \
    "         sum(cost) AS cost, "                                             \
    "         row_number() OVER (ORDER BY sum(cost) DESC, "                    \
    "                            sum(requests) DESC, model) AS rank "          \
    "  FROM dm GROUP BY model "                                                \
    "), per_day AS ( "                                                         \
    "  SELECT 'model' AS by, x.day, "                                          \
    "         CASE WHEN m.rank <= 8 THEN m.name ELSE '(other)' END AS name, "  \
    "         sum(x.requests) AS requests, sum(x.cost) AS cost "               \
    "  FROM dm x JOIN models m ON m.name = x.model "                           \
    "  GROUP BY 1, 2, 3 "                                                      \
    "  UNION ALL "                                                             \
    "  SELECT 'key', x.day, "                                                  \
    "         CASE WHEN k.rank <= 8 THEN k.name ELSE '(other)' END, "          \
    "         sum(x.requests), sum(x.cost) "                                   \
    "  FROM dk x JOIN keys k ON k.key_hash = x.key_hash "                      \
    "  GROUP BY 1, 2, 3 "                                                      \
    "), series AS ( "                                                          \
    "  SELECT s.by, s.name, "                                                  \
    "         json_agg(json_build_array(s.day - p.since, s.requests, "         \
    "                                   round(s.cost::numeric, 6)) "           \
    "                  ORDER BY s.day) AS points "                             \
    "  FROM per_day s, p "                                                     \
    "  GROUP BY s.by, s.name "                                                 \
    "), hist AS ( "                                                            \
    "  SELECT model, deployment, max(latency_ms_max) AS lat_max, "             \
    "         sum(latency_ms_sum) AS lat_sum, sum(requests) AS requests, "     \
    "         sum(errors) AS errors, "                                         \
    "         ARRAY[ "                                                         \
    "                 sum(lat_lt_25), "                                        \
    "                 sum(lat_lt_50), "                                        \
    "                 sum(lat_lt_100), "                                       \
    "                 sum(lat_lt_200), "                                       \
    "                 sum(lat_lt_300), "                                       \
    "                 sum(lat_lt_500), "                                       \
    "                 sum(lat_lt_750), "                                       \
    "                 sum(lat_lt_1000), "                                      \
    "                 sum(lat_lt_1500), "                                      \
    "                 sum(lat_lt_2000), "                                      \
    "                 sum(lat_lt_3000), "                                      \
    "                 sum(lat_lt_5000), "                                      \
    "                 sum(lat_lt_7500), "                                      \
    "                 sum(lat_lt_10000), "                                     \
    "                 sum(lat_lt_15000), "                                     \
    "                 sum(lat_lt_20000), "                                     \
    "                 sum(lat_lt_30000), "                                     \
    "                 sum(lat_lt_60000), "                                     \
    "                 sum(lat_lt_120000), "                                    \
    "                 sum(requests)]::bigint[] AS lt "                         \
    "  FROM d GROUP BY model, deployment "                                     \
    ") "                                                                       \
    "SELECT json_build_object( "                                               \
    "  'since', (SELECT since FROM p), "                                       \
    "  'today', (SELECT today FROM p), "                                       \
    "  'days', (SELECT json_agg(day ORDER BY day) FROM days), "                \
    "  'totals', (SELECT json_build_object( "                                  \
    "      'requests', coalesce(sum(requests), 0), "                           \
    "      'errors', coalesce(sum(errors), 0), "                               \
    "      'prompt_tokens', coalesce(sum(prompt_tokens), 0), "                 \
    "      'completion_tokens', coalesce(sum(completion_tokens), 0), "         \
    "      'cost', coalesce(sum(cost), 0)) FROM dm), "                         \
    "  'keys', (SELECT coalesce(json_agg(json_build_object( "                  \
    "      'name', name, 'hash', left(key_hash, 16), "                         \
    "      'requests', requests, 'errors', errors, "                           \
    "      'prompt_tokens', prompt_tokens, "                                   \
    "      'completion_tokens', completion_tokens, 'cost', cost) "             \
    "      ORDER BY rank), '[]') FROM keys WHERE rank <= 50), "                \
    "  'models', (SELECT coalesce(json_agg(json_build_object( "                \
    "      'name', name, 'requests', requests, 'errors', errors, "             \
    "      'prompt_tokens', prompt_tokens, "                                   \
    "      'completion_tokens', completion_tokens, 'cost', cost) "             \
    "      ORDER BY rank), '[]') FROM models WHERE rank <= 50), "              \
    "  'by_model', (SELECT coalesce(json_agg(json_build_object( "              \
    "      'name', name, 'points', points) "                                   \
    "      ORDER BY name), '[]') FROM series WHERE by = 'model'), "            \
    "  'by_key', (SELECT coalesce(json_agg(json_build_object( "                \
    "      'name', name, 'points', points) "                                   \
    "      ORDER BY name), '[]') FROM series WHERE by = 'key'), "              \
    "  'latency', (SELECT coalesce(json_agg(json_build_object( "               \
    "      'model', model, 'deployment', deployment, "                         \
    "      'requests', requests, 'errors', errors, "                           \
    "      'avg_ms', round(lat_sum::numeric / greatest(requests, 1), 1), "     \
    "      'p50_ms', llmproxy_usage_percentile(lt, lat_max, 0.5), "            \
    "      'p95_ms', llmproxy_usage_percentile(lt, lat_max, 0.95)) "           \
    "      ORDER BY requests DESC, model, deployment), '[]') FROM hist), "     \
    "  'budgets', (SELECT coalesce(json_agg(json_build_object( "               \
    "      'name', coalesce(k.alias, k.key_prefix), "                          \
    "      'hash', left(k.key_hash, 16), 'spend', k.spend, "                   \
    "      'max_budget', k.max_budget, "                                       \
    "      'budget_reset_at', k.budget_reset_at, "                             \
    "      'rpm', k.rpm, 'tpm', k.tpm, 'blocked', k.blocked, "                 \
    "      'expires_at', k.expires_at) "                                       \
    "      ORDER BY k.spend DESC, k.alias), '[]') "                            \
    "    FROM llmproxy_keys k, p "                                             \
    "    WHERE k.revoked_at IS NULL "                                          \
    "      AND (p.me IS NULL OR k.key_hash = p.me)), "                         \
    "  'errors', (SELECT coalesce(json_agg(json_build_object( "                \
    "      'time', created_at, "                                               \
    "      'key', coalesce(key_alias, CASE WHEN key_hash IS NULL "             \
    "             THEN '(master key)' ELSE left(key_hash, 16) END), "          \
    "      'model', model, 'deployment', deployment, 'status', status, "       \
    "      'error', error, 'latency_ms', latency_ms) "                         \
    "      ORDER BY created_at DESC), '[]') "                                  \
    "    FROM (SELECT u.* FROM " records " u "                                 \
    "          WHERE u.created_at > now() - interval '1 day' "                 \
    "            AND u.status >= 400 "                                         \
    "            AND ($2::text = '' OR u.key_hash = $2::text) "                \
    "          ORDER BY u.created_at DESC LIMIT 50) e) "                       \
    ")::text"


/* schema 10: the last day's packs and rows only */
static const char  ngx_http_llmproxy_ui_summary_sql[] =
    NGX_HTTP_LLMPROXY_UI_SUMMARY_SQL(
        "llmproxy_usage_between(now() - interval '1 day', 'infinity')");

/* before: the table llmproxy_usage, through its BRIN index */
static const char  ngx_http_llmproxy_ui_summary_sql9[] =
    NGX_HTTP_LLMPROXY_UI_SUMMARY_SQL("llmproxy_usage");


ngx_int_t
ngx_http_llmproxy_ui_api_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  name;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed",
                                      "use GET for the dashboard's data");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_llmproxy_check_key(r, ctx);

    if (rc == NGX_HTTP_TOO_MANY_REQUESTS && ctx->err.code
        && ngx_strcmp(ctx->err.code, "budget_exceeded") == 0)
    {
        /* a valid key at the end of its budget: it may see why */
        ctx->err.status = 0;
        ctx->err.code = NULL;
        ctx->err.type = NULL;
        ngx_str_null(&ctx->err.message);
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    name.data = r->uri.data + sizeof("/llmproxy/ui/api/") - 1;
    name.len = r->uri.len - (sizeof("/llmproxy/ui/api/") - 1);

    if (name.len == 7 && ngx_strncmp(name.data, "summary", 7) == 0) {
        return ngx_http_llmproxy_ui_summary(r, ctx);
    }

    if (name.len == 4 && ngx_strncmp(name.data, "live", 4) == 0) {
        return ngx_http_llmproxy_ui_live(r, ctx);
    }

    return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                  "invalid_request_error", "unknown_url",
                                  "unknown dashboard endpoint");
}


static ngx_int_t
ngx_http_llmproxy_ui_summary(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t                       days;
    ngx_str_t                       arg;
    ngx_thread_task_t              *task;
    ngx_pool_cleanup_t             *cln;
    ngx_http_llmproxy_ui_task_t    *t;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (lmcf->database.len == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "api_error", "no_database",
                                      "no llmproxy_database: no usage");
    }

    days = 7;

    if (ngx_http_arg(r, (u_char *) "days", 4, &arg) == NGX_OK) {
        days = ngx_atoi(arg.data, arg.len);

        if (days < 1 || days > NGX_HTTP_LLMPROXY_UI_MAX_DAYS) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request_error",
                                          "invalid_days",
                                          "days must be 1 to %d",
                                          NGX_HTTP_LLMPROXY_UI_MAX_DAYS);
        }
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_llmproxy_ui_task_t),
                      r->connection->log);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_free(task);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t = (ngx_http_llmproxy_ui_task_t *) (task + 1);
    task->ctx = t;

    t->request = r;
    t->uri = (char *) lmcf->database.data;     /* null-terminated */
    ngx_sprintf((u_char *) t->days, "%i%Z", days);

    if (!ctx->key.master) {
        ngx_hex_dump((u_char *) t->key, ctx->key.digest, 32);
    }

    if (ngx_http_llmproxy_ui_nfree) {
        t->db = ngx_http_llmproxy_ui_free[--ngx_http_llmproxy_ui_nfree];
    }

    cln->handler = ngx_http_llmproxy_ui_request_gone;
    cln->data = t;

    task->handler = ngx_http_llmproxy_ui_query;
    task->event.handler = ngx_http_llmproxy_ui_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(lmcf->thread_pool, task) != NGX_OK) {
        cln->handler = NULL;

        if (t->db.conn) {
            ngx_http_llmproxy_ui_free[ngx_http_llmproxy_ui_nfree++] = t->db;
        }

        ngx_free(task);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request waits for the thread; _done() finalizes it */
    r->main->count++;

    return NGX_DONE;
}


/* in a thread of the pool: libpq blocks here, never on the event loop */

static void
ngx_http_llmproxy_ui_query(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_ui_task_t *t = data;

    char        *sqlstate;
    PGresult    *res;
    const char  *values[2];

    t->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    if (t->db.conn && PQstatus(t->db.conn) != CONNECTION_OK) {
        PQfinish(t->db.conn);
        t->db.conn = NULL;
    }

    if (t->db.conn == NULL) {
        t->db.between = 0;
        t->db.conn = ngx_http_llmproxy_db_connect(t->uri,
                                         "-c statement_timeout=30000",
                                         "llmproxy-dashboard");

        if (t->db.conn == NULL || PQstatus(t->db.conn) != CONNECTION_OK) {
            ngx_cpystrn((u_char *) t->err,
                        (u_char *) (t->db.conn ? PQerrorMessage(t->db.conn)
                                               : "out of memory"),
                        sizeof(t->err));
            PQfinish(t->db.conn);
            t->db.conn = NULL;
            return;
        }
    }

    if (!t->db.between) {
        /*
         * once a connection when it is there (the schema only grows);
         * until then each time, as llmproxyctl migrate may add it while
         * the gateway runs
         */

        res = PQexec(t->db.conn, "SELECT to_regprocedure('llmproxy_usage_"
                     "between(timestamptz,timestamptz)') IS NOT NULL");

        t->db.between = PQresultStatus(res) == PGRES_TUPLES_OK
                        && PQntuples(res) == 1
                        && PQgetvalue(res, 0, 0)[0] == 't';

        PQclear(res);
    }

    values[0] = t->days;
    values[1] = t->key;

    res = PQexecParams(t->db.conn,
                       t->db.between ? ngx_http_llmproxy_ui_summary_sql
                                     : ngx_http_llmproxy_ui_summary_sql9,
                       2, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_cpystrn((u_char *) t->err, (u_char *) PQresultErrorMessage(res),
                    sizeof(t->err));

        /* undefined table or function: migration 5 is not applied */
        sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        t->old_schema = sqlstate && (ngx_strcmp(sqlstate, "42P01") == 0
                                     || ngx_strcmp(sqlstate, "42883") == 0);

        PQclear(res);
        t->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    t->len = PQgetlength(res, 0, 0);
    t->json = malloc(t->len);

    if (t->json) {
        ngx_memcpy(t->json, PQgetvalue(res, 0, 0), t->len);
        t->status = NGX_HTTP_OK;
    }

    PQclear(res);
}


/* back on the event loop */

static void
ngx_http_llmproxy_ui_done(ngx_event_t *ev)
{
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_thread_task_t            *task;
    ngx_http_request_t           *r;
    ngx_http_llmproxy_ui_task_t  *t;

    task = ev->data;
    t = task->ctx;
    r = t->request;

    if (t->db.conn) {
        if (PQstatus(t->db.conn) == CONNECTION_OK
            && ngx_http_llmproxy_ui_nfree < NGX_HTTP_LLMPROXY_UI_CONNS)
        {
            ngx_http_llmproxy_ui_free[ngx_http_llmproxy_ui_nfree++] = t->db;

        } else {
            /* one Terminate message into the socket's buffer, no wait */
            PQfinish(t->db.conn);
        }
    }

    if (r == NULL) {
        goto done;
    }

    t->request = NULL;    /* the pool cleanup must not touch t any more */

    if (t->status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llmproxy: dashboard query failed: %s",
                      t->err[0] ? t->err : "out of memory");

        if (t->old_schema) {
            rc = ngx_http_llmproxy_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "api_error", "schema_outdated",
                                        "the database has no daily usage "
                                        "totals: run llmproxyctl migrate");
            goto finalize;
        }

        rc = ngx_http_llmproxy_fail(r, t->status, "api_error",
                                    "database_error",
                                    "the usage database did not answer");
        goto finalize;
    }

    p = ngx_pnalloc(r->pool, t->len);
    if (p == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto finalize;
    }

    ngx_memcpy(p, t->json, t->len);

    rc = ngx_http_llmproxy_ui_send(r, NGX_HTTP_OK, p, t->len);

finalize:

    ngx_http_finalize_request(r, rc);

done:

    free(t->json);
    ngx_free(task);
}


static void
ngx_http_llmproxy_ui_request_gone(void *data)
{
    ngx_http_llmproxy_ui_task_t *t = data;

    t->request = NULL;
}


/* who is signed in, and the deployments in cooldown (master key only) */

static ngx_int_t
ngx_http_llmproxy_ui_live(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char                         *p, *last;
    size_t                          len;
    ngx_uint_t                      i;
    ngx_array_t                     cooldowns;
    ngx_keyval_t                   *kv;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    ngx_memzero(&cooldowns, sizeof(ngx_array_t));

    if (ctx->key.master
        && ngx_http_llmproxy_cooldown_list(zctx, r->pool, &cooldowns)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("{\"master\":false,\"key\":\"\",\"hash\":\"\","
                 "\"database\":\"not configured\",\"generation\":,"
                 "\"cooldowns\":[]}")
          + ctx->key.alias.len * 6 + 16 + NGX_INT_T_LEN;

    kv = cooldowns.elts;

    for (i = 0; i < cooldowns.nelts; i++) {
        len += sizeof("{\"deployment\":\"\",\"until_ms_from_now\":},")
               + kv[i].key.len * 6 + kv[i].value.len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_sprintf(p, "{\"master\":%s,\"key\":\"",
                       ctx->key.master ? "true" : "false");
    last = (u_char *) ngx_escape_json(last, ctx->key.alias.data,
                                      ctx->key.alias.len);
    last = ngx_sprintf(last, "\",\"hash\":\"");

    if (!ctx->key.master) {
        last = ngx_hex_dump(last, ctx->key.digest, 8);
    }

    last = ngx_sprintf(last, "\",\"database\":\"%s\",\"generation\":%uA,"
                       "\"cooldowns\":[",
                       lmcf->database.len == 0 ? "not configured"
                       : zctx->sh->db_ok ? "connected" : "unreachable",
                       zctx->sh->generation);

    for (i = 0; i < cooldowns.nelts; i++) {
        last = ngx_sprintf(last, "%s{\"deployment\":\"", i ? "," : "");
        last = (u_char *) ngx_escape_json(last, kv[i].key.data,
                                          kv[i].key.len);
        last = ngx_sprintf(last, "\",\"until_ms_from_now\":%V}",
                           &kv[i].value);
    }

    *last++ = ']';
    *last++ = '}';

    return ngx_http_llmproxy_ui_send(r, NGX_HTTP_OK, p, last - p);
}


/* never cached: the answer depends on the key */

static ngx_int_t
ngx_http_llmproxy_ui_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return ngx_http_llmproxy_send_json(r, status, data, len);
}

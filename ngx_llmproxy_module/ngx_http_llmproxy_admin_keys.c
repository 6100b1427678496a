/*
 * LiteLLM's key management API on the admin location, with its request
 * and response JSON, so that scripts written for LiteLLM's proxy keep
 * working:
 *
 *   POST /key/generate   {key_alias, models, max_budget, budget_duration,
 *                         rpm_limit, tpm_limit, duration, blocked, key}
 *   POST /key/update     {key, ...the same}
 *   POST /key/delete     {keys: [...], key_aliases: [...]}
 *   POST /key/block      {key}
 *   POST /key/unblock    {key}
 *   GET  /key/info?key=  {key, info: {...}}
 *   GET  /key/list       {keys, total_count, current_page, total_pages}
 *
 * The master key may do everything; a virtual key may read its own
 * /key/info only.  A key is named by itself or by its SHA-256 hex, as
 * LiteLLM's "token".  The database work (libpq, and parsing the body)
 * runs in a thread of the pool, never on the event loop; keys written
 * here reach every gateway through the poller like the CLI's.
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

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include <llmp_litellm.h>
#include <llmp_sha256.h>


#define NGX_HTTP_LLMPROXY_KEYS_MAX_BODY  (64 * 1024)
#define NGX_HTTP_LLMPROXY_KEYS_RANDOM    48
#define NGX_HTTP_LLMPROXY_KEYS_PARAMS    16

/*
 * Each call opens a database connection in a thread: a key holder looping
 * on /key/info must not queue up the pool or the database
 */
#define NGX_HTTP_LLMPROXY_KEYS_INFLIGHT  16


typedef enum {
    NGX_HTTP_LLMPROXY_KEYS_GENERATE = 0,
    NGX_HTTP_LLMPROXY_KEYS_UPDATE,
    NGX_HTTP_LLMPROXY_KEYS_DELETE,
    NGX_HTTP_LLMPROXY_KEYS_BLOCK,
    NGX_HTTP_LLMPROXY_KEYS_UNBLOCK,
    NGX_HTTP_LLMPROXY_KEYS_INFO,
    NGX_HTTP_LLMPROXY_KEYS_LIST
} ngx_http_llmproxy_keys_op_e;


typedef struct {
    const char                     *suffix;
    ngx_uint_t                      method;
} ngx_http_llmproxy_keys_route_t;


typedef struct {
    ngx_http_request_t             *request;   /* NULL once it is gone */
    ngx_uint_t                      op;
    const char                     *database;
    char                           *in;        /* body, or the GET's args */
    size_t                          in_len;
    char                           *out;       /* the answer (malloc) */
    ngx_uint_t                      status;
    const char                     *code;
    char                            err[256];
} ngx_http_llmproxy_keys_task_t;


/* a statement being built: SQL text and its text parameters */

typedef struct {
    char                            sql[4096];
    size_t                          len;
    const char                     *params[NGX_HTTP_LLMPROXY_KEYS_PARAMS];
    char                            bufs[NGX_HTTP_LLMPROXY_KEYS_PARAMS][40];
    char                           *owned[NGX_HTTP_LLMPROXY_KEYS_PARAMS];
    int                             n;
    int                             overflow;   /* never run a cut SQL */
} ngx_http_llmproxy_keys_stmt_t;


static const ngx_http_llmproxy_keys_route_t  ngx_http_llmproxy_keys_routes[] =
{
    { "/key/generate", NGX_HTTP_POST },
    { "/key/update", NGX_HTTP_POST },
    { "/key/delete", NGX_HTTP_POST },
    { "/key/block", NGX_HTTP_POST },
    { "/key/unblock", NGX_HTTP_POST },
    { "/key/info", NGX_HTTP_GET },
    { "/key/list", NGX_HTTP_GET },
    { NULL, 0 }
};


/* fields LiteLLM scripts send that change nothing a key may do here */
static const char *const  ngx_http_llmproxy_keys_ignored[] = {
    "metadata", "user_id", "team_id", "organization_id", "tags",
    "send_invite_email", "key_type", "soft_budget", "budget_id",
    "created_by", "updated_by", NULL
};


/* the info object of a key, built by PostgreSQL in LiteLLM's shape */
#define NGX_HTTP_LLMPROXY_KEYS_INFO_SQL                                      \
    "json_build_object('key_name', CASE WHEN key_prefix LIKE '%...%'"        \
    " THEN key_prefix ELSE key_prefix || '...' END,"                         \
    " 'key_alias', alias, 'token', key_hash, 'spend', spend,"                \
    " 'max_budget', max_budget, 'models', models,"                           \
    " 'access_groups', access_groups, 'tpm_limit', tpm, 'rpm_limit', rpm,"   \
    " 'budget_duration', CASE WHEN budget_duration_seconds IS NULL"          \
    " THEN NULL WHEN budget_duration_seconds % 86400 = 0"                    \
    " THEN (budget_duration_seconds / 86400) || 'd'"                         \
    " WHEN budget_duration_seconds % 3600 = 0"                               \
    " THEN (budget_duration_seconds / 3600) || 'h'"                          \
    " WHEN budget_duration_seconds % 60 = 0"                                 \
    " THEN (budget_duration_seconds / 60) || 'm'"                            \
    " ELSE budget_duration_seconds || 's' END,"                              \
    " 'budget_reset_at', budget_reset_at, 'expires', expires_at,"            \
    " 'blocked', blocked, 'created_at', created_at,"                         \
    " 'updated_at', updated_at, 'user_id', NULL, 'team_id', NULL,"           \
    " 'metadata', '{}'::json)::text"


static ngx_int_t ngx_http_llmproxy_keys_post(ngx_http_request_t *r,
    ngx_uint_t op, u_char *in, size_t len);
static ngx_int_t ngx_http_llmproxy_keys_read_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_keys_own_subject(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *subject, u_char *hex);
static ngx_int_t ngx_http_llmproxy_keys_query(ngx_http_request_t *r,
    ngx_int_t op, ngx_str_t *subject);
static void ngx_http_llmproxy_keys_body(ngx_http_request_t *r);
static void ngx_http_llmproxy_keys_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_keys_done(ngx_event_t *ev);
static void ngx_http_llmproxy_keys_gone(void *data);
static int ngx_http_llmproxy_keys_value_alias(
    ngx_http_llmproxy_keys_task_t *t, const cJSON *v, const char **out);
static int ngx_http_llmproxy_keys_value_models(
    ngx_http_llmproxy_keys_task_t *t, ngx_http_llmproxy_keys_stmt_t *s,
    const cJSON *v, const char **out);
static int ngx_http_llmproxy_keys_value_number(
    ngx_http_llmproxy_keys_task_t *t, const cJSON *v, const char *name,
    char *buf, const char **out);
static int ngx_http_llmproxy_keys_new_key(ngx_http_llmproxy_keys_task_t *t,
    const cJSON *body, char key[64]);
static int ngx_http_llmproxy_keys_insert(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *s);
static void ngx_http_llmproxy_keys_stmt_free(
    ngx_http_llmproxy_keys_stmt_t *s);
static int ngx_http_llmproxy_keys_generate_sql(
    ngx_http_llmproxy_keys_task_t *t, ngx_http_llmproxy_keys_stmt_t *s,
    const cJSON *body, char *hex, char *prefix);
static int ngx_http_llmproxy_keys_list_count(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *st, const char *alias,
    cJSON **rows);
static int ngx_http_llmproxy_keys_list_arg(const cJSON *args,
    const char *name, long dflt, long max, long *value);
static cJSON *ngx_http_llmproxy_keys_list_rows(cJSON *rows, cJSON *keys,
    ngx_uint_t full);
static int ngx_http_llmproxy_keys_delete_check(
    ngx_http_llmproxy_keys_task_t *t, const cJSON *keys, const cJSON *names,
    cJSON **hp);
static int ngx_http_llmproxy_keys_one_sql(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *s, const cJSON *body);


static ngx_uint_t  ngx_http_llmproxy_keys_inflight;    /* this worker's */


/* a query argument as a form decodes it: "+" is a space, then %XX */

static size_t
ngx_http_llmproxy_keys_unescape(u_char *dst, ngx_str_t *arg)
{
    u_char  *p, *q;
    size_t   i;

    for (i = 0; i < arg->len; i++) {
        dst[i] = (arg->data[i] == '+') ? ' ' : arg->data[i];
    }

    p = dst;
    q = dst;
    ngx_unescape_uri(&q, &p, arg->len, 0);

    return q - dst;
}


/* the route of a URI ending in one of LiteLLM's paths, or -1 */

ngx_int_t
ngx_http_llmproxy_admin_keys_match(ngx_http_request_t *r)
{
    size_t                                 n;
    ngx_int_t                              i;
    const ngx_http_llmproxy_keys_route_t  *k;

    for (i = 0, k = ngx_http_llmproxy_keys_routes; k->suffix; i++, k++) {
        n = ngx_strlen(k->suffix);

        if (r->uri.len >= n
            && ngx_strncmp(r->uri.data + r->uri.len - n, k->suffix, n) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* /key/info, which a virtual key may call (for itself); the rest is master's */

ngx_uint_t
ngx_http_llmproxy_admin_keys_self(ngx_http_request_t *r)
{
    return ngx_http_llmproxy_admin_keys_match(r) == NGX_HTTP_LLMPROXY_KEYS_INFO;
}


ngx_int_t
ngx_http_llmproxy_admin_keys_handler(ngx_http_request_t *r, ngx_int_t op)
{
    u_char                          hex[65];
    ngx_int_t                       rc;
    ngx_str_t                       subject, v;
    ngx_http_llmproxy_ctx_t        *ctx;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the key /key/info asks about, read before the credentials strip it */

    ngx_str_null(&subject);

    if (op == NGX_HTTP_LLMPROXY_KEYS_INFO
        && ngx_http_arg(r, (u_char *) "key", 3, &v) == NGX_OK && v.len)
    {
        subject.data = ngx_pnalloc(r->pool, v.len);
        if (subject.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        subject.len = ngx_http_llmproxy_keys_unescape(subject.data, &v);
    }

    rc = (op == NGX_HTTP_LLMPROXY_KEYS_INFO)
         ? ngx_http_llmproxy_check_key(r, ctx)
         : ngx_http_llmproxy_check_master_key(r);

    /* the key never reaches a log line, whoever sent it */
    ngx_http_llmproxy_strip_key_arg(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (lmcf->database.len == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "api_error", "no_database",
                                      "virtual keys need llmproxy_database");
    }

    if (!(r->method & ngx_http_llmproxy_keys_routes[op].method)) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                   "invalid_request_error", "method_not_allowed",
                   "use %s", ngx_http_llmproxy_keys_routes[op].method
                             == NGX_HTTP_POST ? "POST" : "GET");
    }

    if (r->method == NGX_HTTP_POST) {
        return ngx_http_llmproxy_keys_read_body(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!ctx->key.master) {
        rc = ngx_http_llmproxy_keys_own_subject(r, ctx, &subject, hex);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llmproxy keys: op %i, %s", op,
                   subject.len ? "of a key" : "no key given");

    return ngx_http_llmproxy_keys_query(r, op, &subject);
}


/* a POST's body is read whole (at most 64k), then goes to the thread */

static ngx_int_t
ngx_http_llmproxy_keys_read_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->headers_in.content_length_n > NGX_HTTP_LLMPROXY_KEYS_MAX_BODY) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "body larger than 64k");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_llmproxy_keys_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * A virtual key reads itself only: the subject, when given, must be the
 * very key that authenticated (or its hash); not given, it is that key.
 * The subject is left as the key's hash, in hex (held in hex[65]).
 */

static ngx_int_t
ngx_http_llmproxy_keys_own_subject(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *subject, u_char *hex)
{
    unsigned char  digest[32];

    llmp_sha256_hex(ctx->key.digest, (char *) hex);

    if (subject->len) {
        if (subject->len == 64) {
            ngx_strlow(subject->data, subject->data, 64);

        } else {
            llmp_sha256(subject->data, subject->len, digest);
            llmp_sha256_hex(digest, (char *) subject->data);
            subject->len = 64;
        }

        if (ngx_strncmp(subject->data, hex, 64) != 0) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_FORBIDDEN,
                       "permission_error", "not_allowed",
                       "a virtual key may read its own /key/info only");
        }
    }

    subject->data = hex;
    subject->len = 64;

    return NGX_OK;
}


/*
 * A GET's arguments as a JSON object for the thread: {"key": "...", ...};
 * the key is the subject, not the argument.
 */

static ngx_int_t
ngx_http_llmproxy_keys_query(ngx_http_request_t *r, ngx_int_t op,
    ngx_str_t *subject)
{
    u_char      *p, *in;
    size_t       len;
    ngx_str_t    v, dec;
    ngx_uint_t   i;

    static const char  *args[] = {
        "key", "page", "size", "key_alias", "return_full_object", NULL
    };

    len = 2;

    for (i = 0; args[i]; i++) {
        if (ngx_http_arg(r, (u_char *) args[i], ngx_strlen(args[i]), &v)
            == NGX_OK)
        {
            len += 6 + ngx_strlen(args[i]) + 6 * v.len;
        }
    }

    len += 16 + 6 * subject->len;

    in = ngx_pnalloc(r->pool, len);
    if (in == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(in, "{", 1);

    for (i = 1; args[i]; i++) {
        if (ngx_http_arg(r, (u_char *) args[i], ngx_strlen(args[i]), &v)
            != NGX_OK)
        {
            continue;
        }

        dec.data = ngx_pnalloc(r->pool, v.len);
        if (dec.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dec.len = ngx_http_llmproxy_keys_unescape(dec.data, &v);

        p = ngx_sprintf(p, "\"%s\":\"", args[i]);
        p = (u_char *) ngx_escape_json(p, dec.data, dec.len);
        p = ngx_cpymem(p, "\",", 2);
    }

    if (subject->len) {
        p = ngx_cpymem(p, "\"key\":\"", 7);
        p = (u_char *) ngx_escape_json(p, subject->data, subject->len);
        p = ngx_cpymem(p, "\",", 2);
    }

    if (p[-1] == ',') {
        p--;
    }

    *p++ = '}';

    return ngx_http_llmproxy_keys_post(r, op, in, p - in);
}


static void
ngx_http_llmproxy_keys_body(ngx_http_request_t *r)
{
    u_char                   *p, *in;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (ctx == NULL || len > NGX_HTTP_LLMPROXY_KEYS_MAX_BODY) {
        ngx_http_finalize_request(r, ctx == NULL
            ? NGX_HTTP_INTERNAL_SERVER_ERROR
            : ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "invalid_request_error",
                                     "request_too_large",
                                     "body larger than 64k"));
        return;
    }

    in = ngx_pnalloc(r->pool, len + 2);
    if (in == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = in;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (b->in_file) {
            if (ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos)
                != b->file_last - b->file_pos)
            {
                ngx_http_finalize_request(r,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            p += b->file_last - b->file_pos;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    if (p == in) {
        p = ngx_cpymem(p, "{}", 2);    /* as curl -X POST without -d */
    }

    rc = ngx_http_llmproxy_keys_post(r, ngx_http_llmproxy_admin_keys_match(r),
                                     in, p - in);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_llmproxy_keys_post(ngx_http_request_t *r, ngx_uint_t op, u_char *in,
    size_t len)
{
    ngx_thread_task_t              *task;
    ngx_pool_cleanup_t             *cln;
    ngx_http_llmproxy_keys_task_t  *t;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);

    if (ngx_http_llmproxy_keys_inflight >= NGX_HTTP_LLMPROXY_KEYS_INFLIGHT) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "rate_limit_error", "busy",
                                      "too many key API calls at once");
    }

    /* outlives the request if the client leaves: freed when done */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_llmproxy_keys_task_t) + len + 1,
                      r->connection->log);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t = (ngx_http_llmproxy_keys_task_t *) (task + 1);
    task->ctx = t;

    t->in = (char *) (t + 1);
    ngx_memcpy(t->in, in, len);
    t->in[len] = '\0';
    t->in_len = len;
    t->op = op;
    t->database = (const char *) lmcf->database.data;  /* null-terminated */
    t->request = r;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_free(task);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_llmproxy_keys_gone;
    cln->data = t;

    task->handler = ngx_http_llmproxy_keys_thread;
    task->event.handler = ngx_http_llmproxy_keys_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(lmcf->thread_pool, task) != NGX_OK) {
        cln->handler = NULL;
        ngx_free(task);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_llmproxy_keys_inflight++;

    /* reading a body took a reference already; a GET takes one here */
    if (r->method != NGX_HTTP_POST) {
        r->main->count++;
    }

    return NGX_DONE;
}


static void
ngx_http_llmproxy_keys_gone(void *data)
{
    ngx_http_llmproxy_keys_task_t *t = data;

    t->request = NULL;
}


static void
ngx_http_llmproxy_keys_done(ngx_event_t *ev)
{
    ngx_int_t                       rc;
    ngx_str_t                       out;
    ngx_thread_task_t              *task;
    ngx_http_request_t             *r;
    ngx_http_llmproxy_keys_task_t  *t;

    task = ev->data;
    t = task->ctx;
    r = t->request;

    if (r != NULL) {
        t->request = NULL;

        if (t->out == NULL) {
            rc = ngx_http_llmproxy_fail(r, t->status ? t->status
                                            : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        t->status >= 500 || t->status == 0
                                            ? "api_error"
                                            : t->status == NGX_HTTP_NOT_FOUND
                                            ? "not_found_error"
                                            : "invalid_request_error",
                                        t->code ? t->code : "internal_error",
                                        "%s", t->err);

        } else {
            out.len = ngx_strlen(t->out);
            out.data = ngx_pnalloc(r->pool, out.len);

            if (out.data == NULL) {
                rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

            } else {
                ngx_memcpy(out.data, t->out, out.len);
                rc = ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, out.data,
                                                 out.len);
            }
        }

        ngx_http_finalize_request(r, rc);
    }

    ngx_http_llmproxy_keys_inflight--;

    free(t->out);
    ngx_free(task);
}


/* in the thread: plain C, libpq and cJSON */

static int
ngx_http_llmproxy_keys_fail(ngx_http_llmproxy_keys_task_t *t,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    va_list  args;

    t->status = status;
    t->code = code;

    va_start(args, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, args);
    va_end(args);

    return -1;
}


static void
ngx_http_llmproxy_keys_sql(ngx_http_llmproxy_keys_stmt_t *s, const char *sql)
{
    size_t  n;

    n = ngx_strlen(sql);

    if (s->len + n < sizeof(s->sql)) {
        ngx_memcpy(s->sql + s->len, sql, n + 1);
        s->len += n;

    } else {
        s->overflow = 1;
    }
}


/* adds a parameter; returns its number for "$N" */

static int
ngx_http_llmproxy_keys_param(ngx_http_llmproxy_keys_stmt_t *s,
    const char *value)
{
    if (s->n == NGX_HTTP_LLMPROXY_KEYS_PARAMS) {
        s->overflow = 1;
        return s->n;
    }

    s->params[s->n] = value;

    return ++s->n;
}


/* a JSON value as a parameter: text, number, bool, array; NULL for null */

static int
ngx_http_llmproxy_keys_value(ngx_http_llmproxy_keys_task_t *t,
    ngx_http_llmproxy_keys_stmt_t *s, const cJSON *v, const char *name,
    const char **out)
{
    int         month;
    char       *buf;
    long long   secs;

    buf = s->bufs[s->n < NGX_HTTP_LLMPROXY_KEYS_PARAMS ? s->n : 0];
    *out = NULL;

    if (cJSON_IsNull(v)) {
        return 0;
    }

    if (ngx_strcmp(name, "key_alias") == 0) {
        return ngx_http_llmproxy_keys_value_alias(t, v, out);
    }

    if (ngx_strcmp(name, "models") == 0) {
        return ngx_http_llmproxy_keys_value_models(t, s, v, out);
    }

    if (ngx_strcmp(name, "blocked") == 0) {
        if (!cJSON_IsBool(v)) {
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_blocked",
                                               "blocked: expected a boolean");
        }

        *out = cJSON_IsTrue(v) ? "true" : "false";
        return 0;
    }

    if (ngx_strcmp(name, "budget_duration") == 0
        || ngx_strcmp(name, "duration") == 0)
    {
        if (!cJSON_IsString(v)
            || (secs = llmp_litellm_duration(v->valuestring, &month)) <= 0)
        {
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_duration",
                       "%s: expected a duration such as \"30d\", \"12h\"",
                       name);
        }

        snprintf(buf, 40, "%lld", secs);
        *out = buf;
        return 0;
    }

    return ngx_http_llmproxy_keys_value_number(t, v, name, buf, out);
}


/* an alias: 1 to 256 characters, none of them a control character */

static int
ngx_http_llmproxy_keys_value_alias(ngx_http_llmproxy_keys_task_t *t,
    const cJSON *v, const char **out)
{
    char  *p;

    if (!cJSON_IsString(v) || v->valuestring[0] == '\0'
        || ngx_strlen(v->valuestring) > 256)
    {
        return ngx_http_llmproxy_keys_fail(t, 400, "invalid_key_alias",
                   "key_alias: expected a name of 1 to 256 characters");
    }

    for (p = v->valuestring; *p; p++) {
        if ((u_char) *p < ' ' || *p == 0x7f) {
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_key_alias",
                                               "key_alias: control "
                                               "characters");
        }
    }

    *out = v->valuestring;

    return 0;
}


/* a list of model names, passed to PostgreSQL as JSON text */

static int
ngx_http_llmproxy_keys_value_models(ngx_http_llmproxy_keys_task_t *t,
    ngx_http_llmproxy_keys_stmt_t *s, const cJSON *v, const char **out)
{
    const cJSON  *m;

    if (!cJSON_IsArray(v)) {
        return ngx_http_llmproxy_keys_fail(t, 400, "invalid_models",
                   "models: expected a list of model names");
    }

    cJSON_ArrayForEach(m, v) {
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_models",
                       "models: expected a list of model names");
        }
    }

    s->owned[s->n] = cJSON_PrintUnformatted(v);
    *out = s->owned[s->n];

    return *out ? 0 : ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                                  "out of memory");
}


/* numbers: max_budget, spend (USD); rpm_limit, tpm_limit (whole) */

static int
ngx_http_llmproxy_keys_value_number(ngx_http_llmproxy_keys_task_t *t,
    const cJSON *v, const char *name, char *buf, const char **out)
{
    double  d;

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)
        || v->valuedouble < 0)
    {
        return ngx_http_llmproxy_keys_fail(t, 400, "invalid_number",
                   "%s: expected a non-negative number", name);
    }

    d = v->valuedouble;

    if ((ngx_strcmp(name, "rpm_limit") == 0
         || ngx_strcmp(name, "tpm_limit") == 0)
        && (d != (double) (long long) d || d > 2147483647.0))
    {
        return ngx_http_llmproxy_keys_fail(t, 400, "invalid_number",
                   "%s: expected a whole number", name);
    }

    snprintf(buf, 40, "%.17g", d);
    *out = buf;

    return 0;
}


/* the fields generate and update take, and the SQL that sets each */

static const struct {
    const char  *name;
    const char  *set;      /* %d: the parameter */
} ngx_http_llmproxy_keys_fields[] = {
    { "key_alias", "alias = $%d" },
    { "models", "models = ARRAY(SELECT jsonb_array_elements_text($%d::jsonb)),"
                " access_groups = ARRAY(SELECT"
                " jsonb_array_elements_text($%d::jsonb))" },
    { "max_budget", "max_budget = $%d::double precision" },
    { "budget_duration", "budget_duration_seconds = $%d::bigint,"
                         " budget_reset_at = now() + make_interval(secs =>"
                         " $%d::double precision)" },
    { "rpm_limit", "rpm = $%d::integer" },
    { "tpm_limit", "tpm = $%d::integer" },
    { "duration", "expires_at = now() + make_interval(secs =>"
                  " $%d::double precision)" },
    { "blocked", "blocked = coalesce($%d::boolean, false)" },
    { "spend", "spend = coalesce($%d::double precision, 0)" },
    { NULL, NULL }
};


/*
 * The body's fields as "col = $N" assignments; unknown fields are refused
 * (a limit this gateway cannot enforce must not pass silently).
 */

static int
ngx_http_llmproxy_keys_fields_sql(ngx_http_llmproxy_keys_task_t *t,
    ngx_http_llmproxy_keys_stmt_t *s, const cJSON *body, int update)
{
    int           i, n, nset;
    char          piece[512];
    const char   *value;
    const cJSON  *v;

    nset = 0;

    cJSON_ArrayForEach(v, body) {
        if (ngx_strcmp(v->string, "key") == 0) {
            continue;
        }

        for (i = 0; ngx_http_llmproxy_keys_ignored[i]; i++) {
            if (ngx_strcmp(v->string, ngx_http_llmproxy_keys_ignored[i])
                == 0)
            {
                break;
            }
        }

        if (ngx_http_llmproxy_keys_ignored[i]) {
            continue;
        }

        for (i = 0; ngx_http_llmproxy_keys_fields[i].name; i++) {
            if (ngx_strcmp(v->string, ngx_http_llmproxy_keys_fields[i].name)
                == 0)
            {
                break;
            }
        }

        if (ngx_http_llmproxy_keys_fields[i].name == NULL
            || (!update && ngx_strcmp(v->string, "spend") == 0))
        {
            return ngx_http_llmproxy_keys_fail(t, 400, "unsupported_field",
                       "%s: not supported by llmproxy", v->string);
        }

        if (ngx_http_llmproxy_keys_value(t, s, v, v->string, &value) != 0) {
            return -1;
        }

        /* null clears a limit; a null duration means "never" */
        if (value == NULL && (ngx_strcmp(v->string, "duration") == 0
                              || ngx_strcmp(v->string, "budget_duration")
                                 == 0))
        {
            snprintf(piece, sizeof(piece), "%s%s",
                     nset ? ", " : "",
                     v->string[0] == 'd'
                     ? "expires_at = NULL"
                     : "budget_duration_seconds = NULL,"
                       " budget_reset_at = NULL");
            ngx_http_llmproxy_keys_sql(s, piece);
            nset++;
            continue;
        }

        n = ngx_http_llmproxy_keys_param(s, value);
        snprintf(piece, sizeof(piece), "%s", nset ? ", " : "");
        ngx_http_llmproxy_keys_sql(s, piece);
        snprintf(piece, sizeof(piece), ngx_http_llmproxy_keys_fields[i].set,
                 n, n);
        ngx_http_llmproxy_keys_sql(s, piece);
        nset++;
    }

    return nset;
}


/* a key as LiteLLM names it: the key itself, or its SHA-256 hex */

static int
ngx_http_llmproxy_keys_hash(const char *key, char hex[65])
{
    int            i;
    size_t         n;
    unsigned char  digest[32];

    n = ngx_strlen(key);

    if (n == 64) {
        for (i = 0; i < 64; i++) {
            hex[i] = ngx_tolower(key[i]);

            if (!((hex[i] >= '0' && hex[i] <= '9')
                  || (hex[i] >= 'a' && hex[i] <= 'f')))
            {
                break;
            }
        }

        if (i == 64) {
            hex[64] = '\0';
            return 0;
        }
    }

    if (n == 0) {
        return -1;
    }

    llmp_sha256(key, n, digest);
    llmp_sha256_hex(digest, hex);

    return 0;
}


static int
ngx_http_llmproxy_keys_random(char *key)
{
    int            i, k;
    unsigned char  rnd[NGX_HTTP_LLMPROXY_KEYS_RANDOM * 2];

    static const char  chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    ngx_memcpy(key, "sk-", 3);
    k = 3;

    while (k < 3 + NGX_HTTP_LLMPROXY_KEYS_RANDOM) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return -1;
        }

        for (i = 0; i < (int) sizeof(rnd)
                    && k < 3 + NGX_HTTP_LLMPROXY_KEYS_RANDOM; i++)
        {
            if (rnd[i] < 248) {     /* 248 = 4 * 62: no modulo bias */
                key[k++] = chars[rnd[i] % 62];
            }
        }
    }

    key[k] = '\0';

    return 0;
}


static int
ngx_http_llmproxy_keys_command(PGconn *conn, const char *sql)
{
    int        ok;
    PGresult  *res;

    res = PQexec(conn, sql);
    ok = (PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);

    return ok ? 0 : -1;
}


/*
 * A deleted (revoked) key keeps its alias for the records until a new key
 * wants it: LiteLLM's scripts rotate a key by deleting it and generating
 * one under the same alias
 */

static int
ngx_http_llmproxy_keys_free_alias(PGconn *conn, const cJSON *body)
{
    int           ok;
    PGresult     *res;
    const char   *params[1];
    const cJSON  *alias;

    alias = cJSON_GetObjectItemCaseSensitive(body, "key_alias");

    if (!cJSON_IsString(alias)) {
        return 0;
    }

    params[0] = alias->valuestring;

    res = PQexecParams(conn, "UPDATE llmproxy_keys SET alias = NULL"
                       " WHERE alias = $1 AND revoked_at IS NOT NULL", 1,
                       NULL, params, NULL, NULL, 0);
    ok = (PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);

    return ok ? 0 : -1;
}


/* runs s; each row's first column (JSON) into *rows (caller deletes) */

static int
ngx_http_llmproxy_keys_exec(ngx_http_llmproxy_keys_task_t *t, PGconn *conn,
    ngx_http_llmproxy_keys_stmt_t *s, cJSON **rows)
{
    int          i;
    cJSON       *row;
    PGresult    *res;
    const char  *state;

    if (s->overflow) {
        return ngx_http_llmproxy_keys_fail(t, 400, "too_many_fields",
                                           "too many fields");
    }

    res = PQexecParams(conn, s->sql, s->n, NULL, s->params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state && ngx_strcmp(state, "23505") == 0) {
            PQclear(res);
            return ngx_http_llmproxy_keys_fail(t, 400, "duplicate_key",
                       "a key with that alias (or that key) exists "
                       "already");
        }

        ngx_http_llmproxy_keys_fail(t, 500, "database_error", "database: %s",
                                    PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }

    *rows = cJSON_CreateArray();

    for (i = 0; *rows && i < PQntuples(res); i++) {
        row = cJSON_Parse(PQgetvalue(res, i, 0));

        if (row == NULL) {
            cJSON_Delete(*rows);
            *rows = NULL;
            break;
        }

        cJSON_AddItemToArray(*rows, row);
    }

    PQclear(res);

    if (*rows == NULL) {
        return ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                           "out of memory");
    }

    return 0;
}


static cJSON *
ngx_http_llmproxy_keys_generate(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, const cJSON *body)
{
    char                            key[64], hex[65], prefix[8];
    cJSON                          *rows, *info;
    ngx_http_llmproxy_keys_stmt_t   s;

    ngx_memzero(&s, sizeof(s));

    if (ngx_http_llmproxy_keys_new_key(t, body, key) != 0) {
        return NULL;
    }

    ngx_http_llmproxy_keys_hash(key, hex);
    ngx_cpystrn((u_char *) prefix, (u_char *) key, sizeof(prefix));

    if (ngx_http_llmproxy_keys_generate_sql(t, &s, body, hex, prefix) != 0) {
        goto failed;
    }

    /* one transaction: the key appears with all its limits at once */

    if (ngx_http_llmproxy_keys_command(conn, "BEGIN") != 0
        || ngx_http_llmproxy_keys_free_alias(conn, body) != 0)
    {
        ngx_http_llmproxy_keys_fail(t, 500, "database_error", "database: %s",
                                    PQerrorMessage(conn));
        ngx_http_llmproxy_keys_command(conn, "ROLLBACK");
        goto failed;
    }

    if (ngx_http_llmproxy_keys_insert(t, conn, &s) != 0
        || ngx_http_llmproxy_keys_exec(t, conn, &s, &rows) != 0)
    {
        ngx_http_llmproxy_keys_command(conn, "ROLLBACK");
        goto failed;
    }

    if (ngx_http_llmproxy_keys_command(conn, "COMMIT") != 0) {
        cJSON_Delete(rows);
        ngx_http_llmproxy_keys_fail(t, 500, "database_error", "database: %s",
                                    PQerrorMessage(conn));
        goto failed;
    }

    info = cJSON_DetachItemFromArray(rows, 0);
    cJSON_Delete(rows);

    if (info == NULL) {
        ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                    "the new key was not found");
        goto failed;
    }

    /* LiteLLM's answer: the info fields, "key" and "token_id" */
    cJSON_AddStringToObject(info, "key", key);
    cJSON_AddStringToObject(info, "token_id", hex);

    ngx_explicit_memzero(key, sizeof(key));
    ngx_http_llmproxy_keys_stmt_free(&s);

    return info;

failed:

    ngx_explicit_memzero(key, sizeof(key));
    ngx_http_llmproxy_keys_stmt_free(&s);

    return NULL;
}


/*
 * The key is inserted by its hash and prefix ($1, $2), then the body's
 * fields are applied as an update of it: this is that update.
 */

static int
ngx_http_llmproxy_keys_generate_sql(ngx_http_llmproxy_keys_task_t *t,
    ngx_http_llmproxy_keys_stmt_t *s, const cJSON *body, char *hex,
    char *prefix)
{
    int  nset;

    ngx_http_llmproxy_keys_param(s, hex);
    ngx_http_llmproxy_keys_param(s, prefix);
    ngx_http_llmproxy_keys_sql(s, "UPDATE llmproxy_keys SET ");

    nset = ngx_http_llmproxy_keys_fields_sql(t, s, body, 0);
    if (nset < 0) {
        return -1;
    }

    ngx_http_llmproxy_keys_sql(s, nset ? ", " : "");
    ngx_http_llmproxy_keys_sql(s, "key_prefix = $2 WHERE key_hash = $1"
                               " RETURNING "
                               NGX_HTTP_LLMPROXY_KEYS_INFO_SQL);

    return 0;
}


/*
 * The new key: the one the body chose, which must be hard to guess (as
 * LiteLLM lets a script choose it), or a random one.
 */

static int
ngx_http_llmproxy_keys_new_key(ngx_http_llmproxy_keys_task_t *t,
    const cJSON *body, char key[64])
{
    int           n;
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(body, "key");

    if (v == NULL) {
        if (ngx_http_llmproxy_keys_random(key) != 0) {
            return ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                               "no random bytes");
        }

        return 0;
    }

    if (!cJSON_IsString(v) || ngx_strncmp(v->valuestring, "sk-", 3) != 0
        || ngx_strlen(v->valuestring) < 35
        || ngx_strlen(v->valuestring) > 63)
    {
        return ngx_http_llmproxy_keys_fail(t, 400, "invalid_key",
                   "key: a chosen key must be \"sk-\" and 32 to 60 "
                   "characters");
    }

    ngx_cpystrn((u_char *) key, (u_char *) v->valuestring, 64);

    for (n = 3; key[n]; n++) {
        if ((u_char) key[n] <= ' ' || key[n] == 0x7f) {
            ngx_explicit_memzero(key, 64);
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_key",
                       "key: no spaces or control characters");
        }
    }

    return 0;
}


/* the key's row, by its hash and prefix ($1, $2); a key twice is a 400 */

static int
ngx_http_llmproxy_keys_insert(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *s)
{
    PGresult    *res;
    const char  *state;

    res = PQexecParams(conn, "INSERT INTO llmproxy_keys"
                       " (key_hash, key_prefix) VALUES ($1, $2)", 2,
                       NULL, s->params, NULL, NULL, 0);

    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return 0;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state && ngx_strcmp(state, "23505") == 0) {
        ngx_http_llmproxy_keys_fail(t, 400, "duplicate_key",
                                    "that key exists already");

    } else {
        ngx_http_llmproxy_keys_fail(t, 500, "database_error",
                                    "database: %s", PQerrorMessage(conn));
    }

    PQclear(res);

    return -1;
}


/* the JSON texts a statement's parameters owned */

static void
ngx_http_llmproxy_keys_stmt_free(ngx_http_llmproxy_keys_stmt_t *s)
{
    int  n;

    for (n = 0; n < NGX_HTTP_LLMPROXY_KEYS_PARAMS; n++) {
        cJSON_free(s->owned[n]);
    }
}


/* update, block, unblock, info: one key, its info back */

static cJSON *
ngx_http_llmproxy_keys_one(ngx_http_llmproxy_keys_task_t *t, PGconn *conn,
    const cJSON *body)
{
    char                            hex[65];
    cJSON                          *rows, *info, *out;
    const cJSON                    *v;
    ngx_http_llmproxy_keys_stmt_t   s;

    ngx_memzero(&s, sizeof(s));

    v = cJSON_GetObjectItemCaseSensitive(body, "key");

    if (!cJSON_IsString(v) || ngx_http_llmproxy_keys_hash(v->valuestring, hex)
                              != 0)
    {
        ngx_http_llmproxy_keys_fail(t, 400, "missing_key",
                                    "key: expected the key (or its hash)");
        return NULL;
    }

    ngx_http_llmproxy_keys_param(&s, hex);

    if (ngx_http_llmproxy_keys_one_sql(t, conn, &s, body) != 0
        || ngx_http_llmproxy_keys_exec(t, conn, &s, &rows) != 0)
    {
        goto failed;
    }

    info = cJSON_DetachItemFromArray(rows, 0);
    cJSON_Delete(rows);

    if (info == NULL) {
        ngx_http_llmproxy_keys_fail(t, 404, "key_not_found", "no such key");
        goto failed;
    }

    if (t->op == NGX_HTTP_LLMPROXY_KEYS_INFO) {
        out = cJSON_CreateObject();
        if (out == NULL) {
            cJSON_Delete(info);
            goto failed;
        }

        cJSON_AddStringToObject(out, "key", v->valuestring);
        cJSON_AddItemToObject(out, "info", info);
        info = out;

    } else {
        cJSON_AddStringToObject(info, "key", v->valuestring);
    }

    ngx_http_llmproxy_keys_stmt_free(&s);

    return info;

failed:

    ngx_http_llmproxy_keys_stmt_free(&s);

    return NULL;
}


/*
 * The statement of an update, info, block or unblock of the key $1: each
 * answers with the key's info, and none touches a revoked key.
 */

static int
ngx_http_llmproxy_keys_one_sql(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *s, const cJSON *body)
{
    int   nset;
    char  piece[256];

    nset = 0;

    switch (t->op) {

    case NGX_HTTP_LLMPROXY_KEYS_UPDATE:
        if (ngx_http_llmproxy_keys_free_alias(conn, body) != 0) {
            return ngx_http_llmproxy_keys_fail(t, 500, "database_error",
                                               "database: %s",
                                               PQerrorMessage(conn));
        }

        ngx_http_llmproxy_keys_sql(s, "UPDATE llmproxy_keys SET ");
        nset = ngx_http_llmproxy_keys_fields_sql(t, s, body, 1);
        if (nset < 0) {
            return -1;
        }

        if (nset) {
            break;
        }

        /* nothing to change: answer with the key as it is */
        s->len = 0;
        /* fall through */

    case NGX_HTTP_LLMPROXY_KEYS_INFO:
        ngx_http_llmproxy_keys_sql(s, "SELECT "
                                   NGX_HTTP_LLMPROXY_KEYS_INFO_SQL
                                   " FROM llmproxy_keys WHERE key_hash = $1"
                                   " AND revoked_at IS NULL");
        break;

    default:  /* block, unblock */
        ngx_http_llmproxy_keys_sql(s, t->op == NGX_HTTP_LLMPROXY_KEYS_BLOCK
                                   ? "UPDATE llmproxy_keys SET blocked = true"
                                   : "UPDATE llmproxy_keys SET"
                                     " blocked = false");
        nset = 1;
        break;
    }

    if (nset) {
        snprintf(piece, sizeof(piece), " WHERE key_hash = $1"
                 " AND revoked_at IS NULL RETURNING ");
        ngx_http_llmproxy_keys_sql(s, piece);
        ngx_http_llmproxy_keys_sql(s, NGX_HTTP_LLMPROXY_KEYS_INFO_SQL);
    }

    return 0;
}


static cJSON *
ngx_http_llmproxy_keys_delete(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, const cJSON *body)
{
    int                             i;
    char                           *hashes, *aliases;
    cJSON                          *rows, *h, *out;
    const cJSON                    *keys, *names;
    ngx_http_llmproxy_keys_stmt_t   s;

    keys = cJSON_GetObjectItemCaseSensitive(body, "keys");
    names = cJSON_GetObjectItemCaseSensitive(body, "key_aliases");

    if ((keys && !cJSON_IsArray(keys)) || (names && !cJSON_IsArray(names))
        || cJSON_GetArraySize(keys) + cJSON_GetArraySize(names) == 0)
    {
        ngx_http_llmproxy_keys_fail(t, 400, "missing_keys",
                                    "expected \"keys\" or \"key_aliases\": "
                                    "lists of keys and aliases");
        return NULL;
    }

    h = NULL;

    if (ngx_http_llmproxy_keys_delete_check(t, keys, names, &h) != 0) {
        return NULL;
    }

    hashes = cJSON_PrintUnformatted(h);
    aliases = names ? cJSON_PrintUnformatted(names) : NULL;
    cJSON_Delete(h);

    ngx_memzero(&s, sizeof(s));
    ngx_http_llmproxy_keys_param(&s, hashes);
    ngx_http_llmproxy_keys_param(&s, aliases ? aliases : "[]");

    /* revoked, as `llmproxyctl key revoke`: the row stays for the records */
    ngx_http_llmproxy_keys_sql(&s,
        "UPDATE llmproxy_keys SET revoked_at = now()"
        " WHERE revoked_at IS NULL"
        " AND (key_hash = ANY(ARRAY(SELECT jsonb_array_elements_text("
        "$1::jsonb))) OR alias = ANY(ARRAY(SELECT"
        " jsonb_array_elements_text($2::jsonb))))"
        " RETURNING to_json(key_hash)::text");

    i = ngx_http_llmproxy_keys_exec(t, conn, &s, &rows);

    cJSON_free(hashes);
    cJSON_free(aliases);

    if (i != 0) {
        return NULL;
    }

    if (cJSON_GetArraySize(rows) == 0) {
        cJSON_Delete(rows);
        ngx_http_llmproxy_keys_fail(t, 404, "key_not_found", "no such key");
        return NULL;
    }

    cJSON_Delete(rows);

    out = cJSON_CreateObject();
    if (out) {
        cJSON_AddItemToObject(out, "deleted_keys",
                              cJSON_Duplicate(keys ? keys : names, 1));
    }

    return out;
}


/* the keys (as their hashes, into *hp) and aliases, each a string */

static int
ngx_http_llmproxy_keys_delete_check(ngx_http_llmproxy_keys_task_t *t,
    const cJSON *keys, const cJSON *names, cJSON **hp)
{
    char          hex[65];
    cJSON        *h;
    const cJSON  *v;

    h = cJSON_CreateArray();

    cJSON_ArrayForEach(v, keys) {
        if (!cJSON_IsString(v)
            || ngx_http_llmproxy_keys_hash(v->valuestring, hex) != 0)
        {
            cJSON_Delete(h);
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_keys",
                                               "keys: expected a list of "
                                               "keys");
        }

        cJSON_AddItemToArray(h, cJSON_CreateString(hex));
    }

    cJSON_ArrayForEach(v, names) {
        if (!cJSON_IsString(v)) {
            cJSON_Delete(h);
            return ngx_http_llmproxy_keys_fail(t, 400, "invalid_keys",
                                               "key_aliases: expected a "
                                               "list of names");
        }
    }

    *hp = h;

    return 0;
}


static cJSON *
ngx_http_llmproxy_keys_list(ngx_http_llmproxy_keys_task_t *t, PGconn *conn,
    const cJSON *args)
{
    long                            page, size;
    char                            pbuf[32], sbuf[32];
    cJSON                          *rows, *out, *keys, *total;
    const char                     *alias, *full;
    ngx_http_llmproxy_keys_stmt_t   st;

    if (ngx_http_llmproxy_keys_list_arg(args, "page", 1, 1000000, &page)
        != 0)
    {
        ngx_http_llmproxy_keys_fail(t, 400, "invalid_page",
                                    "page: expected 1 or more");
        return NULL;
    }

    if (ngx_http_llmproxy_keys_list_arg(args, "size", 10, 1000, &size) != 0) {
        ngx_http_llmproxy_keys_fail(t, 400, "invalid_size",
                                    "size: expected 1 to 1000");
        return NULL;
    }

    alias = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args,
                                                              "key_alias"));
    full = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args,
                                                    "return_full_object"));

    snprintf(pbuf, sizeof(pbuf), "%ld", (page - 1) * size);
    snprintf(sbuf, sizeof(sbuf), "%ld", size);

    ngx_memzero(&st, sizeof(st));
    ngx_http_llmproxy_keys_param(&st, pbuf);
    ngx_http_llmproxy_keys_param(&st, sbuf);
    ngx_http_llmproxy_keys_param(&st, alias);

    ngx_http_llmproxy_keys_sql(&st,
        "SELECT json_build_object('total', count(*) OVER (),"
        " 'info', " NGX_HTTP_LLMPROXY_KEYS_INFO_SQL "::json)::text"
        " FROM llmproxy_keys WHERE revoked_at IS NULL"
        " AND ($3::text IS NULL OR alias = $3)"
        " ORDER BY created_at, key_hash OFFSET $1::bigint LIMIT $2::bigint");

    if (ngx_http_llmproxy_keys_exec(t, conn, &st, &rows) != 0) {
        return NULL;
    }

    out = cJSON_CreateObject();
    keys = cJSON_AddArrayToObject(out, "keys");
    total = ngx_http_llmproxy_keys_list_rows(rows, keys, full
                                             && ngx_strcmp(full, "true") == 0);

    /* past the last page there is no row to carry the count: ask again */

    if (total == NULL && page > 1) {
        cJSON_Delete(rows);

        if (ngx_http_llmproxy_keys_list_count(t, conn, &st, alias, &rows)
            != 0)
        {
            cJSON_Delete(out);
            return NULL;
        }

        total = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetArrayItem(rows, 0), "total");
    }

    cJSON_AddNumberToObject(out, "total_count",
                            total ? total->valuedouble : 0);
    cJSON_AddNumberToObject(out, "current_page", page);
    cJSON_AddNumberToObject(out, "total_pages",
                            total ? ceil(total->valuedouble / size) : 0);

    cJSON_Delete(rows);

    return out;
}


/* the count of keys (of an alias) alone, in a row of its own */

static int
ngx_http_llmproxy_keys_list_count(ngx_http_llmproxy_keys_task_t *t,
    PGconn *conn, ngx_http_llmproxy_keys_stmt_t *st, const char *alias,
    cJSON **rows)
{
    st->n = 1;
    st->params[0] = alias;
    st->len = 0;

    ngx_http_llmproxy_keys_sql(st,
        "SELECT json_build_object('total', count(*))::text"
        " FROM llmproxy_keys WHERE revoked_at IS NULL"
        " AND ($1::text IS NULL OR alias = $1)");

    return ngx_http_llmproxy_keys_exec(t, conn, st, rows);
}


/* a page's number or size: a whole number from 1 to max, or the default */

static int
ngx_http_llmproxy_keys_list_arg(const cJSON *args, const char *name,
    long dflt, long max, long *value)
{
    char        *end;
    const char  *s;

    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, name));
    *value = s ? strtol(s, &end, 10) : dflt;

    if (s && (*end || *value < 1 || *value > max)) {
        return -1;
    }

    return 0;
}


/*
 * The page's keys into the list, by hash or in full; returns the total
 * count the rows carry, NULL without rows.
 */

static cJSON *
ngx_http_llmproxy_keys_list_rows(cJSON *rows, cJSON *keys, ngx_uint_t full)
{
    cJSON  *row, *total;

    total = NULL;

    cJSON_ArrayForEach(row, rows) {
        total = cJSON_GetObjectItemCaseSensitive(row, "total");

        if (full) {
            cJSON_AddItemToArray(keys, cJSON_Duplicate(
                cJSON_GetObjectItemCaseSensitive(row, "info"), 1));

        } else {
            cJSON_AddItemToArray(keys, cJSON_Duplicate(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(row, "info"), "token"),
                1));
        }
    }

    return total;
}


/* the operation itself: its answer, or NULL and the task's error */

static cJSON *
ngx_http_llmproxy_keys_run(ngx_http_llmproxy_keys_task_t *t, PGconn *conn,
    const cJSON *body)
{
    switch (t->op) {

    case NGX_HTTP_LLMPROXY_KEYS_GENERATE:
        return ngx_http_llmproxy_keys_generate(t, conn, body);

    case NGX_HTTP_LLMPROXY_KEYS_DELETE:
        return ngx_http_llmproxy_keys_delete(t, conn, body);

    case NGX_HTTP_LLMPROXY_KEYS_LIST:
        return ngx_http_llmproxy_keys_list(t, conn, body);

    default:
        return ngx_http_llmproxy_keys_one(t, conn, body);
    }
}


static void
ngx_http_llmproxy_keys_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_keys_task_t *t = data;

    char         *s;
    cJSON        *body, *out;
    PGconn       *conn;
    const char   *e;

    body = cJSON_ParseWithLength(t->in, t->in_len);

    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ngx_http_llmproxy_keys_fail(t, 400, "invalid_json",
                                    "expected a JSON object as the body");
        return;
    }

    conn = ngx_http_llmproxy_db_connect(t->database,
                                        "-c statement_timeout=10000"
                                        " -c TimeZone=UTC",
                                        "llmproxy-key-api");

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        e = conn ? PQerrorMessage(conn) : "out of memory";
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "llmproxy: key API: database: %s", e);
        ngx_http_llmproxy_keys_fail(t, 503, "database_unavailable",
                                    "the database is not reachable");
        PQfinish(conn);
        cJSON_Delete(body);
        return;
    }

    out = ngx_http_llmproxy_keys_run(t, conn, body);

    PQfinish(conn);
    cJSON_Delete(body);

    if (out == NULL) {
        if (t->status == 0) {
            ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                        "out of memory");
        }

        if (t->status >= 500) {
            ngx_log_error(NGX_LOG_ERR, log, 0, "llmproxy: key API: %s",
                          t->err);
        }

        return;
    }

    s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);

    if (s == NULL) {
        ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                    "out of memory");
        return;
    }

    /* to plain malloc memory: ngx_keys_done frees it with free() */
    t->out = strdup(s);

    if (t->out == NULL) {
        ngx_http_llmproxy_keys_fail(t, 500, "internal_error",
                                    "out of memory");
    }

    /* a new key's plaintext: no copy left behind */
    ngx_explicit_memzero(s, ngx_strlen(s));
    cJSON_free(s);
}

/*
 * Usage records (SPEC section 8): one per request that reached routing,
 * written to PostgreSQL in batches, off the event loop.
 *
 * At the log phase each worker appends the record, as a tuple of COPY's
 * binary format (_usage_records_copy.c), to its current batch in memory.
 * Every llmproxy_usage_flush (or as soon as a batch is full) a thread-pool
 * task takes the waiting batches and writes them in one transaction
 * (_usage_records_db.c), which adds their cost to the keys' spend.  What the
 * transaction returns settles the spend counted in the zone but not yet
 * in the database (a key's "pending").
 *
 * When PostgreSQL is down or slow, batches wait in memory up to
 * llmproxy_usage_buffer, and beyond that, or when the database refuses a
 * write, go to spill files in the state path, which any worker replays
 * once the database is back (one at a time, under flock, so two workers
 * never write the same file).  A worker that exits, at reload or stop,
 * spills what it still holds.  Each batch has an id (a spill file is
 * named after it), so a batch written twice counts once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_usage.h"
#include "ngx_http_llmproxy_zone.h"

#include "ngx_http_llmproxy_usage_records.h"

#include <dirent.h>
#include <sys/file.h>
#include <openssl/rand.h>


#define NGX_HTTP_LLMPROXY_BATCH_SIZE    (256 * 1024)
#define NGX_HTTP_LLMPROXY_WRITE_MAX     16        /* batches a transaction */
#define NGX_HTTP_LLMPROXY_RETRY         1000
#define NGX_HTTP_LLMPROXY_SPILL_LOOK    2000
#define NGX_HTTP_LLMPROXY_REPLAY_FILES  64        /* a transaction */
#define NGX_HTTP_LLMPROXY_REPLAY_BYTES  (16 * 1024 * 1024)


typedef struct {
    /* the event loop's side */
    ngx_http_llmproxy_batch_t      *cur;
    ngx_http_llmproxy_batch_t      *queue;       /* full, oldest first */
    ngx_http_llmproxy_batch_t     **queue_tail;
    size_t                          queued;      /* bytes, cur included */
    size_t                          limit;
    ngx_msec_t                      flush;
    ngx_uint_t                      dropped;
    time_t                          dropped_logged;
    ngx_uint_t                      failing;
    ngx_msec_t                      failed_at;
    ngx_msec_t                      spill_checked;
    ngx_event_t                     timer;
    ngx_thread_pool_t              *thread_pool;
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_str_t                       spill_dir;   /* "" when none */
    ngx_log_t                      *log;

    /* the writer task: batches in, results out */
    ngx_thread_task_t              *writer;
    ngx_http_llmproxy_batch_t      *writing;
    ngx_uint_t                      writer_busy;
    ngx_int_t                       written;     /* records into the db */
    ngx_int_t                       replayed;
    ngx_int_t                       spilled;
    ngx_uint_t                      more_spill;  /* files left to replay */
    ngx_uint_t                      db_failed;
    ngx_uint_t                      spill_open_logged;
    ngx_uint_t                      schema;      /* DB_DAILY, DB_PACKS */
    time_t                          schema_asked;
    ngx_http_llmproxy_costs_t       costs[2];    /* batches, spill file */
    char                            err[256];
    PGconn                         *conn;        /* the thread's only */
    char                           *uri;

    /* the spill task: batches the writer cannot take in time */
    ngx_thread_task_t              *spiller;
    ngx_http_llmproxy_batch_t      *spilling;
    ngx_uint_t                      spiller_busy;
    ngx_uint_t                      spill_failed;
} ngx_http_llmproxy_records_t;


/* a spill file being replayed */

typedef struct {
    u_char                          path[NGX_MAX_PATH];
    ngx_fd_t                        fd;
    size_t                          size;
    ngx_uint_t                      records;
    ngx_http_llmproxy_batch_t      *batch;
    ngx_int_t                       rc;          /* NGX_AGAIN: to write */
    char                            err[256];    /* why it was refused */
} ngx_http_llmproxy_spill_file_t;


static ngx_int_t ngx_http_llmproxy_records_log(ngx_http_request_t *r);
static ngx_http_llmproxy_batch_t *ngx_http_llmproxy_batch_new(size_t size);
static void ngx_http_llmproxy_batch_free(ngx_http_llmproxy_batch_t *b);
static void ngx_http_llmproxy_records_seal(ngx_http_llmproxy_records_t *rs);
static void ngx_http_llmproxy_records_tick(ngx_event_t *ev);
static void ngx_http_llmproxy_records_post(ngx_http_llmproxy_records_t *rs);
static void ngx_http_llmproxy_records_overflow(
    ngx_http_llmproxy_records_t *rs);
static void ngx_http_llmproxy_writer_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_writer_done(ngx_event_t *ev);
static void ngx_http_llmproxy_spiller_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_spiller_done(ngx_event_t *ev);
static ngx_int_t ngx_http_llmproxy_records_connect(
    ngx_http_llmproxy_records_t *rs);
static ngx_int_t ngx_http_llmproxy_db_write(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_batch_t *b, ngx_http_llmproxy_costs_t *costs);
static ngx_int_t ngx_http_llmproxy_spill_write(
    ngx_http_llmproxy_records_t *rs, ngx_http_llmproxy_batch_t *b,
    ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_spill_replay(
    ngx_http_llmproxy_records_t *rs, ngx_log_t *log);
static ngx_uint_t ngx_http_llmproxy_spill_open(
    ngx_http_llmproxy_records_t *rs, ngx_log_t *log,
    ngx_http_llmproxy_spill_file_t **files);
static void ngx_http_llmproxy_spill_read(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_spill_file_t *f, ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_spill_group(
    ngx_http_llmproxy_records_t *rs, ngx_http_llmproxy_spill_file_t *files,
    ngx_uint_t n, ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_spill_done(
    ngx_http_llmproxy_records_t *rs, ngx_http_llmproxy_spill_file_t *f,
    ngx_log_t *log);
static void ngx_http_llmproxy_records_settle(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_costs_t *costs);


static ngx_http_llmproxy_records_t  *ngx_http_llmproxy_records;


ngx_int_t
ngx_http_llmproxy_records_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llmproxy_records_log;

    return NGX_OK;
}


ngx_int_t
ngx_http_llmproxy_records_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_records_t    *rs;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    ngx_http_llmproxy_records = NULL;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);

    if (lmcf == NULL || lmcf->database.len == 0 || lmcf->shm_zone == NULL
        || !lmcf->usage_records)
    {
        return NGX_OK;
    }

    rs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_llmproxy_records_t));
    if (rs == NULL) {
        return NGX_ERROR;
    }

    rs->queue_tail = &rs->queue;
    rs->limit = lmcf->usage_buffer;
    rs->flush = lmcf->usage_flush;
    rs->thread_pool = lmcf->thread_pool;
    rs->zctx = lmcf->shm_zone->data;
    rs->uri = (char *) lmcf->database.data;
    rs->log = cycle->log;
    rs->spill_dir = lmcf->state_path;      /* null-terminated, or empty */

    rs->writer = ngx_thread_task_alloc(cycle->pool, 0);
    rs->spiller = ngx_thread_task_alloc(cycle->pool, 0);
    if (rs->writer == NULL || rs->spiller == NULL) {
        return NGX_ERROR;
    }

    rs->writer->ctx = rs;
    rs->writer->handler = ngx_http_llmproxy_writer_thread;
    rs->writer->event.handler = ngx_http_llmproxy_writer_done;
    rs->writer->event.data = rs;
    rs->writer->event.log = cycle->log;

    rs->spiller->ctx = rs;
    rs->spiller->handler = ngx_http_llmproxy_spiller_thread;
    rs->spiller->event.handler = ngx_http_llmproxy_spiller_done;
    rs->spiller->event.data = rs;
    rs->spiller->event.log = cycle->log;

    rs->timer.handler = ngx_http_llmproxy_records_tick;
    rs->timer.data = rs;
    rs->timer.log = cycle->log;
    rs->timer.cancelable = 1;

    /* the first tick replays what earlier workers left on disk */

    rs->more_spill = 1;
    ngx_add_timer(&rs->timer, 10);

    ngx_http_llmproxy_records = rs;

    return NGX_OK;
}


/* a worker that exits keeps what it holds on disk, for the next ones */

void
ngx_http_llmproxy_records_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    n, lost;
    ngx_http_llmproxy_batch_t    *b, *next;
    ngx_http_llmproxy_records_t  *rs;

    rs = ngx_http_llmproxy_records;

    if (rs == NULL) {
        return;
    }

    /*
     * the thread pool has been destroyed by now (its module exits
     * first), after finishing the tasks queued: what the writer and the
     * spiller held is in the database or on disk
     */

    if (rs->writer_busy) {
        ngx_http_llmproxy_records_settle(rs, &rs->costs[0]);
        ngx_http_llmproxy_records_settle(rs, &rs->costs[1]);
    }

    for (b = rs->spilling; b; b = next) {
        next = b->next;
        b->next = NULL;

        if (b->records) {
            *rs->queue_tail = b;
            rs->queue_tail = &b->next;

        } else {
            ngx_http_llmproxy_batch_free(b);
        }
    }

    ngx_http_llmproxy_records_seal(rs);

    n = 0;
    lost = 0;

    for (b = rs->queue; b; b = next) {
        next = b->next;

        if (rs->spill_dir.len == 0
            || ngx_http_llmproxy_spill_write(rs, b, cycle->log)
               != NGX_OK)
        {
            lost += b->records;

        } else {
            n += b->records;
        }

        ngx_http_llmproxy_batch_free(b);
    }

    rs->queue = NULL;

    if (n) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "llmproxy: %ui usage records left in spill files",
                      n);
    }

    if (lost) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "llmproxy: %ui usage records lost at exit: no "
                      "\"llmproxy_state_path\" to spill them to", lost);
    }

    if (rs->conn) {
        PQfinish(rs->conn);
        rs->conn = NULL;
    }

    ngx_http_llmproxy_records = NULL;
}


/* the log phase: the request's record joins the current batch */

static ngx_int_t
ngx_http_llmproxy_records_log(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_http_llmproxy_ctx_t      *ctx;
    ngx_http_llmproxy_records_t  *rs;

    rs = ngx_http_llmproxy_records;

    if (rs == NULL || r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    if (ctx == NULL || ctx->req.endpoint == NGX_HTTP_LLMPROXY_EP_NONE
        || ctx->req.model.len == 0 || ctx->usage.recorded)
    {
        return NGX_OK;
    }

    ctx->usage.recorded = 1;

    /* a batch always has room for one more record: it is sealed before */

    if (rs->cur == NULL) {
        if (rs->queued + NGX_HTTP_LLMPROXY_BATCH_SIZE > 2 * rs->limit) {
            /* the database and the disk are both behind: the last resort */
            rs->dropped++;

            if (ngx_time() != rs->dropped_logged) {
                rs->dropped_logged = ngx_time();
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "llmproxy: usage buffer full, %ui records "
                              "dropped so far", rs->dropped);
            }

            return NGX_OK;
        }

        rs->cur = ngx_http_llmproxy_batch_new(NGX_HTTP_LLMPROXY_BATCH_SIZE);
        if (rs->cur == NULL) {
            return NGX_OK;
        }

        rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
    }

    p = ngx_http_llmproxy_records_tuple(r, ctx, rs->cur->last, rs->cur->end);
    if (p == NULL) {
        return NGX_OK;
    }

    rs->cur->last = p;
    rs->cur->records++;

    if (rs->cur->end - rs->cur->last < NGX_HTTP_LLMPROXY_RECORD_MAX) {
        ngx_http_llmproxy_records_seal(rs);

        /*
         * full batches wait for the flush, so that a busy worker writes
         * a few large transactions rather than one per batch: a
         * transaction costs PostgreSQL ~1 ms of CPU whatever its size
         * (50,000 records/s in 256k batches: 1.9 us a record, against
         * 0.6 us in transactions every 200ms); unless they fill what
         * one transaction takes, or half the memory they may use
         */

        if (rs->queued >= ngx_min(NGX_HTTP_LLMPROXY_WRITE_MAX
                                  * NGX_HTTP_LLMPROXY_BATCH_SIZE,
                                  rs->limit / 2))
        {
            ngx_http_llmproxy_records_post(rs);
        }
    }

    return NGX_OK;
}


static ngx_http_llmproxy_batch_t *
ngx_http_llmproxy_batch_new(size_t size)
{
    ngx_http_llmproxy_batch_t  *b;

    b = ngx_alloc(offsetof(ngx_http_llmproxy_batch_t, data) + size,
                  ngx_cycle->log);
    if (b == NULL) {
        return NULL;
    }

    b->next = NULL;
    b->last = b->data;
    b->end = b->data + size;
    b->records = 0;
    b->known = 0;
    b->text = 0;
    b->fields1 = 0;

    if (RAND_bytes(b->id, 16) != 1) {
        ngx_free(b);
        return NULL;
    }

    return b;
}


static void
ngx_http_llmproxy_batch_free(ngx_http_llmproxy_batch_t *b)
{
    ngx_free(b);
}


/* the current batch joins the queue */

static void
ngx_http_llmproxy_records_seal(ngx_http_llmproxy_records_t *rs)
{
    if (rs->cur == NULL) {
        return;
    }

    if (rs->cur->records == 0) {
        ngx_http_llmproxy_batch_free(rs->cur);
        rs->queued -= NGX_HTTP_LLMPROXY_BATCH_SIZE;
        rs->cur = NULL;
        return;
    }

    *rs->queue_tail = rs->cur;
    rs->queue_tail = &rs->cur->next;
    rs->cur = NULL;
}


static void
ngx_http_llmproxy_records_tick(ngx_event_t *ev)
{
    ngx_http_llmproxy_records_t *rs = ev->data;

    /*
     * spill files of other workers (those that left at a reload, after
     * this one started) are looked for every few seconds
     */

    if (ngx_current_msec - rs->spill_checked >= NGX_HTTP_LLMPROXY_SPILL_LOOK
        && rs->spill_dir.len)
    {
        rs->spill_checked = ngx_current_msec;
        rs->more_spill = 1;
    }

    ngx_http_llmproxy_records_seal(rs);
    ngx_http_llmproxy_records_post(rs);

    if (ngx_terminate) {
        return;
    }

    ngx_add_timer(&rs->timer, rs->flush);
}


/* hand the waiting batches to the writer, if it is free */

static void
ngx_http_llmproxy_records_post(ngx_http_llmproxy_records_t *rs)
{
    ngx_uint_t                   n;
    ngx_http_llmproxy_batch_t  **ll;

    if (rs->writer_busy) {
        ngx_http_llmproxy_records_overflow(rs);
        return;
    }

    if (rs->queue == NULL && !rs->more_spill) {
        return;
    }

    /* after a failure, the database is tried again once a second */

    if (rs->failing
        && ngx_current_msec - rs->failed_at < NGX_HTTP_LLMPROXY_RETRY)
    {
        ngx_http_llmproxy_records_overflow(rs);
        return;
    }

    /* up to WRITE_MAX batches in one transaction */

    rs->writing = rs->queue;

    for (n = 0, ll = &rs->queue;
         *ll && n < NGX_HTTP_LLMPROXY_WRITE_MAX;
         ll = &(*ll)->next, n++)
    {
        rs->queued -= NGX_HTTP_LLMPROXY_BATCH_SIZE;
    }

    rs->queue = *ll;
    *ll = NULL;

    if (rs->queue == NULL) {
        rs->queue_tail = &rs->queue;
    }

    rs->written = 0;
    rs->replayed = 0;
    rs->spilled = 0;
    rs->db_failed = 0;
    rs->err[0] = '\0';

    if (ngx_thread_task_post(rs->thread_pool, rs->writer) != NGX_OK) {
        /* back to the head of the queue */
        for (ll = &rs->writing; *ll; ll = &(*ll)->next) {
            rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
        }

        *ll = rs->queue;
        rs->queue = rs->writing;
        rs->writing = NULL;

        for (ll = &rs->queue; *ll; ll = &(*ll)->next) { /* void */ }
        rs->queue_tail = ll;

        return;
    }

    rs->writer_busy = 1;
}


/* memory is full while the writer is busy or waiting: to disk */

static void
ngx_http_llmproxy_records_overflow(ngx_http_llmproxy_records_t *rs)
{
    ngx_http_llmproxy_batch_t  *b;

    if (rs->queued < rs->limit || rs->spiller_busy || rs->queue == NULL
        || rs->spill_dir.len == 0)
    {
        return;
    }

    rs->spilling = rs->queue;
    rs->queue = NULL;
    rs->queue_tail = &rs->queue;

    for (b = rs->spilling; b; b = b->next) {
        rs->queued -= NGX_HTTP_LLMPROXY_BATCH_SIZE;
    }

    rs->spill_failed = 0;

    if (ngx_thread_task_post(rs->thread_pool, rs->spiller) != NGX_OK) {
        rs->queue = rs->spilling;
        rs->spilling = NULL;

        for (b = rs->queue; b->next; b = b->next) {
            rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
        }

        rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
        rs->queue_tail = &b->next;
        return;
    }

    rs->spiller_busy = 1;
}


/* in a thread of the pool: the batches, then one spill file */

static void
ngx_http_llmproxy_writer_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_records_t *rs = data;

    ngx_int_t                   rc;
    ngx_http_llmproxy_batch_t  *b;

    rs->more_spill = 0;

    rc = ngx_http_llmproxy_records_connect(rs);

    if (rc == NGX_OK && rs->writing) {
        rc = ngx_http_llmproxy_db_write(rs, rs->writing, &rs->costs[0]);
    }

    if (rc == NGX_OK) {
        for (b = rs->writing; b; b = b->next) {
            rs->written += b->records;
        }

        if (rs->spill_dir.len
            && ngx_http_llmproxy_spill_replay(rs, log) == NGX_ERROR)
        {
            rs->db_failed = 1;
        }

        return;
    }

    rs->db_failed = 1;

    if (rs->spill_dir.len == 0) {
        return;                   /* kept in memory: writer_done requeues */
    }

    for (b = rs->writing; b; b = b->next) {
        if (ngx_http_llmproxy_spill_write(rs, b, log) != NGX_OK) {
            return;
        }

        rs->spilled += b->records;
        b->records = 0;
    }

    rs->more_spill = 1;
}


static ngx_int_t
ngx_http_llmproxy_records_connect(ngx_http_llmproxy_records_t *rs)
{
    if (rs->conn && PQstatus(rs->conn) == CONNECTION_OK) {
        if (rs->schema != NGX_HTTP_LLMPROXY_DB_ALL
            && ngx_time() - rs->schema_asked >= 1)
        {
            /* the database may have been migrated since: ask again */
            goto schema;
        }

        return NGX_OK;
    }

    if (rs->conn) {
        PQfinish(rs->conn);
    }

    rs->conn = ngx_http_llmproxy_db_connect(rs->uri,
                                            "-c statement_timeout=30000",
                                            "llmproxy-gateway-usage");

    if (rs->conn == NULL || PQstatus(rs->conn) != CONNECTION_OK) {
        goto failed;
    }

schema:

    /*
     * asked at each connection, and every second until the schema is the
     * latest (a migration gives the writer more to do, never takes it back)
     */
    rs->schema = ngx_http_llmproxy_records_db_schema(rs->conn);
    rs->schema_asked = ngx_time();

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "llmproxy: usage writer connected, daily totals by %s, "
                   "records %s",
                   (rs->schema & NGX_HTTP_LLMPROXY_DB_DAILY) ? "the writer"
                                                             : "the trigger",
                   (rs->schema & NGX_HTTP_LLMPROXY_DB_PACKS) ? "in packs"
                                                             : "in rows");

    return NGX_OK;

failed:

    ngx_cpystrn((u_char *) rs->err,
                (u_char *) (rs->conn ? PQerrorMessage(rs->conn)
                                     : "out of memory"),
                sizeof(rs->err));
    PQfinish(rs->conn);
    rs->conn = NULL;

    return NGX_ERROR;
}


/* NGX_OK, NGX_DECLINED (the data refused), NGX_ERROR (the connection) */

static ngx_int_t
ngx_http_llmproxy_db_write(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_batch_t *b, ngx_http_llmproxy_costs_t *costs)
{
    ngx_int_t   rc;
    ngx_uint_t  schema;

    rc = ngx_http_llmproxy_records_db_write(rs->conn, b, costs, rs->schema,
                                            rs->err, sizeof(rs->err));

    if (rc == NGX_DECLINED && rs->schema) {
        schema = ngx_http_llmproxy_records_db_schema(rs->conn);

        if (schema != rs->schema) {
            /* the database went back to an older schema (a restore) */
            rs->schema = schema;
            rs->schema_asked = ngx_time();

            rc = ngx_http_llmproxy_records_db_write(rs->conn, b, costs,
                                                    schema, rs->err,
                                                    sizeof(rs->err));
        }
    }

    if (rc == NGX_ERROR) {
        PQfinish(rs->conn);
        rs->conn = NULL;
    }

    return rc;
}


/* a batch to a spill file: written whole under a temporary name */

static ngx_int_t
ngx_http_llmproxy_spill_write(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_batch_t *b, ngx_log_t *log)
{
    u_char      tmp[NGX_MAX_PATH], name[NGX_MAX_PATH];
    ssize_t     n;
    size_t      len;
    ngx_fd_t    fd;
    u_char     *p;
    ngx_uint_t  part;

    if (b->records == 0) {
        return NGX_OK;
    }

    p = ngx_snprintf(name, sizeof(name) - 64, "%V/usage-", &rs->spill_dir);
    p = ngx_http_llmproxy_batch_uuid(p, b->id);
    ngx_memcpy(p, ".copy", sizeof(".copy"));
    ngx_snprintf(tmp, sizeof(tmp), "%s.tmp%Z", name);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", tmp);
        return NGX_ERROR;
    }

    /* a binary COPY stream without its trailer: the header, the tuples */

    for (part = b->text; part < 2; part++) {
        if (part == 0) {
            p = (u_char *) ngx_http_llmproxy_copy_header;
            len = NGX_HTTP_LLMPROXY_COPY_HEADER;

        } else {
            p = b->data;
            len = b->last - b->data;
        }

        while (len) {
            n = write(fd, p, len);

            if (n == -1) {
                ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                              "write() \"%s\" failed", tmp);
                ngx_close_file(fd);
                ngx_delete_file(tmp);
                return NGX_ERROR;
            }

            p += n;
            len -= n;
        }
    }

    if (fdatasync(fd) == -1 || ngx_close_file(fd) == NGX_FILE_ERROR
        || ngx_rename_file(tmp, name) == NGX_FILE_ERROR)
    {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "llmproxy: spill file \"%s\" failed", name);
        ngx_delete_file(tmp);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Spill files back into the database, up to NGX_HTTP_LLMPROXY_REPLAY_FILES
 * of them (NGX_HTTP_LLMPROXY_REPLAY_BYTES) in one transaction, the first
 * ones no other worker holds.  One transaction for many files is what
 * makes a drain fast: the keys' spend updates and the daily totals' upserts
 * are per key and per transaction, and a file holds ~1,000 records that
 * may each be of another key.  When the database refuses the group, the
 * files are tried one at a time, up to the first that goes in, so the one
 * refused is found and set aside.  NGX_ERROR: the database failed; the
 * files stay for later.
 */

static ngx_int_t
ngx_http_llmproxy_spill_replay(ngx_http_llmproxy_records_t *rs,
    ngx_log_t *log)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, n;
    ngx_http_llmproxy_spill_file_t  *files;

    files = NULL;

    n = ngx_http_llmproxy_spill_open(rs, log, &files);
    if (n == 0) {
        ngx_free(files);
        return NGX_OK;
    }

    for (i = 0; i < n; i++) {
        ngx_http_llmproxy_spill_read(rs, &files[i], log);
    }

    rc = ngx_http_llmproxy_spill_group(rs, files, n, log);

    if (rc == NGX_DECLINED) {
        for (i = 0; i < n; i++) {
            if (files[i].rc != NGX_AGAIN) {
                continue;
            }

            files[i].batch->next = NULL;
            files[i].rc = ngx_http_llmproxy_db_write(rs, files[i].batch,
                                                     &rs->costs[1]);

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                           "llmproxy: spill file \"%s\" alone: %i",
                           files[i].path, files[i].rc);

            if (files[i].rc == NGX_DECLINED) {
                ngx_memcpy(files[i].err, rs->err, sizeof(files[i].err));
                continue;
            }

            /* in, or the database failed: the rest wait */
            rs->more_spill = 1;
            break;
        }

        rc = NGX_OK;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_llmproxy_spill_done(rs, &files[i], log) == NGX_ERROR) {
            rc = NGX_ERROR;
        }
    }

    ngx_free(files);

    return rc;
}


/*
 * Opens and locks the first spill files no other worker holds, counts the
 * others (more_spill).  Returns how many are open, in *files, allocated
 * once a spill file is seen (the directory is looked at after every
 * write, and is empty most of the time).
 */

static ngx_uint_t
ngx_http_llmproxy_spill_open(ngx_http_llmproxy_records_t *rs,
    ngx_log_t *log, ngx_http_llmproxy_spill_file_t **files)
{
    DIR                             *d;
    size_t                           len, bytes;
    ngx_uint_t                       n, found;
    struct stat                      st;
    struct dirent                   *de;
    ngx_http_llmproxy_spill_file_t  *f;

    d = opendir((char *) rs->spill_dir.data);
    if (d == NULL) {
        return 0;
    }

    n = 0;
    found = 0;
    bytes = 0;

    while ((de = readdir(d)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len < sizeof("usage-.copy") - 1
            || ngx_strncmp(de->d_name, "usage-", 6) != 0
            || ngx_strcmp(de->d_name + len - 5, ".copy") != 0)
        {
            continue;
        }

        found++;

        if (n == NGX_HTTP_LLMPROXY_REPLAY_FILES
            || bytes >= NGX_HTTP_LLMPROXY_REPLAY_BYTES)
        {
            continue;              /* enough for now; count the rest */
        }

        if (*files == NULL) {
            *files = ngx_calloc(NGX_HTTP_LLMPROXY_REPLAY_FILES
                                * sizeof(ngx_http_llmproxy_spill_file_t),
                                log);
            if (*files == NULL) {
                break;
            }
        }

        f = &(*files)[n];

        ngx_snprintf(f->path, sizeof(f->path), "%V/%s%Z", &rs->spill_dir,
                     de->d_name);

        f->fd = ngx_open_file(f->path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (f->fd == NGX_INVALID_FILE) {
            if (ngx_errno != NGX_ENOENT && !rs->spill_open_logged) {
                ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                              ngx_open_file_n " \"%s\" failed", f->path);
                rs->spill_open_logged = 1;
            }

            continue;
        }

        if (flock(f->fd, LOCK_EX | LOCK_NB) == -1
            || fstat(f->fd, &st) == -1 || st.st_nlink == 0)
        {
            /* another worker has it, or has just finished with it */
            ngx_close_file(f->fd);
            continue;
        }

        f->size = (size_t) st.st_size;
        bytes += f->size;
        n++;
    }

    closedir(d);

    rs->more_spill = (found > n);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "llmproxy: spill files: %ui found, %ui taken", found, n);

    return n;
}


/*
 * A spill file into a batch: our binary COPY stream (COPY's text from an
 * earlier version), the batch's id from the file's name (usage-UUID.copy).
 * Sets the file's rc: NGX_AGAIN, to be written; NGX_DECLINED, refused
 * already (not whole tuples); NGX_ERROR, out of memory (the file stays).
 */

static void
ngx_http_llmproxy_spill_read(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_spill_file_t *f, ngx_log_t *log)
{
    u_char                     *p, *name;
    size_t                      len;
    ssize_t                     n;
    ngx_int_t                   hi, lo;
    ngx_uint_t                  i, fields;
    ngx_http_llmproxy_batch_t  *b;

    f->rc = NGX_ERROR;

    b = ngx_http_llmproxy_batch_new(f->size + 1);
    if (b == NULL) {
        return;
    }

    f->batch = b;

    for (len = 0; len < f->size; len += n) {
        n = read(f->fd, b->data + len, f->size - len);
        if (n <= 0) {
            break;
        }
    }

    b->last = b->data + len;

    if (len >= NGX_HTTP_LLMPROXY_COPY_HEADER
        && ngx_memcmp(b->data, ngx_http_llmproxy_copy_header,
                      NGX_HTTP_LLMPROXY_COPY_HEADER) == 0)
    {
        len -= NGX_HTTP_LLMPROXY_COPY_HEADER;
        ngx_memmove(b->data, b->data + NGX_HTTP_LLMPROXY_COPY_HEADER, len);
        b->last = b->data + len;

    } else {
        b->text = 1;
    }

    name = f->path + rs->spill_dir.len + sizeof("/usage-") - 1;

    if (ngx_strlen(name) == 36 + sizeof(".copy") - 1) {
        for (i = 0, p = name; i < 16 && p < name + 36; p++) {
            if (*p == '-') {
                continue;
            }

            hi = ngx_hextoi(p, 1);
            lo = ngx_hextoi(p + 1, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                break;
            }

            b->id[i++] = (u_char) (hi << 4 | lo);
            p++;
        }
    }

    f->rc = NGX_AGAIN;

    if (b->text) {
        for (p = b->data; p < b->last; p++) {
            f->records += (*p == '\n');
        }

    } else if (ngx_http_llmproxy_copy_tuples(b->data, b->last, &f->records,
                                             &fields, NULL, NULL)
               != NGX_OK)
    {
        ngx_cpystrn((u_char *) f->err, (u_char *) "not whole tuples",
                    sizeof(f->err));
        f->rc = NGX_DECLINED;

    } else {
        /* an earlier version's, without the token kinds */
        b->fields1 = (fields == NGX_HTTP_LLMPROXY_COPY_FIELDS1);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                   "llmproxy: spill file \"%s\": %uz bytes, %ui records, "
                   "format %ui", f->path, f->size, f->records,
                   ngx_http_llmproxy_batch_format(b));
}


/*
 * The files read in one transaction.  NGX_OK (or none to write),
 * NGX_DECLINED: refused (the files' rc stays NGX_AGAIN), NGX_ERROR: the
 * database failed.
 */

static ngx_int_t
ngx_http_llmproxy_spill_group(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_spill_file_t *files, ngx_uint_t n, ngx_log_t *log)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i, count;
    ngx_http_llmproxy_batch_t   *batches, **ll;

    batches = NULL;
    ll = &batches;
    count = 0;

    for (i = 0; i < n; i++) {
        if (files[i].rc == NGX_AGAIN) {
            *ll = files[i].batch;
            ll = &files[i].batch->next;
            count++;
        }
    }

    *ll = NULL;

    if (count == 0) {
        return NGX_OK;
    }

    rc = ngx_http_llmproxy_db_write(rs, batches, &rs->costs[1]);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "llmproxy: spill files: %ui in one transaction: %i",
                   count, rc);

    if (rc == NGX_DECLINED && count == 1) {
        /* the one refused is known */
        for (i = 0; files[i].rc != NGX_AGAIN; i++) { /* void */ }
        files[i].rc = NGX_DECLINED;
        ngx_memcpy(files[i].err, rs->err, sizeof(files[i].err));
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    for (i = 0; i < n; i++) {
        if (files[i].rc == NGX_AGAIN) {
            files[i].rc = rc;
        }
    }

    return rc;
}


/*
 * A file after its write: deleted when in the database, kept aside when
 * refused, kept for later otherwise; unlocked.  NGX_ERROR: the database
 * failed while the file waited to be written.
 */

static ngx_int_t
ngx_http_llmproxy_spill_done(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_spill_file_t *f, ngx_log_t *log)
{
    u_char     bad[NGX_MAX_PATH];
    ngx_int_t  rc;

    rc = NGX_OK;

    if (f->batch) {
        ngx_http_llmproxy_batch_free(f->batch);
        f->batch = NULL;
    }

    if (f->rc == NGX_OK) {
        rs->replayed += f->records;
        (void) ngx_delete_file(f->path);

    } else if (f->rc == NGX_DECLINED) {
        /* kept aside for a person to look at, never retried forever */
        ngx_snprintf(bad, sizeof(bad), "%s.bad%Z", f->path);
        (void) ngx_rename_file(f->path, bad);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "llmproxy: database refused spill file, kept as "
                      "\"%s\": %s", bad, f->err[0] ? f->err : rs->err);

    } else if (f->rc == NGX_ERROR && rs->conn == NULL) {
        rc = NGX_ERROR;

    } else {
        rs->more_spill = 1;         /* out of memory, or not tried yet */
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "llmproxy: spill file \"%s\" done: %i", f->path, f->rc);

    ngx_close_file(f->fd);

    return rc;
}


/* back on the event loop */

static void
ngx_http_llmproxy_writer_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_records_t *rs = ev->data;

    ngx_http_llmproxy_batch_t  *b, *next, **ll;

    rs->writer_busy = 0;

    ngx_http_llmproxy_records_settle(rs, &rs->costs[0]);
    ngx_http_llmproxy_records_settle(rs, &rs->costs[1]);

    if (rs->db_failed) {
        if (!rs->failing) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "llmproxy: usage records cannot be written, "
                          "keeping them %s: %s",
                          rs->spill_dir.len ? "in spill files" : "in memory",
                          rs->err);
        }

        rs->failing = 1;
        rs->failed_at = ngx_current_msec;

    } else if (rs->failing) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "llmproxy: usage records are written again");
        rs->failing = 0;
    }

    /* what could not go anywhere goes back to the head of the queue */

    for (b = rs->writing, ll = &rs->writing; b; b = next) {
        next = b->next;

        if (rs->db_failed && b->records) {
            rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
            ll = &b->next;
            continue;
        }

        *ll = next;
        ngx_http_llmproxy_batch_free(b);
    }

    if (rs->writing) {
        *ll = rs->queue;
        rs->queue = rs->writing;

        for (ll = &rs->queue; *ll; ll = &(*ll)->next) { /* void */ }
        rs->queue_tail = ll;
    }

    rs->writing = NULL;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "llmproxy: usage records: %i written, %i replayed, "
                   "%i spilled", rs->written, rs->replayed, rs->spilled);

    if (rs->more_spill && !rs->failing && !ngx_terminate) {
        ngx_http_llmproxy_records_post(rs);
    }
}


/* what the database has now is no longer pending in the zone */

static void
ngx_http_llmproxy_records_settle(ngx_http_llmproxy_records_t *rs,
    ngx_http_llmproxy_costs_t *costs)
{
    u_char                         digest[32];
    ngx_int_t                      hi, lo;
    ngx_uint_t                     i, k;
    ngx_http_llmproxy_key_cost_t  *c;

    for (i = 0; i < costs->size; i++) {
        c = &costs->slots[i];

        if (!c->used) {
            continue;
        }

        for (k = 0; k < 32; k++) {
            hi = ngx_hextoi(c->key + 2 * k, 1);
            lo = ngx_hextoi(c->key + 2 * k + 1, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                break;
            }

            digest[k] = (u_char) (hi << 4 | lo);
        }

        if (k == 32) {
            ngx_http_llmproxy_keys_settle(rs->zctx, digest, c->cost,
                                          c->spend);
        }
    }

    ngx_http_llmproxy_costs_free(costs);
}


/* in a thread of the pool: batches to spill files */

static void
ngx_http_llmproxy_spiller_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_records_t *rs = data;

    ngx_http_llmproxy_batch_t  *b;

    for (b = rs->spilling; b; b = b->next) {
        if (ngx_http_llmproxy_spill_write(rs, b, log) != NGX_OK)
        {
            rs->spill_failed = 1;
            return;
        }

        b->records = 0;
    }
}


static void
ngx_http_llmproxy_spiller_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_records_t *rs = ev->data;

    ngx_http_llmproxy_batch_t  *b, *next, **ll;

    rs->spiller_busy = 0;

    /* batches the disk refused wait in memory again */

    for (b = rs->spilling, ll = &rs->spilling; b; b = next) {
        next = b->next;

        if (b->records) {
            rs->queued += NGX_HTTP_LLMPROXY_BATCH_SIZE;
            ll = &b->next;
            continue;
        }

        *ll = next;
        ngx_http_llmproxy_batch_free(b);
    }

    if (rs->spilling) {
        *ll = rs->queue;
        rs->queue = rs->spilling;

        for (ll = &rs->queue; *ll; ll = &(*ll)->next) { /* void */ }
        rs->queue_tail = ll;
    }

    rs->spilling = NULL;
    rs->more_spill = 1;
}

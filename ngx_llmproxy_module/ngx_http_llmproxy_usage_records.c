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

#include "ngx_http_llmproxy_usage_records.h"

#include <dirent.h>
#include <sys/file.h>
#include <openssl/rand.h>


#define NGX_HTTP_LLMPROXY_BATCH_SIZE    (256 * 1024)
#define NGX_HTTP_LLMPROXY_WRITE_MAX     16        /* batches a transaction */
#define NGX_HTTP_LLMPROXY_RETRY         1000
#define NGX_HTTP_LLMPROXY_SPILL_LOOK    2000


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
        ngx_http_llmproxy_records_post(rs);
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
    ngx_int_t  rc;

    rc = ngx_http_llmproxy_records_db_write(rs->conn, b, costs, rs->err,
                                            sizeof(rs->err));

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
 * One spill file back into the database: the first one no other worker
 * holds.  NGX_ERROR: the database failed; the file stays for later.
 */

static ngx_int_t
ngx_http_llmproxy_spill_replay(ngx_http_llmproxy_records_t *rs,
    ngx_log_t *log)
{
    DIR                        *d;
    u_char                     *p, *name, path[NGX_MAX_PATH];
    u_char                      bad[NGX_MAX_PATH];
    size_t                      len;
    ssize_t                     n;
    ngx_fd_t                    fd;
    ngx_int_t                   rc, hi, lo;
    ngx_uint_t                  i, records, files, fields;
    ngx_http_llmproxy_batch_t  *b;
    struct stat     st;
    struct dirent  *de;

    d = opendir((char *) rs->spill_dir.data);
    if (d == NULL) {
        return NGX_OK;
    }

    fd = NGX_INVALID_FILE;
    files = 0;

    while ((de = readdir(d)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len < sizeof("usage-.copy") - 1
            || ngx_strncmp(de->d_name, "usage-", 6) != 0
            || ngx_strcmp(de->d_name + len - 5, ".copy") != 0)
        {
            continue;
        }

        files++;

        if (fd != NGX_INVALID_FILE) {
            continue;              /* one now; count the rest */
        }

        ngx_snprintf(path, sizeof(path), "%V/%s%Z", &rs->spill_dir,
                     de->d_name);

        fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            if (ngx_errno != NGX_ENOENT && !rs->spill_open_logged) {
                ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                              ngx_open_file_n " \"%s\" failed", path);
                rs->spill_open_logged = 1;
            }

            continue;
        }

        if (flock(fd, LOCK_EX | LOCK_NB) == -1
            || fstat(fd, &st) == -1 || st.st_nlink == 0)
        {
            /* another worker has it, or has just finished with it */
            ngx_close_file(fd);
            fd = NGX_INVALID_FILE;
        }
    }

    closedir(d);

    if (fd == NGX_INVALID_FILE) {
        return NGX_OK;
    }

    rs->more_spill = (files > 1);

    b = ngx_http_llmproxy_batch_new((size_t) st.st_size + 1);
    if (b == NULL) {
        ngx_close_file(fd);
        return NGX_OK;
    }

    for (len = 0; len < (size_t) st.st_size; len += n) {
        n = read(fd, b->data + len, (size_t) st.st_size - len);
        if (n <= 0) {
            break;
        }
    }

    b->last = b->data + len;

    /* ours: a binary COPY stream; an earlier version's: COPY's text */

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

    /* the batch's id is in the file's name: usage-UUID.copy */

    name = path + rs->spill_dir.len + sizeof("/usage-") - 1;

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

    records = 0;

    if (b->text) {
        for (p = b->data; p < b->last; p++) {
            records += (*p == '\n');
        }

        rc = ngx_http_llmproxy_db_write(rs, b, &rs->costs[1]);

    } else if (ngx_http_llmproxy_copy_tuples(b->data, b->last, &records,
                                             &fields, NULL, NULL)
               != NGX_OK)
    {
        ngx_cpystrn((u_char *) rs->err, (u_char *) "not whole tuples",
                    sizeof(rs->err));
        rc = NGX_DECLINED;

    } else {
        /* an earlier version's, without the token kinds */
        b->fields1 = (fields == NGX_HTTP_LLMPROXY_COPY_FIELDS1);
        rc = ngx_http_llmproxy_db_write(rs, b, &rs->costs[1]);
    }

    ngx_http_llmproxy_batch_free(b);

    if (rc == NGX_OK) {
        rs->replayed += records;
        (void) ngx_delete_file(path);

    } else if (rc == NGX_DECLINED) {
        /* kept aside for a person to look at, never retried forever */
        ngx_snprintf(bad, sizeof(bad), "%s.bad%Z", path);
        (void) ngx_rename_file(path, bad);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "llmproxy: database refused spill file, kept as "
                      "\"%s\": %s", bad, rs->err);
        rc = NGX_OK;
    }

    ngx_close_file(fd);

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

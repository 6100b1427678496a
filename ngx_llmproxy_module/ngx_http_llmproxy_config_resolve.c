/*
 * Provider hosts are resolved when a config is installed; names change
 * (a container restarts, a service moves) or resolve only later (a
 * provider started after the gateway).  One worker resolves the loaded
 * config again every llmproxy_resolve_interval, in a thread of the pool,
 * and installs it when an address changed, unless a newer config was
 * installed meanwhile.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <cjson/cJSON.h>


typedef struct {
    ngx_http_llmproxy_zone_ctx_t   *zctx;
    ngx_thread_pool_t              *thread_pool;
    ngx_thread_task_t              *task;
    ngx_event_t                     timer;
    ngx_msec_t                      interval;
    ngx_uint_t                      busy;
    ngx_uint_t                      generation;  /* of the copy */
    u_char                         *blob;        /* the loaded config */
    size_t                          len;
    u_char                         *prepared;    /* resolved again */
    size_t                          prepared_len;
    ngx_uint_t                      changed;
} ngx_http_llmproxy_resolve_t;


static void ngx_http_llmproxy_resolve_start(ngx_event_t *ev);
static void ngx_http_llmproxy_resolve_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_resolve_done(ngx_event_t *ev);


static ngx_http_llmproxy_resolve_t  ngx_http_llmproxy_resolver;


ngx_int_t
ngx_http_llmproxy_resolve_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_resolve_t    *rs;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);

    if (lmcf == NULL || lmcf->shm_zone == NULL || lmcf->resolve_interval == 0
        || (ngx_process != NGX_PROCESS_SINGLE && ngx_worker != 0))
    {
        return NGX_OK;
    }

    rs = &ngx_http_llmproxy_resolver;
    ngx_memzero(rs, sizeof(ngx_http_llmproxy_resolve_t));

    rs->zctx = lmcf->shm_zone->data;
    rs->thread_pool = lmcf->thread_pool;
    rs->interval = lmcf->resolve_interval;

    rs->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (rs->task == NULL) {
        return NGX_ERROR;
    }

    rs->task->ctx = rs;
    rs->task->handler = ngx_http_llmproxy_resolve_thread;
    rs->task->event.handler = ngx_http_llmproxy_resolve_done;
    rs->task->event.data = rs;
    rs->task->event.log = cycle->log;

    rs->timer.handler = ngx_http_llmproxy_resolve_start;
    rs->timer.data = rs;
    rs->timer.log = cycle->log;
    rs->timer.cancelable = 1;

    ngx_add_timer(&rs->timer, rs->interval);

    return NGX_OK;
}


static void
ngx_http_llmproxy_resolve_start(ngx_event_t *ev)
{
    ngx_http_llmproxy_resolve_t *rs = ev->data;

    if (ngx_exiting || ngx_terminate || rs->busy) {
        return;
    }

    rs->blob = ngx_http_llmproxy_shm_copy(rs->zctx, &rs->len,
                                          &rs->generation);
    rs->prepared = NULL;
    rs->changed = 0;

    if (rs->blob == NULL) {
        ngx_add_timer(&rs->timer, rs->interval);
        return;
    }

    if (ngx_thread_task_post(rs->thread_pool, rs->task) != NGX_OK) {
        ngx_free(rs->blob);
        ngx_add_timer(&rs->timer, rs->interval);
        return;
    }

    rs->busy = 1;
}


/* in a thread of the pool: getaddrinfo() may block here */

static void
ngx_http_llmproxy_resolve_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_resolve_t *rs = data;

    u_char  err[256];

    (void) log;

    rs->prepared = ngx_http_llmproxy_runtime_prepare(rs->blob, rs->len,
                                                     NULL, 0,
                                                     &rs->prepared_len, err,
                                                     sizeof(err));

    /* both are printed by cJSON the same way: equal bytes, same addresses */

    rs->changed = rs->prepared
                  && (rs->prepared_len != rs->len
                      || ngx_memcmp(rs->prepared, rs->blob, rs->len) != 0);

    /*
     * the saved config is not rewritten: a newer one may be installed
     * meanwhile, and a gateway that starts resolves its hosts anyway
     */
}


static void
ngx_http_llmproxy_resolve_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_resolve_t *rs = ev->data;

    ngx_uint_t  generation;

    rs->busy = 0;

    if (rs->changed
        && ngx_http_llmproxy_shm_install_if(rs->zctx, rs->prepared,
                                            rs->prepared_len,
                                            rs->generation, &generation)
           == NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "llmproxy: provider addresses changed, config "
                      "generation %ui installed", generation);
    }

    if (rs->prepared) {
        cJSON_free(rs->prepared);
    }

    ngx_free(rs->blob);
    rs->blob = NULL;
    rs->prepared = NULL;

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&rs->timer, rs->interval);
    }
}

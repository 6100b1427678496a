/*
 * State from outside a worker: connections to PostgreSQL (_db.c), keys
 * and config from it (_keys_poll.c, _config_poll.c), the config on disk
 * (_config_disk.c), hosts resolved again (_config_resolve.c).
 */

#ifndef _NGX_HTTP_LLMPROXY_POLL_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_POLL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_zone.h"


/* _db.c: a PostgreSQL connection, for a thread of the pool only */
struct pg_conn *ngx_http_llmproxy_db_connect(const char *uri,
    const char *options, const char *application);

/* _keys_poll.c: virtual keys from PostgreSQL into the zone */
ngx_int_t ngx_http_llmproxy_db_init_process(ngx_cycle_t *cycle);

/* _config_disk.c: the last good config on disk */
ngx_int_t ngx_http_llmproxy_state_save(ngx_str_t *file, u_char *blob,
    size_t len, const char *salt_key, ngx_log_t *log);
u_char *ngx_http_llmproxy_state_load(ngx_str_t *file, const char *salt_key,
    size_t *len, ngx_log_t *log, u_char *err, size_t errlen);
ngx_int_t ngx_http_llmproxy_decrypt_keys(void *json, const char *salt_key,
    char *err, size_t errlen);
void ngx_http_llmproxy_state_restore(ngx_http_llmproxy_zone_ctx_t *zctx);

/* _config_resolve.c */
ngx_int_t ngx_http_llmproxy_resolve_init_process(ngx_cycle_t *cycle);

/* _config_poll.c: the config stored by llmproxyctl sync in PostgreSQL */

typedef struct {
    int64_t                       since;     /* the version we have */
    int64_t                       version;   /* fetched; 0: nothing new */
    u_char                       *prepared;  /* to install, or NULL */
    size_t                        len;
    ngx_int_t                     saved;
    char                          err[256];
} ngx_http_llmproxy_db_config_t;

ngx_int_t ngx_http_llmproxy_db_config_fetch(void *conn,
    ngx_http_llmproxy_db_config_t *dc, const char *salt_key,
    ngx_str_t *state_file, ngx_log_t *log);
void ngx_http_llmproxy_db_config_apply(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_db_config_t *dc, ngx_log_t *log);


#endif /* _NGX_HTTP_LLMPROXY_POLL_H_INCLUDED_ */

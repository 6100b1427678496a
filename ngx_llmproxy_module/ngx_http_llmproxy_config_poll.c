/*
 * The config that `llmproxyctl sync` stores in PostgreSQL.  The poller
 * asks, in a thread of the pool, whether llmproxy_config_state.version
 * moved; if so one query assembles the compiled config from its entries,
 * provider keys and headers are decrypted with LLMPROXY_SALT_KEY, the
 * document is prepared like a pushed one (validated, hosts resolved) and
 * saved as the last good config.  Back on the event loop it is installed
 * in the zone.  A database without schema 4 has no headers_enc column:
 * to_jsonb() reads it only when it is there; plain headers that an older
 * llmproxyctl stored load as they are.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <libpq-fe.h>
#include <cjson/cJSON.h>


static ngx_int_t ngx_http_llmproxy_db_config_prepare(
    ngx_http_llmproxy_db_config_t *dc, cJSON *root, const char *salt_key);


static const char  ngx_http_llmproxy_db_config_sql[] =
    "SELECT s.version::text, json_build_object("
    " 'format', 1,"
    " 'config_sha256', s.config_sha256,"
    " 'settings', coalesce((SELECT e.data FROM llmproxy_config_entries e"
    "   WHERE e.kind = 'settings' AND e.name = 'settings'), '{}'::jsonb),"
    " 'providers', coalesce((SELECT json_agg(e.data"
    "   || jsonb_build_object('api_key_enc', e.api_key_enc,"
    "   'headers_enc', to_jsonb(e)->'headers_enc') ORDER BY e.name)"
    "   FROM llmproxy_config_entries e WHERE e.kind = 'credentials'),"
    "   '[]'::json),"
    " 'deployments', coalesce((SELECT json_agg(e.data ORDER BY e.name)"
    "   FROM llmproxy_config_entries e WHERE e.kind = 'models'), '[]'::json),"
    " 'aliases', coalesce((SELECT json_object_agg(e.name, e.data)"
    "   FROM llmproxy_config_entries e WHERE e.kind = 'aliases'),"
    "   '{}'::json),"
    " 'fallbacks', coalesce((SELECT json_object_agg(e.name, e.data)"
    "   FROM llmproxy_config_entries e WHERE e.kind = 'fallbacks'),"
    "   '{}'::json)"
    ")::text"
    " FROM llmproxy_config_state s"
    " WHERE s.id = 1 AND s.version > $1::bigint AND s.config_sha256 <> ''";


/* in a thread of the pool */

ngx_int_t
ngx_http_llmproxy_db_config_fetch(void *conn,
    ngx_http_llmproxy_db_config_t *dc, const char *salt_key,
    ngx_str_t *state_file, ngx_log_t *log)
{
    char        since[32], *sqlstate;
    cJSON      *root;
    PGresult   *res;
    const char *values[1];

    dc->version = 0;
    dc->prepared = NULL;
    dc->err[0] = '\0';

    ngx_sprintf((u_char *) since, "%L%Z", dc->since);
    values[0] = since;

    res = PQexecParams(conn, ngx_http_llmproxy_db_config_sql, 1, NULL,
                       values, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (sqlstate && ngx_strcmp(sqlstate, "42P01") == 0) {
            /* schema 2 not applied yet: no stored config */
            PQclear(res);
            return NGX_OK;
        }

        ngx_cpystrn((u_char *) dc->err, (u_char *) PQerrorMessage(conn),
                    sizeof(dc->err));
        PQclear(res);
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return NGX_OK;
    }

    dc->version = ngx_atoof((u_char *) PQgetvalue(res, 0, 0),
                            PQgetlength(res, 0, 0));

    root = cJSON_Parse(PQgetvalue(res, 0, 1));
    PQclear(res);

    if (root == NULL) {
        ngx_cpystrn((u_char *) dc->err,
                    (u_char *) "the stored config is not valid JSON",
                    sizeof(dc->err));
        return NGX_DECLINED;
    }

    if (ngx_http_llmproxy_db_config_prepare(dc, root, salt_key) != NGX_OK) {
        return NGX_DECLINED;
    }

    dc->saved = NGX_DECLINED;

    if (state_file->len) {
        dc->saved = ngx_http_llmproxy_state_save(state_file, dc->prepared,
                                                 dc->len, salt_key, log);
    }

    return NGX_OK;
}


/*
 * The stored config with its provider secrets decrypted, prepared as a
 * posted one is; the plaintext is wiped.  Frees root.
 */

static ngx_int_t
ngx_http_llmproxy_db_config_prepare(ngx_http_llmproxy_db_config_t *dc,
    cJSON *root, const char *salt_key)
{
    char    *text;
    u_char   err[256];

    if (ngx_http_llmproxy_decrypt_keys(root, salt_key, dc->err,
                                       sizeof(dc->err))
        != NGX_OK)
    {
        cJSON_Delete(root);
        return NGX_DECLINED;
    }

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (text == NULL) {
        ngx_cpystrn((u_char *) dc->err, (u_char *) "no memory",
                    sizeof(dc->err));
        return NGX_DECLINED;
    }

    dc->prepared = ngx_http_llmproxy_runtime_prepare((u_char *) text,
                                                     ngx_strlen(text), NULL,
                                                     0, &dc->len, err,
                                                     sizeof(err));
    ngx_explicit_memzero(text, ngx_strlen(text));
    cJSON_free(text);

    if (dc->prepared == NULL) {
        ngx_cpystrn((u_char *) dc->err, err, sizeof(dc->err));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* back on the event loop */

void
ngx_http_llmproxy_db_config_apply(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_db_config_t *dc, ngx_log_t *log)
{
    ngx_uint_t  generation;

    if (dc->version == 0) {
        return;
    }

    if (dc->prepared == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "llmproxy: stored config version %L not loaded, "
                      "serving the last good one: %s", dc->version, dc->err);

        /* do not try this version again */
        zctx->sh->config_version = dc->version;
        return;
    }

    if (ngx_http_llmproxy_shm_install(zctx, dc->prepared, dc->len,
                                      &generation)
        == NGX_OK)
    {
        zctx->sh->config_version = dc->version;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "llmproxy: stored config version %L installed as "
                      "generation %ui%s", dc->version, generation,
                      dc->saved == NGX_OK ? ""
                      : " (not saved to the state path)");
    }

    cJSON_free(dc->prepared);
    dc->prepared = NULL;
}

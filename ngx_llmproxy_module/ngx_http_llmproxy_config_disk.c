/*
 * The last good config on disk (llmproxy_state_path/config.json), loaded
 * when a gateway starts.  When a salt key is set, provider keys and
 * headers are kept there encrypted ("api_key_enc", "headers_enc", as in
 * PostgreSQL), never in plain text.
 * Called in threads of the pool and in the master at start: nothing here
 * touches the event loop.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <cjson/cJSON.h>
#include <llmp_crypt.h>


ngx_int_t
ngx_http_llmproxy_state_save(ngx_str_t *file, u_char *blob, size_t len,
    const char *salt_key, ngx_log_t *log)
{
    char       *enc, *text;
    cJSON      *root, *p, *key, *headers;
    ngx_int_t   rc;

    if (salt_key == NULL) {
        return ngx_http_llmproxy_write_file(file, blob, len, log);
    }

    root = cJSON_ParseWithLength((char *) blob, len);
    if (root == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                           "providers"))
    {
        key = cJSON_GetObjectItemCaseSensitive(p, "api_key");

        if (!cJSON_IsString(key)) {
            continue;
        }

        enc = llmp_encrypt(salt_key, key->valuestring);

        if (enc == NULL
            || cJSON_AddStringToObject(p, "api_key_enc", enc) == NULL)
        {
            free(enc);
            cJSON_Delete(root);
            return NGX_ERROR;
        }

        free(enc);
        cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key");
    }

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                           "providers"))
    {
        headers = cJSON_GetObjectItemCaseSensitive(p, "headers");

        if (!cJSON_IsObject(headers) || headers->child == NULL) {
            continue;
        }

        enc = llmp_headers_encrypt(salt_key, headers);

        if (enc == NULL
            || cJSON_AddStringToObject(p, "headers_enc", enc) == NULL)
        {
            free(enc);
            cJSON_Delete(root);
            return NGX_ERROR;
        }

        free(enc);
        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers");
    }

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llmproxy_write_file(file, (u_char *) text,
                                      ngx_strlen(text), log);
    cJSON_free(text);

    return rc;
}


/* returns the saved config with its provider keys decrypted (malloc) */

u_char *
ngx_http_llmproxy_state_load(ngx_str_t *file, const char *salt_key,
    size_t *len, ngx_log_t *log, u_char *err, size_t errlen)
{
    char    *text;
    u_char  *blob;
    cJSON   *root;

    blob = ngx_http_llmproxy_read_file(file, len, log);
    if (blob == NULL) {
        ngx_cpystrn(err, (u_char *) "cannot read it", errlen);
        return NULL;
    }

    root = cJSON_ParseWithLength((char *) blob, *len);
    ngx_explicit_memzero(blob, *len);
    ngx_free(blob);

    if (root == NULL) {
        ngx_cpystrn(err, (u_char *) "not valid JSON", errlen);
        return NULL;
    }

    if (ngx_http_llmproxy_decrypt_keys(root, salt_key, (char *) err, errlen)
        != NGX_OK)
    {
        cJSON_Delete(root);
        return NULL;
    }

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (text == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NULL;
    }

    *len = ngx_strlen(text);

    blob = ngx_alloc(*len + 1, log);
    if (blob != NULL) {
        ngx_memcpy(blob, text, *len + 1);
    }

    ngx_explicit_memzero(text, *len);
    cJSON_free(text);

    return blob;
}


/*
 * "api_key_enc" of every provider to "api_key", "headers_enc" to
 * "headers", with the salt key
 */

ngx_int_t
ngx_http_llmproxy_decrypt_keys(void *json, const char *salt_key, char *err,
    size_t errlen)
{
    cJSON *root = json;

    char   *plain;
    cJSON  *p, *enc, *name, *headers;

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root,
                                                           "providers"))
    {
        enc = cJSON_GetObjectItemCaseSensitive(p, "api_key_enc");
        name = cJSON_GetObjectItemCaseSensitive(p, "name");

        if (cJSON_IsString(enc)) {
            plain = salt_key ? llmp_decrypt(salt_key, enc->valuestring)
                             : NULL;

            if (plain == NULL) {
                ngx_snprintf((u_char *) err, errlen,
                             "providers.%s.api_key: cannot decrypt it: "
                             "LLMPROXY_SALT_KEY %s%Z",
                             cJSON_IsString(name) ? name->valuestring : "?",
                             salt_key ? "differs from the one that "
                                        "encrypted it"
                                      : "is not set for the gateway");
                return NGX_ERROR;
            }

            cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key");

            if (cJSON_AddStringToObject(p, "api_key", plain) == NULL) {
                ngx_explicit_memzero(plain, ngx_strlen(plain));
                free(plain);
                return NGX_ERROR;
            }

            ngx_explicit_memzero(plain, ngx_strlen(plain));
            free(plain);
        }

        cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key_enc");

        enc = cJSON_GetObjectItemCaseSensitive(p, "headers_enc");

        if (cJSON_IsString(enc)) {
            headers = salt_key ? llmp_headers_decrypt(salt_key,
                                                      enc->valuestring)
                               : NULL;

            if (headers == NULL) {
                ngx_snprintf((u_char *) err, errlen,
                             "providers.%s.headers: cannot decrypt them: "
                             "LLMPROXY_SALT_KEY %s%Z",
                             cJSON_IsString(name) ? name->valuestring : "?",
                             salt_key ? "differs from the one that "
                                        "encrypted them"
                                      : "is not set for the gateway");
                return NGX_ERROR;
            }

            cJSON_DeleteItemFromObjectCaseSensitive(p, "headers");

            if (!cJSON_AddItemToObject(p, "headers", headers)) {
                cJSON_Delete(headers);
                return NGX_ERROR;
            }
        }

        cJSON_DeleteItemFromObjectCaseSensitive(p, "headers_enc");
    }

    return NGX_OK;
}


/* a fresh zone starts from the last good config the gateway saved */

void
ngx_http_llmproxy_state_restore(ngx_http_llmproxy_zone_ctx_t *zctx)
{
    u_char           *blob, *prepared, err[256];
    size_t            len, plen;
    ngx_uint_t        generation;
    ngx_file_info_t   fi;

    if (zctx->state_file.len == 0) {
        return;
    }

    if (ngx_file_info(zctx->state_file.data, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_NOTICE, zctx->log, 0,
                      "llmproxy: no saved config in \"%V\" yet",
                      &zctx->state_file);
        return;
    }

    blob = ngx_http_llmproxy_state_load(&zctx->state_file, zctx->salt_key,
                                        &len, zctx->log, err, sizeof(err));
    if (blob == NULL) {
        ngx_log_error(NGX_LOG_ERR, zctx->log, 0,
                      "llmproxy: saved config \"%V\" ignored: %s",
                      &zctx->state_file, err);
        return;
    }

    prepared = ngx_http_llmproxy_runtime_prepare(blob, len, NULL, 0, &plen,
                                                 err, sizeof(err));
    ngx_explicit_memzero(blob, len);
    ngx_free(blob);

    if (prepared == NULL) {
        ngx_log_error(NGX_LOG_ERR, zctx->log, 0,
                      "llmproxy: saved config \"%V\" ignored: %s",
                      &zctx->state_file, err);
        return;
    }

    if (ngx_http_llmproxy_shm_install(zctx, prepared, plen, &generation)
        == NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, zctx->log, 0,
                      "llmproxy: loaded saved config from \"%V\"",
                      &zctx->state_file);
    }

    ngx_free(prepared);
}

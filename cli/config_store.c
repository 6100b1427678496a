/*
 * The config in PostgreSQL: one row of llmproxy_config_entries per entry
 * of the compiled config, provider keys and headers encrypted with
 * LLMPROXY_SALT_KEY (configs/schema/002_config.sql, 004_headers_enc.sql),
 * with the id of that key (011_config_salt_key_id.sql): after the salt
 * key is rotated, sync encrypts them again.  Gateways sharing the
 * database poll llmproxy_config_state.version, which every statement on
 * the entries bumps: only entries that change are written.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"
#include "llmp_config.h"
#include "llmp_crypt.h"


typedef struct {
    const char  *kind;             /* llmproxy_config_entries.kind */
    const char  *member;           /* in the compiled document */
    const char  *key;              /* array entries: their name member */
} ctl_store_kind_t;


static const ctl_store_kind_t  ctl_store_kinds[] = {
    { "credentials", "providers", "name" },
    { "models", "deployments", "id" },
    { "aliases", "aliases", NULL },
    { "fallbacks", "fallbacks", NULL },
    { "settings", "settings", NULL },
    { NULL, NULL, NULL }
};


/* what happens to api_key_enc and headers_enc */
#define LLMP_STORE_KEY_KEEP   0
#define LLMP_STORE_KEY_SET    1
#define LLMP_STORE_KEY_CLEAR  2


static int
ctl_store_ok(PGconn *conn, PGresult *res, ExecStatusType expect)
{
    if (PQresultStatus(res) == expect) {
        return 1;
    }

    fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));

    return 0;
}


static int
ctl_store_exec(PGconn *conn, const char *sql, int n,
    const char *const *params)
{
    int        ok;
    PGresult  *res;

    res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ok = ctl_store_ok(conn, res, PGRES_COMMAND_OK);
    PQclear(res);

    return ok ? 0 : -1;
}


int
ctl_store_begin(PGconn *conn)
{
    int        ok;
    PGresult  *res;

    if (ctl_store_exec(conn, "BEGIN", 0, NULL) != 0) {
        return -1;
    }

    res = PQexecParams(conn, "SELECT version FROM llmproxy_config_state"
                       " WHERE id = 1 FOR UPDATE", 0, NULL, NULL, NULL,
                       NULL, 0);

    ok = ctl_store_ok(conn, res, PGRES_TUPLES_OK);

    if (ok && PQntuples(res) != 1) {
        fprintf(stderr, "llmproxyctl: database: llmproxy_config_state has "
                "no row 1\n");
        ok = 0;
    }

    PQclear(res);

    if (!ok) {
        ctl_store_rollback(conn);
        return -1;
    }

    return 0;
}


void
ctl_store_rollback(PGconn *conn)
{
    PQclear(PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}


static const ctl_store_kind_t *
ctl_store_kind(const char *kind)
{
    const ctl_store_kind_t  *k;

    for (k = ctl_store_kinds; k->kind; k++) {
        if (strcmp(k->kind, kind) == 0) {
            return k;
        }
    }

    return NULL;
}


/* an empty document: every member, in the compiler's order */

static cJSON *
ctl_store_document(void)
{
    cJSON  *doc;

    doc = cJSON_CreateObject();

    if (doc == NULL
        || cJSON_AddNumberToObject(doc, "format", LLMP_CONFIG_FORMAT) == NULL
        || cJSON_AddStringToObject(doc, "config_sha256", "") == NULL
        || cJSON_AddArrayToObject(doc, "providers") == NULL
        || cJSON_AddArrayToObject(doc, "deployments") == NULL
        || cJSON_AddObjectToObject(doc, "aliases") == NULL
        || cJSON_AddObjectToObject(doc, "fallbacks") == NULL)
    {
        cJSON_Delete(doc);
        return NULL;
    }

    return doc;
}


/*
 * Rows written before headers were encrypted hold them in data: they are
 * shown by their digest, like the others, until
 * ctl_store_seal_headers() rewrites them.
 */

static int
ctl_store_hide_headers(cJSON *data)
{
    char    hex[65];
    cJSON  *h;

    h = cJSON_GetObjectItemCaseSensitive(data, "headers");

    switch (llmp_headers_sha256(h, hex)) {
    case 0:
        return 0;

    case 1:
        break;

    default:
        return -1;
    }

    if (cJSON_GetObjectItemCaseSensitive(data, "headers_sha256") == NULL
        && cJSON_AddStringToObject(data, "headers_sha256", hex) == NULL)
    {
        return -1;
    }

    cJSON_DeleteItemFromObjectCaseSensitive(data, "headers");

    return 0;
}


static int
ctl_store_add(cJSON *doc, const char *kind, const char *name,
    const char *text)
{
    cJSON                    *data, *part;
    const ctl_store_kind_t  *k;

    k = ctl_store_kind(kind);
    data = cJSON_Parse(text);

    if (k == NULL || data == NULL) {
        fprintf(stderr, "llmproxyctl: database: config entry %s %s: %s\n",
                kind, name, k ? "data is not JSON" : "unknown kind");
        cJSON_Delete(data);
        return -1;
    }

    if (strcmp(k->kind, "credentials") == 0
        && ctl_store_hide_headers(data) != 0)
    {
        cJSON_Delete(data);
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    if (strcmp(k->kind, "settings") == 0) {
        if (cJSON_AddItemToObject(doc, "settings", data)) {
            return 0;
        }

    } else {
        part = cJSON_GetObjectItemCaseSensitive(doc, k->member);

        if (k->key ? cJSON_AddItemToArray(part, data)
                   : cJSON_AddItemToObject(part, name, data))
        {
            return 0;
        }
    }

    cJSON_Delete(data);
    fprintf(stderr, "llmproxyctl: out of memory\n");

    return -1;
}


int
ctl_store_load(PGconn *conn, cJSON **stored)
{
    int        i, n;
    cJSON     *doc;
    PGresult  *res;

    *stored = NULL;

    res = PQexecParams(conn, "SELECT kind, name, data::text"
                       " FROM llmproxy_config_entries ORDER BY kind, name",
                       0, NULL, NULL, NULL, NULL, 0);

    if (!ctl_store_ok(conn, res, PGRES_TUPLES_OK)) {
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);

    if (n == 0) {
        PQclear(res);
        return 0;
    }

    doc = ctl_store_document();
    if (doc == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        PQclear(res);
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (ctl_store_add(doc, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                           PQgetvalue(res, i, 2)) != 0)
        {
            cJSON_Delete(doc);
            PQclear(res);
            return -1;
        }
    }

    PQclear(res);

    if (llmp_compiled_sort(doc) != 0) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        cJSON_Delete(doc);
        return -1;
    }

    *stored = doc;

    return 0;
}


/* the entries of one kind by name; the items are references */

static cJSON *
ctl_store_map(const cJSON *doc, const ctl_store_kind_t *k)
{
    cJSON        *map, *part, *item;
    const char   *name;

    map = cJSON_CreateObject();
    part = cJSON_GetObjectItemCaseSensitive(doc, k->member);

    if (map == NULL || part == NULL) {
        return map;
    }

    if (strcmp(k->kind, "settings") == 0) {
        if (!cJSON_AddItemReferenceToObject(map, "settings", part)) {
            cJSON_Delete(map);
            return NULL;
        }

        return map;
    }

    cJSON_ArrayForEach(item, part) {
        name = k->key ? cJSON_GetStringValue(
                            cJSON_GetObjectItemCaseSensitive(item, k->key))
                      : item->string;

        if (name && !cJSON_AddItemReferenceToObject(map, name, item)) {
            cJSON_Delete(map);
            return NULL;
        }
    }

    return map;
}


static const char *
ctl_store_sha(const cJSON *provider, const char *digest)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(provider,
                                                                 digest));
}


/*
 * A stored provider whose secret's digest (api_key_sha256 or
 * headers_sha256) is unchanged keeps its encrypted column, unless
 * another salt key encrypted it (stale); otherwise the secret is
 * encrypted, or the column cleared.
 */

static int
ctl_store_key_action(const cJSON *result, const cJSON *stored,
    const char *digest, int stale)
{
    const char  *rsha, *ssha;

    rsha = ctl_store_sha(result, digest);
    ssha = stored ? ctl_store_sha(stored, digest) : NULL;

    if (stored && !stale
        && ((rsha == NULL && ssha == NULL)
            || (rsha && ssha && strcmp(rsha, ssha) == 0)))
    {
        return LLMP_STORE_KEY_KEEP;
    }

    return rsha ? LLMP_STORE_KEY_SET : LLMP_STORE_KEY_CLEAR;
}


static const char *
ctl_store_salt(void)
{
    const char  *salt;

    salt = ctl_salt_key();

    return (salt && salt[0]) ? salt : NULL;
}


static int
ctl_store_is_stale(const cJSON *stale, const char *name)
{
    return stale && name
           && cJSON_GetObjectItemCaseSensitive(stale, name) != NULL;
}


/* 1 when the salt key decrypts every secret of row i */

static int
ctl_store_opens(PGresult *res, int i, const char *salt)
{
    int    col;
    char  *plain;

    for (col = 2; col <= 3; col++) {
        if (PQgetisnull(res, i, col)) {
            continue;
        }

        plain = llmp_decrypt(salt, PQgetvalue(res, i, col));

        if (plain == NULL) {
            return 0;
        }

        ctl_secret_free(plain);
    }

    return 1;
}


int
ctl_store_stale(PGconn *conn, cJSON **stale)
{
    int          i, n;
    char         id[LLMP_SALT_KEY_ID_LEN + 1];
    PGresult    *res;
    const char  *salt, *name;

    *stale = cJSON_CreateObject();

    if (*stale == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    /* without a salt key sync stores no secret: ctl_store_check_keys() */

    salt = ctl_store_salt();

    if (salt == NULL) {
        return 0;
    }

    llmp_salt_key_id(salt, id);

    res = PQexecParams(conn, "SELECT name, salt_key_id, api_key_enc,"
                       " headers_enc FROM llmproxy_config_entries"
                       " WHERE kind = 'credentials'"
                       " AND (api_key_enc IS NOT NULL"
                       " OR headers_enc IS NOT NULL) ORDER BY name",
                       0, NULL, NULL, NULL, NULL, 0);

    if (!ctl_store_ok(conn, res, PGRES_TUPLES_OK)) {
        PQclear(res);
        cJSON_Delete(*stale);
        *stale = NULL;
        return -1;
    }

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        name = PQgetvalue(res, i, 0);

        /*
         * no id: stored before ids were recorded; the ciphertext itself
         * tells (a wrong key fails its GCM tag)
         */

        if (PQgetisnull(res, i, 1) ? ctl_store_opens(res, i, salt)
                                   : strcmp(PQgetvalue(res, i, 1), id) == 0)
        {
            continue;
        }

        if (cJSON_AddTrueToObject(*stale, name) == NULL) {
            fprintf(stderr, "llmproxyctl: out of memory\n");
            PQclear(res);
            cJSON_Delete(*stale);
            *stale = NULL;
            return -1;
        }
    }

    PQclear(res);

    return 0;
}


/*
 * A stale provider's secrets are encrypted again from the result, which
 * has them when the config has the same ones; a provider kept as stored
 * with other secrets, or not in the config, has only their digests.
 */

static int
ctl_store_check_stale(const cJSON *r, const char *name, const char *member)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(r, member);

    if (strcmp(member, "api_key") == 0 ? cJSON_GetStringValue(v) != NULL
                                       : cJSON_IsObject(v))
    {
        return 0;
    }

    fprintf(stderr, "providers.%s.%s: stored encrypted with another salt "
            "key, and the config does not have the same %s: gateways with "
            "this salt key cannot decrypt it (--force stores the config's, "
            "--prune removes a provider the config lacks)\n", name, member,
            strcmp(member, "api_key") == 0 ? "key" : "headers");

    return 1;
}


int
ctl_store_check_keys(const cJSON *stored, const cJSON *result,
    const cJSON *stale)
{
    int           n, st;
    cJSON        *smap;
    const char   *name;
    const cJSON  *r, *s;

    n = 0;
    smap = ctl_store_map(stored, &ctl_store_kinds[0]);

    if (smap == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return 1;
    }

    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(result,
                                                           "providers"))
    {
        name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r,
                                        "name"));
        s = name ? cJSON_GetObjectItemCaseSensitive(smap, name) : NULL;
        st = s && ctl_store_is_stale(stale, name);

        if (ctl_store_key_action(r, s, "api_key_sha256", st)
            == LLMP_STORE_KEY_SET)
        {
            if (st && ctl_store_key_action(r, s, "api_key_sha256", 0)
                      == LLMP_STORE_KEY_KEEP)
            {
                n += ctl_store_check_stale(r, name, "api_key");

            } else if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r,
                                         "api_key")) == NULL)
            {
                fprintf(stderr, "providers.%s.api_key: the key is not in "
                        "the config (use --force to store the config's "
                        "key)\n", name ? name : "?");
                n++;

            } else if (ctl_store_salt() == NULL) {
                fprintf(stderr, "providers.%s.api_key: LLMPROXY_SALT_KEY "
                        "must be set to store provider keys\n",
                        name ? name : "?");
                n++;
            }
        }

        if (ctl_store_key_action(r, s, "headers_sha256", st)
            == LLMP_STORE_KEY_SET)
        {
            if (st && ctl_store_key_action(r, s, "headers_sha256", 0)
                      == LLMP_STORE_KEY_KEEP)
            {
                n += ctl_store_check_stale(r, name, "headers");

            } else if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r,
                                                                 "headers")))
            {
                fprintf(stderr, "providers.%s.headers: not in the config "
                        "(use --force to store the config's headers)\n",
                        name ? name : "?");
                n++;

            } else if (ctl_store_salt() == NULL) {
                fprintf(stderr, "providers.%s.headers: LLMPROXY_SALT_KEY "
                        "must be set to store provider headers (their "
                        "values are secrets)\n", name ? name : "?");
                n++;
            }
        }
    }

    cJSON_Delete(smap);

    return n;
}


/* one entry: INSERT, or UPDATE when its data or a secret changes */

static int
ctl_store_put(PGconn *conn, const ctl_store_kind_t *k, const char *name,
    const cJSON *r, const cJSON *s, int stale)
{
    int          rc, action, haction;
    char        *text, *enc, *henc, id[LLMP_SALT_KEY_ID_LEN + 1];
    cJSON       *data;
    const char  *params[8], *sql;

    action = LLMP_STORE_KEY_CLEAR;
    haction = LLMP_STORE_KEY_CLEAR;
    enc = NULL;
    henc = NULL;
    text = NULL;

    data = cJSON_Duplicate(r, 1);
    if (data == NULL) {
        goto nomem;
    }

    if (strcmp(k->kind, "credentials") == 0) {
        action = ctl_store_key_action(r, s, "api_key_sha256", stale);
        haction = ctl_store_key_action(r, s, "headers_sha256", stale);
        cJSON_DeleteItemFromObjectCaseSensitive(data, "api_key");

        /* an empty object stays: it has no secret and no digest */

        if (cJSON_GetObjectItemCaseSensitive(data, "headers_sha256")) {
            cJSON_DeleteItemFromObjectCaseSensitive(data, "headers");
        }
    }

    if (s && action == LLMP_STORE_KEY_KEEP && haction == LLMP_STORE_KEY_KEEP
        && cJSON_Compare(data, s, 1))
    {
        cJSON_Delete(data);
        return 0;
    }

    /* ctl_store_check_keys() made sure of the secrets and the salt */

    if (action == LLMP_STORE_KEY_SET) {
        enc = llmp_encrypt(ctl_store_salt(), cJSON_GetStringValue(
                               cJSON_GetObjectItemCaseSensitive(r,
                                                                "api_key")));
        if (enc == NULL) {
            cJSON_Delete(data);
            fprintf(stderr, "llmproxyctl: providers.%s.api_key: cannot "
                    "encrypt\n", name);
            return -1;
        }
    }

    if (haction == LLMP_STORE_KEY_SET) {
        henc = llmp_headers_encrypt(ctl_store_salt(),
                                    cJSON_GetObjectItemCaseSensitive(r,
                                                                "headers"));
        if (henc == NULL) {
            free(enc);
            cJSON_Delete(data);
            fprintf(stderr, "llmproxyctl: providers.%s.headers: cannot "
                    "encrypt\n", name);
            return -1;
        }
    }

    text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);

    if (text == NULL) {
        goto nomem;
    }

    /*
     * the salt key's id goes with what it encrypts; a secret kept
     * (not stale) was encrypted with this key too
     */

    if (enc || henc) {
        llmp_salt_key_id(ctl_store_salt(), id);
    }

    params[0] = k->kind;
    params[1] = name;
    params[2] = text;
    params[3] = enc;
    params[4] = henc;
    params[5] = (enc || henc) ? id : NULL;

    if (s == NULL) {
        sql = "INSERT INTO llmproxy_config_entries"
              " (kind, name, data, api_key_enc, headers_enc, salt_key_id)"
              " VALUES ($1, $2, $3::jsonb, $4, $5, $6)";

    } else {
        params[6] = action == LLMP_STORE_KEY_KEEP ? "false" : "true";
        params[7] = haction == LLMP_STORE_KEY_KEEP ? "false" : "true";

        sql = "UPDATE llmproxy_config_entries"
              " SET data = $3::jsonb,"
              " api_key_enc = CASE WHEN $7::boolean THEN $4"
              " ELSE api_key_enc END,"
              " headers_enc = CASE WHEN $8::boolean THEN $5"
              " ELSE headers_enc END,"
              " salt_key_id = coalesce($6, salt_key_id),"
              " updated_at = now()"
              " WHERE kind = $1 AND name = $2"
              " AND (data IS DISTINCT FROM $3::jsonb OR $7::boolean"
              " OR $8::boolean)";
    }

    rc = ctl_store_exec(conn, sql, s ? 8 : 6, params);

    free(text);
    free(enc);
    free(henc);

    return rc;

nomem:

    free(enc);
    free(henc);
    fprintf(stderr, "llmproxyctl: out of memory\n");

    return -1;
}


/*
 * Headers stored in plain text by an older llmproxyctl: encrypted in
 * place, in the sync's transaction.  Returns how many (dry run: would
 * be), or -1 reported.
 */

int
ctl_store_seal_headers(PGconn *conn, int dry_run)
{
    int          i, n, rc;
    char         hex[65], *enc;
    cJSON       *h;
    PGresult    *res;
    const char  *params[3], *name;

    res = PQexecParams(conn, "SELECT name, (data->'headers')::text"
                       " FROM llmproxy_config_entries"
                       " WHERE kind = 'credentials' AND headers_enc IS NULL"
                       " AND jsonb_typeof(data->'headers') = 'object'"
                       " AND data->'headers' <> '{}'::jsonb ORDER BY name",
                       0, NULL, NULL, NULL, NULL, 0);

    if (!ctl_store_ok(conn, res, PGRES_TUPLES_OK)) {
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    rc = n;

    for (i = 0; i < n; i++) {
        name = PQgetvalue(res, i, 0);

        if (ctl_store_salt() == NULL) {
            fprintf(stderr, "providers.%s.headers: stored in plain text by "
                    "an older llmproxyctl: set LLMPROXY_SALT_KEY to encrypt "
                    "them\n", name);
            rc = -1;
            continue;
        }

        if (dry_run) {
            printf("~ credential %s: stored headers to be encrypted\n",
                   name);
            continue;
        }

        h = cJSON_Parse(PQgetvalue(res, i, 1));
        enc = h ? llmp_headers_encrypt(ctl_store_salt(), h) : NULL;

        if (enc == NULL || llmp_headers_sha256(h, hex) != 1) {
            fprintf(stderr, "llmproxyctl: providers.%s.headers: cannot "
                    "encrypt\n", name);
            cJSON_Delete(h);
            free(enc);
            rc = -1;
            break;
        }

        cJSON_Delete(h);

        params[0] = name;
        params[1] = hex;
        params[2] = enc;

        if (ctl_store_exec(conn, "UPDATE llmproxy_config_entries"
                            " SET data = (data - 'headers')"
                            " || jsonb_build_object('headers_sha256',"
                            " $2::text), headers_enc = $3,"
                            " updated_at = now()"
                            " WHERE kind = 'credentials' AND name = $1",
                            3, params)
            != 0)
        {
            free(enc);
            rc = -1;
            break;
        }

        free(enc);
        printf("~ credential %s: stored headers encrypted\n", name);
    }

    PQclear(res);

    return rc;
}


static int
ctl_store_apply_kind(PGconn *conn, const ctl_store_kind_t *k,
    const cJSON *stored, const cJSON *result, const cJSON *stale)
{
    int           rc;
    cJSON        *rmap, *smap;
    const cJSON  *r, *s;
    const char   *params[2];

    rc = -1;
    rmap = ctl_store_map(result, k);
    smap = ctl_store_map(stored, k);

    if (rmap == NULL || smap == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        goto done;
    }

    cJSON_ArrayForEach(s, smap) {
        if (cJSON_GetObjectItemCaseSensitive(rmap, s->string)) {
            continue;
        }

        params[0] = k->kind;
        params[1] = s->string;

        if (ctl_store_exec(conn, "DELETE FROM llmproxy_config_entries"
                            " WHERE kind = $1 AND name = $2", 2, params)
            != 0)
        {
            goto done;
        }
    }

    cJSON_ArrayForEach(r, rmap) {
        s = cJSON_GetObjectItemCaseSensitive(smap, r->string);

        if (ctl_store_put(conn, k, r->string, r, s,
                           s && k == &ctl_store_kinds[0]
                           && ctl_store_is_stale(stale, r->string))
            != 0)
        {
            goto done;
        }
    }

    rc = 0;

done:

    cJSON_Delete(rmap);
    cJSON_Delete(smap);

    return rc;
}


int
ctl_store_apply(PGconn *conn, const cJSON *stored, const cJSON *result,
    const cJSON *stale, long long *version)
{
    PGresult                 *res;
    const char               *params[1];
    const ctl_store_kind_t  *k;

    for (k = ctl_store_kinds; k->kind; k++) {
        if (ctl_store_apply_kind(conn, k, stored, result, stale) != 0) {
            goto failed;
        }
    }

    params[0] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result,
                                         "config_sha256"));
    if (params[0] == NULL) {
        fprintf(stderr, "llmproxyctl: sync: the result is not sealed\n");
        goto failed;
    }

    res = PQexecParams(conn, "UPDATE llmproxy_config_state"
                       " SET config_sha256 = $1, updated_at = now()"
                       " WHERE id = 1 RETURNING version", 1, NULL, params,
                       NULL, NULL, 0);

    if (!ctl_store_ok(conn, res, PGRES_TUPLES_OK) || PQntuples(res) != 1) {
        PQclear(res);
        goto failed;
    }

    *version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    if (ctl_store_exec(conn, "COMMIT", 0, NULL) != 0) {
        return -1;
    }

    return 0;

failed:

    ctl_store_rollback(conn);

    return -1;
}

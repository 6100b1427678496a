/*
 * config.json to the compiled config; see llmp_config.h.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmp_config.h"
#include "llmp_iface.h"
#include "llmp_crypt.h"
#include "llmp_pattern.h"
#include "llmp_prices.h"
#include "llmp_sha256.h"


#define LLMP_MAX_EXTEND  64
#define LLMP_SETTINGS_MAX  1e7
#define LLMP_PATH_LEN    1024


typedef struct {
    const cJSON    *providers;     /* the user's providers object */
    cJSON          *resolved;      /* name -> provider, $extend applied */
    llmp_errors_t  *errs;
    const char     *chain[LLMP_MAX_EXTEND];
} llmp_compile_t;


/* number kinds for llmp_check_number() */
#define LLMP_NUM      0x00
#define LLMP_INT      0x01
#define LLMP_POSITIVE 0x02
#define LLMP_OPTIONAL 0x04      /* may be missing from a compiled config */


static const char *const  llmp_top_fields[] = {
    "providers", "aliases", "fallbacks", "settings", NULL
};

static const char *const  llmp_provider_fields[] = {
    "$extend", "api_base", "interfaces", "access_groups", "models",
    "api_key", "headers", "weight", NULL
};

static const char *const  llmp_model_fields[] = {
    "model", "access_groups", LLMP_PRICE_INPUT, LLMP_PRICE_OUTPUT,
    LLMP_PRICE_CACHE_READ, LLMP_PRICE_CACHE_5M, LLMP_PRICE_CACHE_1H,
    "rpm", "tpm", "weight", "first_byte_timeout_seconds",
    "stream_idle_timeout_seconds", NULL
};

static const char *const  llmp_settings_fields[] = {
    "num_retries", "allowed_fails", "cooldown_seconds",
    "request_timeout_seconds", "first_byte_timeout_seconds",
    "stream_idle_timeout_seconds", "health_check_interval_seconds", NULL
};

/*
 * the timeouts a model may set for itself; 0 is off (the request timeout
 * alone applies), so a reasoning model that thinks for minutes before
 * its first byte is not cut by a default
 */
static const char *const  llmp_model_timeouts[] = {
    "first_byte_timeout_seconds", "stream_idle_timeout_seconds", NULL
};


static const struct {
    const char  *name;
    int          kind;
    double       dflt;
} llmp_settings[] = {
    { "num_retries", LLMP_INT, 1 },
    { "allowed_fails", LLMP_INT, 3 },
    { "cooldown_seconds", LLMP_NUM, 5 },
    { "request_timeout_seconds", LLMP_POSITIVE, 600 },
    { "first_byte_timeout_seconds", LLMP_NUM | LLMP_OPTIONAL, 0 },
    { "stream_idle_timeout_seconds", LLMP_NUM | LLMP_OPTIONAL, 0 },
    { "health_check_interval_seconds", LLMP_NUM | LLMP_OPTIONAL, 0 },
    { NULL, 0, 0 }
};

static const struct {
    const char  *name;
    int          kind;
} llmp_model_numbers[] = {
    { LLMP_PRICE_INPUT, LLMP_NUM },
    { LLMP_PRICE_OUTPUT, LLMP_NUM },
    { LLMP_PRICE_CACHE_READ, LLMP_NUM },
    { LLMP_PRICE_CACHE_5M, LLMP_NUM },
    { LLMP_PRICE_CACHE_1H, LLMP_NUM },
    { "rpm", LLMP_INT },
    { "tpm", LLMP_INT },
    { "weight", LLMP_INT },
    { NULL, 0 }
};


static char *llmp_read_file(const char *path, int *err);
static int llmp_config_load_named(const char *json, const char *name,
    const char *local_json, const char *local_name, llmp_errors_t *errs,
    cJSON **compiled);
static cJSON *llmp_parse(const char *text, const char *name,
    llmp_errors_t *errs);
static void llmp_compile_providers(llmp_compile_t *c, cJSON *providers,
    cJSON *deployments);
static cJSON *llmp_resolve(llmp_compile_t *c, const char *name, int depth);
static cJSON *llmp_compile_provider(llmp_compile_t *c, const char *name,
    const cJSON *p, cJSON *deployments);
static const char *llmp_compile_key(llmp_compile_t *c, const char *name,
    const cJSON *p);
static void llmp_check_headers(llmp_compile_t *c, const char *name,
    const cJSON *h);
static void llmp_compile_models(llmp_compile_t *c, const char *name,
    const cJSON *p, cJSON *deployments);
static cJSON *llmp_compile_deployment(llmp_compile_t *c, const char *prov,
    const cJSON *m, const cJSON *groups, const cJSON *weight);
static int llmp_pattern_prices(cJSON *d, const char *pattern);
static cJSON *llmp_compile_aliases(const cJSON *user, llmp_errors_t *errs);
static cJSON *llmp_compile_fallbacks(const cJSON *user,
    llmp_errors_t *errs);
static cJSON *llmp_compile_settings(const cJSON *user, llmp_errors_t *errs);
static void llmp_check_fields(const cJSON *obj, const char *path,
    const char *const *allowed, llmp_errors_t *errs);
static int llmp_is_string_array(const cJSON *v);
static int llmp_has_control(const char *s);
static void llmp_check_unique(const cJSON *v, const char *path,
    llmp_errors_t *errs);
static int llmp_check_number(const cJSON *v, const char *path, int kind,
    llmp_errors_t *errs);
static int llmp_check_interval(const cJSON *v, const char *path,
    llmp_errors_t *errs);
static int llmp_check_interfaces(const cJSON *v, const char *path,
    llmp_errors_t *errs);
static int llmp_check_api_base(const char *s);
static int llmp_is_model(const cJSON *deployments, const char *name);
static int llmp_is_model_or_match(const cJSON *deployments,
    const char *name);
static size_t llmp_check_refs(const cJSON *compiled, int providers_too,
    llmp_errors_t *errs);
static void llmp_drop_inherited(llmp_compile_t *c, size_t from);
static int llmp_sort_children(cJSON *parent, const char *key);


/* errors */

void
llmp_errors_init(llmp_errors_t *errs)
{
    errs->items = NULL;
    errs->n = 0;
    errs->cap = 0;
    errs->oom = 0;
}


void
llmp_errors_add(llmp_errors_t *errs, const char *fmt, ...)
{
    int       len;
    char     *s, **items;
    size_t    cap;
    va_list   args;

    va_start(args, fmt);
    len = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (len < 0) {
        errs->oom = 1;
        return;
    }

    if (errs->n == errs->cap) {
        cap = errs->cap ? 2 * errs->cap : 8;
        items = realloc(errs->items, cap * sizeof(char *));
        if (items == NULL) {
            errs->oom = 1;
            return;
        }

        errs->items = items;
        errs->cap = cap;
    }

    s = malloc((size_t) len + 1);
    if (s == NULL) {
        errs->oom = 1;
        return;
    }

    va_start(args, fmt);
    vsnprintf(s, (size_t) len + 1, fmt, args);
    va_end(args);

    errs->items[errs->n++] = s;
}


int
llmp_errors_has(const llmp_errors_t *errs, const char *s)
{
    size_t  i;

    for (i = 0; i < errs->n; i++) {
        if (strcmp(errs->items[i], s) == 0) {
            return 1;
        }
    }

    return 0;
}


void
llmp_errors_free(llmp_errors_t *errs)
{
    size_t  i;

    for (i = 0; i < errs->n; i++) {
        free(errs->items[i]);
    }

    free(errs->items);
    llmp_errors_init(errs);
}


/* the number of errors since `before`, counting one lost to memory */

static size_t
llmp_errors_since(const llmp_errors_t *errs, size_t before)
{
    return errs->n - before + (errs->oom ? 1 : 0);
}


int
llmp_json_merge(cJSON *dst, const cJSON *src)
{
    cJSON        *d, *copy;
    const cJSON  *s;

    cJSON_ArrayForEach(s, src) {
        d = cJSON_GetObjectItemCaseSensitive(dst, s->string);

        if (d && cJSON_IsObject(d) && cJSON_IsObject(s)) {
            if (llmp_json_merge(d, s) != 0) {
                return -1;
            }

            continue;
        }

        copy = cJSON_Duplicate(s, 1);
        if (copy == NULL) {
            return -1;
        }

        if (d) {
            if (!cJSON_ReplaceItemInObjectCaseSensitive(dst, s->string,
                                                        copy))
            {
                cJSON_Delete(copy);
                return -1;
            }

        } else if (!cJSON_AddItemToObject(dst, s->string, copy)) {
            cJSON_Delete(copy);
            return -1;
        }
    }

    return 0;
}


/* loading */

static char *
llmp_read_file(const char *path, int *err)
{
    char    *buf, *p;
    size_t   len, cap, n;
    FILE    *f;

    *err = 0;

    f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }

    len = 0;
    cap = 4096;
    buf = malloc(cap);

    while (buf) {
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;

        if (n == 0) {
            break;
        }

        if (cap - len - 1 == 0) {
            cap *= 2;
            p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }

            buf = p;
        }
    }

    if (buf == NULL) {
        *err = ENOMEM;

    } else if (ferror(f)) {
        *err = EIO;
        free(buf);
        buf = NULL;

    } else {
        buf[len] = '\0';
    }

    fclose(f);

    return buf;
}


size_t
llmp_utf8_invalid(const char *s, size_t len)
{
    size_t         i, n, k;
    unsigned int   cp, min;
    unsigned char  c;

    for (i = 0; i < len; i += n) {
        c = (unsigned char) s[i];

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 2; cp = c & 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 3; cp = c & 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 4; cp = c & 0x07; min = 0x10000;

        } else {
            return i;
        }

        if (n > len - i) {
            return i;
        }

        for (k = 1; k < n; k++) {
            if (((unsigned char) s[i + k] & 0xc0) != 0x80) {
                return i;
            }

            cp = (cp << 6) | ((unsigned char) s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return i;
        }
    }

    return len;
}


static cJSON *
llmp_parse(const char *text, const char *name, llmp_errors_t *errs)
{
    int          line;
    cJSON       *root;
    size_t       len, bad;
    const char  *at, *p;

    /*
     * JSON is UTF-8: anything else would reach PostgreSQL (which refuses
     * it with its own error), metrics labels and headers
     */

    len = strlen(text);
    bad = llmp_utf8_invalid(text, len);

    if (bad < len) {
        line = 1;

        for (p = text; p < text + bad; p++) {
            line += (*p == '\n');
        }

        llmp_errors_add(errs, "%s: not valid UTF-8 on line %d", name, line);
        return NULL;
    }

    root = cJSON_Parse(text);

    if (root == NULL) {
        at = cJSON_GetErrorPtr();
        line = 1;

        for (p = text; at && p < at && *p; p++) {
            line += (*p == '\n');
        }

        llmp_errors_add(errs, "%s: invalid JSON near line %d", name, line);
        return NULL;
    }

    if (!cJSON_IsObject(root)) {
        llmp_errors_add(errs, "%s: expected an object", name);
        cJSON_Delete(root);
        return NULL;
    }

    return root;
}


int
llmp_config_load_string(const char *json, const char *local_json,
    llmp_errors_t *errs, cJSON **compiled)
{
    return llmp_config_load_named(json, "config.json", local_json,
                                  "config.local.json", errs, compiled);
}


/* the names are the files' paths: errors name the file actually given */

static int
llmp_config_load_named(const char *json, const char *name,
    const char *local_json, const char *local_name, llmp_errors_t *errs,
    cJSON **compiled)
{
    int     rc;
    cJSON  *base, *local;

    *compiled = NULL;

    base = llmp_parse(json, name, errs);
    local = local_json ? llmp_parse(local_json, local_name, errs) : NULL;

    if (base == NULL || (local_json && local == NULL)) {
        cJSON_Delete(base);
        cJSON_Delete(local);
        return -1;
    }

    if (local && llmp_json_merge(base, local) != 0) {
        llmp_errors_add(errs, "%s: out of memory", local_name);
        cJSON_Delete(local);
        cJSON_Delete(base);
        return -1;
    }

    cJSON_Delete(local);

    rc = llmp_config_compile(base, errs, compiled);
    cJSON_Delete(base);

    return rc;
}


int
llmp_config_load(const char *path, llmp_errors_t *errs, cJSON **compiled)
{
    int      rc, err;
    char    *base, *local, *local_path;
    size_t   n, dir;

    *compiled = NULL;

    base = llmp_read_file(path, &err);
    if (base == NULL) {
        llmp_errors_add(errs, "%s: %s", path, strerror(err));
        return -1;
    }

    n = strlen(path);
    for (dir = n; dir > 0 && path[dir - 1] != '/'; dir--) {
        /* void */
    }

    local_path = malloc(dir + sizeof("config.local.json"));
    if (local_path == NULL) {
        free(base);
        llmp_errors_add(errs, "%s: out of memory", path);
        return -1;
    }

    memcpy(local_path, path, dir);
    memcpy(local_path + dir, "config.local.json",
           sizeof("config.local.json"));

    local = llmp_read_file(local_path, &err);

    if (local == NULL && err != ENOENT) {
        llmp_errors_add(errs, "%s: %s", local_path, strerror(err));
        free(local_path);
        free(base);
        return -1;
    }

    rc = llmp_config_load_named(base, path, local, local_path, errs,
                                compiled);

    free(local_path);
    free(local);
    free(base);

    return rc;
}


/* compiling */

int
llmp_config_compile(const cJSON *config, llmp_errors_t *errs,
    cJSON **compiled)
{
    size_t           nerr;
    cJSON           *out, *providers, *deployments;
    llmp_compile_t   c;

    *compiled = NULL;
    nerr = errs->n;

    if (!cJSON_IsObject(config)) {
        llmp_errors_add(errs, "config: expected an object");
        return -1;
    }

    llmp_check_fields(config, "", llmp_top_fields, errs);

    /*
     * a name given twice, anywhere: the compiler would take the first
     * copy, a reader of the file (or another parser) the last
     */

    llmp_check_unique(config, "", errs);

    out = cJSON_CreateObject();
    c.resolved = cJSON_CreateObject();

    if (out == NULL || c.resolved == NULL
        || cJSON_AddNumberToObject(out, "format", LLMP_CONFIG_FORMAT) == NULL
        || cJSON_AddStringToObject(out, "config_sha256", "") == NULL
        || !cJSON_AddItemToObject(out, "settings", llmp_compile_settings(
               cJSON_GetObjectItemCaseSensitive(config, "settings"), errs))
        || (providers = cJSON_AddArrayToObject(out, "providers")) == NULL
        || (deployments = cJSON_AddArrayToObject(out, "deployments")) == NULL)
    {
        goto nomem;
    }

    c.errs = errs;
    c.providers = cJSON_GetObjectItemCaseSensitive(config, "providers");

    llmp_compile_providers(&c, providers, deployments);

    if (!cJSON_AddItemToObject(out, "aliases", llmp_compile_aliases(
            cJSON_GetObjectItemCaseSensitive(config, "aliases"), errs))
        || !cJSON_AddItemToObject(out, "fallbacks", llmp_compile_fallbacks(
            cJSON_GetObjectItemCaseSensitive(config, "fallbacks"), errs)))
    {
        goto nomem;
    }

    if (llmp_compiled_sort(out) != 0) {
        goto nomem;
    }

    /* a deployment of an invalid provider is reported with its provider */
    llmp_check_refs(out, 0, errs);

    cJSON_Delete(c.resolved);

    if (llmp_errors_since(errs, nerr)) {
        cJSON_Delete(out);
        return -1;
    }

    if (llmp_compiled_seal(out) != 0) {
        llmp_errors_add(errs, "config: out of memory");
        cJSON_Delete(out);
        return -1;
    }

    *compiled = out;

    return 0;

nomem:

    llmp_errors_add(errs, "config: out of memory");
    cJSON_Delete(c.resolved);
    cJSON_Delete(out);

    return -1;
}


static void
llmp_compile_providers(llmp_compile_t *c, cJSON *providers,
    cJSON *deployments)
{
    cJSON          *p, *item;
    size_t          nerr;
    const cJSON    *v;
    llmp_errors_t   scratch, *errs;

    nerr = c->errs->n;

    if (c->providers == NULL) {
        llmp_errors_add(c->errs, "providers: required");
        return;
    }

    if (!cJSON_IsObject(c->providers)) {
        llmp_errors_add(c->errs, "providers: expected object");
        return;
    }

    cJSON_ArrayForEach(v, c->providers) {
        if (v->string[0] == '\0' || strchr(v->string, '/')) {
            llmp_errors_add(c->errs, "providers.%s: a provider name may not "
                            "be empty or contain \"/\"", v->string);
            continue;
        }

        /* the gateway's validator refuses them in names (headers, logs) */
        if (llmp_has_control(v->string)) {
            llmp_errors_add(c->errs, "providers.%s: control characters are "
                            "not allowed in a name", v->string);
            continue;
        }

        if (!cJSON_IsObject(v)) {
            llmp_errors_add(c->errs, "providers.%s: expected object",
                            v->string);
            continue;
        }

        p = llmp_resolve(c, v->string, 0);

        if (p == NULL) {
            /*
             * $extend failed and is reported: the provider's own models
             * still count as known names, so that aliases and fallbacks
             * naming them do not add misleading errors
             */

            errs = c->errs;
            llmp_errors_init(&scratch);
            c->errs = &scratch;
            llmp_compile_models(c, v->string, v, deployments);
            llmp_errors_free(&scratch);
            c->errs = errs;
            continue;
        }

        item = llmp_compile_provider(c, v->string, p, deployments);

        if (item && !cJSON_AddItemToArray(providers, item)) {
            cJSON_Delete(item);
            llmp_errors_add(c->errs, "providers.%s: out of memory",
                            v->string);
        }
    }

    llmp_drop_inherited(c, nerr);
}


/* the provider an error is about, or NULL ("providers.NAME.x: ...") */

static const cJSON *
llmp_error_provider(llmp_compile_t *c, const char *err)
{
    size_t        n, best;
    const char   *p;
    const cJSON  *v, *found;

    if (strncmp(err, "providers.", 10) != 0) {
        return NULL;
    }

    p = err + 10;
    found = NULL;
    best = 0;

    cJSON_ArrayForEach(v, c->providers) {
        n = strlen(v->string);

        if (n > best && strncmp(p, v->string, n) == 0
            && (p[n] == '.' || p[n] == ':'))
        {
            found = v;
            best = n;
        }
    }

    return found;
}


/*
 * An error of a provider that its $extend base has too ("providers.base.
 * x: y" for "providers.name.x: y") is reported once, at the base.
 */

static void
llmp_drop_inherited(llmp_compile_t *c, size_t from)
{
    int           depth;
    char          path[LLMP_PATH_LEN], *drop;
    size_t        i, j;
    const char   *rest;
    const cJSON  *p, *ext;

    if (c->errs->n <= from) {
        return;
    }

    drop = calloc(c->errs->n - from, 1);
    if (drop == NULL) {
        return;             /* the errors are only repeated */
    }

    for (i = from; i < c->errs->n; i++) {
        p = llmp_error_provider(c, c->errs->items[i]);

        if (p == NULL) {
            continue;
        }

        rest = c->errs->items[i] + 10 + strlen(p->string);
        ext = cJSON_GetObjectItemCaseSensitive(p, "$extend");

        for (depth = 0;
             cJSON_IsString(ext) && depth < LLMP_MAX_EXTEND
             && strcmp(ext->valuestring, p->string) != 0;
             depth++)
        {
            snprintf(path, sizeof(path), "providers.%s%s", ext->valuestring,
                     rest);

            if (llmp_errors_has(c->errs, path)) {
                drop[i - from] = 1;
                break;
            }

            ext = cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(c->providers,
                                                       ext->valuestring),
                      "$extend");
        }
    }

    for (i = from, j = from; i < c->errs->n; i++) {
        if (drop[i - from]) {
            free(c->errs->items[i]);

        } else {
            c->errs->items[j++] = c->errs->items[i];
        }
    }

    c->errs->n = j;
    free(drop);
}


/* the provider with its "$extend" chain applied (owned by c->resolved) */

static cJSON *
llmp_resolve(llmp_compile_t *c, const char *name, int depth)
{
    int           i, n;
    char          cycle[LLMP_PATH_LEN];
    cJSON        *done, *merged, *base;
    const cJSON  *p, *ext;

    done = cJSON_GetObjectItemCaseSensitive(c->resolved, name);
    if (done) {
        return cJSON_IsNull(done) ? NULL : done;
    }

    for (i = 0; i < depth; i++) {
        if (strcmp(c->chain[i], name) != 0) {
            continue;
        }

        /* reported once, by the first provider of the cycle */

        for (n = 0; i < depth && n < (int) sizeof(cycle); i++) {
            n += snprintf(cycle + n, sizeof(cycle) - n, "%s -> ",
                          c->chain[i]);
        }

        if (n < (int) sizeof(cycle)) {
            snprintf(cycle + n, sizeof(cycle) - n, "%s", name);
        }

        llmp_errors_add(c->errs, "providers.%s.$extend: cycle %s", name,
                        cycle);
        return NULL;
    }

    p = cJSON_GetObjectItemCaseSensitive(c->providers, name);
    ext = cJSON_GetObjectItemCaseSensitive(p, "$extend");
    merged = NULL;

    if (!cJSON_IsObject(p)) {
        /*
         * a name given twice, first to a non-object: the lookup finds
         * that one, and both problems are reported already
         */

    } else if (depth >= LLMP_MAX_EXTEND) {
        llmp_errors_add(c->errs, "providers.%s.$extend: chain too long",
                        name);

    } else if (ext == NULL) {
        merged = cJSON_Duplicate(p, 1);
        if (merged == NULL) {
            llmp_errors_add(c->errs, "providers.%s: out of memory", name);
        }

    } else if (!cJSON_IsString(ext)) {
        llmp_errors_add(c->errs, "providers.%s.$extend: expected string",
                        name);

    } else if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(
                   c->providers, ext->valuestring))
               || strchr(ext->valuestring, '/'))
    {
        llmp_errors_add(c->errs, "providers.%s.$extend: unknown provider "
                        "\"%s\"", name, ext->valuestring);

    } else {
        c->chain[depth] = name;
        base = llmp_resolve(c, ext->valuestring, depth + 1);

        if (base) {
            merged = cJSON_Duplicate(base, 1);

            if (merged == NULL || llmp_json_merge(merged, p) != 0) {
                llmp_errors_add(c->errs, "providers.%s: out of memory",
                                name);
                cJSON_Delete(merged);
                merged = NULL;

            } else {
                cJSON_DeleteItemFromObjectCaseSensitive(merged, "$extend");
            }
        }
    }

    if (merged == NULL) {
        cJSON_AddItemToObject(c->resolved, name, cJSON_CreateNull());
        return NULL;
    }

    if (!cJSON_AddItemToObject(c->resolved, name, merged)) {
        cJSON_Delete(merged);
        llmp_errors_add(c->errs, "providers.%s: out of memory", name);
        return NULL;
    }

    return merged;
}


/* the provider's own fields: api_base, interfaces, access_groups, weight */

static void
llmp_check_provider(llmp_compile_t *c, const char *name, const cJSON *p)
{
    char          path[LLMP_PATH_LEN];
    const cJSON  *v, *ifaces;

    snprintf(path, sizeof(path), "providers.%s", name);
    llmp_check_fields(p, path, llmp_provider_fields, c->errs);

    v = cJSON_GetObjectItemCaseSensitive(p, "api_base");

    if (v == NULL) {
        llmp_errors_add(c->errs, "%s.api_base: required", path);

    } else if (!cJSON_IsString(v) || !llmp_check_api_base(v->valuestring)) {
        llmp_errors_add(c->errs, "%s.api_base: expected an http:// or "
                        "https:// URL", path);
    }

    ifaces = cJSON_GetObjectItemCaseSensitive(p, "interfaces");
    snprintf(path, sizeof(path), "providers.%s.interfaces", name);

    if (ifaces == NULL) {
        llmp_errors_add(c->errs, "%s: required", path);

    } else {
        llmp_check_interfaces(ifaces, path, c->errs);
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "access_groups");

    if (v && !llmp_is_string_array(v)) {
        llmp_errors_add(c->errs, "providers.%s.access_groups: expected "
                        "array of strings", name);
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "weight");

    if (v) {
        snprintf(path, sizeof(path), "providers.%s.weight", name);
        llmp_check_number(v, path, LLMP_INT, c->errs);
    }
}


/*
 * The compiled provider's secrets: the key and its digest, the headers
 * sorted, and their digest (header values are secrets too: compared by
 * their digest).  -1: out of memory.
 */

static int
llmp_provider_secrets(cJSON *out, const char *key, const cJSON *headers)
{
    char           hex[65];
    cJSON         *copy;
    unsigned char  digest[32];

    if (key) {
        llmp_sha256(key, strlen(key), digest);
        llmp_sha256_hex(digest, hex);

        if (cJSON_AddStringToObject(out, "api_key", key) == NULL
            || cJSON_AddStringToObject(out, "api_key_sha256", hex) == NULL)
        {
            return -1;
        }
    }

    copy = headers ? cJSON_Duplicate(headers, 1) : cJSON_CreateObject();

    if (copy == NULL || llmp_sort_children(copy, NULL) != 0
        || !cJSON_AddItemToObject(out, "headers", copy))
    {
        cJSON_Delete(copy);
        return -1;
    }

    switch (llmp_headers_sha256(copy, hex)) {
    case 0:
        return 0;

    case 1:
        if (cJSON_AddStringToObject(out, "headers_sha256", hex) != NULL) {
            return 0;
        }

        /* fall through */

    default:
        return -1;
    }
}


static cJSON *
llmp_compile_provider(llmp_compile_t *c, const char *name, const cJSON *p,
    cJSON *deployments)
{
    char          *base;
    size_t         nerr, n;
    cJSON         *out, *copy;
    const cJSON   *v, *ifaces, *headers;
    const char    *key;

    nerr = c->errs->n;

    llmp_check_provider(c, name, p);

    headers = cJSON_GetObjectItemCaseSensitive(p, "headers");
    llmp_check_headers(c, name, headers);

    key = llmp_compile_key(c, name, p);

    llmp_compile_models(c, name, p, deployments);

    if (c->errs->n > nerr) {
        return NULL;
    }

    /* valid: the compiled provider */

    v = cJSON_GetObjectItemCaseSensitive(p, "api_base");
    ifaces = cJSON_GetObjectItemCaseSensitive(p, "interfaces");

    base = strdup(v->valuestring);
    out = cJSON_CreateObject();

    if (base == NULL || out == NULL) {
        goto nomem;
    }

    for (n = strlen(base); n > 0 && base[n - 1] == '/'; n--) {
        base[n - 1] = '\0';
    }

    if (cJSON_AddStringToObject(out, "name", name) == NULL
        || cJSON_AddStringToObject(out, "api_base", base) == NULL
        || (copy = cJSON_Duplicate(ifaces, 1)) == NULL)
    {
        goto nomem;
    }

    if (!cJSON_AddItemToObject(out, "interfaces", copy)) {
        cJSON_Delete(copy);
        goto nomem;
    }

    if (llmp_provider_secrets(out, key, headers) != 0) {
        goto nomem;
    }

    free(base);

    return out;

nomem:

    free(base);
    cJSON_Delete(out);
    llmp_errors_add(c->errs, "providers.%s: out of memory", name);

    return NULL;
}


/* the provider's secret: literal, or "env:NAME"; NULL when none */

static const char *
llmp_compile_key(llmp_compile_t *c, const char *name, const cJSON *p)
{
    const char   *key, *s;
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(p, "api_key");

    if (v == NULL || cJSON_IsNull(v)) {
        return NULL;
    }

    if (!cJSON_IsString(v)) {
        llmp_errors_add(c->errs, "providers.%s.api_key: expected string",
                        name);
        return NULL;
    }

    key = v->valuestring;

    if (strncmp(key, "env:", 4) == 0) {
        if (key[4] == '\0') {
            llmp_errors_add(c->errs, "providers.%s.api_key: \"env:\" needs "
                            "a variable name", name);
            return NULL;
        }

        key = getenv(v->valuestring + 4);

        if (key == NULL || key[0] == '\0') {
            llmp_errors_add(c->errs, "providers.%s.api_key: environment "
                            "variable %s is not set", name,
                            v->valuestring + 4);
            return NULL;
        }
    }

    if (key[0] == '\0') {
        return NULL;
    }

    for (s = key; *s; s++) {
        /* reported without echoing the secret */
        if ((unsigned char) *s < ' ' || *s == 0x7f) {
            llmp_errors_add(c->errs, "providers.%s.api_key: contains "
                            "control characters", name);
            return NULL;
        }
    }

    return key;
}


static void
llmp_check_headers(llmp_compile_t *c, const char *name, const cJSON *h)
{
    char          path[LLMP_PATH_LEN];
    const char   *s;
    const cJSON  *v;

    if (h == NULL) {
        return;
    }

    if (!cJSON_IsObject(h)) {
        llmp_errors_add(c->errs, "providers.%s.headers: expected object",
                        name);
        return;
    }

    snprintf(path, sizeof(path), "providers.%s.headers", name);

    cJSON_ArrayForEach(v, h) {
        if (!cJSON_IsString(v)) {
            llmp_errors_add(c->errs, "providers.%s.headers.%s: expected "
                            "string", name, v->string);
            continue;
        }

        /* the value is a secret: never in a message */

        s = llmp_header_problem(v->string, v->valuestring);

        if (s) {
            llmp_errors_add(c->errs, "providers.%s.headers.%s: %s", name,
                            v->string, s);
        }
    }
}


static void
llmp_compile_models(llmp_compile_t *c, const char *name, const cJSON *p,
    cJSON *deployments)
{
    char          path[LLMP_PATH_LEN];
    cJSON        *d;
    const cJSON  *models, *m, *groups, *weight;

    models = cJSON_GetObjectItemCaseSensitive(p, "models");

    if (models == NULL) {
        return;
    }

    if (!cJSON_IsObject(models)) {
        llmp_errors_add(c->errs, "providers.%s.models: expected object",
                        name);
        return;
    }

    snprintf(path, sizeof(path), "providers.%s.models", name);

    groups = cJSON_GetObjectItemCaseSensitive(p, "access_groups");
    groups = llmp_is_string_array(groups) ? groups : NULL;

    weight = cJSON_GetObjectItemCaseSensitive(p, "weight");
    weight = cJSON_IsNumber(weight) ? weight : NULL;

    cJSON_ArrayForEach(m, models) {
        d = llmp_compile_deployment(c, name, m, groups, weight);

        if (d && !cJSON_AddItemToArray(deployments, d)) {
            cJSON_Delete(d);
            llmp_errors_add(c->errs, "providers.%s: out of memory", name);
        }
    }
}


/*
 * The deployment's numbers: those the model sets, checked, or else the
 * provider's weight and the defaults (weight 1, the rest 0); prices are
 * left to llmp_prices_apply.  -1: out of memory.
 */

static int
llmp_deployment_numbers(llmp_compile_t *c, cJSON *d, const cJSON *m,
    const char *path, const cJSON *weight)
{
    int           i, bad;
    char          npath[LLMP_PATH_LEN + 64];
    const cJSON  *v;

    for (i = 0; llmp_model_numbers[i].name; i++) {
        v = cJSON_GetObjectItemCaseSensitive(m, llmp_model_numbers[i].name);
        bad = 0;

        if (v) {
            snprintf(npath, sizeof(npath), "%s.%s", path,
                     llmp_model_numbers[i].name);
            bad = llmp_check_number(v, npath, llmp_model_numbers[i].kind,
                                    c->errs);
        }

        /* prices are added below, and only a priced model has them */

        if (llmp_prices_is_field(llmp_model_numbers[i].name)) {
            continue;
        }

        if (v == NULL || bad) {
            v = (strcmp(llmp_model_numbers[i].name, "weight") == 0)
                ? weight : NULL;
        }

        if (cJSON_AddNumberToObject(d, llmp_model_numbers[i].name,
                v ? v->valuedouble
                  : strcmp(llmp_model_numbers[i].name, "weight") == 0
                    ? 1 : 0)
            == NULL)
        {
            return -1;
        }
    }

    return 0;
}


/* a model's own timeouts, only where it sets them; -1: out of memory */

static int
llmp_deployment_timeouts(llmp_compile_t *c, cJSON *d, const cJSON *m,
    const char *path)
{
    int           i;
    char          npath[LLMP_PATH_LEN + 64];
    const cJSON  *v;

    for (i = 0; llmp_model_timeouts[i]; i++) {
        v = cJSON_GetObjectItemCaseSensitive(m, llmp_model_timeouts[i]);

        if (v == NULL) {
            continue;
        }

        snprintf(npath, sizeof(npath), "%s.%s", path, llmp_model_timeouts[i]);

        if (llmp_check_number(v, npath, LLMP_NUM, c->errs) != 0) {
            continue;
        }

        if (cJSON_AddNumberToObject(d, llmp_model_timeouts[i], v->valuedouble)
            == NULL)
        {
            return -1;
        }
    }

    return 0;
}


/* the model's upstream name, if it gives a valid one; NULL: its own */

static const cJSON *
llmp_deployment_upstream(llmp_compile_t *c, const cJSON *m, const char *path)
{
    const cJSON  *up;

    up = cJSON_GetObjectItemCaseSensitive(m, "model");

    if (up && (!cJSON_IsString(up) || up->valuestring[0] == '\0')) {
        llmp_errors_add(c->errs, "%s.model: expected non-empty string",
                        path);
        return NULL;
    }

    if (up && llmp_has_control(up->valuestring)) {
        llmp_errors_add(c->errs, "%s.model: control characters are not "
                        "allowed", path);
        return NULL;
    }

    /* a pattern passes the requested name through: it has no other */

    if (up && llmp_pattern_is(m->string, strlen(m->string))) {
        llmp_errors_add(c->errs, "%s.model: a pattern passes the requested "
                        "name through and cannot rename it", path);
        return NULL;
    }

    return up;
}


/*
 * one model of a provider: its errors are reported, and its deployment is
 * built with defaults for bad values, so that its name stays known
 */

static cJSON *
llmp_compile_deployment(llmp_compile_t *c, const char *prov, const cJSON *m,
    const cJSON *groups, const cJSON *weight)
{
    char          path[LLMP_PATH_LEN], npath[LLMP_PATH_LEN + 64];
    cJSON        *d, *copy;
    const cJSON  *up, *mgroups;

    snprintf(path, sizeof(path), "providers.%s.models.%s", prov, m->string);

    if (m->string[0] == '\0') {
        llmp_errors_add(c->errs, "%s: empty model name", path);
        return NULL;
    }

    if (llmp_has_control(m->string)) {
        llmp_errors_add(c->errs, "%s: control characters are not allowed "
                        "in a name", path);
        return NULL;
    }

    if (!cJSON_IsObject(m)) {
        llmp_errors_add(c->errs, "%s: expected object", path);
        return NULL;
    }

    llmp_check_fields(m, path, llmp_model_fields, c->errs);

    up = llmp_deployment_upstream(c, m, path);

    mgroups = cJSON_GetObjectItemCaseSensitive(m, "access_groups");

    if (mgroups && !llmp_is_string_array(mgroups)) {
        llmp_errors_add(c->errs, "%s.access_groups: expected array of "
                        "strings", path);
        mgroups = NULL;
    }

    d = cJSON_CreateObject();
    if (d == NULL) {
        goto nomem;
    }

    snprintf(npath, sizeof(npath), "%s/%s", prov, m->string);

    copy = mgroups ? cJSON_Duplicate(mgroups, 1)
                   : groups ? cJSON_Duplicate(groups, 1)
                   : cJSON_CreateArray();

    if (cJSON_AddStringToObject(d, "id", npath) == NULL
        || cJSON_AddStringToObject(d, "provider", prov) == NULL
        || cJSON_AddStringToObject(d, "model", m->string) == NULL
        || cJSON_AddStringToObject(d, "upstream_model",
                                   up ? up->valuestring : m->string) == NULL
        || copy == NULL)
    {
        cJSON_Delete(copy);
        goto nomem;
    }

    if (!cJSON_AddItemToObject(d, "access_groups", copy)) {
        cJSON_Delete(copy);
        goto nomem;
    }

    if (llmp_deployment_numbers(c, d, m, path, weight) != 0
        || llmp_prices_apply(d, m) != 0
        || llmp_pattern_prices(d, m->string) != 0
        || llmp_deployment_timeouts(c, d, m, path) != 0)
    {
        goto nomem;
    }

    return d;

nomem:

    cJSON_Delete(d);
    llmp_errors_add(c->errs, "%s: out of memory", path);

    return NULL;
}


/*
 * A pattern without prices of its own: the shipped list's prices of the
 * models it passes, as "model_prices" {name: prices}, so the gateway
 * prices each passed name as if the config named it.
 */

static int
llmp_pattern_prices(cJSON *d, const char *pattern)
{
    cJSON        *all, *one, *tmp, *empty;
    const cJSON  *m, *v;

    if (!llmp_pattern_is(pattern, strlen(pattern))
        || cJSON_GetObjectItemCaseSensitive(d, LLMP_PRICE_INPUT))
    {
        return 0;
    }

    all = NULL;
    empty = cJSON_CreateObject();

    if (empty == NULL) {
        return -1;
    }

    cJSON_ArrayForEach(m, llmp_prices_models()) {
        if (!llmp_pattern_match(pattern, strlen(pattern), m->string,
                                strlen(m->string)))
        {
            continue;
        }

        tmp = cJSON_CreateObject();

        if (tmp == NULL
            || cJSON_AddStringToObject(tmp, "model", m->string) == NULL
            || cJSON_AddStringToObject(tmp, "upstream_model", m->string)
               == NULL
            || llmp_prices_apply(tmp, empty) != 0
            || (all == NULL
                && (all = cJSON_AddObjectToObject(d, "model_prices"))
                   == NULL)
            || (one = cJSON_AddObjectToObject(all, m->string)) == NULL)
        {
            cJSON_Delete(tmp);
            cJSON_Delete(empty);
            return -1;
        }

        cJSON_ArrayForEach(v, tmp) {
            if (cJSON_IsNumber(v)
                && cJSON_AddNumberToObject(one, v->string, v->valuedouble)
                   == NULL)
            {
                cJSON_Delete(tmp);
                cJSON_Delete(empty);
                return -1;
            }
        }

        cJSON_Delete(tmp);
    }

    cJSON_Delete(empty);

    return 0;
}


static cJSON *
llmp_compile_aliases(const cJSON *user, llmp_errors_t *errs)
{
    cJSON        *out;
    const cJSON  *v;

    out = cJSON_CreateObject();

    if (out == NULL || user == NULL) {
        return out;
    }

    if (!cJSON_IsObject(user)) {
        llmp_errors_add(errs, "aliases: expected object");
        return out;
    }

    cJSON_ArrayForEach(v, user) {
        if (v->string[0] == '\0') {
            llmp_errors_add(errs, "aliases.: empty alias name");

        } else if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
            llmp_errors_add(errs, "aliases.%s: expected non-empty string",
                            v->string);

        } else if (cJSON_AddStringToObject(out, v->string, v->valuestring)
                   == NULL)
        {
            llmp_errors_add(errs, "aliases.%s: out of memory", v->string);
        }
    }

    return out;
}


static cJSON *
llmp_compile_fallbacks(const cJSON *user, llmp_errors_t *errs)
{
    cJSON        *out, *copy;
    const cJSON  *v;

    out = cJSON_CreateObject();

    if (out == NULL || user == NULL) {
        return out;
    }

    if (!cJSON_IsObject(user)) {
        llmp_errors_add(errs, "fallbacks: expected object");
        return out;
    }

    cJSON_ArrayForEach(v, user) {
        if (!llmp_is_string_array(v)) {
            llmp_errors_add(errs, "fallbacks.%s: expected array of strings",
                            v->string);
            continue;
        }

        copy = cJSON_Duplicate(v, 1);

        if (copy == NULL || !cJSON_AddItemToObject(out, v->string, copy)) {
            cJSON_Delete(copy);
            llmp_errors_add(errs, "fallbacks.%s: out of memory", v->string);
        }
    }

    return out;
}


static cJSON *
llmp_compile_settings(const cJSON *user, llmp_errors_t *errs)
{
    int           i;
    char          path[LLMP_PATH_LEN];
    cJSON        *out;
    const cJSON  *v;

    out = cJSON_CreateObject();
    if (out == NULL) {
        return NULL;
    }

    if (user && !cJSON_IsObject(user)) {
        llmp_errors_add(errs, "settings: expected object");
        user = NULL;
    }

    if (user) {
        llmp_check_fields(user, "settings", llmp_settings_fields, errs);
    }

    for (i = 0; llmp_settings[i].name; i++) {
        v = cJSON_GetObjectItemCaseSensitive(user, llmp_settings[i].name);

        if (v) {
            snprintf(path, sizeof(path), "settings.%s",
                     llmp_settings[i].name);

            if (llmp_check_number(v, path, llmp_settings[i].kind, errs)
                != 0
                || llmp_check_interval(v, path, errs) != 0)
            {
                v = NULL;
            }
        }

        /*
         * an optional setting not given is left out of the compiled
         * config, which a gateway of an earlier version can then load
         */

        if (v == NULL && (llmp_settings[i].kind & LLMP_OPTIONAL)) {
            continue;
        }

        if (cJSON_AddNumberToObject(out, llmp_settings[i].name,
                                    v ? v->valuedouble
                                      : llmp_settings[i].dflt)
            == NULL)
        {
            cJSON_Delete(out);
            return NULL;
        }
    }

    return out;
}


/* compiled documents */

static int
llmp_is_model(const cJSON *deployments, const char *name)
{
    const cJSON  *d, *model, *id;

    cJSON_ArrayForEach(d, deployments) {
        model = cJSON_GetObjectItemCaseSensitive(d, "model");
        id = cJSON_GetObjectItemCaseSensitive(d, "id");

        if ((cJSON_IsString(model) && strcmp(model->valuestring, name) == 0)
            || (cJSON_IsString(id) && strcmp(id->valuestring, name) == 0))
        {
            return 1;
        }
    }

    return 0;
}


/* a model, a deployment id, or a name a pattern passes through */

static int
llmp_is_model_or_match(const cJSON *deployments, const char *name)
{
    const cJSON  *d, *model, *id;

    if (llmp_is_model(deployments, name)) {
        return 1;
    }

    if (!llmp_pattern_name_ok(name, strlen(name))) {
        return 0;
    }

    cJSON_ArrayForEach(d, deployments) {
        model = cJSON_GetObjectItemCaseSensitive(d, "model");
        id = cJSON_GetObjectItemCaseSensitive(d, "id");

        if ((cJSON_IsString(model)
             && llmp_pattern_is(model->valuestring,
                                strlen(model->valuestring))
             && llmp_pattern_match(model->valuestring,
                                   strlen(model->valuestring), name,
                                   strlen(name)))
            || (cJSON_IsString(id)
                && llmp_pattern_is(id->valuestring, strlen(id->valuestring))
                && llmp_pattern_match(id->valuestring,
                                      strlen(id->valuestring), name,
                                      strlen(name))))
        {
            return 1;
        }
    }

    return 0;
}


static int
llmp_has_named(const cJSON *list, const char *name)
{
    const cJSON  *item, *v;

    cJSON_ArrayForEach(item, list) {
        v = cJSON_GetObjectItemCaseSensitive(item, "name");

        if (cJSON_IsString(v) && strcmp(v->valuestring, name) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a fallback key or entry: a model, a deployment id or an alias */

static int
llmp_is_target(const cJSON *deployments, const cJSON *aliases,
    const char *name)
{
    return llmp_is_model_or_match(deployments, name)
           || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(aliases, name));
}


size_t
llmp_compiled_check(const cJSON *compiled, llmp_errors_t *errs)
{
    return llmp_check_refs(compiled, 1, errs);
}


static size_t
llmp_check_refs(const cJSON *compiled, int providers_too, llmp_errors_t *errs)
{
    size_t        nerr;
    const cJSON  *providers, *deployments, *aliases, *fallbacks;
    const cJSON  *d, *v, *id, *prov, *list;

    nerr = errs->n;

    providers = cJSON_GetObjectItemCaseSensitive(compiled, "providers");
    deployments = cJSON_GetObjectItemCaseSensitive(compiled, "deployments");
    aliases = cJSON_GetObjectItemCaseSensitive(compiled, "aliases");
    fallbacks = cJSON_GetObjectItemCaseSensitive(compiled, "fallbacks");

    /*
     * the members of anything but an object have no names to check: a
     * document posted to the gateway may have them (the validator says
     * "expected object")
     */

    if (!cJSON_IsObject(aliases)) {
        aliases = NULL;
    }

    if (!cJSON_IsObject(fallbacks)) {
        fallbacks = NULL;
    }

    list = providers_too ? deployments : NULL;

    cJSON_ArrayForEach(d, list) {
        id = cJSON_GetObjectItemCaseSensitive(d, "id");
        prov = cJSON_GetObjectItemCaseSensitive(d, "provider");

        if (cJSON_IsString(id) && cJSON_IsString(prov)
            && !llmp_has_named(providers, prov->valuestring))
        {
            llmp_errors_add(errs, "deployments.%s: unknown provider \"%s\"",
                            id->valuestring, prov->valuestring);
        }
    }

    cJSON_ArrayForEach(v, aliases) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        if (llmp_is_model(deployments, v->string)) {
            llmp_errors_add(errs, "aliases.%s: already the name of a model",
                            v->string);
        }

        if (llmp_pattern_is(v->valuestring, strlen(v->valuestring))) {
            llmp_errors_add(errs, "aliases.%s: \"%s\" is a pattern, not a "
                            "model", v->string, v->valuestring);

        } else if (!llmp_is_model_or_match(deployments, v->valuestring)) {
            llmp_errors_add(errs, "aliases.%s: unknown model \"%s\"",
                            v->string, v->valuestring);
        }
    }

    cJSON_ArrayForEach(v, fallbacks) {
        if (!llmp_is_target(deployments, aliases, v->string)) {
            llmp_errors_add(errs, "fallbacks.%s: unknown model \"%s\"",
                            v->string, v->string);
        }

        cJSON_ArrayForEach(d, v) {
            if (!cJSON_IsString(d)) {
                continue;
            }

            if (strcmp(d->valuestring, v->string) == 0) {
                llmp_errors_add(errs, "fallbacks.%s: falls back to itself",
                                v->string);

            } else if (llmp_pattern_is(d->valuestring,
                                       strlen(d->valuestring)))
            {
                /* a fallback is one model; a pattern is many */
                llmp_errors_add(errs, "fallbacks.%s: \"%s\" is a pattern, "
                                "not a model", v->string, d->valuestring);

            } else if (!llmp_is_target(deployments, aliases, d->valuestring))
            {
                llmp_errors_add(errs, "fallbacks.%s: unknown model \"%s\"",
                                v->string, d->valuestring);
            }
        }
    }

    return errs->n - nerr;
}


/*
 * Strings the gateway writes into request lines, headers and logs: a
 * control character there could start a header of its own
 */

static int
llmp_name_cmp(const void *one, const void *two)
{
    return strcmp(*(const char *const *) one, *(const char *const *) two);
}


/*
 * No object anywhere in a compiled document repeats a member's name.  The
 * checks here look up the first of a name, but the gateway walks some
 * objects whole ("settings", "model_prices", "headers") and so takes the
 * last, which nothing checked; PostgreSQL's jsonb keeps the last too.
 * Sorted, so that a large posted object costs n log n.
 */

static void
llmp_check_unique(const cJSON *v, const char *path, llmp_errors_t *errs)
{
    int            i;
    char           sub[LLMP_PATH_LEN];
    size_t         n, k;
    const char   **names;
    const cJSON   *item;

    if (cJSON_IsArray(v)) {
        i = 0;

        cJSON_ArrayForEach(item, v) {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
            llmp_check_unique(item, sub, errs);
        }

        return;
    }

    if (!cJSON_IsObject(v)) {
        return;
    }

    n = 0;

    cJSON_ArrayForEach(item, v) {
        n++;
    }

    if (n > 1) {
        names = malloc(n * sizeof(const char *));

        if (names == NULL) {
            llmp_errors_add(errs, "%s: out of memory",
                            path[0] ? path : "config");
            return;
        }

        k = 0;

        cJSON_ArrayForEach(item, v) {
            names[k++] = item->string;
        }

        qsort(names, n, sizeof(const char *), llmp_name_cmp);

        for (k = 1; k < n; k++) {
            if (strcmp(names[k - 1], names[k]) == 0) {
                llmp_errors_add(errs, "%s%s%s: duplicate name", path,
                                path[0] ? "." : "", names[k]);

                while (k + 1 < n && strcmp(names[k], names[k + 1]) == 0) {
                    k++;
                }
            }
        }

        free(names);
    }

    cJSON_ArrayForEach(item, v) {
        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
                 item->string);
        llmp_check_unique(item, sub, errs);
    }
}


static int
llmp_has_control(const char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }

    return 0;
}


static void
llmp_check_plain(const cJSON *obj, const char *path,
    const char *const *keys, llmp_errors_t *errs)
{
    const cJSON  *v;

    for ( /* void */ ; *keys; keys++) {
        v = cJSON_GetObjectItemCaseSensitive(obj, *keys);

        if (cJSON_IsString(v) && llmp_has_control(v->valuestring)) {
            llmp_errors_add(errs, "%s%s%s: control characters are not "
                            "allowed", path, path[0] ? "." : "", *keys);
        }
    }
}


static const char *
llmp_string(const cJSON *obj, const char *key)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return (cJSON_IsString(v) && v->valuestring[0]) ? v->valuestring : NULL;
}


static int
llmp_is_hex64(const char *s)
{
    size_t  i;

    for (i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return s[64] == '\0';
}


/* a compiled provider's api_key and its digest */

static void
llmp_validate_provider_key(const cJSON *p, const char *name,
    llmp_errors_t *errs)
{
    const char   *s;
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(p, "api_key");

    if (v && (!cJSON_IsString(v) || v->valuestring[0] == '\0')) {
        llmp_errors_add(errs, "providers.%s.api_key: expected non-empty "
                        "string", name);
    }

    s = llmp_string(p, "api_key_sha256");

    if ((cJSON_GetObjectItemCaseSensitive(p, "api_key_sha256")
         && (s == NULL || !llmp_is_hex64(s)))
        || (v && s == NULL))
    {
        llmp_errors_add(errs, "providers.%s.api_key_sha256: expected 64 hex "
                        "digits", name);
    }
}


/*
 * A compiled provider's headers and their digest.  Like api_key, the
 * headers are left out where they are stored or shown: then their digest
 * stands for them.
 */

static void
llmp_validate_provider_headers(const cJSON *p, const char *name,
    llmp_errors_t *errs)
{
    const char   *s;
    const cJSON  *v, *h;

    h = cJSON_GetObjectItemCaseSensitive(p, "headers");
    s = llmp_string(p, "headers_sha256");

    if ((cJSON_GetObjectItemCaseSensitive(p, "headers_sha256")
         && (s == NULL || !llmp_is_hex64(s)))
        || (cJSON_IsObject(h) && h->child && s == NULL))
    {
        llmp_errors_add(errs, "providers.%s.headers_sha256: expected 64 hex "
                        "digits", name);
    }

    if (h == NULL && s) {
        return;
    }

    if (!cJSON_IsObject(h)) {
        llmp_errors_add(errs, "providers.%s.headers: expected object", name);
        return;
    }

    cJSON_ArrayForEach(v, h) {
        if (!cJSON_IsString(v)) {
            llmp_errors_add(errs, "providers.%s.headers.%s: expected "
                            "string", name, v->string);
            continue;
        }

        /*
         * a document posted to the gateway skipped the compiler: no
         * header injection, no second Content-Length or Host upstream.
         * The value is a secret, and a name that is not a token may hold
         * line breaks: neither in a message.
         */

        s = llmp_header_problem(v->string, v->valuestring);

        if (s) {
            llmp_errors_add(errs, "providers.%s.headers.%s: %s", name,
                            strcmp(s, "invalid header name") == 0
                            ? "?" : v->string, s);
        }
    }
}


static void
llmp_validate_provider(const cJSON *p, int i, const char *prev,
    llmp_errors_t *errs)
{
    char          path[LLMP_PATH_LEN];
    const char   *name, *s;
    const cJSON  *v;

    static const char *const  fields[] = {
        "name", "api_base", "interfaces", "api_key", "api_key_sha256",
        "headers", "headers_sha256", NULL
    };

    static const char *const  plain[] = { "name", "api_base", "api_key",
                                          NULL };

    name = llmp_string(p, "name");

    if (!cJSON_IsObject(p) || name == NULL || strchr(name, '/')) {
        llmp_errors_add(errs, "providers[%d]: expected object with a name",
                        i);
        return;
    }

    snprintf(path, sizeof(path), "providers.%s", name);
    llmp_check_fields(p, path, fields, errs);
    llmp_check_plain(p, path, plain, errs);

    if (prev && strcmp(prev, name) >= 0) {
        llmp_errors_add(errs, "%s: not sorted by name or not unique", path);
    }

    s = llmp_string(p, "api_base");

    if (s == NULL || !llmp_check_api_base(s) || s[strlen(s) - 1] == '/') {
        llmp_errors_add(errs, "%s.api_base: expected an http:// or "
                        "https:// URL", path);
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "interfaces");
    snprintf(path, sizeof(path), "providers.%s.interfaces", name);
    llmp_check_interfaces(v, path, errs);

    llmp_validate_provider_key(p, name, errs);
    llmp_validate_provider_headers(p, name, errs);
}


/* a pattern's list prices: {name: {price: number}} */

static void
llmp_validate_model_prices(const cJSON *d, const char *path,
    llmp_errors_t *errs)
{
    char          npath[LLMP_PATH_LEN + 64];
    const cJSON  *v, *mp, *pv;

    v = cJSON_GetObjectItemCaseSensitive(d, "model_prices");

    if (v && !cJSON_IsObject(v)) {
        llmp_errors_add(errs, "%s.model_prices: expected object", path);
        return;
    }

    cJSON_ArrayForEach(mp, v) {
        cJSON_ArrayForEach(pv, mp) {
            snprintf(npath, sizeof(npath), "%s.model_prices.%s.%s",
                     path, mp->string, pv->string ? pv->string : "");
            (void) llmp_check_number(pv, npath, LLMP_NUM, errs);
        }

        if (!cJSON_IsObject(mp)) {
            llmp_errors_add(errs, "%s.model_prices.%s: expected object",
                            path, mp->string);
        }
    }
}


/* a compiled deployment's numbers: all required but the prices; its own
 * timeouts where it has them */

static void
llmp_validate_deployment_numbers(const cJSON *d, const char *path,
    llmp_errors_t *errs)
{
    int           n;
    char          npath[LLMP_PATH_LEN + 64];
    const cJSON  *v;

    for (n = 0; llmp_model_numbers[n].name; n++) {
        v = cJSON_GetObjectItemCaseSensitive(d, llmp_model_numbers[n].name);
        snprintf(npath, sizeof(npath), "%s.%s", path,
                 llmp_model_numbers[n].name);

        /* an unpriced model has no prices */

        if (v == NULL && !llmp_prices_is_field(llmp_model_numbers[n].name)) {
            llmp_errors_add(errs, "%s: required", npath);

        } else if (v == NULL) {
            continue;

        } else {
            llmp_check_number(v, npath, llmp_model_numbers[n].kind, errs);
        }
    }

    for (n = 0; llmp_model_timeouts[n]; n++) {
        v = cJSON_GetObjectItemCaseSensitive(d, llmp_model_timeouts[n]);

        if (v == NULL) {
            continue;
        }

        snprintf(npath, sizeof(npath), "%s.%s", path, llmp_model_timeouts[n]);

        if (llmp_check_number(v, npath, LLMP_NUM, errs) == 0
            && v->valuedouble > LLMP_SETTINGS_MAX)
        {
            /* seconds the gateway turns into milliseconds, as settings */
            llmp_errors_add(errs, "%s: expected at most %g", npath,
                            LLMP_SETTINGS_MAX);
        }
    }
}


static void
llmp_validate_deployment(const cJSON *d, int i, const char *prev,
    llmp_errors_t *errs)
{
    char          path[LLMP_PATH_LEN];
    size_t        len;
    const char   *id, *prov, *model;

    static const char *const  fields[] = {
        "id", "provider", "model", "upstream_model", "access_groups",
        LLMP_PRICE_INPUT, LLMP_PRICE_OUTPUT, LLMP_PRICE_CACHE_READ,
        LLMP_PRICE_CACHE_5M, LLMP_PRICE_CACHE_1H, "rpm", "tpm", "weight",
        "first_byte_timeout_seconds", "stream_idle_timeout_seconds",
        "model_prices", NULL
    };

    static const char *const  plain[] = { "id", "provider", "model",
                                          "upstream_model", NULL };

    id = llmp_string(d, "id");

    if (!cJSON_IsObject(d) || id == NULL) {
        llmp_errors_add(errs, "deployments[%d]: expected object with an id",
                        i);
        return;
    }

    snprintf(path, sizeof(path), "deployments.%s", id);
    llmp_check_fields(d, path, fields, errs);
    llmp_check_plain(d, path, plain, errs);

    if (prev && strcmp(prev, id) >= 0) {
        llmp_errors_add(errs, "%s: not sorted by id or not unique", path);
    }

    prov = llmp_string(d, "provider");
    model = llmp_string(d, "model");
    len = prov ? strlen(prov) : 0;

    if (prov == NULL || model == NULL || strncmp(id, prov, len) != 0
        || id[len] != '/' || strcmp(id + len + 1, model) != 0)
    {
        llmp_errors_add(errs, "%s: id must be \"provider/model\"", path);
    }

    if (llmp_string(d, "upstream_model") == NULL) {
        llmp_errors_add(errs, "%s.upstream_model: expected non-empty string",
                        path);
    }

    if (!llmp_is_string_array(cJSON_GetObjectItemCaseSensitive(d,
                                  "access_groups")))
    {
        llmp_errors_add(errs, "%s.access_groups: expected array of strings",
                        path);
    }

    llmp_validate_model_prices(d, path, errs);
    llmp_validate_deployment_numbers(d, path, errs);
}


static void
llmp_validate_settings(const cJSON *s, llmp_errors_t *errs)
{
    int           i;
    char          path[LLMP_PATH_LEN];
    const cJSON  *v;

    if (!cJSON_IsObject(s)) {
        llmp_errors_add(errs, "settings: expected object");
        return;
    }

    llmp_check_fields(s, "settings", llmp_settings_fields, errs);

    for (i = 0; llmp_settings[i].name; i++) {
        snprintf(path, sizeof(path), "settings.%s", llmp_settings[i].name);
        v = cJSON_GetObjectItemCaseSensitive(s, llmp_settings[i].name);

        if (v == NULL) {
            if (!(llmp_settings[i].kind & LLMP_OPTIONAL)) {
                llmp_errors_add(errs, "%s: required", path);
            }

        } else if (llmp_check_number(v, path, llmp_settings[i].kind, errs)
                   == 0
                   && llmp_check_interval(v, path, errs) == 0
                   && v->valuedouble > LLMP_SETTINGS_MAX)
        {
            /* seconds and counts the gateway turns into milliseconds */
            llmp_errors_add(errs, "%s: expected at most %g", path,
                            LLMP_SETTINGS_MAX);
        }
    }
}


/* the providers sorted by name, the deployments by id */

static void
llmp_validate_lists(const cJSON *compiled, llmp_errors_t *errs)
{
    int           i;
    const char   *prev;
    const cJSON  *v, *item, *list;

    v = cJSON_GetObjectItemCaseSensitive(compiled, "providers");
    if (!cJSON_IsArray(v)) {
        llmp_errors_add(errs, "providers: expected array");
    }

    i = 0;
    prev = NULL;

    list = cJSON_IsArray(v) ? v : NULL;

    cJSON_ArrayForEach(item, list) {
        llmp_validate_provider(item, i++, prev, errs);
        prev = llmp_string(item, "name");
    }

    v = cJSON_GetObjectItemCaseSensitive(compiled, "deployments");
    if (!cJSON_IsArray(v)) {
        llmp_errors_add(errs, "deployments: expected array");
    }

    i = 0;
    prev = NULL;

    list = cJSON_IsArray(v) ? v : NULL;

    cJSON_ArrayForEach(item, list) {
        llmp_validate_deployment(item, i++, prev, errs);
        prev = llmp_string(item, "id");
    }
}


/* aliases (name: model) and fallbacks (name: [models]); what they name
 * is llmp_compiled_check's */

static void
llmp_validate_routes(const cJSON *compiled, llmp_errors_t *errs)
{
    const cJSON  *v, *item;

    v = cJSON_GetObjectItemCaseSensitive(compiled, "aliases");

    if (!cJSON_IsObject(v)) {
        llmp_errors_add(errs, "aliases: expected object");

    } else {
        /* a repeated name is llmp_check_unique's */

        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
                llmp_errors_add(errs, "aliases.%s: expected non-empty "
                                "string", item->string);
            }
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(compiled, "fallbacks");

    if (!cJSON_IsObject(v)) {
        llmp_errors_add(errs, "fallbacks: expected object");

    } else {
        cJSON_ArrayForEach(item, v) {
            if (!llmp_is_string_array(item)) {
                llmp_errors_add(errs, "fallbacks.%s: expected array of "
                                "strings", item->string);
            }
        }
    }
}


size_t
llmp_compiled_validate(const cJSON *compiled, llmp_errors_t *errs)
{
    size_t        nerr;
    const cJSON  *v;

    static const char *const  fields[] = {
        "format", "config_sha256", "settings", "providers", "deployments",
        "aliases", "fallbacks", NULL
    };

    static const char *const  top_plain[] = { "config_sha256", NULL };

    nerr = errs->n;

    if (!cJSON_IsObject(compiled)) {
        llmp_errors_add(errs, "config: expected an object");
        return 1;
    }

    llmp_check_fields(compiled, "", fields, errs);
    llmp_check_unique(compiled, "", errs);

    v = cJSON_GetObjectItemCaseSensitive(compiled, "format");
    if (!cJSON_IsNumber(v) || v->valuedouble != LLMP_CONFIG_FORMAT) {
        llmp_errors_add(errs, "format: expected %d", LLMP_CONFIG_FORMAT);
    }

    v = cJSON_GetObjectItemCaseSensitive(compiled, "config_sha256");
    if (!cJSON_IsString(v)) {
        llmp_errors_add(errs, "config_sha256: expected string");
    }

    llmp_check_plain(compiled, "", top_plain, errs);

    llmp_validate_settings(cJSON_GetObjectItemCaseSensitive(compiled,
                                                            "settings"),
                           errs);

    llmp_validate_lists(compiled, errs);
    llmp_validate_routes(compiled, errs);

    llmp_compiled_check(compiled, errs);

    return errs->n - nerr;
}


int
llmp_compiled_sort(cJSON *compiled)
{
    if (llmp_sort_children(cJSON_GetObjectItemCaseSensitive(compiled,
                                                            "providers"),
                           "name") != 0
        || llmp_sort_children(cJSON_GetObjectItemCaseSensitive(compiled,
                                                            "deployments"),
                              "id") != 0
        || llmp_sort_children(cJSON_GetObjectItemCaseSensitive(compiled,
                                                               "aliases"),
                              NULL) != 0
        || llmp_sort_children(cJSON_GetObjectItemCaseSensitive(compiled,
                                                               "fallbacks"),
                              NULL) != 0)
    {
        return -1;
    }

    return 0;
}


int
llmp_compiled_seal(cJSON *compiled)
{
    char           *text, hex[65];
    cJSON          *v;
    unsigned char   digest[32];

    v = cJSON_CreateString("");
    if (v == NULL) {
        return -1;
    }

    if (cJSON_GetObjectItemCaseSensitive(compiled, "config_sha256")) {
        cJSON_ReplaceItemInObjectCaseSensitive(compiled, "config_sha256", v);

    } else if (!cJSON_AddItemToObject(compiled, "config_sha256", v)) {
        cJSON_Delete(v);
        return -1;
    }

    text = cJSON_PrintUnformatted(compiled);
    if (text == NULL) {
        return -1;
    }

    llmp_sha256(text, strlen(text), digest);
    free(text);

    llmp_sha256_hex(digest, hex);

    v = cJSON_GetObjectItemCaseSensitive(compiled, "config_sha256");

    return cJSON_SetValuestring(v, hex) ? 0 : -1;
}


/* helpers */

static void
llmp_check_fields(const cJSON *obj, const char *path,
    const char *const *allowed, llmp_errors_t *errs)
{
    int           i;
    const cJSON  *v;

    cJSON_ArrayForEach(v, obj) {
        for (i = 0; allowed[i]; i++) {
            if (strcmp(v->string, allowed[i]) == 0) {
                break;
            }
        }

        if (allowed[i] == NULL) {
            llmp_errors_add(errs, "%s%s%s: unknown field", path,
                            path[0] ? "." : "", v->string);
        }
    }
}


static int
llmp_is_string_array(const cJSON *v)
{
    const cJSON  *item;

    if (!cJSON_IsArray(v)) {
        return 0;
    }

    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsString(item)) {
            return 0;
        }
    }

    return 1;
}


static int
llmp_check_number(const cJSON *v, const char *path, int kind,
    llmp_errors_t *errs)
{
    const char  *what;

    what = (kind & LLMP_INT) ? "non-negative integer"
           : (kind & LLMP_POSITIVE) ? "positive number"
           : "non-negative number";

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)
        || v->valuedouble < 0 || v->valuedouble > 1e15
        || ((kind & LLMP_INT) && v->valuedouble != floor(v->valuedouble))
        || ((kind & LLMP_POSITIVE) && v->valuedouble <= 0))
    {
        llmp_errors_add(errs, "%s: expected %s", path, what);
        return -1;
    }

    return 0;
}


/* health_check_interval_seconds: 0 (off), or at least a second */

static int
llmp_check_interval(const cJSON *v, const char *path, llmp_errors_t *errs)
{
    size_t  n, m;

    n = strlen(path);
    m = sizeof("health_check_interval_seconds") - 1;

    if (n < m || strcmp(path + n - m, "health_check_interval_seconds") != 0
        || v->valuedouble == 0 || v->valuedouble >= 1)
    {
        return 0;
    }

    llmp_errors_add(errs, "%s: expected 0 (off) or at least 1", path);

    return -1;
}


static int
llmp_check_interfaces(const cJSON *v, const char *path, llmp_errors_t *errs)
{
    int           bad;
    const cJSON  *item, *prev;

    if (!llmp_is_string_array(v) || cJSON_GetArraySize(v) == 0) {
        llmp_errors_add(errs, "%s: expected non-empty array of strings",
                        path);
        return -1;
    }

    bad = 0;

    cJSON_ArrayForEach(item, v) {
        for (prev = v->child; prev != item; prev = prev->next) {
            if (strcmp(prev->valuestring, item->valuestring) == 0) {
                break;
            }
        }

        if (llmp_iface_by_name(item->valuestring, strlen(item->valuestring))
            == 0)
        {
            llmp_errors_add(errs, "%s: unknown interface \"%s\" (expected "
                            "openai, anthropic or gemini)", path,
                            item->valuestring);
            bad = 1;

        } else if (prev != item) {
            llmp_errors_add(errs, "%s: \"%s\" listed twice", path,
                            item->valuestring);
            bad = 1;
        }
    }

    return bad ? -1 : 0;
}


/* "http[s]://host[:port][/path]": no userinfo, query or fragment */

static int
llmp_check_api_base(const char *s)
{
    long         port;
    const char  *p, *end;

    if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;

    } else if (strncmp(s, "https://", 8) == 0) {
        p = s + 8;

    } else {
        return 0;
    }

    if (*p == '[') {
        end = strchr(p, ']');
        if (end == NULL || end == p + 1) {
            return 0;
        }

        for (p++; p < end; p++) {
            if (!(*p == ':' || *p == '.' || (*p >= '0' && *p <= '9')
                  || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            {
                return 0;
            }
        }

        p++;

    } else {
        for (end = p; (*end >= 'a' && *end <= 'z') || (*end >= 'A'
               && *end <= 'Z') || (*end >= '0' && *end <= '9')
               || *end == '.' || *end == '-' || *end == '_'; end++)
        {
            /* void */
        }

        if (end == p) {
            return 0;
        }

        p = end;
    }

    if (*p == ':') {
        port = 0;

        for (p++, end = p; *p >= '0' && *p <= '9' && port <= 65535; p++) {
            port = port * 10 + (*p - '0');
        }

        if (p == end || port < 1 || port > 65535) {
            return 0;
        }
    }

    if (*p != '\0' && *p != '/') {
        return 0;
    }

    for ( /* void */ ; *p; p++) {
        if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '?'
            || *p == '#')
        {
            return 0;
        }
    }

    return 1;
}


static const char *
llmp_sort_key(const cJSON *item, const char *key)
{
    const cJSON  *v;

    if (key == NULL) {
        return item->string ? item->string : "";
    }

    v = cJSON_GetObjectItemCaseSensitive(item, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}


/*
 * sorts the children of an array of objects by a string member `key`,
 * or an object's members by name (key NULL); stable for equal keys
 */

static int
llmp_sort_children(cJSON *parent, const char *key)
{
    size_t        i, j, n;
    cJSON       **items, *item;
    const char   *name;

    n = 0;

    for (item = parent ? parent->child : NULL; item; item = item->next) {
        n++;
    }

    if (n < 2) {
        return 0;
    }

    items = malloc(n * sizeof(cJSON *));
    if (items == NULL) {
        return -1;
    }

    for (i = 0, item = parent->child; item; item = item->next) {
        items[i++] = item;
    }

    /* insertion sort: stable, and the lists are short */

    for (i = 1; i < n; i++) {
        item = items[i];
        name = llmp_sort_key(item, key);

        for (j = i;
             j > 0 && strcmp(llmp_sort_key(items[j - 1], key), name) > 0;
             j--)
        {
            items[j] = items[j - 1];
        }

        items[j] = item;
    }

    for (i = 0; i < n; i++) {
        items[i]->prev = (i == 0) ? items[n - 1] : items[i - 1];
        items[i]->next = (i == n - 1) ? NULL : items[i + 1];
    }

    parent->child = items[0];
    free(items);

    return 0;
}

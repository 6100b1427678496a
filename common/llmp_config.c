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
#include "llmp_sha256.h"


#define LLMP_MAX_EXTEND  32


typedef struct {
    const cJSON    *providers;     /* the user's providers object */
    cJSON          *resolved;      /* name -> provider with $extend done */
    llmp_errors_t  *errs;
} llmp_compile_t;


static char *llmp_read_file(const char *path, int *missing);
static cJSON *llmp_resolve_provider(llmp_compile_t *c, const char *name,
    const char **chain, int depth);
static void llmp_check_fields(const cJSON *obj, const char *path,
    const char *const *allowed, llmp_errors_t *errs);
static int llmp_check_duplicates(const cJSON *obj, const char *path,
    llmp_errors_t *errs);
static int llmp_is_string_array(const cJSON *v);
static int llmp_check_number(const cJSON *v, const char *path, int integer,
    double min, llmp_errors_t *errs);
static int llmp_check_api_base(const char *s);
static cJSON *llmp_compile_provider(llmp_compile_t *c, const char *name,
    const cJSON *p, cJSON *deployments);
static int llmp_name_cmp(const void *a, const void *b);
static void llmp_sort_array(cJSON *array, const char *key);


void
llmp_errors_init(llmp_errors_t *errs)
{
    errs->items = NULL;
    errs->n = 0;
    errs->cap = 0;
}


void
llmp_errors_add(llmp_errors_t *errs, const char *fmt, ...)
{
    char     buf[1024], **items;
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (errs->n == errs->cap) {
        errs->cap = errs->cap ? 2 * errs->cap : 8;
        items = realloc(errs->items, errs->cap * sizeof(char *));
        if (items == NULL) {
            return;
        }

        errs->items = items;
    }

    errs->items[errs->n] = strdup(buf);

    if (errs->items[errs->n]) {
        errs->n++;
    }
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
            cJSON_ReplaceItemInObjectCaseSensitive(dst, s->string, copy);

        } else {
            cJSON_AddItemToObject(dst, s->string, copy);
        }
    }

    return 0;
}


static char *
llmp_read_file(const char *path, int *missing)
{
    long   n;
    char  *buf;
    FILE  *f;

    *missing = 0;

    f = fopen(path, "rb");
    if (f == NULL) {
        *missing = (errno == ENOENT);
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }

    buf = malloc((size_t) n + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }

    if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
        free(buf);
        fclose(f);
        return NULL;
    }

    buf[n] = '\0';
    fclose(f);

    return buf;
}


static cJSON *
llmp_parse(const char *text, const char *name, llmp_errors_t *errs)
{
    int          line;
    cJSON       *root;
    const char  *at, *p;

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
        llmp_errors_add(errs, "%s: expected a JSON object", name);
        cJSON_Delete(root);
        return NULL;
    }

    return root;
}


cJSON *
llmp_config_load_string(const char *json, const char *local_json,
    llmp_errors_t *errs)
{
    cJSON  *base, *local, *compiled;

    base = llmp_parse(json, "config.json", errs);
    if (base == NULL) {
        return NULL;
    }

    if (local_json) {
        local = llmp_parse(local_json, "config.local.json", errs);
        if (local == NULL) {
            cJSON_Delete(base);
            return NULL;
        }

        if (llmp_json_merge(base, local) != 0) {
            llmp_errors_add(errs, "config.local.json: out of memory");
            cJSON_Delete(local);
            cJSON_Delete(base);
            return NULL;
        }

        cJSON_Delete(local);
    }

    compiled = llmp_config_compile(base, errs);
    cJSON_Delete(base);

    return compiled;
}


cJSON *
llmp_config_load(const char *path, llmp_errors_t *errs)
{
    int     missing;
    char   *base, *local, *local_path, *slash;
    cJSON  *compiled;
    size_t  n;

    base = llmp_read_file(path, &missing);
    if (base == NULL) {
        llmp_errors_add(errs, "%s: %s", path,
                        missing ? "no such file" : strerror(errno));
        return NULL;
    }

    n = strlen(path);
    local_path = malloc(n + sizeof("config.local.json"));
    if (local_path == NULL) {
        free(base);
        llmp_errors_add(errs, "%s: out of memory", path);
        return NULL;
    }

    memcpy(local_path, path, n + 1);
    slash = strrchr(local_path, '/');
    strcpy(slash ? slash + 1 : local_path, "config.local.json");

    local = llmp_read_file(local_path, &missing);

    if (local == NULL && !missing) {
        llmp_errors_add(errs, "%s: %s", local_path, strerror(errno));
        free(local_path);
        free(base);
        return NULL;
    }

    compiled = llmp_config_load_string(base, local, errs);

    free(local_path);
    free(local);
    free(base);

    return compiled;
}


static const char *const  llmp_top_fields[] = {
    "providers", "aliases", "fallbacks", "settings", NULL
};

static const char *const  llmp_provider_fields[] = {
    "$extend", "api_base", "interfaces", "access_groups", "models",
    "api_key", "headers", "weight", NULL
};

static const char *const  llmp_model_fields[] = {
    "model", "access_groups", "input_cost_per_million",
    "output_cost_per_million", "rpm", "tpm", "weight", NULL
};

static const char *const  llmp_settings_fields[] = {
    "num_retries", "allowed_fails", "cooldown_seconds",
    "request_timeout_seconds", NULL
};


cJSON *
llmp_config_compile(const cJSON *config, llmp_errors_t *errs)
{
    char            path[512];
    size_t          nerr;
    cJSON          *out, *providers, *deployments, *aliases, *fallbacks;
    cJSON          *settings, *p, *item, *list;
    const cJSON    *v, *s, *user;
    llmp_compile_t  c;
    const char     *chain[LLMP_MAX_EXTEND + 1];

    nerr = errs->n;

    if (!cJSON_IsObject(config)) {
        llmp_errors_add(errs, "config: expected a JSON object");
        return NULL;
    }

    llmp_check_fields(config, "", llmp_top_fields, errs);

    c.errs = errs;
    c.providers = cJSON_GetObjectItemCaseSensitive(config, "providers");
    c.resolved = cJSON_CreateObject();

    out = cJSON_CreateObject();
    providers = cJSON_CreateArray();
    deployments = cJSON_CreateArray();
    aliases = cJSON_CreateObject();
    fallbacks = cJSON_CreateObject();
    settings = cJSON_CreateObject();

    if (c.resolved == NULL || out == NULL || providers == NULL
        || deployments == NULL || aliases == NULL || fallbacks == NULL
        || settings == NULL)
    {
        llmp_errors_add(errs, "config: out of memory");
        goto failed;
    }

    /* providers and their models */

    if (c.providers == NULL) {
        llmp_errors_add(errs, "providers: required");

    } else if (!cJSON_IsObject(c.providers)) {
        llmp_errors_add(errs, "providers: expected object");

    } else {
        llmp_check_duplicates(c.providers, "providers", errs);

        cJSON_ArrayForEach(v, c.providers) {
            if (strchr(v->string, '/') || v->string[0] == '\0') {
                llmp_errors_add(errs, "providers.%s: a provider name may "
                                "not be empty or contain \"/\"", v->string);
                continue;
            }

            p = llmp_resolve_provider(&c, v->string, chain, 0);
            if (p == NULL) {
                continue;
            }

            item = llmp_compile_provider(&c, v->string, p, deployments);
            if (item) {
                cJSON_AddItemToArray(providers, item);
            }
        }
    }

    llmp_sort_array(providers, "name");
    llmp_sort_array(deployments, "id");

    /* aliases */

    user = cJSON_GetObjectItemCaseSensitive(config, "aliases");

    if (user && !cJSON_IsObject(user)) {
        llmp_errors_add(errs, "aliases: expected object");

    } else if (user) {
        llmp_check_duplicates(user, "aliases", errs);

        cJSON_ArrayForEach(v, user) {
            if (!cJSON_IsString(v)) {
                llmp_errors_add(errs, "aliases.%s: expected string",
                                v->string);
                continue;
            }

            cJSON_AddItemToObject(aliases, v->string,
                                  cJSON_CreateString(v->valuestring));
        }
    }

    /* fallbacks */

    user = cJSON_GetObjectItemCaseSensitive(config, "fallbacks");

    if (user && !cJSON_IsObject(user)) {
        llmp_errors_add(errs, "fallbacks: expected object");

    } else if (user) {
        llmp_check_duplicates(user, "fallbacks", errs);

        cJSON_ArrayForEach(v, user) {
            if (!llmp_is_string_array(v)) {
                llmp_errors_add(errs, "fallbacks.%s: expected array of "
                                "strings", v->string);
                continue;
            }

            cJSON_AddItemToObject(fallbacks, v->string, cJSON_Duplicate(v, 1));
        }
    }

    /* settings, with defaults */

    cJSON_AddNumberToObject(settings, "num_retries", 1);
    cJSON_AddNumberToObject(settings, "allowed_fails", 3);
    cJSON_AddNumberToObject(settings, "cooldown_seconds", 5);
    cJSON_AddNumberToObject(settings, "request_timeout_seconds", 600);

    user = cJSON_GetObjectItemCaseSensitive(config, "settings");

    if (user && !cJSON_IsObject(user)) {
        llmp_errors_add(errs, "settings: expected object");

    } else if (user) {
        llmp_check_fields(user, "settings", llmp_settings_fields, errs);

        cJSON_ArrayForEach(s, user) {
            snprintf(path, sizeof(path), "settings.%s", s->string);

            if (strcmp(s->string, "num_retries") == 0) {
                if (llmp_check_number(s, path, 1, 0, errs) != 0) {
                    continue;
                }

            } else if (strcmp(s->string, "allowed_fails") == 0) {
                if (llmp_check_number(s, path, 1, 1, errs) != 0) {
                    continue;
                }

            } else if (strcmp(s->string, "cooldown_seconds") == 0) {
                if (llmp_check_number(s, path, 0, 0, errs) != 0) {
                    continue;
                }

            } else if (strcmp(s->string, "request_timeout_seconds") == 0) {
                if (llmp_check_number(s, path, 0, 0.001, errs) != 0) {
                    continue;
                }

            } else {
                continue;
            }

            cJSON_ReplaceItemInObjectCaseSensitive(settings, s->string,
                cJSON_CreateNumber(s->valuedouble));
        }
    }

    cJSON_AddNumberToObject(out, "format", 1);
    cJSON_AddStringToObject(out, "config_sha256", "");
    cJSON_AddItemToObject(out, "settings", settings);
    cJSON_AddItemToObject(out, "providers", providers);
    cJSON_AddItemToObject(out, "deployments", deployments);
    cJSON_AddItemToObject(out, "aliases", aliases);
    cJSON_AddItemToObject(out, "fallbacks", fallbacks);

    settings = providers = deployments = aliases = fallbacks = NULL;

    llmp_compiled_check(out, errs);

    cJSON_Delete(c.resolved);

    if (errs->n > nerr) {
        cJSON_Delete(out);
        return NULL;
    }

    if (llmp_compiled_seal(out) != 0) {
        llmp_errors_add(errs, "config: out of memory");
        cJSON_Delete(out);
        return NULL;
    }

    (void) list;

    return out;

failed:

    cJSON_Delete(c.resolved);
    cJSON_Delete(out);
    cJSON_Delete(providers);
    cJSON_Delete(deployments);
    cJSON_Delete(aliases);
    cJSON_Delete(fallbacks);
    cJSON_Delete(settings);

    return NULL;
}


/* the provider with its "$extend" chain applied (owned by c->resolved) */

static cJSON *
llmp_resolve_provider(llmp_compile_t *c, const char *name,
    const char **chain, int depth)
{
    int           i;
    char          buf[1024];
    size_t        n;
    cJSON        *done, *merged, *base;
    const cJSON  *p, *ext;

    done = cJSON_GetObjectItemCaseSensitive(c->resolved, name);
    if (done) {
        return cJSON_IsNull(done) ? NULL : done;
    }

    p = cJSON_GetObjectItemCaseSensitive(c->providers, name);

    if (!cJSON_IsObject(p)) {
        llmp_errors_add(c->errs, "providers.%s: expected object", name);
        cJSON_AddItemToObject(c->resolved, name, cJSON_CreateNull());
        return NULL;
    }

    for (i = 0; i < depth; i++) {
        if (strcmp(chain[i], name) == 0) {
            n = 0;
            buf[0] = '\0';

            for ( /* void */ ; i < depth && n < sizeof(buf); i++) {
                n += snprintf(buf + n, sizeof(buf) - n, "%s -> ", chain[i]);
            }

            if (n < sizeof(buf)) {
                snprintf(buf + n, sizeof(buf) - n, "%s", name);
            }

            llmp_errors_add(c->errs, "providers.%s.$extend: cycle %s",
                            chain[0], buf);
            return NULL;
        }
    }

    if (depth >= LLMP_MAX_EXTEND) {
        llmp_errors_add(c->errs, "providers.%s.$extend: chain too long",
                        name);
        return NULL;
    }

    chain[depth] = name;

    ext = cJSON_GetObjectItemCaseSensitive(p, "$extend");

    if (ext == NULL) {
        merged = cJSON_Duplicate(p, 1);

    } else if (!cJSON_IsString(ext)) {
        llmp_errors_add(c->errs, "providers.%s.$extend: expected string",
                        name);
        cJSON_AddItemToObject(c->resolved, name, cJSON_CreateNull());
        return NULL;

    } else if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(
                   c->providers, ext->valuestring)))
    {
        llmp_errors_add(c->errs, "providers.%s.$extend: unknown provider "
                        "\"%s\"", name, ext->valuestring);
        cJSON_AddItemToObject(c->resolved, name, cJSON_CreateNull());
        return NULL;

    } else {
        base = llmp_resolve_provider(c, ext->valuestring, chain, depth + 1);
        if (base == NULL) {
            if (depth == 0) {
                cJSON_AddItemToObject(c->resolved, name, cJSON_CreateNull());
            }

            return NULL;
        }

        merged = cJSON_Duplicate(base, 1);

        if (merged == NULL || llmp_json_merge(merged, p) != 0) {
            cJSON_Delete(merged);
            llmp_errors_add(c->errs, "providers.%s: out of memory", name);
            return NULL;
        }

        cJSON_DeleteItemFromObjectCaseSensitive(merged, "$extend");
    }

    if (merged == NULL) {
        llmp_errors_add(c->errs, "providers.%s: out of memory", name);
        return NULL;
    }

    cJSON_AddItemToObject(c->resolved, name, merged);

    return merged;
}


static cJSON *
llmp_compile_provider(llmp_compile_t *c, const char *name, const cJSON *p,
    cJSON *deployments)
{
    int            bad;
    char           path[512], hex[65], id[1024];
    size_t         nerr;
    cJSON         *out, *d;
    const char    *key, *env;
    const cJSON   *v, *m, *models, *groups, *mgroups, *w, *o;
    unsigned char  digest[32];

    static const char  *ifaces[] = { "openai", "anthropic", "gemini", NULL };
    static const char  *numbers[] = {
        "input_cost_per_million", "output_cost_per_million", "rpm", "tpm",
        "weight", NULL
    };

    nerr = c->errs->n;

    snprintf(path, sizeof(path), "providers.%s", name);
    llmp_check_fields(p, path, llmp_provider_fields, c->errs);

    v = cJSON_GetObjectItemCaseSensitive(p, "api_base");

    if (v == NULL) {
        llmp_errors_add(c->errs, "providers.%s.api_base: required", name);

    } else if (!cJSON_IsString(v) || !llmp_check_api_base(v->valuestring)) {
        llmp_errors_add(c->errs, "providers.%s.api_base: expected "
                        "http://host[:port][/path] or https://...", name);
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "interfaces");

    if (v == NULL) {
        llmp_errors_add(c->errs, "providers.%s.interfaces: required", name);

    } else if (!llmp_is_string_array(v) || cJSON_GetArraySize(v) == 0) {
        llmp_errors_add(c->errs, "providers.%s.interfaces: expected a "
                        "non-empty array of strings", name);

    } else {
        cJSON_ArrayForEach(m, v) {
            int  i, found = 0;

            for (i = 0; ifaces[i]; i++) {
                found |= (strcmp(m->valuestring, ifaces[i]) == 0);
            }

            if (!found) {
                llmp_errors_add(c->errs, "providers.%s.interfaces: unknown "
                                "interface \"%s\" (openai, anthropic, "
                                "gemini)", name, m->valuestring);
            }
        }
    }

    groups = cJSON_GetObjectItemCaseSensitive(p, "access_groups");

    if (groups && !llmp_is_string_array(groups)) {
        llmp_errors_add(c->errs, "providers.%s.access_groups: expected array "
                        "of strings", name);
        groups = NULL;
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "headers");

    if (v && !cJSON_IsObject(v)) {
        llmp_errors_add(c->errs, "providers.%s.headers: expected object",
                        name);

    } else if (v) {
        cJSON_ArrayForEach(m, v) {
            if (!cJSON_IsString(m)) {
                llmp_errors_add(c->errs, "providers.%s.headers.%s: expected "
                                "string", name, m->string);

            } else if (strpbrk(m->valuestring, "\r\n")
                       || strpbrk(m->string, "\r\n: ") || !m->string[0])
            {
                llmp_errors_add(c->errs, "providers.%s.headers.%s: invalid "
                                "header", name, m->string);
            }
        }
    }

    w = cJSON_GetObjectItemCaseSensitive(p, "weight");
    if (w) {
        snprintf(path, sizeof(path), "providers.%s.weight", name);
        if (llmp_check_number(w, path, 0, 0, c->errs) != 0) {
            w = NULL;
        }
    }

    key = NULL;
    v = cJSON_GetObjectItemCaseSensitive(p, "api_key");

    if (v && !cJSON_IsString(v)) {
        llmp_errors_add(c->errs, "providers.%s.api_key: expected string",
                        name);

    } else if (v && strncmp(v->valuestring, "env:", 4) == 0) {
        env = getenv(v->valuestring + 4);

        if (env == NULL || env[0] == '\0') {
            llmp_errors_add(c->errs, "providers.%s.api_key: environment "
                            "variable %s is not set", name,
                            v->valuestring + 4);
        } else {
            key = env;
        }

    } else if (v && v->valuestring[0]) {
        key = v->valuestring;
    }

    if (key && strpbrk(key, "\r\n")) {
        llmp_errors_add(c->errs, "providers.%s.api_key: invalid characters",
                        name);
        key = NULL;
    }

    models = cJSON_GetObjectItemCaseSensitive(p, "models");

    if (models == NULL) {
        llmp_errors_add(c->errs, "providers.%s.models: required", name);

    } else if (!cJSON_IsObject(models)) {
        llmp_errors_add(c->errs, "providers.%s.models: expected object",
                        name);
        models = NULL;

    } else {
        snprintf(path, sizeof(path), "providers.%s.models", name);
        llmp_check_duplicates(models, path, c->errs);
    }

    /* one deployment per model */

    cJSON_ArrayForEach(m, models) {
        snprintf(path, sizeof(path), "providers.%s.models.%s", name,
                 m->string);

        if (!cJSON_IsObject(m)) {
            llmp_errors_add(c->errs, "%s: expected object", path);
            continue;
        }

        if (m->string[0] == '\0') {
            llmp_errors_add(c->errs, "%s: empty model name", path);
            continue;
        }

        llmp_check_fields(m, path, llmp_model_fields, c->errs);
        bad = 0;

        o = cJSON_GetObjectItemCaseSensitive(m, "model");
        if (o && (!cJSON_IsString(o) || o->valuestring[0] == '\0')) {
            llmp_errors_add(c->errs, "%s.model: expected a non-empty string",
                            path);
            bad = 1;
        }

        mgroups = cJSON_GetObjectItemCaseSensitive(m, "access_groups");
        if (mgroups && !llmp_is_string_array(mgroups)) {
            llmp_errors_add(c->errs, "%s.access_groups: expected array of "
                            "strings", path);
            bad = 1;
        }

        {
            int   i;
            char  npath[600];

            for (i = 0; numbers[i]; i++) {
                v = cJSON_GetObjectItemCaseSensitive(m, numbers[i]);
                if (v == NULL) {
                    continue;
                }

                snprintf(npath, sizeof(npath), "%s.%s", path, numbers[i]);

                if (llmp_check_number(v, npath,
                                      numbers[i][0] == 'r'
                                      || numbers[i][0] == 't', 0, c->errs)
                    != 0)
                {
                    bad = 1;
                }
            }
        }

        if (bad) {
            continue;
        }

        snprintf(id, sizeof(id), "%s/%s", name, m->string);

        d = cJSON_CreateObject();
        if (d == NULL) {
            continue;
        }

        cJSON_AddStringToObject(d, "id", id);
        cJSON_AddStringToObject(d, "provider", name);
        cJSON_AddStringToObject(d, "model", m->string);
        cJSON_AddStringToObject(d, "upstream_model",
                                o ? o->valuestring : m->string);
        cJSON_AddItemToObject(d, "access_groups",
                              mgroups ? cJSON_Duplicate(mgroups, 1)
                              : groups ? cJSON_Duplicate(groups, 1)
                              : cJSON_CreateArray());

        v = cJSON_GetObjectItemCaseSensitive(m, "input_cost_per_million");
        cJSON_AddNumberToObject(d, "input_cost_per_million",
                                v ? v->valuedouble : 0);
        v = cJSON_GetObjectItemCaseSensitive(m, "output_cost_per_million");
        cJSON_AddNumberToObject(d, "output_cost_per_million",
                                v ? v->valuedouble : 0);
        v = cJSON_GetObjectItemCaseSensitive(m, "rpm");
        cJSON_AddNumberToObject(d, "rpm", v ? v->valuedouble : 0);
        v = cJSON_GetObjectItemCaseSensitive(m, "tpm");
        cJSON_AddNumberToObject(d, "tpm", v ? v->valuedouble : 0);
        v = cJSON_GetObjectItemCaseSensitive(m, "weight");
        cJSON_AddNumberToObject(d, "weight", v ? v->valuedouble
                                             : w ? w->valuedouble : 1);

        cJSON_AddItemToArray(deployments, d);
    }

    if (c->errs->n > nerr) {
        return NULL;
    }

    out = cJSON_CreateObject();
    if (out == NULL) {
        return NULL;
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "api_base");

    {
        char    *base;
        size_t   n;

        base = strdup(v->valuestring);
        if (base == NULL) {
            cJSON_Delete(out);
            return NULL;
        }

        for (n = strlen(base); n > 0 && base[n - 1] == '/'; n--) {
            base[n - 1] = '\0';
        }

        cJSON_AddStringToObject(out, "name", name);
        cJSON_AddStringToObject(out, "api_base", base);
        free(base);
    }

    cJSON_AddItemToObject(out, "interfaces",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(p, "interfaces"),
                        1));

    if (key) {
        llmp_sha256(key, strlen(key), digest);
        llmp_sha256_hex(digest, hex);
        cJSON_AddStringToObject(out, "api_key", key);
        cJSON_AddStringToObject(out, "api_key_sha256", hex);
    }

    v = cJSON_GetObjectItemCaseSensitive(p, "headers");
    cJSON_AddItemToObject(out, "headers",
                          v ? cJSON_Duplicate(v, 1) : cJSON_CreateObject());

    return out;
}


size_t
llmp_compiled_check(const cJSON *compiled, llmp_errors_t *errs)
{
    size_t        nerr;
    const cJSON  *providers, *deployments, *aliases, *fallbacks, *d, *p;
    const cJSON  *v, *t, *prov;
    int           found;

    nerr = errs->n;

    providers = cJSON_GetObjectItemCaseSensitive(compiled, "providers");
    deployments = cJSON_GetObjectItemCaseSensitive(compiled, "deployments");
    aliases = cJSON_GetObjectItemCaseSensitive(compiled, "aliases");
    fallbacks = cJSON_GetObjectItemCaseSensitive(compiled, "fallbacks");

#define LLMP_IS_MODEL(name)                                                  \
    ({                                                                       \
        int  f_ = 0;                                                         \
        cJSON_ArrayForEach(d, deployments) {                                 \
            t = cJSON_GetObjectItemCaseSensitive(d, "model");                \
            v = cJSON_GetObjectItemCaseSensitive(d, "id");                   \
            if ((cJSON_IsString(t) && strcmp(t->valuestring, name) == 0)     \
                || (cJSON_IsString(v) && strcmp(v->valuestring, name) == 0)) \
            {                                                                \
                f_ = 1;                                                      \
                break;                                                       \
            }                                                                \
        }                                                                    \
        f_;                                                                  \
    })

    cJSON_ArrayForEach(d, deployments) {
        prov = cJSON_GetObjectItemCaseSensitive(d, "provider");
        found = 0;

        cJSON_ArrayForEach(p, providers) {
            v = cJSON_GetObjectItemCaseSensitive(p, "name");
            if (cJSON_IsString(v) && cJSON_IsString(prov)
                && strcmp(v->valuestring, prov->valuestring) == 0)
            {
                found = 1;
                break;
            }
        }

        if (!found) {
            v = cJSON_GetObjectItemCaseSensitive(d, "id");
            llmp_errors_add(errs, "models.%s: unknown provider \"%s\"",
                            cJSON_IsString(v) ? v->valuestring : "?",
                            cJSON_IsString(prov) ? prov->valuestring : "?");
        }
    }

    cJSON_ArrayForEach(p, aliases) {
        if (!cJSON_IsString(p)) {
            continue;
        }

        if (LLMP_IS_MODEL(p->string)) {
            llmp_errors_add(errs, "aliases.%s: the name of a model cannot be "
                            "an alias", p->string);
        }

        if (!LLMP_IS_MODEL(p->valuestring)) {
            llmp_errors_add(errs, "aliases.%s: unknown model \"%s\"",
                            p->string, p->valuestring);
        }
    }

    cJSON_ArrayForEach(p, fallbacks) {
        if (!LLMP_IS_MODEL(p->string)
            && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(aliases,
                                                                p->string)))
        {
            llmp_errors_add(errs, "fallbacks.%s: unknown model", p->string);
        }

        cJSON_ArrayForEach(prov, p) {
            if (!cJSON_IsString(prov)) {
                continue;
            }

            if (!LLMP_IS_MODEL(prov->valuestring)
                && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(aliases,
                                       prov->valuestring)))
            {
                llmp_errors_add(errs, "fallbacks.%s: unknown model \"%s\"",
                                p->string, prov->valuestring);
            }
        }
    }

#undef LLMP_IS_MODEL

    return errs->n - nerr;
}


int
llmp_compiled_seal(cJSON *compiled)
{
    char           *text, hex[65];
    unsigned char   digest[32];

    if (!cJSON_ReplaceItemInObjectCaseSensitive(compiled, "config_sha256",
                                                cJSON_CreateString("")))
    {
        cJSON_AddStringToObject(compiled, "config_sha256", "");
    }

    text = cJSON_PrintUnformatted(compiled);
    if (text == NULL) {
        return -1;
    }

    llmp_sha256(text, strlen(text), digest);
    free(text);

    llmp_sha256_hex(digest, hex);

    cJSON_ReplaceItemInObjectCaseSensitive(compiled, "config_sha256",
                                           cJSON_CreateString(hex));

    return 0;
}


static void
llmp_check_fields(const cJSON *obj, const char *path,
    const char *const *allowed, llmp_errors_t *errs)
{
    int           i, ok;
    const cJSON  *v;

    cJSON_ArrayForEach(v, obj) {
        ok = 0;

        for (i = 0; allowed[i]; i++) {
            if (strcmp(v->string, allowed[i]) == 0) {
                ok = 1;
                break;
            }
        }

        if (!ok) {
            llmp_errors_add(errs, "%s%s%s: unknown field", path,
                            path[0] ? "." : "", v->string);
        }
    }
}


static int
llmp_check_duplicates(const cJSON *obj, const char *path,
    llmp_errors_t *errs)
{
    int           dup;
    const cJSON  *a, *b;

    dup = 0;

    for (a = obj->child; a; a = a->next) {
        for (b = a->next; b; b = b->next) {
            if (strcmp(a->string, b->string) == 0) {
                llmp_errors_add(errs, "%s: duplicate name \"%s\"", path,
                                a->string);
                dup = 1;
                break;
            }
        }
    }

    return dup;
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
llmp_check_number(const cJSON *v, const char *path, int integer, double min,
    llmp_errors_t *errs)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        llmp_errors_add(errs, "%s: expected %s", path,
                        integer ? "an integer" : "a number");
        return -1;
    }

    if (integer && v->valuedouble != floor(v->valuedouble)) {
        llmp_errors_add(errs, "%s: expected an integer", path);
        return -1;
    }

    if (v->valuedouble < min || v->valuedouble > 1e12) {
        llmp_errors_add(errs, "%s: must be at least %g", path, min);
        return -1;
    }

    return 0;
}


static int
llmp_check_api_base(const char *s)
{
    const char  *host;

    if (strncmp(s, "http://", 7) == 0) {
        host = s + 7;

    } else if (strncmp(s, "https://", 8) == 0) {
        host = s + 8;

    } else {
        return 0;
    }

    if (*host == '\0' || *host == '/' || *host == ':') {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if ((unsigned char) *s <= ' ' || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static int
llmp_name_cmp(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *) a)->string,
                  (*(cJSON *const *) b)->string);
}


/* sorts an array of objects by a string member (kept in ->string) */

static void
llmp_sort_array(cJSON *array, const char *key)
{
    int      i, n;
    cJSON  **items, *item, *v;

    n = cJSON_GetArraySize(array);
    if (n < 2) {
        return;
    }

    items = malloc(n * sizeof(cJSON *));
    if (items == NULL) {
        return;
    }

    i = 0;

    while ((item = cJSON_DetachItemFromArray(array, 0)) != NULL) {
        v = cJSON_GetObjectItemCaseSensitive(item, key);
        item->string = (v && cJSON_IsString(v)) ? v->valuestring : (char *) "";
        items[i++] = item;
    }

    qsort(items, n, sizeof(cJSON *), llmp_name_cmp);

    for (i = 0; i < n; i++) {
        items[i]->string = NULL;
        cJSON_AddItemToArray(array, items[i]);
    }

    free(items);
}

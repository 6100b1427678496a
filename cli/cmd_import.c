/*
 * llmproxyctl import litellm config.yaml: a LiteLLM proxy config to
 * config.json (+ config.local.json for the secrets).
 *
 * Every model_list entry is a deployment; the deployments that share an
 * API style, api_base, key and headers become one provider.  Whatever has
 * no counterpart here is listed with its path in the YAML, and the result
 * is checked with the same compiler `sync` uses: a field this build does
 * not know is dropped and listed too, so what is written always passes
 * `llmproxyctl sync --dry-run`.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "llmp_config.h"


#define LLMP_IMPORT_PATH  1024


/* a LiteLLM provider prefix ("openai/gpt-4o") this gateway can reach */
typedef struct {
    const char  *prefix;
    const char  *iface;
    const char  *api_base;    /* NULL: api_base required */
    const char  *key_env;     /* LiteLLM's default key variable, or NULL */
} ctl_litellm_kind_t;


/* where an output field came from, to drop it if the compiler refuses it */
typedef struct {
    char   *out;              /* "providers.openai.models.gpt-4o.rpm" */
    char   *src;              /* "model_list[0].litellm_params.rpm" */
    cJSON  *parent;
    char   *key;
} ctl_origin_t;


typedef struct {
    cJSON          *base;         /* config.json */
    cJSON          *local;        /* config.local.json */
    cJSON          *groups;       /* provider name -> grouping key */
    cJSON          *models;       /* public model names seen: true */
    const cJSON    *env;          /* environment_variables of the YAML */
    const cJSON    *credentials;  /* credential_list of the YAML */
    llmp_errors_t   skipped;      /* "yaml.path: reason" */
    llmp_errors_t   notes;
    ctl_origin_t  *origins;
    size_t          norigins;
    size_t          corigins;
    int             deployments;
} ctl_import_t;


static const ctl_litellm_kind_t  ctl_litellm_kinds[] = {
    { "openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY" },
    { "text-completion-openai", "openai", "https://api.openai.com/v1",
      "OPENAI_API_KEY" },
    { "custom_openai", "openai", NULL, NULL },
    { "openai_like", "openai", NULL, NULL },
    { "hosted_vllm", "openai", NULL, NULL },
    { "litellm_proxy", "openai", NULL, "LITELLM_PROXY_API_KEY" },
    { "lm_studio", "openai", "http://localhost:1234/v1", NULL },
    { "ollama", "openai", "http://localhost:11434", NULL },
    { "ollama_chat", "openai", "http://localhost:11434", NULL },
    { "anthropic", "anthropic", "https://api.anthropic.com",
      "ANTHROPIC_API_KEY" },
    { "gemini", "gemini", "https://generativelanguage.googleapis.com",
      "GEMINI_API_KEY" },
    { "openrouter", "openai", "https://openrouter.ai/api/v1",
      "OPENROUTER_API_KEY" },
    { "groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY" },
    { "mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY" },
    { "deepseek", "openai", "https://api.deepseek.com/v1",
      "DEEPSEEK_API_KEY" },
    { "together_ai", "openai", "https://api.together.xyz/v1",
      "TOGETHERAI_API_KEY" },
    { "fireworks_ai", "openai", "https://api.fireworks.ai/inference/v1",
      "FIREWORKS_AI_API_KEY" },
    { "xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY" },
    { "cerebras", "openai", "https://api.cerebras.ai/v1",
      "CEREBRAS_API_KEY" },
    { "nvidia_nim", "openai", "https://integrate.api.nvidia.com/v1",
      "NVIDIA_NIM_API_KEY" },
    { NULL, NULL, NULL, NULL }
};


/* LiteLLM's per-token prices and what they are here, per million */
static const struct {
    const char  *litellm;
    const char  *llmproxy;
} ctl_litellm_prices[] = {
    { "input_cost_per_token", "input_cost_per_million" },
    { "output_cost_per_token", "output_cost_per_million" },
    { "cache_read_input_token_cost", "cache_read_input_cost_per_million" },
    { "cache_creation_input_token_cost",
      "cache_creation_input_cost_per_million" },
    { NULL, NULL }
};


static void
ctl_import_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl import litellm CONFIG.yaml [-o DIR] [--force]\n"
        "       llmproxyctl import litellm-keys URI [--dry-run] "
        "[--database URL]\n\n"
        "litellm       LiteLLM's proxy config to DIR/config.json and, for\n"
        "              the provider keys, DIR/config.local.json (default\n"
        "              DIR: .); lists every setting it could not carry "
        "over\n"
        "  -o DIR      where to write\n"
        "  --force     replace files that exist\n"
        "litellm-keys  the virtual keys of LiteLLM's PostgreSQL at URI into\n"
        "              llmproxy's database (LLMPROXY_DATABASE_URL); existing\n"
        "              keys keep working, a second run changes nothing\n"
        "  --dry-run   show what would change, change nothing\n");
}


/* scalar helpers: the YAML loader keeps every scalar's text */

static const char *
ctl_text(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return v->valuestring;
    }

    if (v && (cJSON_IsNumber(v) || cJSON_IsBool(v)) && v->valuestring) {
        return v->valuestring;
    }

    return NULL;
}


static int
ctl_num(const cJSON *v, double *d)
{
    char  *end;

    if (cJSON_IsNumber(v)) {
        *d = v->valuedouble;
        return 1;
    }

    /* PyYAML reads 1e-6 (no dot) as a string; LiteLLM takes it as a float */
    if (cJSON_IsString(v) && v->valuestring[0]) {
        *d = strtod(v->valuestring, &end);
        return *end == '\0' && isfinite(*d);
    }

    return 0;
}


static void
ctl_origin(ctl_import_t *im, const char *out, const char *src,
    cJSON *parent, const char *key)
{
    size_t          cap;
    ctl_origin_t  *o;

    if (im->norigins == im->corigins) {
        cap = im->corigins ? 2 * im->corigins : 64;
        o = realloc(im->origins, cap * sizeof(ctl_origin_t));
        if (o == NULL) {
            return;
        }

        im->origins = o;
        im->corigins = cap;
    }

    o = &im->origins[im->norigins];
    o->out = strdup(out);
    o->src = strdup(src);
    o->key = strdup(key);
    o->parent = parent;

    if (o->out && o->src && o->key) {
        im->norigins++;

    } else {
        free(o->out);
        free(o->src);
        free(o->key);
    }
}


/* "os.environ/NAME": the value environment_variables gives it, if any */

static const char *
ctl_yaml_env(ctl_import_t *im, const char *name)
{
    return ctl_text(cJSON_GetObjectItemCaseSensitive(im->env, name));
}


/*
 * api_key: "os.environ/NAME" -> "env:NAME" (or the value the YAML's
 * environment_variables sets, which llmproxyctl would not see).
 * Returns a string to free, or NULL.
 */

static char *
ctl_import_secret(ctl_import_t *im, const char *s)
{
    char        *out;
    const char  *v;

    if (strncmp(s, "os.environ/", 11) != 0) {
        return strdup(s);
    }

    v = ctl_yaml_env(im, s + 11);
    if (v) {
        return strdup(v);
    }

    out = malloc(strlen(s + 11) + 5);
    if (out) {
        sprintf(out, "env:%s", s + 11);
    }

    return out;
}


/* api_base "os.environ/NAME": read now, since config.json cannot defer it */

static const char *
ctl_import_base(ctl_import_t *im, const char *s, const char *path)
{
    const char  *v;

    if (strncmp(s, "os.environ/", 11) != 0) {
        return s;
    }

    v = ctl_yaml_env(im, s + 11);
    if (v == NULL) {
        v = getenv(s + 11);
    }

    if (v == NULL || v[0] == '\0') {
        llmp_errors_add(&im->skipped, "%s: environment variable %s is not "
                        "set here, and config.json needs the address itself",
                        path, s + 11);
        return NULL;
    }

    llmp_errors_add(&im->notes, "%s: took %s's value from the environment",
                    path, s + 11);

    return v;
}


static const ctl_litellm_kind_t *
ctl_import_kind(const char *prefix)
{
    const ctl_litellm_kind_t  *k;

    for (k = ctl_litellm_kinds; k->prefix; k++) {
        if (strcmp(k->prefix, prefix) == 0) {
            return k;
        }
    }

    return NULL;
}


/* LiteLLM's guess for a model without "provider/" */

static const char *
ctl_import_guess(const char *model)
{
    static const char *const  openai[] = {
        "gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "dall-e",
        "whisper", "tts-", "davinci", "babbage", NULL
    };
    int  i;

    if (strncmp(model, "claude", 6) == 0) {
        return "anthropic";
    }

    for (i = 0; openai[i]; i++) {
        if (strncmp(model, openai[i], strlen(openai[i])) == 0) {
            return "openai";
        }
    }

    return NULL;
}


/*
 * The provider for a deployment: the first one with the same grouping key
 * that does not offer this public name yet, else a new one.
 */

static cJSON *
ctl_import_provider(ctl_import_t *im, const char *prefix,
    const char *iface, const char *base, const char *key,
    const cJSON *headers, const char *model_name, char *name, size_t size)
{
    int          n;
    char        *group, *h, *p;
    cJSON       *prov, *providers, *lprov, *lproviders;
    size_t       len;
    const cJSON  *g;

    h = headers ? cJSON_PrintUnformatted(headers) : NULL;

    len = strlen(iface) + strlen(base) + (key ? strlen(key) : 0)
          + (h ? strlen(h) : 0) + 4;
    group = malloc(len);
    if (group == NULL) {
        free(h);
        return NULL;
    }

    snprintf(group, len, "%s\n%s\n%s\n%s", iface, base, key ? key : "",
             h ? h : "");
    free(h);

    providers = cJSON_GetObjectItemCaseSensitive(im->base, "providers");

    cJSON_ArrayForEach(g, im->groups) {
        if (strcmp(g->valuestring, group) != 0) {
            continue;
        }

        prov = cJSON_GetObjectItemCaseSensitive(providers, g->string);

        if (!cJSON_HasObjectItem(cJSON_GetObjectItemCaseSensitive(prov,
                                     "models"), model_name))
        {
            free(group);
            snprintf(name, size, "%s", g->string);
            return prov;
        }
    }

    /* a name from the prefix: "openai", "openai-2", ... */

    snprintf(name, size, "%s", prefix);

    for (p = name; *p; p++) {
        if (*p == '/' || *p == '.' || (unsigned char) *p <= ' ') {
            *p = '-';
        }
    }

    len = strlen(name);

    for (n = 2; cJSON_HasObjectItem(providers, name); n++) {
        snprintf(name + len, size - len, "-%d", n);
    }

    prov = cJSON_CreateObject();

    if (prov == NULL
        || cJSON_AddStringToObject(prov, "api_base", base) == NULL
        || cJSON_AddItemToObject(prov, "interfaces",
               cJSON_CreateStringArray(&iface, 1)) == 0
        || cJSON_AddObjectToObject(prov, "models") == NULL)
    {
        cJSON_Delete(prov);
        free(group);
        return NULL;
    }

    cJSON_AddItemToObject(providers, name, prov);
    cJSON_AddStringToObject(im->groups, name, group);
    free(group);

    if (key || headers) {
        lproviders = cJSON_GetObjectItemCaseSensitive(im->local, "providers");
        if (lproviders == NULL) {
            lproviders = cJSON_AddObjectToObject(im->local, "providers");
        }

        lprov = cJSON_AddObjectToObject(lproviders, name);

        if (lprov && key) {
            cJSON_AddStringToObject(lprov, "api_key", key);
        }

        if (lprov && headers) {
            cJSON_AddItemToObject(lprov, "headers",
                                  cJSON_Duplicate(headers, 1));
        }
    }

    return prov;
}


/* a number field of a model, registered for the compiler check */

static void
ctl_import_number(ctl_import_t *im, cJSON *model, const char *out_path,
    const char *field, double d, const char *src)
{
    char  path[LLMP_IMPORT_PATH];

    cJSON_DeleteItemFromObjectCaseSensitive(model, field);
    cJSON_AddNumberToObject(model, field, d);
    snprintf(path, sizeof(path), "%s.%s", out_path, field);
    ctl_origin(im, path, src, model, field);
}


/* per token to per million, without 2.4999999999999996 */

static double
ctl_per_million(double per_token)
{
    char  buf[64];

    snprintf(buf, sizeof(buf), "%.10g", per_token * 1e6);

    return strtod(buf, NULL);
}


static int
ctl_is_known(const char *key, const char *const *list)
{
    int  i;

    for (i = 0; list[i]; i++) {
        if (strcmp(key, list[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
ctl_import_prices(ctl_import_t *im, cJSON *model, const char *out_path,
    const cJSON *from, const char *path)
{
    int          i;
    char         src[LLMP_IMPORT_PATH];
    double       d;
    const cJSON  *v;

    for (i = 0; ctl_litellm_prices[i].litellm; i++) {
        v = cJSON_GetObjectItemCaseSensitive(from,
                                             ctl_litellm_prices[i].litellm);
        if (v == NULL) {
            continue;
        }

        snprintf(src, sizeof(src), "%s.%s", path,
                 ctl_litellm_prices[i].litellm);

        if (!ctl_num(v, &d) || d < 0) {
            llmp_errors_add(&im->skipped, "%s: expected a price in USD per "
                            "token", src);
            continue;
        }

        ctl_import_number(im, model, out_path, ctl_litellm_prices[i].llmproxy,
                           ctl_per_million(d), src);
    }
}


static void
ctl_import_deployment_params(ctl_import_t *im, const cJSON *entry,
    int idx, cJSON **own);


/*
 * litellm_credential_name: the credential_list entry's api_key and
 * api_base, where the deployment does not set its own; returns the
 * params to read (*own, when not NULL, is a copy the caller deletes)
 */

static const cJSON *
ctl_import_credential(ctl_import_t *im, const cJSON *lp, const char *path,
    cJSON **own)
{
    char          msg[LLMP_IMPORT_PATH];
    const char   *name, *cname;
    const cJSON  *c, *values, *v;

    *own = NULL;

    name = ctl_text(cJSON_GetObjectItemCaseSensitive(lp,
                                                 "litellm_credential_name"));
    if (name == NULL) {
        return lp;
    }

    values = NULL;

    cJSON_ArrayForEach(c, im->credentials) {
        cname = ctl_text(cJSON_GetObjectItemCaseSensitive(c,
                                                        "credential_name"));

        if (cname && strcmp(cname, name) == 0) {
            values = cJSON_GetObjectItemCaseSensitive(c,
                                                      "credential_values");
            break;
        }
    }

    if (!cJSON_IsObject(values)) {
        llmp_errors_add(&im->skipped, "%s.litellm_params."
                        "litellm_credential_name: no credential \"%s\" in "
                        "credential_list", path, name);
        return lp;
    }

    *own = cJSON_Duplicate(lp, 1);
    if (*own == NULL) {
        return lp;
    }

    cJSON_ArrayForEach(v, values) {
        if (strcmp(v->string, "api_key") != 0
            && strcmp(v->string, "api_base") != 0)
        {
            /* once, however many deployments use the credential */
            snprintf(msg, sizeof(msg), "credential_list[%s]."
                     "credential_values.%s: no counterpart in llmproxy",
                     name, v->string);

            if (!llmp_errors_has(&im->skipped, msg)) {
                llmp_errors_add(&im->skipped, "%s", msg);
            }

            continue;
        }

        if (!cJSON_HasObjectItem(*own, v->string)) {
            cJSON_AddItemToObject(*own, v->string, cJSON_Duplicate(v, 1));
        }
    }

    return *own;
}


static void
ctl_import_deployment(ctl_import_t *im, const cJSON *entry, int idx)
{
    cJSON  *own;

    ctl_import_deployment_params(im, entry, idx, &own);
    cJSON_Delete(own);
}


static void
ctl_import_deployment_params(ctl_import_t *im, const cJSON *entry,
    int idx, cJSON **ownp)
{
    int                         i;
    char                        path[32], src[LLMP_IMPORT_PATH];
    char                        out[LLMP_IMPORT_PATH], pname[128], prefix[64];
    char                       *key;
    cJSON                      *prov, *model, *models, *groups;
    double                      d;
    const char                 *name, *upstream, *base, *slash, *s;
    const cJSON                *lp, *info, *v, *headers;
    const ctl_litellm_kind_t  *kind;

    static const char *const  lp_known[] = {
        "model", "api_base", "api_key", "rpm", "tpm", "weight", "timeout",
        "stream_timeout", "custom_llm_provider", "extra_headers",
        "litellm_credential_name",
        "input_cost_per_token", "output_cost_per_token",
        "cache_read_input_token_cost", "cache_creation_input_token_cost",
        NULL
    };
    static const char *const  info_known[] = {
        "access_groups", "input_cost_per_token", "output_cost_per_token",
        "cache_read_input_token_cost", "cache_creation_input_token_cost",
        NULL
    };

    *ownp = NULL;
    snprintf(path, sizeof(path), "model_list[%d]", idx);

    if (!cJSON_IsObject(entry)) {
        llmp_errors_add(&im->skipped, "%s: expected a mapping", path);
        return;
    }

    name = ctl_text(cJSON_GetObjectItemCaseSensitive(entry, "model_name"));
    lp = cJSON_GetObjectItemCaseSensitive(entry, "litellm_params");
    lp = ctl_import_credential(im, lp, path, ownp);
    info = cJSON_GetObjectItemCaseSensitive(entry, "model_info");
    upstream = ctl_text(cJSON_GetObjectItemCaseSensitive(lp, "model"));

    if (name == NULL || name[0] == '\0' || !cJSON_IsObject(lp)
        || upstream == NULL || upstream[0] == '\0')
    {
        llmp_errors_add(&im->skipped, "%s: needs model_name and "
                        "litellm_params.model", path);
        return;
    }

    if (strchr(name, '*') || strchr(upstream, '*')) {
        llmp_errors_add(&im->skipped, "%s: wildcard route \"%s\": list the "
                        "models by name", path, name);
        return;
    }

    /* "provider/model", custom_llm_provider, or LiteLLM's guess */

    s = ctl_text(cJSON_GetObjectItemCaseSensitive(lp,
                                                   "custom_llm_provider"));
    slash = strchr(upstream, '/');

    if (s) {
        snprintf(prefix, sizeof(prefix), "%s", s);

        if (slash && (size_t) (slash - upstream) == strlen(s)
            && strncmp(upstream, s, slash - upstream) == 0)
        {
            upstream = slash + 1;
        }

    } else if (slash && slash - upstream < (int) sizeof(prefix)) {
        snprintf(prefix, sizeof(prefix), "%.*s", (int) (slash - upstream),
                 upstream);
        upstream = slash + 1;

    } else if ((s = ctl_import_guess(upstream)) != NULL) {
        snprintf(prefix, sizeof(prefix), "%s", s);

    } else {
        llmp_errors_add(&im->skipped, "%s.litellm_params.model: no provider "
                        "prefix (such as openai/) in \"%s\"", path, upstream);
        return;
    }

    kind = ctl_import_kind(prefix);

    if (kind == NULL) {
        llmp_errors_add(&im->skipped, "%s: provider \"%s\" has no "
                        "OpenAI-, Anthropic- or Gemini-style API llmproxy "
                        "can call", path, prefix);
        return;
    }

    v = cJSON_GetObjectItemCaseSensitive(lp, "api_base");
    snprintf(src, sizeof(src), "%s.litellm_params.api_base", path);
    base = kind->api_base;

    if (v) {
        base = ctl_text(v) ? ctl_import_base(im, ctl_text(v), src) : NULL;

        if (base == NULL) {
            if (ctl_text(v)) {
                return;
            }

            llmp_errors_add(&im->skipped, "%s: expected a URL", src);
            return;
        }
    }

    if (base == NULL) {
        llmp_errors_add(&im->skipped, "%s: provider \"%s\" needs "
                        "litellm_params.api_base", path, prefix);
        return;
    }

    /* "http://host/v1/" and "http://host/v1" are the same provider */
    snprintf(out, sizeof(out), "%s", base);
    for (i = (int) strlen(out); i > 8 && out[i - 1] == '/'; i--) {
        out[i - 1] = '\0';
    }

    v = cJSON_GetObjectItemCaseSensitive(lp, "api_key");
    key = NULL;

    if (ctl_text(v)) {
        key = ctl_import_secret(im, ctl_text(v));

    } else if (v && !cJSON_IsNull(v)) {
        llmp_errors_add(&im->skipped, "%s.litellm_params.api_key: expected "
                        "a string", path);

    } else if (kind->key_env) {
        /* LiteLLM falls back to the provider's usual variable */
        key = malloc(strlen(kind->key_env) + 5);
        if (key) {
            sprintf(key, "env:%s", kind->key_env);
        }
    }

    headers = cJSON_GetObjectItemCaseSensitive(lp, "extra_headers");

    if (headers && !cJSON_IsObject(headers)) {
        llmp_errors_add(&im->skipped, "%s.litellm_params.extra_headers: "
                        "expected a mapping", path);
        headers = NULL;
    }

    prov = ctl_import_provider(im, prefix, kind->iface, out, key, headers,
                                name, pname, sizeof(pname));
    free(key);

    if (prov == NULL) {
        llmp_errors_add(&im->skipped, "%s: out of memory", path);
        return;
    }

    models = cJSON_GetObjectItemCaseSensitive(prov, "models");
    model = cJSON_AddObjectToObject(models, name);
    if (model == NULL) {
        return;
    }

    im->deployments++;
    cJSON_AddTrueToObject(im->models, name);

    snprintf(out, sizeof(out), "providers.%s.models.%s", pname, name);

    if (strcmp(upstream, name) != 0) {
        cJSON_AddStringToObject(model, "model", upstream);
    }

    /* limits and weight (the Router also takes rpm/tpm beside the params) */

    for (i = 0; i < 5; i++) {
        s = i % 3 == 0 ? "rpm" : i % 3 == 1 ? "tpm" : "weight";
        v = cJSON_GetObjectItemCaseSensitive(i < 3 ? lp : entry, s);
        if (v == NULL || (i >= 3 && cJSON_HasObjectItem(lp, s))) {
            continue;
        }

        snprintf(src, sizeof(src), "%s%s.%s", path,
                 i < 3 ? ".litellm_params" : "", s);

        if (!ctl_num(v, &d) || d < 0 || d != floor(d)
            || (i == 2 && d < 1))
        {
            llmp_errors_add(&im->skipped, "%s: llmproxy takes a whole "
                            "number%s here", src, i == 2 ? " of 1 or more"
                                                         : "");
            continue;
        }

        ctl_import_number(im, model, out, s, d, src);
    }

    /* timeouts: the whole request, and a stream's wait for the next bytes */

    for (i = 0; i < 2; i++) {
        s = i == 0 ? "timeout" : "stream_timeout";
        v = cJSON_GetObjectItemCaseSensitive(lp, s);
        if (v == NULL) {
            continue;
        }

        snprintf(src, sizeof(src), "%s.litellm_params.%s", path, s);

        if (!ctl_num(v, &d) || d <= 0) {
            llmp_errors_add(&im->skipped, "%s: expected seconds", src);
            continue;
        }

        ctl_import_number(im, model, out,
                           i == 0 ? "request_timeout_seconds"
                                  : "stream_idle_timeout_seconds", d, src);
    }

    /* custom prices in litellm_params, then model_info (which wins) */

    snprintf(src, sizeof(src), "%s.litellm_params", path);
    ctl_import_prices(im, model, out, lp, src);

    cJSON_ArrayForEach(v, lp) {
        if (!ctl_is_known(v->string, lp_known)) {
            llmp_errors_add(&im->skipped, "%s.litellm_params.%s: no "
                            "counterpart in llmproxy", path, v->string);
        }
    }

    if (info && !cJSON_IsObject(info)) {
        llmp_errors_add(&im->skipped, "%s.model_info: expected a mapping",
                        path);
        info = NULL;
    }

    snprintf(src, sizeof(src), "%s.model_info", path);
    ctl_import_prices(im, model, out, info, src);

    groups = cJSON_GetObjectItemCaseSensitive(info, "access_groups");

    if (groups) {
        snprintf(src, sizeof(src), "%s.model_info.access_groups", path);
        v = NULL;

        if (cJSON_IsArray(groups)) {
            cJSON_ArrayForEach(v, groups) {
                if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
                    break;
                }
            }
        }

        if (!cJSON_IsArray(groups) || v) {
            llmp_errors_add(&im->skipped, "%s: expected a list of names",
                            src);

        } else {
            cJSON_AddItemToObject(model, "access_groups",
                                  cJSON_Duplicate(groups, 1));
        }
    }

    cJSON_ArrayForEach(v, info) {
        if (!ctl_is_known(v->string, info_known)) {
            llmp_errors_add(&im->skipped, "%s.model_info.%s: no counterpart "
                            "in llmproxy", path, v->string);
        }
    }

    cJSON_ArrayForEach(v, entry) {
        if (strcmp(v->string, "model_name") != 0
            && strcmp(v->string, "litellm_params") != 0
            && strcmp(v->string, "model_info") != 0
            && strcmp(v->string, "rpm") != 0
            && strcmp(v->string, "tpm") != 0)
        {
            llmp_errors_add(&im->skipped, "%s.%s: no counterpart in "
                            "llmproxy", path, v->string);
        }
    }
}


/* a setting of router_settings / litellm_settings that has a counterpart */

static void
ctl_import_setting(ctl_import_t *im, const cJSON *v, const char *src,
    const char *name, int integer)
{
    char    out[128];
    double  d;
    cJSON  *settings;

    if (!ctl_num(v, &d) || d < 0 || (integer && d != floor(d))) {
        llmp_errors_add(&im->skipped, "%s: expected a%s number", src,
                        integer ? " whole" : "");
        return;
    }

    settings = cJSON_GetObjectItemCaseSensitive(im->base, "settings");
    if (settings == NULL) {
        settings = cJSON_AddObjectToObject(im->base, "settings");
    }

    cJSON_DeleteItemFromObjectCaseSensitive(settings, name);
    cJSON_AddNumberToObject(settings, name, d);
    snprintf(out, sizeof(out), "settings.%s", name);
    ctl_origin(im, out, src, settings, name);
}


static int
ctl_import_is_target(ctl_import_t *im, const char *name)
{
    return cJSON_HasObjectItem(im->models, name)
           || cJSON_HasObjectItem(cJSON_GetObjectItemCaseSensitive(im->base,
                                      "aliases"), name);
}


/* fallbacks: [{"gpt-4": ["gpt-3.5"]}] (or one mapping) */

static void
ctl_import_fallbacks(ctl_import_t *im, const cJSON *list, const char *path)
{
    int          i;
    char         src[2 * LLMP_IMPORT_PATH];
    cJSON       *fallbacks, *arr;
    const cJSON  *m, *f, *t;

    fallbacks = cJSON_GetObjectItemCaseSensitive(im->base, "fallbacks");

    for (i = 0, m = cJSON_IsArray(list) ? list->child : list; m;
         m = cJSON_IsArray(list) ? m->next : NULL, i++)
    {
        if (!cJSON_IsObject(m)) {
            llmp_errors_add(&im->skipped, "%s[%d]: expected a mapping of "
                            "model to fallback list", path, i);
            continue;
        }

        cJSON_ArrayForEach(f, m) {
            if (cJSON_IsArray(list)) {
                snprintf(src, sizeof(src), "%s[%d].%s", path, i, f->string);

            } else {
                snprintf(src, sizeof(src), "%s.%s", path, f->string);
            }

            if (!ctl_import_is_target(im, f->string)) {
                llmp_errors_add(&im->skipped, "%s: model \"%s\" was not "
                                "imported", src, f->string);
                continue;
            }

            if (!cJSON_IsArray(f)) {
                llmp_errors_add(&im->skipped, "%s: expected a list of "
                                "models", src);
                continue;
            }

            if (fallbacks == NULL) {
                fallbacks = cJSON_AddObjectToObject(im->base, "fallbacks");
            }

            cJSON_DeleteItemFromObjectCaseSensitive(fallbacks, f->string);
            arr = cJSON_AddArrayToObject(fallbacks, f->string);

            cJSON_ArrayForEach(t, f) {
                if (cJSON_IsString(t)
                    && strcmp(t->valuestring, f->string) == 0)
                {
                    llmp_errors_add(&im->skipped, "%s: falls back to "
                                    "itself", src);
                    continue;
                }

                if (!cJSON_IsString(t)
                    || !ctl_import_is_target(im, t->valuestring))
                {
                    llmp_errors_add(&im->skipped, "%s: fallback \"%s\" is "
                                    "not an imported model", src,
                                    ctl_text(t) ? ctl_text(t) : "?");
                    continue;
                }

                cJSON_AddItemToArray(arr,
                                     cJSON_CreateString(t->valuestring));
            }

            if (cJSON_GetArraySize(arr) == 0) {
                cJSON_DeleteItemFromObjectCaseSensitive(fallbacks,
                                                        f->string);
            }
        }
    }
}


/* model_group_alias: {"alias": "model"} or {"alias": {"model": ...}} */

static void
ctl_import_aliases(ctl_import_t *im, const cJSON *map, const char *path)
{
    char         src[LLMP_IMPORT_PATH];
    cJSON       *aliases;
    const char  *target;
    const cJSON  *a, *v;

    if (!cJSON_IsObject(map)) {
        llmp_errors_add(&im->skipped, "%s: expected a mapping", path);
        return;
    }

    cJSON_ArrayForEach(a, map) {
        snprintf(src, sizeof(src), "%s.%s", path, a->string);
        target = ctl_text(a);

        if (cJSON_IsObject(a)) {
            target = ctl_text(cJSON_GetObjectItemCaseSensitive(a, "model"));

            cJSON_ArrayForEach(v, a) {
                if (strcmp(v->string, "model") != 0) {
                    llmp_errors_add(&im->skipped, "%s.%s: no counterpart in "
                                    "llmproxy (aliases are listed in "
                                    "/v1/models)", src, v->string);
                }
            }
        }

        if (target == NULL || !cJSON_HasObjectItem(im->models, target)) {
            llmp_errors_add(&im->skipped, "%s: target \"%s\" is not an "
                            "imported model", src, target ? target : "?");
            continue;
        }

        if (cJSON_HasObjectItem(im->models, a->string)) {
            llmp_errors_add(&im->skipped, "%s: \"%s\" is already a model "
                            "name", src, a->string);
            continue;
        }

        aliases = cJSON_GetObjectItemCaseSensitive(im->base, "aliases");
        if (aliases == NULL) {
            aliases = cJSON_AddObjectToObject(im->base, "aliases");
        }

        cJSON_DeleteItemFromObjectCaseSensitive(aliases, a->string);
        cJSON_AddStringToObject(aliases, a->string, target);
    }
}


static void
ctl_import_settings(ctl_import_t *im, const cJSON *root, const char *sect)
{
    char         src[LLMP_IMPORT_PATH];
    const cJSON  *s, *v;

    s = cJSON_GetObjectItemCaseSensitive(root, sect);
    if (s == NULL || cJSON_IsNull(s)) {
        return;
    }

    if (!cJSON_IsObject(s)) {
        llmp_errors_add(&im->skipped, "%s: expected a mapping", sect);
        return;
    }

    cJSON_ArrayForEach(v, s) {
        snprintf(src, sizeof(src), "%s.%s", sect, v->string);

        if (strcmp(v->string, "num_retries") == 0
            || strcmp(v->string, "allowed_fails") == 0)
        {
            ctl_import_setting(im, v, src, v->string, 1);

        } else if (strcmp(v->string, "cooldown_time") == 0) {
            ctl_import_setting(im, v, src, "cooldown_seconds", 0);

        } else if (strcmp(v->string, "timeout") == 0
                   || strcmp(v->string, "request_timeout") == 0)
        {
            ctl_import_setting(im, v, src, "request_timeout_seconds", 0);

        } else if (strcmp(v->string, "stream_timeout") == 0) {
            ctl_import_setting(im, v, src, "stream_idle_timeout_seconds", 0);

        } else if (strcmp(v->string, "fallbacks") == 0) {
            ctl_import_fallbacks(im, v, src);

        } else if (strcmp(v->string, "model_group_alias") == 0) {
            /* read before the fallbacks: see ctl_import_litellm() */
            continue;

        } else if (strcmp(v->string, "routing_strategy") == 0) {
            llmp_errors_add(&im->skipped, "%s: llmproxy spreads requests by "
                            "weighted round-robin (weight, rpm and tpm "
                            "carried over)", src);

        } else {
            llmp_errors_add(&im->skipped, "%s: no counterpart in llmproxy",
                            src);
        }
    }
}


/* cJSON_Print indents with tabs: two spaces read better in config.json */

static int
ctl_import_write(const char *dir, const char *file, const cJSON *doc,
    int mode, int force)
{
    int     fd;
    char    path[LLMP_IMPORT_PATH], *text, *p;
    FILE   *f;
    size_t  tabs;

    snprintf(path, sizeof(path), "%s/%s", dir, file);

    text = cJSON_Print(doc);
    if (text == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (force ? 0 : O_EXCL),
              mode);
    if (fd == -1) {
        fprintf(stderr, "llmproxyctl: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (--force replaces it)" : "");
        free(text);
        return -1;
    }

    /* an existing config.local.json keeps no wider mode than 0600 */
    if (fchmod(fd, mode) != 0 || (f = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
        close(fd);
        free(text);
        return -1;
    }

    for (p = text; *p; p++) {
        if (p == text || p[-1] == '\n') {
            for (tabs = 0; *p == '\t'; p++) {
                tabs++;
            }

            fprintf(f, "%*s", (int) (2 * tabs), "");

            if (*p == '\0') {
                break;
            }
        }

        fputc(*p == '\t' ? ' ' : *p, f);
    }

    fputc('\n', f);
    free(text);

    if (fclose(f) != 0) {
        fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
        return -1;
    }

    printf("wrote %s\n", path);

    return 0;
}


/*
 * Compiles what would be written; fields the compiler does not know are
 * dropped and listed with where they came from.  Returns the number of
 * other problems (printed).
 */

static int
ctl_import_check(ctl_import_t *im)
{
    int            round, dropped, problems;
    char           unknown[LLMP_IMPORT_PATH + 32];
    cJSON         *merged, *compiled;
    size_t         i, j;
    const char    *e;
    llmp_errors_t  errs;

    problems = 0;

    for (round = 0; round < 4; round++) {
        merged = cJSON_Duplicate(im->base, 1);
        if (merged == NULL || llmp_json_merge(merged, im->local) != 0) {
            cJSON_Delete(merged);
            fprintf(stderr, "llmproxyctl: out of memory\n");
            return 1;
        }

        llmp_errors_init(&errs);
        compiled = NULL;
        llmp_config_compile(merged, &errs, &compiled);
        cJSON_Delete(merged);
        cJSON_Delete(compiled);

        dropped = 0;
        problems = 0;

        for (i = 0; i < errs.n; i++) {
            e = errs.items[i];

            for (j = 0; j < im->norigins; j++) {
                snprintf(unknown, sizeof(unknown), "%s: unknown field",
                         im->origins[j].out);

                if (im->origins[j].parent && strcmp(e, unknown) == 0) {
                    llmp_errors_add(&im->skipped, "%s: llmproxy has no %s "
                                    "setting", im->origins[j].src,
                                    im->origins[j].key);
                    cJSON_DeleteItemFromObjectCaseSensitive(
                        im->origins[j].parent, im->origins[j].key);
                    im->origins[j].parent = NULL;
                    dropped++;
                    break;
                }
            }

            if (j < im->norigins) {
                continue;
            }

            /* a key read from a variable that is not set here: fine */
            if (strstr(e, ".api_key: environment variable ")) {
                if (round == 0 || !llmp_errors_has(&im->notes, e)) {
                    if (!llmp_errors_has(&im->notes, e)) {
                        llmp_errors_add(&im->notes, "%s", e);
                    }
                }

                continue;
            }

            if (dropped == 0) {
                problems++;
            }
        }

        if (dropped == 0) {
            for (i = 0; i < errs.n; i++) {
                if (strstr(errs.items[i], ".api_key: environment variable ")
                    == NULL)
                {
                    fprintf(stderr, "llmproxyctl: import: %s\n",
                            errs.items[i]);
                }
            }

            llmp_errors_free(&errs);
            return problems;
        }

        llmp_errors_free(&errs);
    }

    return problems;
}


/*
 * LiteLLM's "include: [file, ...]" (or one file), relative to the config:
 * an included list extends the config's (model_list), anything else
 * replaces it, as LiteLLM's proxy merges them.
 */

static int
ctl_import_includes(cJSON *root, const char *file)
{
    int           n;
    char          path[LLMP_IMPORT_PATH], err[1024];
    cJSON        *inc, *sub, *v, *next, *have;
    const char   *name, *slash;
    const cJSON  *f;

    inc = cJSON_DetachItemFromObjectCaseSensitive(root, "include");
    if (inc == NULL) {
        return 0;
    }

    if (cJSON_IsString(inc)) {
        v = cJSON_CreateArray();
        cJSON_AddItemToArray(v, inc);
        inc = v;
    }

    if (!cJSON_IsArray(inc)) {
        fprintf(stderr, "llmproxyctl: import: %s: include: expected a file "
                "or a list of files\n", file);
        cJSON_Delete(inc);
        return -1;
    }

    slash = strrchr(file, '/');

    cJSON_ArrayForEach(f, inc) {
        name = cJSON_GetStringValue(f);

        if (name == NULL || name[0] == '\0') {
            fprintf(stderr, "llmproxyctl: import: %s: include: expected "
                    "file names\n", file);
            cJSON_Delete(inc);
            return -1;
        }

        n = (name[0] != '/' && slash) ? (int) (slash - file + 1) : 0;
        snprintf(path, sizeof(path), "%.*s%s", n, file, name);

        sub = ctl_yaml_load(path, path, err, sizeof(err));

        if (sub == NULL || !cJSON_IsObject(sub)) {
            fprintf(stderr, "llmproxyctl: import: %s\n",
                    sub ? "an included file must hold a mapping" : err);
            cJSON_Delete(sub);
            cJSON_Delete(inc);
            return -1;
        }

        for (v = sub->child; v; v = next) {
            next = v->next;
            cJSON_DetachItemViaPointer(sub, v);
            have = cJSON_GetObjectItemCaseSensitive(root, v->string);

            if (cJSON_IsArray(have) && cJSON_IsArray(v)) {
                while (v->child) {
                    cJSON_AddItemToArray(have,
                        cJSON_DetachItemViaPointer(v, v->child));
                }

                cJSON_Delete(v);

            } else if (have) {
                cJSON_ReplaceItemViaPointer(root, have, v);

            } else {
                cJSON_AddItemToObject(root, v->string, v);
            }
        }

        cJSON_Delete(sub);
    }

    cJSON_Delete(inc);

    return 0;
}


static int
ctl_import_litellm(int argc, char **argv)
{
    int           c, force, rc, i, nprov;
    char          err[1024];
    cJSON        *root, *settings;
    size_t        k;
    const char   *dir, *file;
    const cJSON  *v, *list, *alias;
    ctl_import_t im;

    static const struct option  opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    dir = ".";
    force = 0;
    optind = 1;

    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'f': force = 1; break;

        case 'h':
            ctl_import_help(stdout);
            return LLMP_EXIT_OK;

        default:
            ctl_import_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind + 1 != argc) {
        ctl_import_help(stderr);
        return LLMP_EXIT_INVALID;
    }

    file = argv[optind];

    root = ctl_yaml_load(file, file, err, sizeof(err));
    if (root == NULL) {
        fprintf(stderr, "llmproxyctl: import: %s\n", err);
        return LLMP_EXIT_INVALID;
    }

    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "llmproxyctl: import: %s: expected a mapping at the "
                "top (model_list, router_settings, ...)\n", file);
        cJSON_Delete(root);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_import_includes(root, file) != 0) {
        cJSON_Delete(root);
        return LLMP_EXIT_INVALID;
    }

    memset(&im, 0, sizeof(ctl_import_t));
    llmp_errors_init(&im.skipped);
    llmp_errors_init(&im.notes);
    im.base = cJSON_CreateObject();
    im.local = cJSON_CreateObject();
    im.groups = cJSON_CreateObject();
    im.models = cJSON_CreateObject();
    im.env = cJSON_GetObjectItemCaseSensitive(root, "environment_variables");
    im.credentials = cJSON_GetObjectItemCaseSensitive(root,
                                                      "credential_list");

    if (im.base == NULL || im.local == NULL || im.groups == NULL
        || im.models == NULL
        || cJSON_AddObjectToObject(im.base, "providers") == NULL)
    {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        rc = LLMP_EXIT_FAILED;
        goto done;
    }

    list = cJSON_GetObjectItemCaseSensitive(root, "model_list");

    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        fprintf(stderr, "llmproxyctl: import: %s: no model_list\n", file);
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    i = 0;
    cJSON_ArrayForEach(v, list) {
        ctl_import_deployment(&im, v, i++);
    }

    /* aliases first: a fallback may name one */

    for (i = 0; i < 2; i++) {
        alias = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(root,
                        i == 0 ? "router_settings" : "litellm_settings"),
                    "model_group_alias");
        if (alias) {
            ctl_import_aliases(&im, alias, i == 0
                                ? "router_settings.model_group_alias"
                                : "litellm_settings.model_group_alias");
        }
    }

    /* router_settings win over litellm_settings, as in LiteLLM's router */
    ctl_import_settings(&im, root, "litellm_settings");
    ctl_import_settings(&im, root, "router_settings");

    cJSON_ArrayForEach(v, root) {
        if (strcmp(v->string, "model_list") == 0
            || strcmp(v->string, "credential_list") == 0
            || strcmp(v->string, "router_settings") == 0
            || strcmp(v->string, "litellm_settings") == 0)
        {
            continue;
        }

        if (strcmp(v->string, "general_settings") == 0
            && cJSON_IsObject(v))
        {
            const cJSON  *g;

            cJSON_ArrayForEach(g, v) {
                llmp_errors_add(&im.skipped, "general_settings.%s: %s",
                    g->string,
                    strcmp(g->string, "master_key") == 0
                    ? "set llmproxy's own (LLMPROXY_MASTER_KEY or "
                      "llmproxy_master_key_file)"
                    : strcmp(g->string, "database_url") == 0
                    ? "`import litellm-keys` reads the keys from it"
                    : "no counterpart in llmproxy");
            }

            continue;
        }

        if (strcmp(v->string, "environment_variables") == 0
            && cJSON_IsObject(v))
        {
            const cJSON  *g;

            cJSON_ArrayForEach(g, v) {
                llmp_errors_add(&im.skipped, "environment_variables.%s: "
                                "not set for llmproxy (only used where a "
                                "key or api_base named it)", g->string);
            }

            continue;
        }

        llmp_errors_add(&im.skipped, "%s: no counterpart in llmproxy",
                        v->string);
    }

    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
                               "providers")) == 0)
    {
        for (k = 0; k < im.skipped.n; k++) {
            fprintf(stderr, "  %s\n", im.skipped.items[k]);
        }

        fprintf(stderr, "llmproxyctl: import: %s: no model could be carried "
                "over\n", file);
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    if (ctl_import_check(&im) != 0) {
        fprintf(stderr, "llmproxyctl: import: nothing written\n");
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    settings = cJSON_GetObjectItemCaseSensitive(im.base, "settings");
    if (settings && cJSON_GetArraySize(settings) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(im.base, "settings");
    }

    rc = LLMP_EXIT_FAILED;

    if (ctl_import_write(dir, "config.json", im.base, 0644, force) != 0) {
        goto done;
    }

    if (cJSON_GetArraySize(im.local) > 0
        && ctl_import_write(dir, "config.local.json", im.local, 0600,
                             force) != 0)
    {
        goto done;
    }

    nprov = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
                                   "providers"));

    printf("imported %d deployment%s of %d model%s into %d provider%s, "
           "%d alias%s, %d fallback%s\n",
           im.deployments, im.deployments == 1 ? "" : "s",
           cJSON_GetArraySize(im.models),
           cJSON_GetArraySize(im.models) == 1 ? "" : "s",
           nprov, nprov == 1 ? "" : "s",
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
               "aliases")),
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
               "aliases")) == 1 ? "" : "es",
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
               "fallbacks")),
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im.base,
               "fallbacks")) == 1 ? "" : "s");

    if (im.skipped.n) {
        printf("not carried over (%zu):\n", im.skipped.n);

        for (k = 0; k < im.skipped.n; k++) {
            printf("  %s\n", im.skipped.items[k]);
        }
    }

    for (k = 0; k < im.notes.n; k++) {
        printf("note: %s\n", im.notes.items[k]);
    }

    rc = LLMP_EXIT_OK;

done:

    for (k = 0; k < im.norigins; k++) {
        free(im.origins[k].out);
        free(im.origins[k].src);
        free(im.origins[k].key);
    }

    free(im.origins);
    llmp_errors_free(&im.skipped);
    llmp_errors_free(&im.notes);
    cJSON_Delete(im.base);
    cJSON_Delete(im.local);
    cJSON_Delete(im.groups);
    cJSON_Delete(im.models);
    cJSON_Delete(root);

    return rc;
}


int
ctl_cmd_import(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0)
    {
        ctl_import_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? LLMP_EXIT_INVALID : LLMP_EXIT_OK;
    }

    if (strcmp(argv[1], "litellm") == 0) {
        return ctl_import_litellm(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "litellm-keys") == 0) {
        return ctl_import_litellm_keys(argc - 1, argv + 1);
    }

    fprintf(stderr, "llmproxyctl: import: unknown source \"%s\" (litellm, "
            "litellm-keys)\n", argv[1]);
    ctl_import_help(stderr);

    return LLMP_EXIT_INVALID;
}

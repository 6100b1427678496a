/*
 * llmproxyctl sync: validate config.json, compare it with what the gateway
 * has, print the plan and apply it.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "llmp_config.h"


enum {
    LLMP_KIND_CREDENTIALS = 0x01,
    LLMP_KIND_MODELS = 0x02,
    LLMP_KIND_ALIASES = 0x04,
    LLMP_KIND_FALLBACKS = 0x08,
    LLMP_KIND_SETTINGS = 0x10,
    LLMP_KIND_ALL = 0x1f
};


typedef struct {
    unsigned   only;
    int        force;
    int        prune;
    int        dry_run;
    int        created;
    int        changed;
    int        removed;
    int        unchanged;
    int        kept;
} llmp_plan_t;


static const char *const  llmp_kind_names[] = {
    "credentials", "models", "aliases", "fallbacks", "settings", NULL
};


static void
llmp_sync_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl sync [-c config.json] [--only KINDS] [--force]\n"
        "                        [--prune] [--dry-run] [--gateway URL]\n"
        "                        [--master-key-file FILE]\n\n"
        "Validates config.json (and config.local.json beside it), compares\n"
        "it with what the gateway has loaded, prints the plan and applies "
        "it.\n\n"
        "  -c, --config FILE   config file (LLMPROXY_CONFIG, "
        "configs/config.json)\n"
        "  --only KINDS        credentials,models,aliases,fallbacks,"
        "settings\n"
        "  --force             update entries that exist but differ\n"
        "  --prune             remove entries the config no longer has\n"
        "  --dry-run           print the plan, apply nothing\n"
        "  --gateway URL       gateway address (LLMPROXY_GATEWAY_URL)\n"
        "  --master-key-file F master key (LLMPROXY_MASTER_KEY, "
        "var/master_key)\n\n"
        "Plan: + create, ~ change, - remove, = unchanged.\n");
}


static int
llmp_parse_kinds(const char *s, unsigned *out)
{
    int          i, found;
    char        *copy, *tok, *save;

    *out = 0;

    copy = strdup(s);
    if (copy == NULL) {
        return -1;
    }

    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
    {
        found = 0;

        for (i = 0; llmp_kind_names[i]; i++) {
            if (strcmp(tok, llmp_kind_names[i]) == 0) {
                *out |= 1u << i;
                found = 1;
            }
        }

        if (!found) {
            fprintf(stderr, "llmproxyctl: --only: unknown kind \"%s\" "
                    "(credentials, models, aliases, fallbacks, settings)\n",
                    tok);
            free(copy);
            return -1;
        }
    }

    free(copy);

    return *out ? 0 : -1;
}


static int
llmp_same(const cJSON *a, const cJSON *b)
{
    int     same;
    cJSON  *ca, *cb;

    ca = cJSON_Duplicate(a, 1);
    cb = cJSON_Duplicate(b, 1);

    if (cJSON_IsObject(ca)) {
        cJSON_DeleteItemFromObjectCaseSensitive(ca, "api_key");
        cJSON_DeleteItemFromObjectCaseSensitive(ca, "resolved");
        cJSON_DeleteItemFromObjectCaseSensitive(ca, "resolve_error");
    }

    if (cJSON_IsObject(cb)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cb, "api_key");
        cJSON_DeleteItemFromObjectCaseSensitive(cb, "resolved");
        cJSON_DeleteItemFromObjectCaseSensitive(cb, "resolve_error");
    }

    same = cJSON_Compare(ca, cb, 1);

    cJSON_Delete(ca);
    cJSON_Delete(cb);

    return same;
}


static const cJSON *
llmp_find(const cJSON *list, const char *key, const char *name)
{
    const cJSON  *item, *v;

    if (cJSON_IsObject(list)) {
        return cJSON_GetObjectItemCaseSensitive(list, name);
    }

    cJSON_ArrayForEach(item, list) {
        v = cJSON_GetObjectItemCaseSensitive(item, key);
        if (cJSON_IsString(v) && strcmp(v->valuestring, name) == 0) {
            return item;
        }
    }

    return NULL;
}


static const char *
llmp_entry_name(const cJSON *item, const char *key)
{
    const cJSON  *v;

    if (key == NULL) {
        return item->string;
    }

    v = cJSON_GetObjectItemCaseSensitive(item, key);

    return cJSON_IsString(v) ? v->valuestring : "?";
}


static void
llmp_put(cJSON *result, const cJSON *item, const char *key)
{
    cJSON  *copy;

    copy = cJSON_Duplicate(item, 1);
    if (copy == NULL) {
        return;
    }

    if (key == NULL) {
        cJSON_AddItemToObject(result, item->string, copy);

    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "resolved");
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "resolve_error");
        cJSON_AddItemToArray(result, copy);
    }
}


/* one kind: stored and local lists (arrays keyed by `key`, or objects) */

static cJSON *
llmp_plan_kind(llmp_plan_t *plan, unsigned kind, const char *label,
    const cJSON *stored, const cJSON *local, const char *key)
{
    int           selected;
    cJSON        *result;
    const cJSON  *l, *s;
    const char   *name;

    selected = (plan->only & kind) != 0;
    result = key ? cJSON_CreateArray() : cJSON_CreateObject();

    if (result == NULL) {
        return NULL;
    }

    cJSON_ArrayForEach(l, local) {
        name = llmp_entry_name(l, key);
        s = stored ? llmp_find(stored, key, name) : NULL;

        if (s == NULL) {
            if (selected) {
                printf("+ %s %s\n", label, name);
                plan->created++;
                llmp_put(result, l, key);
            }

            continue;
        }

        if (llmp_same(l, s)) {
            if (selected) {
                printf("= %s %s\n", label, name);
                plan->unchanged++;
            }

            llmp_put(result, l, key);
            continue;
        }

        if (selected && plan->force) {
            printf("~ %s %s\n", label, name);
            plan->changed++;
            llmp_put(result, l, key);
            continue;
        }

        if (selected) {
            printf("~ %s %s (differs; kept as stored, --force updates it)\n",
                   label, name);
            plan->kept++;
        }

        llmp_put(result, s, key);
    }

    cJSON_ArrayForEach(s, stored) {
        name = llmp_entry_name(s, key);

        if (llmp_find(local, key, name)) {
            continue;
        }

        if (selected && plan->prune) {
            printf("- %s %s\n", label, name);
            plan->removed++;
            continue;
        }

        if (selected) {
            printf("= %s %s (not in the config, kept; --prune removes it)\n",
                   label, name);
            plan->unchanged++;
        }

        llmp_put(result, s, key);
    }

    return result;
}


static cJSON *
llmp_plan(llmp_plan_t *plan, const cJSON *stored, const cJSON *local)
{
    cJSON        *result, *part;
    const cJSON  *ls, *ss;

#define LLMP_PART(kind, label, member, key)                                  \
    part = llmp_plan_kind(plan, kind, label,                                 \
               cJSON_GetObjectItemCaseSensitive(stored, member),             \
               cJSON_GetObjectItemCaseSensitive(local, member), key);        \
    if (part == NULL) {                                                      \
        cJSON_Delete(result);                                                \
        return NULL;                                                         \
    }                                                                        \
    cJSON_AddItemToObject(result, member, part);

    result = cJSON_CreateObject();
    if (result == NULL) {
        return NULL;
    }

    cJSON_AddNumberToObject(result, "format", 1);
    cJSON_AddStringToObject(result, "config_sha256", "");

    ls = cJSON_GetObjectItemCaseSensitive(local, "settings");
    ss = cJSON_GetObjectItemCaseSensitive(stored, "settings");

    if (ss == NULL || ((plan->only & LLMP_KIND_SETTINGS)
                       && (plan->force || llmp_same(ls, ss))))
    {
        if (plan->only & LLMP_KIND_SETTINGS) {
            printf("%c settings\n", ss == NULL ? '+'
                                    : llmp_same(ls, ss) ? '=' : '~');

            if (ss == NULL) {
                plan->created++;

            } else if (llmp_same(ls, ss)) {
                plan->unchanged++;

            } else {
                plan->changed++;
            }
        }

        cJSON_AddItemToObject(result, "settings", cJSON_Duplicate(ls, 1));

    } else {
        if (plan->only & LLMP_KIND_SETTINGS) {
            printf("~ settings (differ; kept as stored, --force updates "
                   "them)\n");
            plan->kept++;
        }

        cJSON_AddItemToObject(result, "settings", cJSON_Duplicate(ss, 1));
    }

    LLMP_PART(LLMP_KIND_CREDENTIALS, "credentials", "providers", "name");
    LLMP_PART(LLMP_KIND_MODELS, "model", "deployments", "id");
    LLMP_PART(LLMP_KIND_ALIASES, "alias", "aliases", NULL);
    LLMP_PART(LLMP_KIND_FALLBACKS, "fallback", "fallbacks", NULL);

#undef LLMP_PART

    return result;
}


int
llmp_cmd_sync(int argc, char **argv)
{
    int                    c, rc;
    char                  *key, *body, url[600];
    size_t                 i;
    cJSON                 *local, *stored, *result, *gen;
    const char            *config, *gateway, *key_file;
    llmp_plan_t            plan;
    llmp_errors_t          errs;
    llmp_http_response_t   resp;

    static const struct option  opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "only", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' },
        { "prune", no_argument, NULL, 'p' },
        { "dry-run", no_argument, NULL, 'n' },
        { "gateway", required_argument, NULL, 'g' },
        { "master-key-file", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&plan, 0, sizeof(llmp_plan_t));
    plan.only = LLMP_KIND_ALL;

    config = getenv("LLMPROXY_CONFIG");
    if (config == NULL || config[0] == '\0') {
        config = "configs/config.json";
    }

    gateway = NULL;
    key_file = NULL;

    optind = 1;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'f': plan.force = 1; break;
        case 'p': plan.prune = 1; break;
        case 'n': plan.dry_run = 1; break;
        case 'g': gateway = optarg; break;
        case 'k': key_file = optarg; break;
        case 'h': llmp_sync_help(stdout); return LLMP_EXIT_OK;

        case 'o':
            if (llmp_parse_kinds(optarg, &plan.only) != 0) {
                return LLMP_EXIT_INVALID;
            }

            break;

        default:
            llmp_sync_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: sync: unexpected argument \"%s\"\n",
                argv[optind]);
        return LLMP_EXIT_INVALID;
    }

    /* validate first: on any error nothing is applied */

    llmp_errors_init(&errs);

    local = llmp_config_load(config, &errs);

    if (local == NULL) {
        for (i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.items[i]);
        }

        fprintf(stderr, "llmproxyctl: %zu problem%s in %s: nothing "
                "applied\n", errs.n, errs.n == 1 ? "" : "s", config);
        llmp_errors_free(&errs);
        return LLMP_EXIT_INVALID;
    }

    key = llmp_master_key(key_file);

    if (key == NULL) {
        fprintf(stderr, "llmproxyctl: sync needs the master key: set "
                "LLMPROXY_MASTER_KEY, or --master-key-file, or "
                "var/master_key\n");
        cJSON_Delete(local);
        return LLMP_EXIT_INVALID;
    }

    snprintf(url, sizeof(url), "%s/llmproxy/admin/config",
             llmp_gateway_url(gateway));

    if (llmp_http("GET", url, key, NULL, &resp) != 0) {
        free(key);
        cJSON_Delete(local);
        return LLMP_EXIT_FAILED;
    }

    stored = NULL;

    if (resp.status == 200) {
        stored = cJSON_Parse(resp.body);

    } else if (resp.status != 404) {
        fprintf(stderr, "llmproxyctl: gateway refused: %s\n",
                llmp_http_error_message(&resp));
        llmp_http_free(&resp);
        free(key);
        cJSON_Delete(local);
        return resp.status == 401 ? LLMP_EXIT_INVALID : LLMP_EXIT_FAILED;
    }

    llmp_http_free(&resp);

    result = llmp_plan(&plan, stored, local);
    cJSON_Delete(stored);
    cJSON_Delete(local);

    rc = LLMP_EXIT_OK;

    if (result == NULL || llmp_compiled_check(result, &errs) != 0) {
        for (i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.items[i]);
        }

        fprintf(stderr, "llmproxyctl: the plan leaves the config "
                "inconsistent (try --only with more kinds, or --prune): "
                "nothing applied\n");
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    printf("%d to create, %d to change, %d to remove, %d unchanged",
           plan.created, plan.changed, plan.removed, plan.unchanged);

    if (plan.kept) {
        printf(", %d differ%s but kept", plan.kept,
               plan.kept == 1 ? "s" : "");
    }

    printf("\n");

    if (plan.dry_run) {
        printf("dry run: nothing applied\n");
        goto done;
    }

    if (plan.created + plan.changed + plan.removed == 0) {
        printf("nothing to apply\n");
        goto done;
    }

    if (llmp_compiled_seal(result) != 0
        || (body = cJSON_PrintUnformatted(result)) == NULL)
    {
        rc = LLMP_EXIT_FAILED;
        goto done;
    }

    if (llmp_http("POST", url, key, body, &resp) != 0) {
        free(body);
        rc = LLMP_EXIT_FAILED;
        goto done;
    }

    free(body);

    if (resp.status != 200) {
        fprintf(stderr, "llmproxyctl: the gateway refused the config: %s\n",
                llmp_http_error_message(&resp));
        rc = resp.status < 500 ? LLMP_EXIT_INVALID : LLMP_EXIT_FAILED;
        llmp_http_free(&resp);
        goto done;
    }

    stored = cJSON_Parse(resp.body);
    gen = cJSON_GetObjectItemCaseSensitive(stored, "generation");

    printf("applied (generation %d)\n",
           cJSON_IsNumber(gen) ? gen->valueint : 0);

    cJSON_Delete(stored);
    llmp_http_free(&resp);

done:

    cJSON_Delete(result);
    llmp_errors_free(&errs);
    free(key);

    return rc;
}

/*
 * llmproxyctl sync: validate config.json, compare it with what is stored,
 * print the plan and apply it.  With a database the config is stored
 * there (config_store.c) and every gateway sharing it loads it; without
 * one it is pushed to the gateway's admin API.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cli.h"
#include "llmp_config.h"


#define LLMP_SYNC_WAIT_MS   10000
#define LLMP_SYNC_POLL_MS   200


#define LLMP_KIND_CREDENTIALS  0x01
#define LLMP_KIND_MODELS       0x02
#define LLMP_KIND_ALIASES      0x04
#define LLMP_KIND_FALLBACKS    0x08
#define LLMP_KIND_SETTINGS     0x10
#define LLMP_KIND_ALL          0x1f


typedef struct {
    unsigned      only;
    int           force;
    int           prune;
    int           dry_run;
    int           created;
    int           changed;
    int           removed;
    int           unchanged;
    int           kept;            /* differ, kept as stored */
    int           resealed;        /* encrypted again, same config */
    const cJSON  *local;           /* the compiled config.json */
    const cJSON  *stale;           /* providers another salt key encrypted */
} ctl_plan_t;


typedef struct {
    const char  *config;
    const char  *gateway;
    const char  *key_file;
    const char  *database;
} ctl_sync_opts_t;


typedef struct {
    unsigned     kind;
    const char  *option;           /* --only name */
    const char  *label;            /* in plan lines */
    const char  *member;           /* in the compiled document */
    const char  *key;              /* array entries: their name member */
} ctl_kind_t;


static const ctl_kind_t  ctl_kinds[] = {
    { LLMP_KIND_CREDENTIALS, "credentials", "credential", "providers",
      "name" },
    { LLMP_KIND_MODELS, "models", "model", "deployments", "id" },
    { LLMP_KIND_ALIASES, "aliases", "alias", "aliases", NULL },
    { LLMP_KIND_FALLBACKS, "fallbacks", "fallback", "fallbacks", NULL },
    { LLMP_KIND_SETTINGS, "settings", "settings", "settings", NULL },
    { 0, NULL, NULL, NULL, NULL }
};


/* what the gateway adds to the providers it reports */
static const char *const  ctl_annotations[] = {
    "resolved", "resolve_error", NULL
};


static void
ctl_sync_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl sync [-c config.json] [--only KINDS] [--force]\n"
        "                        [--prune] [--dry-run] [--database URL]\n"
        "                        [--gateway URL] [--master-key-file FILE]\n\n"
        "Validates config.json (and config.local.json beside it), compares\n"
        "it with what is stored, prints the plan and applies it.  On any\n"
        "validation error nothing is applied.\n\n"
        "With a database (--database, else $LLMPROXY_DATABASE_URL) the\n"
        "config is stored there, provider keys encrypted with\n"
        "$LLMPROXY_SALT_KEY, and every gateway sharing the database loads\n"
        "it; sync then waits up to 10 s for the gateway to report it.\n"
        "Without one it is pushed to the gateway's admin API.\n\n"
        "  -c, --config FILE       config file (else $LLMPROXY_CONFIG, else\n"
        "                          configs/config.json)\n"
        "  --only KINDS            credentials,models,aliases,fallbacks,"
        "settings\n"
        "  --force                 update entries that exist but differ\n"
        "  --prune                 remove entries the config no longer has\n"
        "  --dry-run               print the plan, apply nothing\n"
        "  --database URL          PostgreSQL URI (else "
        "$LLMPROXY_DATABASE_URL,\n"
        "                          else llmproxy_database in "
        "var/nginx.conf)\n"
        "  --gateway URL           gateway address (else "
        "$LLMPROXY_GATEWAY_URL,\n"
        "                          http://$LLMPROXY_LISTEN, "
        "http://127.0.0.1:4000)\n"
        "  --master-key-file FILE  master key (else $LLMPROXY_MASTER_KEY,\n"
        "                          else var/master_key)\n\n"
        "Plan: + create, ~ change, - remove, = unchanged.  Provider keys\n"
        "and headers another salt key encrypted are encrypted again with\n"
        "$LLMPROXY_SALT_KEY, without --force (\"re-encrypted\").\n"
        "Exit codes: 0 applied (or dry run), 1 invalid config or plan, "
        "2 gateway\nor I/O failure, or a gateway that answered but did not "
        "load the config.\n");
}


static int
ctl_parse_kinds(const char *s, unsigned *out)
{
    int          i;
    size_t       n;
    const char  *end;

    *out = 0;

    while (*s) {
        end = strchr(s, ',');
        n = end ? (size_t) (end - s) : strlen(s);

        for (i = 0; ctl_kinds[i].option; i++) {
            if (strlen(ctl_kinds[i].option) == n
                && strncmp(s, ctl_kinds[i].option, n) == 0)
            {
                break;
            }
        }

        if (ctl_kinds[i].option == NULL) {
            fprintf(stderr, "llmproxyctl: sync: --only: unknown kind "
                    "\"%.*s\" (credentials, models, aliases, fallbacks, "
                    "settings)\n", (int) n, s);
            return -1;
        }

        *out |= ctl_kinds[i].kind;
        s += n + (end != NULL);
    }

    if (*out == 0) {
        fprintf(stderr, "llmproxyctl: sync: --only: no kinds given\n");
        return -1;
    }

    return 0;
}


static void
ctl_strip(cJSON *item, int secret)
{
    int  i;

    if (!cJSON_IsObject(item)) {
        return;
    }

    for (i = 0; ctl_annotations[i]; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(item, ctl_annotations[i]);
    }

    if (secret) {
        cJSON_DeleteItemFromObjectCaseSensitive(item, "api_key");
        cJSON_DeleteItemFromObjectCaseSensitive(item, "headers");
    }
}


/* equal apart from the secrets themselves (their sha256 is compared) */

static int
ctl_same(const cJSON *a, const cJSON *b)
{
    int     same;
    cJSON  *ca, *cb;

    ca = cJSON_Duplicate(a, 1);
    cb = cJSON_Duplicate(b, 1);

    if ((a && ca == NULL) || (b && cb == NULL)) {
        cJSON_Delete(ca);
        cJSON_Delete(cb);
        return 0;
    }

    ctl_strip(ca, 1);
    ctl_strip(cb, 1);

    same = cJSON_Compare(ca, cb, 1);

    cJSON_Delete(ca);
    cJSON_Delete(cb);

    return same;
}


static const cJSON *
ctl_find(const cJSON *list, const char *key, const char *name)
{
    const cJSON  *item, *v;

    if (key == NULL) {
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
ctl_entry_name(const cJSON *item, const char *key)
{
    const cJSON  *v;

    if (key == NULL) {
        return item->string;
    }

    v = cJSON_GetObjectItemCaseSensitive(item, key);

    return cJSON_IsString(v) ? v->valuestring : "?";
}


/*
 * A stored provider kept as it is: the gateway never reports its api_key
 * or its headers.  When the local provider has the same secret (same
 * sha256), it is sent again; otherwise only the digest goes back and the
 * gateway keeps what it has.
 */

static int
ctl_keep_secret_member(ctl_plan_t *plan, cJSON *copy, int warn,
    const char *member, const char *digest)
{
    cJSON        *v;
    const char   *name, *sha, *lsha;
    const cJSON  *local, *lv;

    name = ctl_entry_name(copy, "name");
    sha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(copy,
                                                                digest));

    if (sha == NULL || cJSON_GetObjectItemCaseSensitive(copy, member) != NULL)
    {
        return 0;
    }

    local = ctl_find(cJSON_GetObjectItemCaseSensitive(plan->local,
                                                       "providers"),
                      "name", name);

    lsha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(local,
                                                                 digest));
    lv = cJSON_GetObjectItemCaseSensitive(local, member);

    if (lsha && lv && strcmp(lsha, sha) == 0) {
        v = cJSON_Duplicate(lv, 1);

        if (v == NULL || !cJSON_AddItemToObject(copy, member, v)) {
            cJSON_Delete(v);
            return -1;
        }

        return 0;
    }

    if (local && warn) {
        fprintf(stderr, "llmproxyctl: warning: credential %s: the gateway "
                "keeps its stored %s; new ones are applied only with "
                "--force\n", name, member);
    }

    return 0;
}


static int
ctl_keep_secret(ctl_plan_t *plan, cJSON *copy, int warn)
{
    if (ctl_keep_secret_member(plan, copy, warn, "api_key",
                                "api_key_sha256")
        != 0)
    {
        return -1;
    }

    return ctl_keep_secret_member(plan, copy, warn, "headers",
                                   "headers_sha256");
}


static int
ctl_put(ctl_plan_t *plan, cJSON *result, const cJSON *item,
    const ctl_kind_t *k, int stored, int warn)
{
    cJSON  *copy;

    copy = cJSON_Duplicate(item, 1);
    if (copy == NULL) {
        return -1;
    }

    if (k->key) {
        ctl_strip(copy, 0);
    }

    if (stored && k->kind == LLMP_KIND_CREDENTIALS
        && ctl_keep_secret(plan, copy, warn) != 0)
    {
        cJSON_Delete(copy);
        return -1;
    }

    if (k->key ? !cJSON_AddItemToArray(result, copy)
               : !cJSON_AddItemToObject(result, item->string, copy))
    {
        cJSON_Delete(copy);
        return -1;
    }

    return 0;
}


/*
 * A stored provider whose secrets another salt key encrypted is stored
 * again with the current one: not a config difference, so neither
 * --force nor --only is needed.
 */

static int
ctl_plan_stale(ctl_plan_t *plan, const ctl_kind_t *k, const char *name)
{
    if (k->kind != LLMP_KIND_CREDENTIALS || plan->stale == NULL
        || cJSON_GetObjectItemCaseSensitive(plan->stale, name) == NULL)
    {
        return 0;
    }

    plan->resealed++;

    return 1;
}


/* the entries of one kind that are in the config */

static int
ctl_plan_local(ctl_plan_t *plan, const ctl_kind_t *k, cJSON *result,
    const cJSON *stored, const cJSON *local)
{
    int           selected;
    const cJSON  *l, *s;
    const char   *name;

    selected = (plan->only & k->kind) != 0;

    cJSON_ArrayForEach(l, local) {
        name = ctl_entry_name(l, k->key);
        s = ctl_find(stored, k->key, name);

        if (s == NULL) {
            if (!selected) {
                continue;
            }

            printf("+ %s %s\n", k->label, name);
            plan->created++;

            if (ctl_put(plan, result, l, k, 0, 0) != 0) {
                return -1;
            }

            continue;
        }

        if (ctl_same(l, s)) {
            if (ctl_plan_stale(plan, k, name)) {
                printf("~ %s %s (re-encrypted: salt key changed)\n",
                       k->label, name);

            } else if (selected) {
                printf("= %s %s\n", k->label, name);
                plan->unchanged++;
            }

            if (ctl_put(plan, result, l, k, 0, 0) != 0) {
                return -1;
            }

            continue;
        }

        if (selected && plan->force) {
            printf("~ %s %s\n", k->label, name);
            plan->changed++;

            if (ctl_put(plan, result, l, k, 0, 0) != 0) {
                return -1;
            }

            continue;
        }

        if (ctl_plan_stale(plan, k, name)) {
            printf("~ %s %s (%sre-encrypted: salt key changed)\n",
                   k->label, name,
                   selected ? "changed; use --force to update; " : "");
            plan->kept += selected;

        } else if (selected) {
            printf("~ %s %s (changed; use --force to update)\n", k->label,
                   name);
            plan->kept++;
        }

        if (ctl_put(plan, result, s, k, 1, selected) != 0) {
            return -1;
        }
    }

    return 0;
}


/* the stored entries of one kind that the config does not have */

static int
ctl_plan_stored(ctl_plan_t *plan, const ctl_kind_t *k, cJSON *result,
    const cJSON *stored, const cJSON *local)
{
    int           selected;
    const cJSON  *s;
    const char   *name;

    selected = (plan->only & k->kind) != 0;

    cJSON_ArrayForEach(s, stored) {
        name = ctl_entry_name(s, k->key);

        if (ctl_find(local, k->key, name)) {
            continue;
        }

        if (selected && plan->prune) {
            printf("- %s %s\n", k->label, name);
            plan->removed++;
            continue;
        }

        if (selected) {
            printf("= %s %s (not in config, kept; --prune removes)\n",
                   k->label, name);
            plan->unchanged++;
        }

        if (ctl_put(plan, result, s, k, 1, 0) != 0) {
            return -1;
        }
    }

    return 0;
}


static cJSON *
ctl_plan_settings(ctl_plan_t *plan, const cJSON *stored,
    const cJSON *local)
{
    const cJSON  *use;

    use = local;

    if (stored == NULL) {
        printf("+ settings\n");
        plan->created++;

    } else if (!(plan->only & LLMP_KIND_SETTINGS)) {
        use = stored;

    } else if (ctl_same(local, stored)) {
        printf("= settings\n");
        plan->unchanged++;

    } else if (plan->force) {
        printf("~ settings\n");
        plan->changed++;

    } else {
        printf("~ settings (changed; use --force to update)\n");
        plan->kept++;
        use = stored;
    }

    return cJSON_Duplicate(use, 1);
}


/* the stored config with the plan applied: the document to send */

static cJSON *
ctl_plan(ctl_plan_t *plan, const cJSON *stored, const cJSON *local)
{
    cJSON              *result, *part;
    const cJSON        *s, *l;
    const ctl_kind_t  *k;

    result = cJSON_CreateObject();

    if (result == NULL
        || cJSON_AddNumberToObject(result, "format", LLMP_CONFIG_FORMAT)
           == NULL
        || cJSON_AddStringToObject(result, "config_sha256", "") == NULL)
    {
        goto failed;
    }

    for (k = ctl_kinds; k->kind; k++) {
        s = cJSON_GetObjectItemCaseSensitive(stored, k->member);
        l = cJSON_GetObjectItemCaseSensitive(local, k->member);

        if (k->kind == LLMP_KIND_SETTINGS) {
            part = ctl_plan_settings(plan, s, l);

        } else {
            part = k->key ? cJSON_CreateArray() : cJSON_CreateObject();

            if (part
                && (ctl_plan_local(plan, k, part, s, l) != 0
                    || ctl_plan_stored(plan, k, part, s, l) != 0))
            {
                cJSON_Delete(part);
                part = NULL;
            }
        }

        if (part == NULL) {
            goto failed;
        }

        if (!cJSON_AddItemToObject(result, k->member, part)) {
            cJSON_Delete(part);
            goto failed;
        }
    }

    /* members in the compiler's order: settings before providers */

    for (k = ctl_kinds; k->kind; k++) {
        if (k->kind == LLMP_KIND_SETTINGS) {
            continue;
        }

        part = cJSON_DetachItemFromObjectCaseSensitive(result, k->member);

        if (part == NULL || !cJSON_AddItemToObject(result, k->member, part))
        {
            cJSON_Delete(part);
            goto failed;
        }
    }

    if (llmp_compiled_sort(result) != 0) {
        goto failed;
    }

    return result;

failed:

    fprintf(stderr, "llmproxyctl: sync: out of memory\n");
    cJSON_Delete(result);

    return NULL;
}


static void
ctl_print_errors(llmp_errors_t *errs)
{
    size_t  i;

    for (i = 0; i < errs->n; i++) {
        fprintf(stderr, "%s\n", errs->items[i]);
    }

    if (errs->oom) {
        fprintf(stderr, "llmproxyctl: out of memory: more problems may "
                "exist\n");
    }
}


/* GET: the stored config, NULL with *rc 0 when none is loaded yet */

static cJSON *
ctl_fetch_stored(const char *url, const char *key, int *rc)
{
    cJSON                 *stored, *p;
    ctl_http_response_t   resp;

    *rc = LLMP_EXIT_FAILED;

    if (ctl_http("GET", url, key, NULL, &resp) != 0) {
        return NULL;
    }

    if (resp.status == 404) {
        ctl_http_free(&resp);
        *rc = LLMP_EXIT_OK;
        return NULL;
    }

    if (resp.status != 200) {
        fprintf(stderr, "llmproxyctl: sync: GET %s: %s\n", url,
                ctl_http_error_message(&resp));
        ctl_http_free(&resp);
        return NULL;
    }

    stored = cJSON_Parse(resp.body);
    ctl_http_free(&resp);

    if (!cJSON_IsObject(stored)) {
        fprintf(stderr, "llmproxyctl: sync: GET %s: not a JSON object\n",
                url);
        cJSON_Delete(stored);
        return NULL;
    }

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(stored,
                                                           "providers"))
    {
        ctl_strip(p, 0);
    }

    *rc = LLMP_EXIT_OK;

    return stored;
}


static int
ctl_push(const char *url, const char *key, cJSON *result)
{
    int                    rc;
    char                  *body;
    cJSON                 *answer, *gen;
    ctl_http_response_t   resp;

    if (llmp_compiled_seal(result) != 0
        || (body = cJSON_PrintUnformatted(result)) == NULL)
    {
        fprintf(stderr, "llmproxyctl: sync: out of memory\n");
        return LLMP_EXIT_FAILED;
    }

    rc = ctl_http("POST", url, key, body, &resp);

    free(body);

    if (rc != 0) {
        return LLMP_EXIT_FAILED;
    }

    if (resp.status != 200) {
        fprintf(stderr, "llmproxyctl: sync: the gateway refused the "
                "config: %s\n", ctl_http_error_message(&resp));
        ctl_http_free(&resp);
        return LLMP_EXIT_FAILED;
    }

    answer = cJSON_Parse(resp.body);
    gen = cJSON_GetObjectItemCaseSensitive(answer, "generation");

    if (cJSON_IsNumber(gen)) {
        printf("applied (generation %.0f)\n", gen->valuedouble);

    } else {
        printf("applied\n");
    }

    cJSON_Delete(answer);
    ctl_http_free(&resp);

    return LLMP_EXIT_OK;
}


static int
ctl_sync_options(int argc, char **argv, ctl_plan_t *plan,
    ctl_sync_opts_t *o)
{
    int   c;
    char  seen[128];

    static const struct option  opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "only", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' },
        { "prune", no_argument, NULL, 'p' },
        { "dry-run", no_argument, NULL, 'n' },
        { "database", required_argument, NULL, 'D' },
        { "gateway", required_argument, NULL, 'g' },
        { "master-key-file", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    optind = 1;
    opterr = 1;
    memset(seen, 0, sizeof(seen));

    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        if (ctl_option_repeated(seen, c, opts) != 0) {
            return LLMP_EXIT_INVALID;
        }

        switch (c) {
        case 'c':
            o->config = optarg;
            break;

        case 'o':
            if (ctl_parse_kinds(optarg, &plan->only) != 0) {
                return LLMP_EXIT_INVALID;
            }

            break;

        case 'f':
            plan->force = 1;
            break;

        case 'p':
            plan->prune = 1;
            break;

        case 'n':
            plan->dry_run = 1;
            break;

        case 'D':
            o->database = optarg;
            break;

        case 'g':
            o->gateway = optarg;
            break;

        case 'k':
            o->key_file = optarg;
            break;

        case 'h':
            ctl_sync_help(stdout);
            return -1;

        default:
            ctl_sync_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: sync: unexpected argument \"%s\"\n\n",
                argv[optind]);
        ctl_sync_help(stderr);
        return LLMP_EXIT_INVALID;
    }

    return LLMP_EXIT_OK;
}


/*
 * The plan against what is stored (NULL: nothing), its summary, and the
 * result checked as a whole.  Returns the result, or NULL with *rc set.
 */

static cJSON *
ctl_sync_plan(ctl_plan_t *plan, const cJSON *stored, const char *where,
    int *rc)
{
    cJSON          *result;
    llmp_errors_t   errs;

    if (stored == NULL && plan->only != LLMP_KIND_ALL) {
        printf("%s no config yet: --only ignored, the whole config is "
               "applied\n", where);
        plan->only = LLMP_KIND_ALL;
    }

    result = ctl_plan(plan, stored, plan->local);

    if (result == NULL) {
        *rc = LLMP_EXIT_FAILED;
        return NULL;
    }

    printf("%d to create, %d to change, %d to remove, %d unchanged\n",
           plan->created, plan->changed, plan->removed, plan->unchanged);

    if (plan->resealed) {
        printf("%d provider%s re-encrypted with the current salt key "
               "(no config change)\n", plan->resealed,
               plan->resealed == 1 ? "" : "s");
    }

    if (plan->kept) {
        printf("%d changed entr%s kept as stored (use --force to update)\n",
               plan->kept, plan->kept == 1 ? "y" : "ies");
    }

    llmp_errors_init(&errs);

    if (llmp_compiled_validate(result, &errs) != 0) {
        ctl_print_errors(&errs);
        fprintf(stderr, "llmproxyctl: sync: the result would be "
                "inconsistent (sync more kinds, or use --prune or "
                "--force): nothing applied\n");
        llmp_errors_free(&errs);
        cJSON_Delete(result);
        *rc = LLMP_EXIT_INVALID;
        return NULL;
    }

    llmp_errors_free(&errs);
    *rc = LLMP_EXIT_OK;

    return result;
}


/* without a database: the gateway's admin API */

static int
ctl_sync_gateway(ctl_plan_t *plan, const ctl_sync_opts_t *o)
{
    int      rc;
    char    *key, url[2048];
    cJSON   *stored, *result;

    key = ctl_master_key(o->key_file, "sync");

    if (key == NULL) {
        return LLMP_EXIT_INVALID;
    }

    if (ctl_admin_url(url, sizeof(url), o->gateway, "config") != 0) {
        ctl_secret_free(key);
        return LLMP_EXIT_INVALID;
    }

    stored = ctl_fetch_stored(url, key, &rc);

    if (rc != LLMP_EXIT_OK) {
        ctl_secret_free(key);
        return rc;
    }

    result = ctl_sync_plan(plan, stored, "the gateway has", &rc);
    cJSON_Delete(stored);

    if (result == NULL) {
        ctl_secret_free(key);
        return rc;
    }

    if (plan->dry_run) {
        printf("dry run: nothing applied\n");

    } else {
        rc = ctl_push(url, key, result);
    }

    cJSON_Delete(result);
    ctl_secret_free(key);

    return rc;
}


/*
 * After storing: waits until the gateway reports the new digest.  A
 * gateway that is not there is not an error: it loads the config from
 * the database when it starts.  One that answers and does not load it
 * (it refused the stored version, it has no database, or the wait ran
 * out) is: LLMP_EXIT_FAILED, the reason on stderr.
 */

static int
ctl_sync_wait_gateway(const ctl_sync_opts_t *o, const char *sha,
    long long version)
{
    int                    waited, loaded, refused;
    char                  *key, url[2048];
    cJSON                 *root;
    double                 have_version;
    const char            *have, *db, *gateway;
    ctl_http_response_t   resp;

    if (!ctl_master_key_known(o->key_file)) {
        printf("note: no master key: not checking whether a gateway loaded "
               "it\n");
        return LLMP_EXIT_OK;
    }

    if (ctl_admin_url(url, sizeof(url), o->gateway, "status") != 0) {
        return LLMP_EXIT_FAILED;
    }

    key = ctl_master_key(o->key_file, "sync");
    if (key == NULL) {
        return LLMP_EXIT_FAILED;
    }

    gateway = ctl_gateway_url(o->gateway);
    loaded = 0;
    refused = 0;
    have_version = 0;

    for (waited = 0; waited <= LLMP_SYNC_WAIT_MS;
         waited += LLMP_SYNC_POLL_MS)
    {
        if (ctl_http_probe(url, key, &resp) != 0) {
            printf("note: no gateway answers at %s; gateways load the "
                   "config from the database\n", gateway);
            ctl_secret_free(key);
            return LLMP_EXIT_OK;
        }

        if (resp.status != 200) {
            fprintf(stderr, "llmproxyctl: sync: stored, but the gateway at "
                    "%s answered %s: it may not load config version %lld\n",
                    gateway, ctl_http_error_message(&resp), version);
            ctl_http_free(&resp);
            ctl_secret_free(key);
            return LLMP_EXIT_FAILED;
        }

        root = cJSON_Parse(resp.body);
        ctl_http_free(&resp);

        have = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root,
                                        "config_sha256"));
        loaded = have && strcmp(have, sha) == 0;

        db = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root,
                                      "database"));
        have_version = cJSON_GetNumberValue(
                           cJSON_GetObjectItemCaseSensitive(root,
                                                            "config_version"));

        if (!loaded && db && strcmp(db, "not configured") == 0) {
            refused = 1;    /* it never reads the database */

        } else if (!loaded && have_version == (double) version) {
            refused = 2;    /* it read this version and kept its last */

        } else if (!loaded && have_version > (double) version) {
            refused = 3;    /* a later sync overtook this one */
        }

        cJSON_Delete(root);

        if (loaded || refused) {
            break;
        }

        usleep(LLMP_SYNC_POLL_MS * 1000);
    }

    ctl_secret_free(key);

    if (loaded) {
        printf("gateway loaded it\n");
        return LLMP_EXIT_OK;
    }

    if (refused == 3) {
        printf("note: the gateway at %s has read a later config version "
               "(%.0f)\n", gateway, have_version);
        return LLMP_EXIT_OK;
    }

    if (refused == 1) {
        fprintf(stderr, "llmproxyctl: sync: stored, but the gateway at %s "
                "has no database (llmproxy_database): it does not load "
                "config version %lld\n", gateway, version);

    } else if (refused == 2) {
        fprintf(stderr, "llmproxyctl: sync: stored, but the gateway at %s "
                "refused config version %lld and serves its last good "
                "config: see its error log for why\n", gateway, version);

    } else {
        fprintf(stderr, "llmproxyctl: sync: stored, but the gateway at %s "
                "has not loaded config version %lld within %d s\n",
                gateway, version, LLMP_SYNC_WAIT_MS / 1000);
    }

    return LLMP_EXIT_FAILED;
}


/* with a database: read, plan and write in one transaction */

static int
ctl_sync_database(ctl_plan_t *plan, const ctl_sync_opts_t *o)
{
    int         rc, pending, sealed;
    char       *sha;
    cJSON      *stored, *result, *stale;
    PGconn     *conn;
    long long   version;

    conn = ctl_db_connect(o->database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    if (ctl_store_begin(conn) != 0) {
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    sealed = ctl_store_seal_headers(conn, plan->dry_run);

    if (sealed < 0) {
        fprintf(stderr, "llmproxyctl: sync: nothing applied\n");
        ctl_store_rollback(conn);
        PQfinish(conn);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_store_load(conn, &stored) != 0) {
        ctl_store_rollback(conn);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    if (ctl_store_stale(conn, &stale) != 0) {
        cJSON_Delete(stored);
        ctl_store_rollback(conn);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    plan->stale = stale;

    sha = NULL;
    pending = 1;
    result = ctl_sync_plan(plan, stored, "the database has", &rc);

    if (result == NULL) {
        goto done;
    }

    if (ctl_store_check_keys(stored, result, stale) != 0) {
        fprintf(stderr, "llmproxyctl: sync: nothing applied\n");
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    if (plan->dry_run) {
        printf("dry run: nothing applied\n");
        goto done;
    }

    if (plan->created + plan->changed + plan->removed + plan->resealed
        + sealed == 0)
    {
        printf("nothing to apply\n");
        goto done;
    }

    if (llmp_compiled_seal(result) != 0
        || (sha = strdup(cJSON_GetStringValue(
                  cJSON_GetObjectItemCaseSensitive(result, "config_sha256"))))
           == NULL)
    {
        fprintf(stderr, "llmproxyctl: sync: out of memory\n");
        rc = LLMP_EXIT_FAILED;
        goto done;
    }

    pending = 0;

    if (ctl_store_apply(conn, stored, result, stale, &version) != 0) {
        fprintf(stderr, "llmproxyctl: sync: nothing applied\n");
        rc = LLMP_EXIT_FAILED;
        free(sha);
        sha = NULL;
        goto done;
    }

    printf("applied (config version %lld)\n", version);

done:

    if (pending) {
        ctl_store_rollback(conn);
    }

    PQfinish(conn);
    cJSON_Delete(stored);
    cJSON_Delete(result);
    cJSON_Delete(stale);
    plan->stale = NULL;

    if (sha) {
        rc = ctl_sync_wait_gateway(o, sha, version);
        free(sha);
    }

    return rc;
}


int
ctl_cmd_sync(int argc, char **argv)
{
    int                rc;
    cJSON             *local;
    ctl_plan_t        plan;
    llmp_errors_t      errs;
    ctl_sync_opts_t   o;

    memset(&plan, 0, sizeof(ctl_plan_t));
    plan.only = LLMP_KIND_ALL;

    memset(&o, 0, sizeof(ctl_sync_opts_t));
    o.config = ctl_config_path(NULL);

    rc = ctl_sync_options(argc, argv, &plan, &o);
    if (rc != LLMP_EXIT_OK) {
        return rc < 0 ? LLMP_EXIT_OK : rc;
    }

    /* validate first: on any error nothing is applied */

    llmp_errors_init(&errs);

    if (llmp_config_load(o.config, &errs, &local) != 0) {
        ctl_print_errors(&errs);
        fprintf(stderr, "llmproxyctl: sync: %zu problem%s in %s: nothing "
                "applied\n", errs.n, errs.n == 1 ? "" : "s", o.config);
        llmp_errors_free(&errs);
        return LLMP_EXIT_INVALID;
    }

    llmp_errors_free(&errs);
    ctl_cli_prices_note(local);
    plan.local = local;

    if (ctl_database_url(o.database)) {
        rc = ctl_sync_database(&plan, &o);

    } else {
        rc = ctl_sync_gateway(&plan, &o);
    }

    cJSON_Delete(local);

    return rc;
}

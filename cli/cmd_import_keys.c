/*
 * llmproxyctl import litellm-keys URI: LiteLLM's virtual keys
 * ("LiteLLM_VerificationToken") into llmproxy_keys.
 *
 * LiteLLM stores hash_token(key), the hex SHA-256 of the key, in "token";
 * llmproxy stores the same digest in key_hash, so every imported key keeps
 * working as it is.  Rows are read as to_jsonb(row), which copes with the
 * columns LiteLLM added over its versions; a column with no counterpart is
 * counted and reported, never silently dropped.  The import is an upsert
 * that writes only what differs: a second run changes nothing.
 */

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"
#include "llmp_config.h"
#include "llmp_litellm.h"
#include "llmp_sha256.h"


#define LLMP_IMPORT_MAX_INT  2147483647.0


/* columns read or deliberately ignored (bookkeeping only) */
static const char *const  ctl_litellm_used[] = {
    "token", "key_name", "key_alias", "models", "max_budget", "spend",
    "budget_duration", "budget_reset_at", "rpm_limit", "tpm_limit",
    "expires", "blocked", "created_at", "updated_at", "created_by",
    "updated_by", NULL
};


typedef struct {
    const char  *column;
    int          keys;
} ctl_unmapped_t;


static int
ctl_is_known_column(const char *name)
{
    int  i;

    for (i = 0; ctl_litellm_used[i]; i++) {
        if (strcmp(name, ctl_litellm_used[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * A timestamp for $N::timestamptz: LiteLLM's columns are TIMESTAMP(3)
 * without a zone, written in UTC; one that has a zone keeps it.
 */

static const char *
ctl_utc(const char *s, char *buf, size_t size)
{
    size_t  n;

    if (s == NULL) {
        return NULL;
    }

    n = strlen(s);

    if (n > 6 && (s[n - 1] == 'Z' || s[n - 3] == '+' || s[n - 3] == '-'
                  || s[n - 6] == '+' || s[n - 6] == '-'))
    {
        return s;
    }

    snprintf(buf, size, "%.60s+00:00", s);

    return buf;
}


/* a JSON value worth reporting: not null, "", {}, [] or false */

static int
ctl_is_set(const cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v) || cJSON_IsFalse(v)) {
        return 0;
    }

    if (cJSON_IsString(v)) {
        return v->valuestring[0] != '\0';
    }

    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        return v->child != NULL;
    }

    return 1;
}


static const char *
ctl_str(const cJSON *row, const char *name)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(row, name);

    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}


/* a number column as text for a parameter; NULL when null */

static const char *
ctl_num_text(const cJSON *row, const char *name, char *buf, size_t size)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(row, name);

    if (!cJSON_IsNumber(v)) {
        return NULL;
    }

    snprintf(buf, size, "%.17g", v->valuedouble);

    return buf;
}


static int
llmp_is_hex64(const char *s)
{
    int  i;

    for (i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return s[64] == '\0';
}


static void
ctl_count(ctl_unmapped_t *u, size_t *n, size_t cap, const char *column)
{
    size_t  i;

    for (i = 0; i < *n; i++) {
        if (strcmp(u[i].column, column) == 0) {
            u[i].keys++;
            return;
        }
    }

    if (*n < cap) {
        u[*n].column = column;
        u[*n].keys = 1;
        (*n)++;
    }
}


/* SELECT to_jsonb(t) rows of a LiteLLM table; NULL reported */

static cJSON *
ctl_litellm_rows(PGconn *src, const char *table, int required)
{
    char       sql[256];
    cJSON     *rows, *row;
    PGresult  *res;
    int        i;

    snprintf(sql, sizeof(sql), "SELECT to_regclass('\"%s\"') IS NOT NULL",
             table);
    res = PQexec(src, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "llmproxyctl: LiteLLM's database: %s",
                PQerrorMessage(src));
        PQclear(res);
        return NULL;
    }

    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);

        if (required) {
            fprintf(stderr, "llmproxyctl: import: no table \"%s\" in that "
                    "database: is it LiteLLM's?\n", table);
            return NULL;
        }

        return cJSON_CreateArray();
    }

    PQclear(res);

    snprintf(sql, sizeof(sql), "SELECT to_jsonb(t)::text FROM \"%s\" t"
             " ORDER BY to_jsonb(t)->>'created_at' NULLS LAST,"
             " to_jsonb(t)::text", table);
    res = PQexec(src, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "llmproxyctl: LiteLLM's database: %s",
                PQerrorMessage(src));
        PQclear(res);
        return NULL;
    }

    rows = cJSON_CreateArray();

    for (i = 0; rows && i < PQntuples(res); i++) {
        row = cJSON_Parse(PQgetvalue(res, i, 0));
        if (row == NULL) {
            cJSON_Delete(rows);
            rows = NULL;
            break;
        }

        cJSON_AddItemToArray(rows, row);
    }

    PQclear(res);

    if (rows == NULL) {
        fprintf(stderr, "llmproxyctl: import: out of memory\n");
    }

    return rows;
}


static const cJSON *
ctl_find_team(const cJSON *teams, const char *id)
{
    const cJSON  *t;

    cJSON_ArrayForEach(t, teams) {
        if (id && ctl_str(t, "team_id")
            && strcmp(ctl_str(t, "team_id"), id) == 0)
        {
            return t;
        }
    }

    return NULL;
}


/*
 * The key's models as a JSON array for the upsert; NULL: every model.
 * LiteLLM: [] or "all-proxy-models" mean every model; a key of a team
 * with no models of its own gets the team's (so importing never widens
 * a key's access).  A name may be a model or an access group in LiteLLM:
 * the caller stores the list as both.
 */

static char *
ctl_key_models(const cJSON *row, const cJSON *team, const char *who,
    llmp_errors_t *notes)
{
    char         *s;
    cJSON        *out;
    const cJSON  *models, *m;
    int           all;

    models = cJSON_GetObjectItemCaseSensitive(row, "models");

    if (!ctl_is_set(models) && team) {
        models = cJSON_GetObjectItemCaseSensitive(team, "models");
    }

    if (!cJSON_IsArray(models)) {
        return NULL;
    }

    out = cJSON_CreateArray();
    all = 0;

    cJSON_ArrayForEach(m, models) {
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
            continue;
        }

        if (strcmp(m->valuestring, "all-proxy-models") == 0) {
            all = 1;
            continue;
        }

        if (strcmp(m->valuestring, "all-team-models") == 0) {
            llmp_errors_add(notes, "%s: \"all-team-models\" without the "
                            "team's list: no model allowed", who);
            continue;
        }

        if (strchr(m->valuestring, '*')) {
            llmp_errors_add(notes, "%s: model pattern \"%s\" kept as a name",
                            who, m->valuestring);
        }

        cJSON_AddItemToArray(out, cJSON_CreateString(m->valuestring));
    }

    if (all || (cJSON_GetArraySize(out) == 0
                && cJSON_GetArraySize(models) == 0))
    {
        cJSON_Delete(out);
        return NULL;
    }

    if (cJSON_GetArraySize(out) == 0) {
        /* only names with no counterpart: nothing, rather than everything */
        cJSON_AddItemToArray(out, cJSON_CreateString("-"));
    }

    s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);

    return s;
}


static const char  ctl_upsert_sql[] =
    "INSERT INTO llmproxy_keys AS k (key_hash, key_prefix, alias, models,"
    " access_groups, max_budget, budget_duration_seconds, budget_reset_at,"
    " spend, rpm, tpm, expires_at, blocked, created_at)"
    " VALUES ($1, $2, $3,"
    " ARRAY(SELECT jsonb_array_elements_text(coalesce($4, '[]')::jsonb)),"
    " ARRAY(SELECT jsonb_array_elements_text(coalesce($4, '[]')::jsonb)),"
    " $5::double precision, $6::bigint,"
    " $7::timestamptz,"
    " coalesce($8::double precision, 0), $9::integer, $10::integer,"
    " $11::timestamptz, $12::boolean,"
    " coalesce($13::timestamptz, now()))"
    " ON CONFLICT (key_hash) DO UPDATE SET"
    " alias = EXCLUDED.alias, models = EXCLUDED.models,"
    " access_groups = EXCLUDED.access_groups,"
    " max_budget = EXCLUDED.max_budget,"
    " budget_duration_seconds = EXCLUDED.budget_duration_seconds,"
    " budget_reset_at = EXCLUDED.budget_reset_at,"
    /* spend the gateway ran up since an earlier import is kept */
    " spend = greatest(k.spend, EXCLUDED.spend),"
    " rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,"
    " expires_at = EXCLUDED.expires_at, blocked = EXCLUDED.blocked"
    " WHERE (k.alias, k.models, k.access_groups, k.max_budget,"
    " k.budget_duration_seconds, k.budget_reset_at, k.rpm, k.tpm,"
    " k.expires_at, k.blocked)"
    " IS DISTINCT FROM (EXCLUDED.alias, EXCLUDED.models,"
    " EXCLUDED.access_groups, EXCLUDED.max_budget,"
    " EXCLUDED.budget_duration_seconds, EXCLUDED.budget_reset_at,"
    " EXCLUDED.rpm, EXCLUDED.tpm, EXCLUDED.expires_at, EXCLUDED.blocked)"
    " OR k.spend < EXCLUDED.spend"
    " RETURNING (xmax = 0)";


int
ctl_import_litellm_keys(int argc, char **argv)
{
    int              c, dry, rc, month, blocked, created, changed, same;
    int              skipped;
    char             hex[65], prefix[17], who[160], nums[5][40], dur[32];
    char             ts[3][80];
    char            *models;
    cJSON           *rows, *teams;
    PGconn          *src, *dst;
    PGresult        *res;
    size_t           i, nun;
    long long        d;
    const char      *uri, *database, *params[13], *s, *alias;
    const cJSON     *row, *team, *v;
    llmp_errors_t    notes;
    ctl_unmapped_t  unmapped[64];

    static const struct option  opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "database", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    dry = 0;
    database = NULL;
    optind = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': dry = 1; break;
        case 'D': database = optarg; break;

        case 'h':
            printf("usage: llmproxyctl import litellm-keys URI [--dry-run] "
                   "[--database URL]\n\n"
                   "Copies LiteLLM's virtual keys (its PostgreSQL at URI) "
                   "into llmproxy's\ndatabase: aliases, models, budgets, "
                   "spend, limits, expiry, blocked.\nThe keys themselves "
                   "keep working: both store their SHA-256.\n");
            return LLMP_EXIT_OK;

        default:
            fprintf(stderr, "usage: llmproxyctl import litellm-keys URI "
                    "[--dry-run] [--database URL]\n");
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind + 1 != argc) {
        fprintf(stderr, "usage: llmproxyctl import litellm-keys URI "
                "[--dry-run] [--database URL]\n");
        return LLMP_EXIT_INVALID;
    }

    uri = argv[optind];

    src = PQconnectdb(uri);

    if (src == NULL || PQstatus(src) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        fprintf(stderr, "llmproxyctl: cannot connect to LiteLLM's database: "
                "%s", src ? PQerrorMessage(src) : "out of memory\n");
        PQfinish(src);
        return LLMP_EXIT_FAILED;
    }

    PQsetNoticeProcessor(src, NULL, NULL);

    res = PQexec(src, "SET default_transaction_read_only = on");
    PQclear(res);

    rows = ctl_litellm_rows(src, "LiteLLM_VerificationToken", 1);
    teams = rows ? ctl_litellm_rows(src, "LiteLLM_TeamTable", 0) : NULL;
    PQfinish(src);

    if (rows == NULL || teams == NULL) {
        cJSON_Delete(rows);
        return LLMP_EXIT_FAILED;
    }

    dst = ctl_db_connect(database);
    if (dst == NULL) {
        cJSON_Delete(rows);
        cJSON_Delete(teams);
        return LLMP_EXIT_FAILED;
    }

    res = PQexec(dst, "BEGIN");
    PQclear(res);

    llmp_errors_init(&notes);
    nun = 0;
    created = changed = same = skipped = 0;
    rc = LLMP_EXIT_OK;

    cJSON_ArrayForEach(row, rows) {
        s = ctl_str(row, "token");
        alias = ctl_str(row, "key_alias");

        if (alias) {
            snprintf(who, sizeof(who), "key \"%.100s\"", alias);

        } else {
            snprintf(who, sizeof(who), "key %.12s...", s ? s : "?");
        }

        if (s && strncmp(s, "sk-", 3) == 0) {
            /* a very old LiteLLM kept the key itself: hash it here */
            llmp_sha256(s, strlen(s), (unsigned char *) nums[0]);
            llmp_sha256_hex((unsigned char *) nums[0], hex);
            snprintf(who, sizeof(who), "key %.12s...", hex);

        } else if (s && llmp_is_hex64(s)) {
            memcpy(hex, s, 65);

        } else {
            llmp_errors_add(&notes, "%s: token is not a SHA-256 digest: "
                            "skipped", who);
            skipped++;
            continue;
        }

        /* key_name is LiteLLM's abbreviation "sk-...abcd" */
        snprintf(prefix, sizeof(prefix), "%s",
                 ctl_str(row, "key_name") ? ctl_str(row, "key_name")
                                           : "sk-");

        team = ctl_find_team(teams, ctl_str(row, "team_id"));
        models = ctl_key_models(row, team, who, &notes);

        blocked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row,
                                                               "blocked"))
                  || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(team,
                                                                  "blocked"));

        s = ctl_str(row, "budget_duration");
        params[5] = NULL;

        if (s) {
            d = llmp_litellm_duration(s, &month);

            if (d <= 0) {
                llmp_errors_add(&notes, "%s: budget_duration \"%.40s\" not "
                                "understood: the budget never resets", who,
                                s);

            } else {
                if (month) {
                    llmp_errors_add(&notes, "%s: budget_duration \"%.40s\" "
                                    "taken as 30 days a month", who, s);
                }

                snprintf(dur, sizeof(dur), "%lld", d);
                params[5] = dur;
            }
        }

        params[0] = hex;
        params[1] = prefix;
        params[2] = alias;
        params[3] = models;
        params[4] = ctl_num_text(row, "max_budget", nums[0], 40);
        params[6] = ctl_utc(ctl_str(row, "budget_reset_at"), ts[0], 80);
        params[7] = ctl_num_text(row, "spend", nums[1], 40);
        params[8] = ctl_num_text(row, "rpm_limit", nums[2], 40);
        params[9] = ctl_num_text(row, "tpm_limit", nums[3], 40);
        params[10] = ctl_utc(ctl_str(row, "expires"), ts[1], 80);
        params[11] = blocked ? "true" : "false";
        params[12] = ctl_utc(ctl_str(row, "created_at"), ts[2], 80);

        for (i = 8; i <= 9; i++) {
            v = cJSON_GetObjectItemCaseSensitive(row, i == 8 ? "rpm_limit"
                                                             : "tpm_limit");
            if (params[i] && v->valuedouble > LLMP_IMPORT_MAX_INT) {
                snprintf(nums[i - 6], 40, "%.0f", LLMP_IMPORT_MAX_INT);
                params[i] = nums[i - 6];
            }
        }

        for (s = alias; s && *s; s++) {
            if ((unsigned char) *s < ' ' || *s == 0x7f) {
                /* and not echoed to the terminal */
                snprintf(who, sizeof(who), "key %.12s...", hex);
                llmp_errors_add(&notes, "%s: the alias has control "
                                "characters: imported without one", who);
                alias = NULL;
                params[2] = NULL;
                break;
            }
        }

        /* an alias another key holds here already: imported without */

        if (alias) {
            const char  *p[2] = { alias, hex };

            res = PQexecParams(dst, "SELECT 1 FROM llmproxy_keys"
                               " WHERE alias = $1 AND key_hash <> $2", 2,
                               NULL, p, NULL, NULL, 0);

            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res)) {
                llmp_errors_add(&notes, "%s: another key has that alias "
                                "here: imported without one", who);
                params[2] = NULL;
            }

            PQclear(res);
        }

        res = PQexecParams(dst, ctl_upsert_sql, 13, NULL, params, NULL,
                           NULL, 0);
        free(models);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "llmproxyctl: import: %s: %s", who,
                    PQerrorMessage(dst));
            PQclear(res);
            rc = LLMP_EXIT_FAILED;
            break;
        }

        if (PQntuples(res) == 0) {
            same++;

        } else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
            created++;
            printf("+ %s\n", who);

        } else {
            changed++;
            printf("~ %s\n", who);
        }

        PQclear(res);

        /* what has no counterpart */

        cJSON_ArrayForEach(v, row) {
            if (!ctl_is_known_column(v->string) && ctl_is_set(v)) {
                ctl_count(unmapped, &nun, 64, v->string);
            }
        }
    }

    if (rc == LLMP_EXIT_OK) {
        res = PQexec(dst, dry ? "ROLLBACK" : "COMMIT");

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "llmproxyctl: import: %s", PQerrorMessage(dst));
            rc = LLMP_EXIT_FAILED;
        }

        PQclear(res);

    } else {
        res = PQexec(dst, "ROLLBACK");
        PQclear(res);
    }

    PQfinish(dst);

    if (rc == LLMP_EXIT_OK) {
        printf("%s%d key%s: %d new, %d changed, %d unchanged, %d skipped\n",
               dry ? "dry run: " : "", cJSON_GetArraySize(rows),
               cJSON_GetArraySize(rows) == 1 ? "" : "s", created, changed,
               same, skipped);

        if (nun) {
            printf("not carried over (no counterpart in llmproxy):\n");

            for (i = 0; i < nun; i++) {
                printf("  %s: set on %d key%s\n", unmapped[i].column,
                       unmapped[i].keys, unmapped[i].keys == 1 ? "" : "s");
            }
        }

        for (i = 0; i < notes.n; i++) {
            printf("note: %s\n", notes.items[i]);
        }
    }

    llmp_errors_free(&notes);
    cJSON_Delete(rows);
    cJSON_Delete(teams);

    return rc;
}

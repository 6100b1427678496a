/*
 * llmproxyctl usage: requests, tokens and cost from the usage records the
 * gateways write to PostgreSQL (llmproxy_usage_between() of the records
 * and the daily totals llmproxy_usage_daily), grouped by key, model,
 * deployment or day, as a table or as JSON.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"


/*
 * A group is labelled from one or two base columns (b1, b2), taken from
 * the daily totals (d) and from the records (u) alike.
 */

typedef struct {
    const char  *name;
    const char  *label;
    const char  *daily;
    const char  *raw;
    const char  *expr;      /* the group's label from b1, b2 */
} ctl_usage_by_t;


static const ctl_usage_by_t  ctl_usage_bys[] = {
    { "model", "MODEL", "d.model, NULL::text",
      "u.model AS b1, NULL::text AS b2", "b1" },
    { "key", "KEY", "d.key_hash, d.key_alias",
      "coalesce(u.key_hash::text, '') AS b1, u.key_alias AS b2",
      "CASE WHEN b1 = '' THEN '(master key)'"
      " ELSE coalesce(nullif(b2, ''),"
      " (SELECT k.key_prefix FROM llmproxy_keys k"
      " WHERE k.key_hash = b1::char(64)), left(b1, 12)) END" },
    { "day", "DAY (UTC)", "to_char(d.day, 'YYYY-MM-DD'), NULL::text",
      "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS b1,"
      " NULL::text AS b2",
      "b1" },
    { "deployment", "DEPLOYMENT", "nullif(d.deployment, ''), NULL::text",
      "u.deployment AS b1, NULL::text AS b2", "coalesce(b1, '-')" },
    { NULL, NULL, NULL, NULL, NULL }
};


/* the histogram's cumulative counts (schema 5), of records and of days */

#define LLMP_USAGE_LT(f)                                                     \
    f(25) f(50) f(100) f(200) f(300) f(500) f(750) f(1000) f(1500) f(2000)   \
    f(3000) f(5000) f(7500) f(10000) f(15000) f(20000) f(30000) f(60000)     \
    f(120000)

#define LLMP_USAGE_RAW(n)                                                    \
    " count(*) FILTER (WHERE u.latency_ms < " #n ") AS lt" #n ","
#define LLMP_USAGE_DAILY(n)  " sum(d.lat_lt_" #n "),"
#define LLMP_USAGE_SUM(n)    " sum(lt" #n ")::bigint,"


/*
 * 1 when a row's requests with a cost are all unpriced ones: its cost is
 * unknown, never $0
 */

static int
ctl_usage_unpriced(PGresult *res, int i)
{
    return strtoll(PQgetvalue(res, i, 13), NULL, 10) > 0
           && strtod(PQgetvalue(res, i, 6), NULL) == 0;
}


static void
ctl_usage_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl usage [--since 7d] [--by model|key|day|"
        "deployment]\n"
        "                         [--json] [--database URL]\n\n"
        "Requests, tokens and cost from the gateways' usage records in\n"
        "PostgreSQL, one row per group, largest cost first (by day: in\n"
        "date order), with a total.  PROMPT counts all input tokens; of\n"
        "them CACHE READ came from the provider's prompt cache and CACHE\n"
        "WRITE went into it; REASONING tokens are part of COMPLETION.\n"
        "UNPRICED counts requests to a model priced neither in the config\n"
        "nor in the price list: their cost is unknown, not in COST, and a\n"
        "group of only those shows \"unpriced\" (JSON: cost null).\n\n"
        "options:\n"
        "  --since 7d       records of the last 7 days (s, m, h, d, w); "
        "default 7d\n"
        "  --by GROUP       model (default), key (alias, else prefix), day "
        "or\n"
        "                   deployment (the provider/model that answered)\n"
        "  --json           one JSON object: since, by, rows, total\n"
        "  --database URL   PostgreSQL (LLMPROXY_DATABASE_URL)\n");
}


int
ctl_cmd_usage(int argc, char **argv)
{
    int                     c, i, n, json;
    char                    sql[8192], secs[32], *out, seen[128];
    char                    bounds[3][64];
    cJSON                  *root, *rows, *row;
    PGconn                 *conn;
    PGresult               *res;
    long long               since;
    const char             *database, *params[3];
    const ctl_usage_by_t  *by;

    static const struct option  opts[] = {
        { "since", required_argument, NULL, 's' },
        { "by", required_argument, NULL, 'b' },
        { "json", no_argument, NULL, 'j' },
        { "database", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    static const char  *names[] = {
        "group", "requests", "errors", "prompt_tokens", "completion_tokens",
        "total_tokens", "cost", "avg_latency_ms", "p95_latency_ms", NULL,
        "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens",
        "unpriced_requests"
    };

    since = 7 * 86400;
    by = &ctl_usage_bys[0];
    json = 0;
    database = NULL;

    optind = 1;
    memset(seen, 0, sizeof(seen));

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ctl_option_repeated(seen, c, opts) != 0) {
            return LLMP_EXIT_INVALID;
        }

        switch (c) {

        case 's':
            since = ctl_duration(optarg);
            if (since <= 0) {
                fprintf(stderr, "llmproxyctl: --since: expected a duration "
                        "from 1s to %lldd, such as 7d, 12h, 30m\n",
                        LLMP_DURATION_MAX / 86400);
                return LLMP_EXIT_INVALID;
            }
            break;

        case 'b':
            for (by = ctl_usage_bys; by->name; by++) {
                if (strcmp(by->name, optarg) == 0) {
                    break;
                }
            }

            if (by->name == NULL) {
                fprintf(stderr, "llmproxyctl: --by: expected model, key, "
                        "day or deployment, not \"%s\"\n", optarg);
                return LLMP_EXIT_INVALID;
            }
            break;

        case 'j':
            json = 1;
            break;

        case 'D':
            database = optarg;
            break;

        case 'h':
            ctl_usage_help(stdout);
            return LLMP_EXIT_OK;

        default:
            ctl_usage_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: usage: unexpected \"%s\"\n",
                argv[optind]);
        return LLMP_EXIT_INVALID;
    }

    conn = ctl_db_connect(database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    /*
     * The period's bounds: since, d0 (the first whole UTC day) and d1
     * (today), computed once, so that the query below gets them as
     * constants and reads only the records' packs and rows of the two
     * partial days
     */

    snprintf(secs, sizeof(secs), "%lld", since);
    params[0] = secs;

    res = PQexecParams(conn,
        "SELECT since, ((since - interval '1 microsecond')"
        " AT TIME ZONE 'UTC')::date + 1, d1"
        " FROM (SELECT now() - make_interval(secs => $1::bigint) AS since,"
        " (now() AT TIME ZONE 'UTC')::date AS d1) w",
        1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    snprintf(bounds[0], sizeof(bounds[0]), "%s", PQgetvalue(res, 0, 0));
    snprintf(bounds[1], sizeof(bounds[1]), "%s", PQgetvalue(res, 0, 1));
    snprintf(bounds[2], sizeof(bounds[2]), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    /*
     * The whole UTC days of the period come from the daily totals (one row
     * per day, key, model and deployment, kept even after the records are
     * deleted), the partial first day [since, d0) and today [d1, ...) from
     * the records, through llmproxy_usage_between() (schema 10, which
     * ctl_db_connect() applied), which reads only a period's packs: the
     * view llmproxy_usage decodes every pack.  When since is today, the
     * first part is empty and the second starts at since.  The groups,
     * then the total as the last row (GROUPING SETS).  The P95 is
     * interpolated in the latency histogram, as in the dashboard.
     */

    snprintf(sql, sizeof(sql),
        "WITH b AS (SELECT $1::timestamptz AS since, $2::date AS d0,"
        " $3::date AS d1),"
        " parts AS ("
        "SELECT %s, count(*) AS requests,"
        " count(*) FILTER (WHERE u.status >= 400) AS errors,"
        " sum(u.prompt_tokens) AS prompt, sum(u.completion_tokens) AS compl,"
        " sum(u.total_tokens) AS total, coalesce(sum(u.cost), 0) AS cost,"
        " sum(u.latency_ms) AS lat_sum, max(u.latency_ms) AS lat_max,"
        LLMP_USAGE_LT(LLMP_USAGE_RAW)
        " sum(u.cache_read_tokens) AS cread,"
        " sum(u.cache_creation_tokens) AS cwrite,"
        " sum(u.reasoning_tokens) AS reasoning,"
        " count(*) FILTER (WHERE u.unpriced) AS unpriced"
        " FROM (SELECT * FROM llmproxy_usage_between($1::timestamptz,"
        "   least($2::date, $3::date)::timestamp AT TIME ZONE 'UTC')"
        " UNION ALL"
        " SELECT * FROM llmproxy_usage_between(greatest($3::date::timestamp"
        "   AT TIME ZONE 'UTC', $1::timestamptz), 'infinity')) u"
        " GROUP BY 1, 2"
        " UNION ALL "
        "SELECT %s, sum(d.requests), sum(d.errors), sum(d.prompt_tokens),"
        " sum(d.completion_tokens),"
        " sum(d.prompt_tokens + d.completion_tokens), sum(d.cost),"
        " sum(d.latency_ms_sum), max(d.latency_ms_max),"
        LLMP_USAGE_LT(LLMP_USAGE_DAILY)
        " sum(d.cache_read_tokens), sum(d.cache_creation_tokens),"
        " sum(d.reasoning_tokens), sum(d.unpriced)"
        " FROM llmproxy_usage_daily d, b WHERE d.day >= b.d0 AND d.day < b.d1"
        " GROUP BY 1, 2)"
        " SELECT coalesce(g, ''), sum(requests)::bigint, sum(errors)::bigint,"
        " coalesce(sum(prompt), 0)::bigint, coalesce(sum(compl), 0)::bigint,"
        " coalesce(sum(total), 0)::bigint, coalesce(sum(cost), 0),"
        " coalesce(round(sum(lat_sum) / nullif(sum(requests), 0)), 0),"
        " coalesce(round(llmproxy_usage_percentile(ARRAY["
        LLMP_USAGE_LT(LLMP_USAGE_SUM)
        " sum(requests)::bigint], max(lat_max), 0.95)), 0),"
        " grouping(g),"
        " coalesce(sum(cread), 0)::bigint, coalesce(sum(cwrite), 0)::bigint,"
        " coalesce(sum(reasoning), 0)::bigint,"
        " coalesce(sum(unpriced), 0)::bigint"
        " FROM (SELECT %s AS g, p.* FROM parts p) s"
        " GROUP BY GROUPING SETS ((g), ())"
        " ORDER BY grouping(g), %s",
        by->raw, by->daily, by->expr,
        strcmp(by->name, "day") == 0 ? "g" : "sum(cost) DESC NULLS LAST, g");

    params[0] = bounds[0];
    params[1] = bounds[1];
    params[2] = bounds[2];

    res = PQexecParams(conn, sql, 3, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    n = PQntuples(res);

    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "since_seconds", (double) since);
        cJSON_AddStringToObject(root, "by", by->name);
        rows = cJSON_AddArrayToObject(root, "rows");

        for (i = 0; i < n; i++) {
            row = cJSON_CreateObject();

            for (c = 0; c < 14; c++) {
                if (c == 0) {
                    if (PQgetvalue(res, i, 9)[0] == '0') {
                        cJSON_AddStringToObject(row, by->name,
                                                PQgetvalue(res, i, 0));
                    }

                    continue;
                }

                if (c == 9) {
                    continue;
                }

                /* only unpriced requests: the cost is not known */

                if (c == 6 && ctl_usage_unpriced(res, i)) {
                    cJSON_AddNullToObject(row, names[c]);
                    continue;
                }

                cJSON_AddNumberToObject(row, names[c],
                                        strtod(PQgetvalue(res, i, c), NULL));
            }

            if (PQgetvalue(res, i, 9)[0] == '0') {
                cJSON_AddItemToArray(rows, row);

            } else {
                cJSON_AddItemToObject(root, "total", row);
            }
        }

        out = cJSON_Print(root);
        printf("%s\n", out ? out : "{}");
        free(out);

        cJSON_Delete(root);

    } else {
        printf("%-32s %9s %7s %12s %12s %12s %12s %10s %12s %8s %8s "
               "%8s\n",
               by->label, "REQUESTS", "ERRORS", "PROMPT", "CACHE READ",
               "CACHE WRITE", "COMPLETION", "REASONING", "COST USD",
               "UNPRICED", "AVG ms", "P95 ms");

        for (i = 0; i < n; i++) {
            if (PQgetvalue(res, i, 9)[0] != '0') {
                if (i == 0) {
                    printf("(no usage records in this period)\n");
                }

                printf("%-32s", "TOTAL");

            } else {
                printf("%-32.32s", PQgetvalue(res, i, 0));
            }

            printf(" %9s %7s %12s %12s %12s %12s %10s",
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                   PQgetvalue(res, i, 3), PQgetvalue(res, i, 10),
                   PQgetvalue(res, i, 11), PQgetvalue(res, i, 4),
                   PQgetvalue(res, i, 12));

            if (ctl_usage_unpriced(res, i)) {
                printf(" %12s", "unpriced");

            } else {
                printf(" %12.6f", strtod(PQgetvalue(res, i, 6), NULL));
            }

            printf(" %8s %8s %8s\n", PQgetvalue(res, i, 13),
                   PQgetvalue(res, i, 7), PQgetvalue(res, i, 8));
        }
    }

    PQclear(res);
    PQfinish(conn);

    return LLMP_EXIT_OK;
}

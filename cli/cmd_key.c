/*
 * llmproxyctl key: virtual keys in PostgreSQL.  A key is shown in full
 * once, when it is created; it is stored as its SHA-256 and listed by
 * alias and a short prefix.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"
#include "llmp_config.h"
#include "llmp_sha256.h"


#define LLMP_KEY_RANDOM  48

/*
 * Input limits, checked before the database is asked: rpm and tpm are
 * integer columns; USD amounts are kept finite and printable; names and
 * lists small enough for the gateway's key table (u_short counts).
 */
#define LLMP_KEY_INT_MAX     2147483647
#define LLMP_KEY_USD_MAX     1e15
#define LLMP_KEY_ALIAS_MAX   128
#define LLMP_KEY_NAME_MAX    256
#define LLMP_KEY_LIST_MAX    1024

/* which options a subcommand takes */
#define LLMP_KEY_OPTS_CREATE  "amgbdrtejDh"
#define LLMP_KEY_OPTS_UPDATE  "amgbdrtesBUDh"
#define LLMP_KEY_OPTS_SHOW    "jDh"
#define LLMP_KEY_OPTS_REVOKE  "Dh"


typedef struct {
    const char  *alias;
    const char  *models;          /* "a,b" */
    const char  *groups;
    const char  *max_budget;
    const char  *budget_duration; /* seconds, as text */
    const char  *rpm;
    const char  *tpm;
    const char  *expires;         /* seconds from now, as text */
    const char  *spend;
    const char  *blocked;         /* "true" / "false" */
    const char  *database;
    int          json;
    unsigned     clear;           /* CTL_KEY_CLEAR_*: "none" given */
    char         bufs[4][32];
} ctl_key_opts_t;


/*
 * key update --rpm none (and the other limits): the limit is removed.
 * The bits are passed to the UPDATE as one parameter.
 */
#define CTL_KEY_CLEAR_BUDGET    0x01
#define CTL_KEY_CLEAR_DURATION  0x02
#define CTL_KEY_CLEAR_RPM       0x04
#define CTL_KEY_CLEAR_TPM       0x08
#define CTL_KEY_CLEAR_EXPIRES   0x10


static void
ctl_key_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl key create [options]\n"
        "       llmproxyctl key list [--json]\n"
        "       llmproxyctl key info KEY_OR_ALIAS [--json]\n"
        "       llmproxyctl key update KEY_OR_ALIAS [options] [--block|"
        "--unblock]\n"
        "                              [--spend USD]\n"
        "       llmproxyctl key revoke KEY_OR_ALIAS\n\n"
        "options:\n"
        "  --alias NAME            a unique name for the key\n"
        "  --models a,b            models (or aliases, PROVIDER/MODEL) it may "
        "call\n"
        "  --access-groups g,h     or: models of these access groups\n"
        "                          (neither: every model)\n"
        "  --max-budget USD        refused with 429 once spend reaches it\n"
        "  --budget-duration 30d   the budget resets after this (s, m, h, "
        "d)\n"
        "  --rpm N, --tpm N        requests / tokens per minute\n"
        "  --expires 30d           the key stops working after this\n"
        "  (update: --max-budget, --budget-duration, --rpm, --tpm and\n"
        "   --expires take \"none\" to remove the limit)\n"
        "  --database URL          PostgreSQL (LLMPROXY_DATABASE_URL)\n");
}


/*
 * A plain decimal amount: digits, an optional fraction and exponent; no
 * sign, blanks, hex, nan or inf.  Returns the value, or -1.
 */

static double
ctl_usd(const char *s)
{
    char        *end;
    double       d;
    const char  *p;

    p = s;

    while (*p >= '0' && *p <= '9') {
        p++;
    }

    if (*p == '.') {
        p++;

        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == s || (p == s + 1 && *s == '.')) {
        return -1;
    }

    if (*p == 'e' || *p == 'E') {
        p++;
        p += (*p == '+' || *p == '-');

        if (*p < '0' || *p > '9') {
            return -1;
        }

        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (*p != '\0') {
        return -1;
    }

    errno = 0;
    d = strtod(s, &end);

    if (*end != '\0' || errno == ERANGE || !isfinite(d) || d < 0
        || d > LLMP_KEY_USD_MAX)
    {
        return -1;
    }

    return d;
}


/* a whole number from 1 to the integer column's maximum, or -1 */

static long long
ctl_count(const char *s)
{
    long long    n;
    const char  *p;

    n = 0;

    for (p = s; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');

        if (n > LLMP_KEY_INT_MAX) {
            return -1;
        }
    }

    if (p == s || *p != '\0' || n == 0) {
        return -1;
    }

    return n;
}


/*
 * Printable text: valid UTF-8 (no overlong forms, surrogates or code
 * points beyond U+10FFFF), no control characters (C0, DEL, C1), at most
 * max bytes.  Returns NULL, or what is wrong.
 */

static const char *
ctl_text_problem(const char *s, size_t len, size_t max)
{
    size_t         i;
    unsigned char  c;

    if (len == 0) {
        return "is empty";
    }

    if (len > max) {
        return "is too long";
    }

    if (llmp_utf8_invalid(s, len) < len) {
        return "is not valid UTF-8";
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        /* C0 and DEL; C1 (U+0080 to U+009F) is 0xc2 0x80..0x9f */

        if (c < 0x20 || c == 0x7f
            || (c == 0xc2 && i + 1 < len
                && (unsigned char) s[i + 1] >= 0x80
                && (unsigned char) s[i + 1] <= 0x9f))
        {
            return "contains control characters";
        }
    }

    return NULL;
}


/*
 * "a,b": every name non-empty once blanks around it are trimmed, and at
 * least one.  An empty list is refused: stored, it would allow every
 * model.
 */

static int
ctl_check_list(const char *option, const char *list)
{
    size_t       n, count;
    const char  *p, *end, *why;

    count = 0;

    for (p = list; /* void */; p = end + 1) {
        end = strchr(p, ',');
        n = end ? (size_t) (end - p) : strlen(p);

        while (n && *p == ' ') {
            p++;
            n--;
        }

        while (n && p[n - 1] == ' ') {
            n--;
        }

        why = ctl_text_problem(p, n, LLMP_KEY_NAME_MAX);

        if (why) {
            fprintf(stderr, "llmproxyctl: --%s: name %zu %s (expected a "
                    "comma-separated list of names, each at most %d "
                    "bytes; an empty list is refused because it would "
                    "allow every model)\n", option, count + 1, why,
                    LLMP_KEY_NAME_MAX);
            return -1;
        }

        if (++count > LLMP_KEY_LIST_MAX) {
            fprintf(stderr, "llmproxyctl: --%s: more than %d names\n",
                    option, LLMP_KEY_LIST_MAX);
            return -1;
        }

        if (end == NULL) {
            return 0;
        }
    }
}


/* "a,b" to a PostgreSQL array literal {"a","b"} (caller frees) */

static char *
ctl_pg_array(const char *list)
{
    char        *out, *o;
    const char  *p;

    if (list == NULL) {
        return NULL;
    }

    out = malloc(2 * strlen(list) + 3 * (strlen(list) + 1) + 3);
    if (out == NULL) {
        return NULL;
    }

    o = out;
    *o++ = '{';

    for (p = list; *p; /* void */) {
        while (*p == ',' || *p == ' ') {
            p++;
        }

        if (*p == '\0') {
            break;
        }

        if (o > out + 1) {
            *o++ = ',';
        }

        *o++ = '"';

        for ( /* void */ ; *p && *p != ','; p++) {
            if (*p == '"' || *p == '\\') {
                *o++ = '\\';
            }

            *o++ = *p;
        }

        while (o[-1] == ' ') {
            o--;
        }

        *o++ = '"';
    }

    *o++ = '}';
    *o = '\0';

    return out;
}


static const char *
ctl_key_option_name(int c)
{
    switch (c) {
    case 'a': return "alias";
    case 'm': return "models";
    case 'g': return "access-groups";
    case 'b': return "max-budget";
    case 'd': return "budget-duration";
    case 'r': return "rpm";
    case 't': return "tpm";
    case 'e': return "expires";
    case 's': return "spend";
    case 'B': return "block";
    case 'U': return "unblock";
    case 'D': return "database";
    case 'j': return "json";
    default: return "help";
    }
}


/*
 * Every option is checked here, before the database is asked: a value it
 * would refuse, or one that would widen a key, is an error.  Returns 0,
 * 1 after --help, -1 after telling why.
 */

static int
ctl_key_parse(int argc, char **argv, ctl_key_opts_t *o,
    const char *allowed)
{
    int          c;
    char         seen[128];
    long long    d;
    const char  *why;

    static const struct option  opts[] = {
        { "alias", required_argument, NULL, 'a' },
        { "models", required_argument, NULL, 'm' },
        { "access-groups", required_argument, NULL, 'g' },
        { "max-budget", required_argument, NULL, 'b' },
        { "budget-duration", required_argument, NULL, 'd' },
        { "rpm", required_argument, NULL, 'r' },
        { "tpm", required_argument, NULL, 't' },
        { "expires", required_argument, NULL, 'e' },
        { "spend", required_argument, NULL, 's' },
        { "block", no_argument, NULL, 'B' },
        { "unblock", no_argument, NULL, 'U' },
        { "database", required_argument, NULL, 'D' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    optind = 1;
    opterr = 1;
    memset(seen, 0, sizeof(seen));

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {

        if (c == '?' || c == ':' || c < 0 || c >= 128) {
            ctl_key_help(stderr);
            return -1;
        }

        if (strchr(allowed, c) == NULL) {
            fprintf(stderr, "llmproxyctl: key %s: --%s does not apply "
                    "here\n", argv[0], ctl_key_option_name(c));
            return -1;
        }

        if (seen[c]++) {
            fprintf(stderr, "llmproxyctl: --%s given more than once\n",
                    ctl_key_option_name(c));
            return -1;
        }

        if (strchr("bdrte", c) && strcmp(optarg, "none") == 0) {

            if (strchr(allowed, 'U') == NULL) {
                fprintf(stderr, "llmproxyctl: --%s none: a new key has no "
                        "limit unless given one: leave the option out\n",
                        ctl_key_option_name(c));
                return -1;
            }

            o->clear |= c == 'b' ? CTL_KEY_CLEAR_BUDGET
                      : c == 'd' ? CTL_KEY_CLEAR_DURATION
                      : c == 'r' ? CTL_KEY_CLEAR_RPM
                      : c == 't' ? CTL_KEY_CLEAR_TPM
                      : CTL_KEY_CLEAR_EXPIRES;
            continue;
        }

        switch (c) {
        case 'a':
            why = ctl_text_problem(optarg, strlen(optarg),
                                    LLMP_KEY_ALIAS_MAX);

            if (why) {
                fprintf(stderr, "llmproxyctl: --alias: %s (expected "
                        "printable UTF-8 text of at most %d bytes)\n", why,
                        LLMP_KEY_ALIAS_MAX);
                return -1;
            }

            if (strncmp(optarg, "sk-", 3) == 0) {
                /* it would be taken for a key by info, update, revoke */
                fprintf(stderr, "llmproxyctl: --alias: must not start "
                        "with \"sk-\"\n");
                return -1;
            }

            o->alias = optarg;
            break;

        case 'm':
        case 'g':
            if (ctl_check_list(ctl_key_option_name(c), optarg) != 0) {
                return -1;
            }

            *(c == 'm' ? &o->models : &o->groups) = optarg;
            break;

        case 'D': o->database = optarg; break;
        case 'j': o->json = 1; break;
        case 'B': o->blocked = "true"; break;
        case 'U': o->blocked = "false"; break;

        case 'b':
        case 's':
            if (ctl_usd(optarg) < 0) {
                fprintf(stderr, "llmproxyctl: --%s: expected an amount of "
                        "USD from 0 to %.0e, such as 50 or 12.5\n",
                        ctl_key_option_name(c), LLMP_KEY_USD_MAX);
                return -1;
            }

            *(c == 'b' ? &o->max_budget : &o->spend) = optarg;
            break;

        case 'r':
        case 't':
            if (ctl_count(optarg) < 0) {
                fprintf(stderr, "llmproxyctl: --%s: expected a whole number "
                        "from 1 to %d (for no limit, leave the option "
                        "out, or give none to update)\n",
                        ctl_key_option_name(c), LLMP_KEY_INT_MAX);
                return -1;
            }

            *(c == 'r' ? &o->rpm : &o->tpm) = optarg;
            break;

        case 'd':
        case 'e':
            d = ctl_duration(optarg);
            if (d <= 0) {
                fprintf(stderr, "llmproxyctl: --%s: expected a duration "
                        "from 1s to %lldd, such as 30d, 12h, 15m\n",
                        ctl_key_option_name(c), LLMP_DURATION_MAX / 86400);
                return -1;
            }

            snprintf(o->bufs[c == 'd'], sizeof(o->bufs[0]), "%lld", d);
            *(c == 'd' ? &o->budget_duration : &o->expires) =
                o->bufs[c == 'd'];
            break;

        case 'h':
            ctl_key_help(stdout);
            return 1;
        }
    }

    if (seen['B'] && seen['U']) {
        fprintf(stderr, "llmproxyctl: --block and --unblock together\n");
        return -1;
    }

    return 0;
}


static int
ctl_key_create(int argc, char **argv)
{
    int              rc, i;
    char            *models, *groups, key[64], hex[65], prefix[8];
    PGconn          *conn;
    PGresult        *res;
    unsigned char    rnd[LLMP_KEY_RANDOM * 2], digest[32];
    const char      *params[10];
    ctl_key_opts_t  o;
    FILE            *f;
    size_t           n, k;

    static const char  chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    memset(&o, 0, sizeof(ctl_key_opts_t));

    rc = ctl_key_parse(argc, argv, &o, LLMP_KEY_OPTS_CREATE);
    if (rc != 0) {
        return rc > 0 ? LLMP_EXIT_OK : LLMP_EXIT_INVALID;
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: key create: unexpected argument "
                "\"%s\"\n", argv[optind]);
        return LLMP_EXIT_INVALID;
    }

    /* sk- and 48 characters of [A-Za-z0-9], uniformly from /dev/urandom */

    f = fopen("/dev/urandom", "rb");
    if (f == NULL) {
        fprintf(stderr, "llmproxyctl: cannot open /dev/urandom\n");
        return LLMP_EXIT_FAILED;
    }

    memcpy(key, "sk-", 3);
    k = 3;

    while (k < 3 + LLMP_KEY_RANDOM) {
        n = fread(rnd, 1, sizeof(rnd), f);

        for (i = 0; i < (int) n && k < 3 + LLMP_KEY_RANDOM; i++) {
            if (rnd[i] < 248) {     /* 248 = 4 * 62: no modulo bias */
                key[k++] = chars[rnd[i] % 62];
            }
        }

        if (n == 0) {
            fclose(f);
            return LLMP_EXIT_FAILED;
        }
    }

    fclose(f);
    key[k] = '\0';

    llmp_sha256(key, k, digest);
    llmp_sha256_hex(digest, hex);
    memcpy(prefix, key, 7);
    prefix[7] = '\0';

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    models = ctl_pg_array(o.models);
    groups = ctl_pg_array(o.groups);

    params[0] = hex;
    params[1] = prefix;
    params[2] = o.alias;
    params[3] = models ? models : "{}";
    params[4] = groups ? groups : "{}";
    params[5] = o.max_budget;
    params[6] = o.budget_duration;
    params[7] = o.rpm;
    params[8] = o.tpm;
    params[9] = o.expires;

    res = PQexecParams(conn,
        "INSERT INTO llmproxy_keys (key_hash, key_prefix, alias, models,"
        " access_groups, max_budget, budget_duration_seconds,"
        " budget_reset_at, rpm, tpm, expires_at)"
        " VALUES ($1, $2, $3, $4::text[], $5::text[], $6::double precision,"
        " $7::bigint, now() + make_interval(secs => $7::double precision),"
        " $8::integer, $9::integer,"
        " now() + make_interval(secs => $10::double precision))",
        10, NULL, params, NULL, NULL, 0);

    free(models);
    free(groups);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
                   PQresultErrorField(res, PG_DIAG_SQLSTATE) : "", "23505")
            == 0)
        {
            fprintf(stderr, "llmproxyctl: a key with alias \"%s\" exists "
                    "already\n", o.alias ? o.alias : "");
            rc = LLMP_EXIT_INVALID;

        } else {
            fprintf(stderr, "llmproxyctl: database: %s",
                    PQerrorMessage(conn));
            rc = LLMP_EXIT_FAILED;
        }

        PQclear(res);
        PQfinish(conn);
        return rc;
    }

    PQclear(res);
    PQfinish(conn);

    if (o.json) {
        printf("{\"key\":\"%s\",\"alias\":%s%s%s,\"prefix\":\"%s\"}\n", key,
               o.alias ? "\"" : "", o.alias ? o.alias : "null",
               o.alias ? "\"" : "", prefix);

    } else {
        printf("%s\n", key);
        fprintf(stderr, "created key %s%s%s (%s...); it is shown only "
                "this once\n", o.alias ? "\"" : "", o.alias ? o.alias : "",
                o.alias ? "\" " : "", prefix);
    }

    return LLMP_EXIT_OK;
}


/*
 * the WHERE value for KEY_OR_ALIAS: the hash of a key, or an alias; NULL
 * (reported, without echoing what may be a key) when PostgreSQL would
 * refuse the text
 */

static const char *
ctl_key_where(const char *arg, char hex[65], const char **column)
{
    const char     *why;
    unsigned char   digest[32];

    why = ctl_text_problem(arg, strlen(arg), 1024);

    if (why) {
        fprintf(stderr, "llmproxyctl: KEY_OR_ALIAS %s\n", why);
        return NULL;
    }

    if (strncmp(arg, "sk-", 3) == 0 && strlen(arg) >= 20) {
        llmp_sha256(arg, strlen(arg), digest);
        llmp_sha256_hex(digest, hex);
        *column = "key_hash";
        return hex;
    }

    *column = "alias";

    return arg;
}


#define LLMP_KEY_COLUMNS                                                     \
    "coalesce(alias, ''), key_prefix, array_to_string(models, ','),"         \
    " array_to_string(access_groups, ','), coalesce(max_budget::text, ''),"  \
    " spend, coalesce(rpm::text, ''), coalesce(tpm::text, ''),"              \
    " coalesce(to_char(expires_at, 'YYYY-MM-DD HH24:MI'), ''),"              \
    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"                       \
    " WHEN expires_at <= now() THEN 'expired'"                               \
    " WHEN blocked THEN 'blocked' ELSE 'active' END,"                        \
    " coalesce(budget_duration_seconds::text, ''),"                          \
    " coalesce(to_char(budget_reset_at, 'YYYY-MM-DD HH24:MI'), ''),"         \
    " to_char(created_at, 'YYYY-MM-DD HH24:MI')"


static void
ctl_key_print_json(PGresult *res, int i, int comma)
{
    int          c;
    cJSON       *o;
    char        *s;

    static const char  *names[] = {
        "alias", "prefix", "models", "access_groups", "max_budget", "spend",
        "rpm", "tpm", "expires_at", "status", "budget_duration_seconds",
        "budget_reset_at", "created_at"
    };

    o = cJSON_CreateObject();

    for (c = 0; c < 13; c++) {
        cJSON_AddStringToObject(o, names[c], PQgetvalue(res, i, c));
    }

    s = cJSON_PrintUnformatted(o);
    printf("%s%s\n", s ? s : "{}", comma ? "," : "");
    free(s);
    cJSON_Delete(o);
}


static int
ctl_key_list(int argc, char **argv)
{
    int              i, n, rc;
    PGconn          *conn;
    PGresult        *res;
    ctl_key_opts_t  o;

    memset(&o, 0, sizeof(ctl_key_opts_t));

    rc = ctl_key_parse(argc, argv, &o, LLMP_KEY_OPTS_SHOW);
    if (rc != 0) {
        return rc > 0 ? LLMP_EXIT_OK : LLMP_EXIT_INVALID;
    }

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    res = PQexec(conn, "SELECT " LLMP_KEY_COLUMNS " FROM llmproxy_keys"
                       " ORDER BY created_at, alias");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    n = PQntuples(res);

    if (o.json) {
        printf("[\n");

        for (i = 0; i < n; i++) {
            ctl_key_print_json(res, i, i + 1 < n);
        }

        printf("]\n");

    } else {
        printf("%-20s %-10s %-24s %-12s %-10s %-10s %-6s %-8s %-16s %s\n",
               "ALIAS", "PREFIX", "MODELS", "GROUPS", "BUDGET", "SPEND",
               "RPM", "TPM", "EXPIRES", "STATUS");

        for (i = 0; i < n; i++) {
            printf("%-20s %-10s %-24s %-12s %-10s %-10.4f %-6s %-8s %-16s "
                   "%s\n",
                   PQgetvalue(res, i, 0)[0] ? PQgetvalue(res, i, 0) : "-",
                   PQgetvalue(res, i, 1),
                   PQgetvalue(res, i, 2)[0] ? PQgetvalue(res, i, 2) : "*",
                   PQgetvalue(res, i, 3)[0] ? PQgetvalue(res, i, 3) : "-",
                   PQgetvalue(res, i, 4)[0] ? PQgetvalue(res, i, 4) : "-",
                   strtod(PQgetvalue(res, i, 5), NULL),
                   PQgetvalue(res, i, 6)[0] ? PQgetvalue(res, i, 6) : "-",
                   PQgetvalue(res, i, 7)[0] ? PQgetvalue(res, i, 7) : "-",
                   PQgetvalue(res, i, 8)[0] ? PQgetvalue(res, i, 8) : "never",
                   PQgetvalue(res, i, 9));
        }
    }

    PQclear(res);
    PQfinish(conn);

    return LLMP_EXIT_OK;
}


static int
ctl_key_info(int argc, char **argv)
{
    int              rc;
    char             hex[65], sql[1024];
    PGconn          *conn;
    PGresult        *res;
    const char      *value, *column, *params[1];
    ctl_key_opts_t  o;

    memset(&o, 0, sizeof(ctl_key_opts_t));

    rc = ctl_key_parse(argc, argv, &o, LLMP_KEY_OPTS_SHOW);
    if (rc != 0) {
        return rc > 0 ? LLMP_EXIT_OK : LLMP_EXIT_INVALID;
    }

    if (optind + 1 != argc) {
        fprintf(stderr, "usage: llmproxyctl key info KEY_OR_ALIAS\n");
        return LLMP_EXIT_INVALID;
    }

    value = ctl_key_where(argv[optind], hex, &column);
    if (value == NULL) {
        return LLMP_EXIT_INVALID;
    }

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    snprintf(sql, sizeof(sql), "SELECT " LLMP_KEY_COLUMNS
             " FROM llmproxy_keys WHERE %s = $1", column);

    params[0] = value;
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    if (PQntuples(res) == 0) {
        fprintf(stderr, "llmproxyctl: no such key\n");
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_INVALID;
    }

    if (o.json) {
        ctl_key_print_json(res, 0, 0);

    } else {
        printf("alias:            %s\n", PQgetvalue(res, 0, 0));
        printf("prefix:           %s...\n", PQgetvalue(res, 0, 1));
        printf("models:           %s\n",
               PQgetvalue(res, 0, 2)[0] ? PQgetvalue(res, 0, 2) : "*");
        printf("access groups:    %s\n", PQgetvalue(res, 0, 3));
        printf("max budget:       %s\n",
               PQgetvalue(res, 0, 4)[0] ? PQgetvalue(res, 0, 4) : "none");
        printf("spend:            %s\n", PQgetvalue(res, 0, 5));
        printf("budget duration:  %s\n", PQgetvalue(res, 0, 10));
        printf("budget resets at: %s\n", PQgetvalue(res, 0, 11));
        printf("rpm:              %s\n", PQgetvalue(res, 0, 6));
        printf("tpm:              %s\n", PQgetvalue(res, 0, 7));
        printf("expires:          %s\n",
               PQgetvalue(res, 0, 8)[0] ? PQgetvalue(res, 0, 8) : "never");
        printf("status:           %s\n", PQgetvalue(res, 0, 9));
        printf("created:          %s\n", PQgetvalue(res, 0, 12));
    }

    PQclear(res);
    PQfinish(conn);

    return LLMP_EXIT_OK;
}


static int
ctl_key_change(int argc, char **argv, int revoke)
{
    int              rc;
    char             hex[65], sql[2048], *models, *groups;
    PGconn          *conn;
    PGresult        *res;
    char             clear[16];
    const char      *value, *column, *params[12];
    ctl_key_opts_t  o;

    memset(&o, 0, sizeof(ctl_key_opts_t));

    rc = ctl_key_parse(argc, argv, &o, revoke ? LLMP_KEY_OPTS_REVOKE
                                                   : LLMP_KEY_OPTS_UPDATE);
    if (rc != 0) {
        return rc > 0 ? LLMP_EXIT_OK : LLMP_EXIT_INVALID;
    }

    if (optind + 1 != argc) {
        fprintf(stderr, "usage: llmproxyctl key %s KEY_OR_ALIAS%s\n",
                revoke ? "revoke" : "update", revoke ? "" : " [options]");
        return LLMP_EXIT_INVALID;
    }

    value = ctl_key_where(argv[optind], hex, &column);
    if (value == NULL) {
        return LLMP_EXIT_INVALID;
    }

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        return LLMP_EXIT_FAILED;
    }

    models = ctl_pg_array(o.models);
    groups = ctl_pg_array(o.groups);

    params[0] = value;

    if (revoke) {
        snprintf(sql, sizeof(sql), "UPDATE llmproxy_keys SET revoked_at ="
                 " coalesce(revoked_at, now()) WHERE %s = $1", column);
        res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);

    } else {
        params[1] = o.alias;
        params[2] = models;
        params[3] = groups;
        params[4] = o.max_budget;
        params[5] = o.budget_duration;
        params[6] = o.rpm;
        params[7] = o.tpm;
        params[8] = o.expires;
        params[9] = o.spend;
        params[10] = o.blocked;

        snprintf(clear, sizeof(clear), "%u", o.clear);
        params[11] = clear;

        snprintf(sql, sizeof(sql),
            "UPDATE llmproxy_keys SET"
            " alias = coalesce($2, alias),"
            " models = coalesce($3::text[], models),"
            " access_groups = coalesce($4::text[], access_groups),"
            " max_budget = CASE WHEN $12::integer & 1 <> 0 THEN NULL"
            " ELSE coalesce($5::double precision, max_budget) END,"
            " budget_duration_seconds = CASE WHEN $12::integer & 2 <> 0"
            " THEN NULL"
            " ELSE coalesce($6::bigint, budget_duration_seconds) END,"
            " budget_reset_at = CASE WHEN $12::integer & 2 <> 0 THEN NULL"
            " WHEN $6::bigint IS NULL THEN budget_reset_at"
            " ELSE now() + make_interval(secs => $6::double precision) END,"
            " rpm = CASE WHEN $12::integer & 4 <> 0 THEN NULL"
            " ELSE coalesce($7::integer, rpm) END,"
            " tpm = CASE WHEN $12::integer & 8 <> 0 THEN NULL"
            " ELSE coalesce($8::integer, tpm) END,"
            " expires_at = CASE WHEN $12::integer & 16 <> 0 THEN NULL"
            " WHEN $9::bigint IS NULL THEN expires_at"
            " ELSE now() + make_interval(secs => $9::double precision) END,"
            " spend = coalesce($10::double precision, spend),"
            " blocked = coalesce($11::boolean, blocked)"
            " WHERE %s = $1", column);

        res = PQexecParams(conn, sql, 12, NULL, params, NULL, NULL, 0);
    }

    free(models);
    free(groups);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = LLMP_EXIT_FAILED;

        if (strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE) ?
                   PQresultErrorField(res, PG_DIAG_SQLSTATE) : "", "23505")
            == 0)
        {
            fprintf(stderr, "llmproxyctl: a key with alias \"%s\" exists "
                    "already\n", o.alias ? o.alias : "");
            rc = LLMP_EXIT_INVALID;

        } else {
            fprintf(stderr, "llmproxyctl: database: %s",
                    PQerrorMessage(conn));
        }

        PQclear(res);
        PQfinish(conn);
        return rc;
    }

    if (strcmp(PQcmdTuples(res), "0") == 0) {
        fprintf(stderr, "llmproxyctl: no such key\n");
        PQclear(res);
        PQfinish(conn);
        return LLMP_EXIT_INVALID;
    }

    printf("%s %s\n", revoke ? "revoked" : "updated", argv[optind][0] == 's'
           && strcmp(column, "key_hash") == 0 ? "the key" : argv[optind]);

    PQclear(res);
    PQfinish(conn);

    return LLMP_EXIT_OK;
}


int
ctl_cmd_key(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0)
    {
        ctl_key_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? LLMP_EXIT_INVALID : LLMP_EXIT_OK;
    }

    if (strcmp(argv[1], "create") == 0) {
        return ctl_key_create(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "list") == 0) {
        return ctl_key_list(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "info") == 0) {
        return ctl_key_info(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "update") == 0) {
        return ctl_key_change(argc - 1, argv + 1, 0);
    }

    if (strcmp(argv[1], "revoke") == 0) {
        return ctl_key_change(argc - 1, argv + 1, 1);
    }

    fprintf(stderr, "llmproxyctl: key: unknown command \"%s\"\n", argv[1]);
    ctl_key_help(stderr);

    return LLMP_EXIT_INVALID;
}

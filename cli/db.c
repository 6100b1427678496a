/*
 * PostgreSQL for llmproxyctl: connecting, and the schema migrations it
 * carries (configs/schema/NNN_*.sql, embedded at build time).  Each
 * migration runs once, in a transaction, under an advisory lock so that
 * two llmproxyctl runs never apply one twice.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"


typedef struct {
    int          version;
    const char  *name;
    const char  *sql;
} llmp_migration_t;

#include "llmp_schema.h"


#define LLMP_MIGRATION_LOCK  "7464011"


PGconn *
ctl_db_connect(const char *flag)
{
    PGconn      *conn;
    const char  *url;

    static const char *keywords[] = {
        "dbname", "connect_timeout", "application_name", NULL
    };

    const char *values[4];

    url = ctl_database_url(flag);

    if (url == NULL) {
        fprintf(stderr, "llmproxyctl: no database: set LLMPROXY_DATABASE_URL "
                "or --database URL\n");
        return NULL;
    }

    values[0] = url;
    values[1] = "5";
    values[2] = "llmproxyctl";
    values[3] = NULL;

    conn = PQconnectdbParams(keywords, values, 1);

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "llmproxyctl: cannot connect to the database: %s",
                conn ? PQerrorMessage(conn) : "out of memory\n");
        PQfinish(conn);
        return NULL;
    }

    PQsetNoticeProcessor(conn, NULL, NULL);

    if (ctl_db_migrate(conn, 0) != 0) {
        PQfinish(conn);
        return NULL;
    }

    return conn;
}


static int
ctl_db_exec(PGconn *conn, const char *sql)
{
    PGresult  *res;
    int        ok;

    res = PQexec(conn, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK
         || PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok) {
        fprintf(stderr, "llmproxyctl: database: %s",
                PQerrorMessage(conn));
    }

    PQclear(res);

    return ok ? 0 : -1;
}


int
ctl_db_migrate(PGconn *conn, int verbose)
{
    int                      applied, n;
    char                     version[16];
    PGresult                *res;
    const char              *params[2];
    const llmp_migration_t  *m;

    if (ctl_db_exec(conn, "SELECT pg_advisory_lock(" LLMP_MIGRATION_LOCK
                           ")") != 0
        || ctl_db_exec(conn, "SET client_min_messages = warning") != 0
        || ctl_db_exec(conn,
               "CREATE TABLE IF NOT EXISTS llmproxy_schema_migrations ("
               " version integer PRIMARY KEY,"
               " name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())") != 0)
    {
        return -1;
    }

    n = 0;

    for (m = llmp_migrations; m->name; m++) {
        snprintf(version, sizeof(version), "%d", m->version);
        params[0] = version;

        res = PQexecParams(conn, "SELECT 1 FROM llmproxy_schema_migrations"
                           " WHERE version = $1::integer", 1, NULL, params,
                           NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "llmproxyctl: database: %s",
                    PQerrorMessage(conn));
            PQclear(res);
            goto failed;
        }

        applied = PQntuples(res) > 0;
        PQclear(res);

        if (applied) {
            continue;
        }

        if (ctl_db_exec(conn, "BEGIN") != 0) {
            goto failed;
        }

        if (ctl_db_exec(conn, m->sql) != 0) {
            fprintf(stderr, "llmproxyctl: migration %s failed\n", m->name);
            ctl_db_exec(conn, "ROLLBACK");
            goto failed;
        }

        params[1] = m->name;

        res = PQexecParams(conn, "INSERT INTO llmproxy_schema_migrations"
                           " (version, name) VALUES ($1::integer, $2)", 2,
                           NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "llmproxyctl: database: %s",
                    PQerrorMessage(conn));
            PQclear(res);
            ctl_db_exec(conn, "ROLLBACK");
            goto failed;
        }

        PQclear(res);

        if (ctl_db_exec(conn, "COMMIT") != 0) {
            goto failed;
        }

        if (verbose) {
            printf("applied %s\n", m->name);
        }

        n++;
    }

    ctl_db_exec(conn, "SELECT pg_advisory_unlock(" LLMP_MIGRATION_LOCK ")");

    if (verbose) {
        printf("schema up to date (%d migration%s applied)\n", n,
               n == 1 ? "" : "s");
    }

    return 0;

failed:

    ctl_db_exec(conn, "SELECT pg_advisory_unlock(" LLMP_MIGRATION_LOCK ")");

    return -1;
}


int
ctl_cmd_migrate(int argc, char **argv)
{
    int          rc;
    PGconn      *conn;
    const char  *url;

    url = NULL;

    if (ctl_wants_help(argc, argv)) {
        printf("usage: llmproxyctl migrate [--database URL]\n\n"
               "Applies the schema migrations the database lacks; running "
               "it twice changes nothing.\n");
        return LLMP_EXIT_OK;
    }

    if (argc == 3 && strcmp(argv[1], "--database") == 0) {
        url = argv[2];

    } else if (argc != 1) {
        fprintf(stderr, "usage: llmproxyctl migrate [--database URL]\n");
        return LLMP_EXIT_INVALID;
    }

    if (ctl_database_url(url) == NULL) {
        fprintf(stderr, "llmproxyctl: no database: set LLMPROXY_DATABASE_URL "
                "or --database URL\n");
        return LLMP_EXIT_INVALID;
    }

    conn = PQconnectdb(ctl_database_url(url));

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "llmproxyctl: cannot connect to the database: %s",
                PQerrorMessage(conn));
        PQfinish(conn);
        return LLMP_EXIT_FAILED;
    }

    PQsetNoticeProcessor(conn, NULL, NULL);

    rc = ctl_db_migrate(conn, 1) == 0 ? LLMP_EXIT_OK : LLMP_EXIT_FAILED;

    PQfinish(conn);

    return rc;
}

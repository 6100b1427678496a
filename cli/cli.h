/*
 * llmproxyctl: shared declarations of the command-line tool.
 */

#ifndef _LLMP_CLI_H_INCLUDED_
#define _LLMP_CLI_H_INCLUDED_

#include <stddef.h>
#include <cjson/cJSON.h>

/* exit codes */
#define LLMP_EXIT_OK       0
#define LLMP_EXIT_INVALID  1     /* usage, validation, refused input */
#define LLMP_EXIT_FAILED   2     /* gateway, database or I/O failure */

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *summary;
} llmp_command_t;

/* main.c: where things are, from flags or the environment */
const char *llmp_gateway_url(const char *flag);
char *llmp_master_key(const char *flag_file);
const char *llmp_database_url(const char *flag);
int llmp_wants_help(int argc, char **argv);

/* http.c: the gateway's admin API */
typedef struct {
    long     status;
    char    *body;
    size_t   len;
} llmp_http_response_t;

int llmp_http(const char *method, const char *url, const char *key,
    const char *body, llmp_http_response_t *resp);
void llmp_http_free(llmp_http_response_t *resp);
const char *llmp_http_error_message(llmp_http_response_t *resp);

/* db.c: PostgreSQL, migrations */
typedef struct pg_conn  PGconn;

PGconn *llmp_db_connect(const char *flag);
int llmp_db_migrate(PGconn *conn, int verbose);

/* commands */
int llmp_cmd_sync(int argc, char **argv);
int llmp_cmd_status(int argc, char **argv);
int llmp_cmd_key(int argc, char **argv);
int llmp_cmd_usage(int argc, char **argv);
int llmp_cmd_migrate(int argc, char **argv);

#endif /* _LLMP_CLI_H_INCLUDED_ */

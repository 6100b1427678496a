/*
 * llmproxyctl: shared declarations of the command-line tool.
 */

#ifndef _LLMP_CLI_H_INCLUDED_
#define _LLMP_CLI_H_INCLUDED_

#include <getopt.h>
#include <stddef.h>
#include <cjson/cJSON.h>


/* exit codes */
#define LLMP_EXIT_OK       0
#define LLMP_EXIT_INVALID  1     /* usage, validation, plan problems */
#define LLMP_EXIT_FAILED   2     /* gateway, database or I/O failure */


typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *summary;
} ctl_command_t;


/* env.c: where things are, from flags or the environment */
const char *ctl_gateway_url(const char *flag);
const char *ctl_config_path(const char *flag);
/* NULL: none; an empty LLMPROXY_DATABASE_URL says none too */
const char *ctl_database_url(const char *flag);
/* $LLMPROXY_SALT_KEY, else var/salt_key; NULL (or "" set) when none */
const char *ctl_salt_key(void);
/* whether a master key was given or var/master_key is readable */
int ctl_master_key_known(const char *flag_file);
/* "<gateway>/llmproxy/admin/<endpoint>"; -1 (reported) when too long */
int ctl_admin_url(char *buf, size_t size, const char *gateway_flag,
    const char *endpoint);
/*
 * The master key (the caller frees it), or NULL after telling the user,
 * on behalf of `command`, how to provide it.
 */
char *ctl_master_key(const char *flag_file, const char *command);
void ctl_secret_free(char *secret);
int ctl_wants_help(int argc, char **argv);
/*
 * -1 (reported) when option c, one of opts, comes a second time: the last
 * would win silently; seen starts zeroed
 */
int ctl_option_repeated(char seen[128], int c, const struct option *opts);
/*
 * "30d", "12h", "15m", "90s", "1w", "3600" to seconds; -1 if invalid or
 * longer than LLMP_DURATION_MAX (timestamps stay far inside PostgreSQL's
 * range)
 */
#define LLMP_DURATION_MAX  (100LL * 365 * 86400)
long long ctl_duration(const char *s);


/* http.c: the gateway's admin API */
typedef struct {
    long     status;
    char    *body;
    size_t   len;
} ctl_http_response_t;

/*
 * Returns 0 when an HTTP answer came back (any status), -1 after printing
 * why not.  key may be NULL; body NULL sends none.
 */
int ctl_http(const char *method, const char *url, const char *key,
    const char *body, ctl_http_response_t *resp);
/* a GET that prints nothing and gives up after 2 s; otherwise the same */
int ctl_http_probe(const char *url, const char *key,
    ctl_http_response_t *resp);
void ctl_http_free(ctl_http_response_t *resp);
/* "HTTP 400: message" from an OpenAI-shaped error body; static buffer */
const char *ctl_http_error_message(const ctl_http_response_t *resp);


/* db.c: PostgreSQL, migrations */
typedef struct pg_conn  PGconn;

PGconn *ctl_db_connect(const char *flag);
int ctl_db_migrate(PGconn *conn, int verbose);


/* config_store.c: the config in PostgreSQL (llmproxy_config_entries) */

/* BEGIN, and lock the config state: one sync at a time; -1 reported */
int ctl_store_begin(PGconn *conn);
void ctl_store_rollback(PGconn *conn);
/*
 * The stored config in the compiled shape, sorted, without api_key or
 * headers (their digests stand for them);
 * *stored is NULL when nothing is stored.  -1 reported.
 */
int ctl_store_load(PGconn *conn, cJSON **stored);
/*
 * Encrypts provider headers an older llmproxyctl stored in plain text.
 * Returns how many (with dry_run: how many would be), -1 reported.
 */
int ctl_store_seal_headers(PGconn *conn, int dry_run);
/*
 * The stored providers whose secrets LLMPROXY_SALT_KEY did not encrypt
 * (another salt key's id, or no id and they do not decrypt): *stale is
 * {NAME: true, ...}, empty without a salt key.  -1 reported.
 */
int ctl_store_stale(PGconn *conn, cJSON **stale);
/*
 * Prints "providers.NAME.api_key: reason" for every provider key that
 * cannot be stored (no LLMPROXY_SALT_KEY, or a stale one the result has
 * no plain text for); returns how many.
 */
int ctl_store_check_keys(const cJSON *stored, const cJSON *result,
    const cJSON *stale);
/*
 * Writes the sealed result over stored (changed entries only, and stale
 * providers encrypted again), sets the config digest and commits;
 * *version is the new config version.  -1 reported (rolled back).
 */
int ctl_store_apply(PGconn *conn, const cJSON *stored, const cJSON *result,
    const cJSON *stale, long long *version);


/* commands */
int ctl_cmd_sync(int argc, char **argv);
int ctl_cmd_status(int argc, char **argv);
int ctl_cmd_key(int argc, char **argv);
int ctl_cmd_usage(int argc, char **argv);

/* loads the price list (prices.c); -1: a broken LLMPROXY_PRICES file */
int ctl_cli_prices(void);
/* lists the deployments of a compiled config that have no prices */
void ctl_cli_prices_note(const cJSON *compiled);
int ctl_cmd_migrate(int argc, char **argv);
int ctl_cmd_import(int argc, char **argv);
int ctl_import_litellm_keys(int argc, char **argv);

/*
 * litellm_yaml.c: a YAML file (one document) as cJSON; NULL with
 * "name:line:column: reason" in err
 */
cJSON *ctl_yaml_load(const char *path, const char *name, char *err,
    size_t errlen);
int ctl_cmd_backup(int argc, char **argv);
int ctl_cmd_restore(int argc, char **argv);

#endif /* _LLMP_CLI_H_INCLUDED_ */

/*
 * llmproxyctl: validates and pushes config.json, manages virtual keys,
 * reports usage.  `llmproxyctl --help` lists the commands.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"


static const llmp_command_t  llmp_commands[] = {
    { "sync", llmp_cmd_sync,
      "validate config.json and push it into the gateway" },
    { "status", llmp_cmd_status, "what the gateway has loaded" },
    { "key", llmp_cmd_key,
      "create, list, inspect, update and revoke virtual keys" },
    { "usage", llmp_cmd_usage, "usage and spend reports" },
    { "migrate", llmp_cmd_migrate,
      "bring the database schema up to date" },
    { NULL, NULL, NULL }
};


static void
llmp_usage(FILE *f)
{
    const llmp_command_t  *c;

    fprintf(f, "usage: llmproxyctl COMMAND [options]\n\ncommands:\n");

    for (c = llmp_commands; c->name; c++) {
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    }

    fprintf(f, "\n`llmproxyctl COMMAND --help` for a command's options.\n"
            "\nenvironment:\n"
            "  LLMPROXY_GATEWAY_URL   gateway admin address "
            "(else http://$LLMPROXY_LISTEN,\n"
            "                         else http://127.0.0.1:4000)\n"
            "  LLMPROXY_MASTER_KEY    master key (else var/master_key)\n"
            "  LLMPROXY_DATABASE_URL  PostgreSQL URI\n"
            "  LLMPROXY_CONFIG        config file (else configs/config.json)"
            "\n\nexit codes: 0 ok, 1 invalid input or refused, "
            "2 gateway, database or I/O failure\n");
}


int
llmp_wants_help(int argc, char **argv)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }

    return 0;
}


const char *
llmp_gateway_url(const char *flag)
{
    static char  buf[512];
    const char  *v;

    if (flag) {
        return flag;
    }

    v = getenv("LLMPROXY_GATEWAY_URL");
    if (v && v[0]) {
        return v;
    }

    v = getenv("LLMPROXY_LISTEN");
    if (v && v[0]) {
        snprintf(buf, sizeof(buf), "http://%s", v);
        return buf;
    }

    return "http://127.0.0.1:4000";
}


char *
llmp_master_key(const char *flag_file)
{
    char        buf[512];
    size_t      n;
    FILE       *f;
    const char *v, *file;

    if (flag_file == NULL) {
        v = getenv("LLMPROXY_MASTER_KEY");
        if (v && v[0]) {
            return strdup(v);
        }
    }

    file = flag_file ? flag_file : "var/master_key";

    f = fopen(file, "r");
    if (f == NULL) {
        if (flag_file) {
            fprintf(stderr, "llmproxyctl: cannot read master key file "
                    "\"%s\"\n", flag_file);
        }

        return NULL;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                 || buf[n - 1] == ' '))
    {
        buf[--n] = '\0';
    }

    return n ? strdup(buf) : NULL;
}


const char *
llmp_database_url(const char *flag)
{
    const char  *v;

    if (flag) {
        return flag;
    }

    v = getenv("LLMPROXY_DATABASE_URL");

    return (v && v[0]) ? v : NULL;
}


int
main(int argc, char **argv)
{
    int                    rc;
    const llmp_command_t  *c;

    if (argc < 2) {
        llmp_usage(stderr);
        return LLMP_EXIT_INVALID;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0)
    {
        llmp_usage(stdout);
        return LLMP_EXIT_OK;
    }

    for (c = llmp_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            break;
        }
    }

    if (c->name == NULL) {
        fprintf(stderr, "llmproxyctl: unknown command \"%s\"\n\n", argv[1]);
        llmp_usage(stderr);
        return LLMP_EXIT_INVALID;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);

    rc = c->run(argc - 1, argv + 1);

    curl_global_cleanup();

    return rc;
}

/*
 * llmproxyctl: validates and pushes config.json, manages virtual keys,
 * reports usage.  `llmproxyctl --help` lists the commands.
 */

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"


static const ctl_command_t  ctl_commands[] = {
    { "sync", ctl_cmd_sync,
      "validate config.json; store it in the database or push it" },
    { "status", ctl_cmd_status, "show what the gateway has loaded" },
    { "key", ctl_cmd_key,
      "create, list, inspect, update and revoke virtual keys" },
    { "usage", ctl_cmd_usage, "usage and spend reports" },
    { "migrate", ctl_cmd_migrate,
      "bring the database schema up to date" },
    { "import", ctl_cmd_import,
      "LiteLLM's config.yaml and virtual keys" },
    { "backup", ctl_cmd_backup,
      "snapshot keys, config and usage to S3 or a directory; list them" },
    { "restore", ctl_cmd_restore, "restore a backup into the database" },
    { NULL, NULL, NULL }
};


static void
ctl_usage(FILE *f)
{
    const ctl_command_t  *c;

    fprintf(f, "usage: llmproxyctl COMMAND [options]\n\ncommands:\n");

    for (c = ctl_commands; c->name; c++) {
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    }

    fprintf(f,
        "\n`llmproxyctl COMMAND --help` shows a command's options.\n"
        "\nenvironment:\n"
        "  LLMPROXY_GATEWAY_URL   gateway address (else "
        "http://$LLMPROXY_LISTEN,\n"
        "                         else listen in var/nginx.conf, else\n"
        "                         http://127.0.0.1:4000)\n"
        "  LLMPROXY_MASTER_KEY    master key (else the file var/master_key)"
        "\n"
        "  LLMPROXY_CONFIG        config file (else configs/config.json)\n"
        "  LLMPROXY_DATABASE_URL  PostgreSQL URI (else llmproxy_database in\n"
        "                         var/nginx.conf; set empty: none)\n"
        "  LLMPROXY_SALT_KEY      encrypts stored provider keys (else the "
        "file\n"
        "                         var/salt_key)\n"
        "  LLMPROXY_VAR           where make run wrote its files (else "
        "var)\n"
        "  LLMPROXY_PRICES        price list (else the one built in, from\n"
        "                         configs/prices.json)\n"
        "\nexit codes: 0 ok, 1 usage, validation or plan problems, "
        "2 gateway, database\nor I/O failure\n");
}


int
main(int argc, char **argv)
{
    int                    rc;
    char                   name[64];
    const ctl_command_t  *c;

    if (argc < 2) {
        ctl_usage(stderr);
        return LLMP_EXIT_INVALID;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0)
    {
        ctl_usage(stdout);
        return LLMP_EXIT_OK;
    }

    for (c = ctl_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            break;
        }
    }

    if (c->name == NULL) {
        fprintf(stderr, "llmproxyctl: unknown %s \"%s\"\n\n",
                argv[1][0] == '-' ? "option" : "command", argv[1]);
        ctl_usage(stderr);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_cli_prices() != 0) {
        return LLMP_EXIT_INVALID;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "llmproxyctl: libcurl failed to initialise\n");
        return LLMP_EXIT_FAILED;
    }

    /* getopt's messages then read "llmproxyctl sync: ..." */

    snprintf(name, sizeof(name), "llmproxyctl %s", c->name);
    argv[1] = name;

    rc = c->run(argc - 1, argv + 1);

    curl_global_cleanup();

    return rc;
}

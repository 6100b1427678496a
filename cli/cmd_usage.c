/*
 * llmproxyctl usage: usage and spend reports (not implemented yet).
 */

#include <stdio.h>

#include "cli.h"


int
llmp_cmd_usage(int argc, char **argv)
{
    if (llmp_wants_help(argc, argv)) {
        printf("usage: llmproxyctl usage [--since 7d] [--by key|model|day]"
               "\n\nUsage and spend reports from the usage records in "
               "PostgreSQL.\nNot implemented yet.\n");
        return LLMP_EXIT_OK;
    }

    fprintf(stderr, "llmproxyctl: usage: not implemented yet (needs "
            "PostgreSQL)\n");

    return LLMP_EXIT_FAILED;
}

/*
 * llmproxyctl status: what the gateway has loaded (never secrets).
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"


int
llmp_cmd_status(int argc, char **argv)
{
    int                    c, json;
    char                  *key, url[600], *text;
    cJSON                 *root, *v, *item;
    const char            *gateway, *key_file;
    llmp_http_response_t   resp;

    static const struct option  opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "gateway", required_argument, NULL, 'g' },
        { "master-key-file", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    json = 0;
    gateway = NULL;
    key_file = NULL;
    optind = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'g': gateway = optarg; break;
        case 'k': key_file = optarg; break;

        case 'h':
            printf("usage: llmproxyctl status [--json] [--gateway URL] "
                   "[--master-key-file F]\n\nWhat the gateway has loaded: "
                   "config generation and digest, counts, cooldowns.\n");
            return LLMP_EXIT_OK;

        default:
            return LLMP_EXIT_INVALID;
        }
    }

    key = llmp_master_key(key_file);

    if (key == NULL) {
        fprintf(stderr, "llmproxyctl: status needs the master key: set "
                "LLMPROXY_MASTER_KEY, or --master-key-file, or "
                "var/master_key\n");
        return LLMP_EXIT_INVALID;
    }

    snprintf(url, sizeof(url), "%s/llmproxy/admin/status",
             llmp_gateway_url(gateway));

    if (llmp_http("GET", url, key, NULL, &resp) != 0) {
        free(key);
        return LLMP_EXIT_FAILED;
    }

    free(key);

    if (resp.status != 200) {
        fprintf(stderr, "llmproxyctl: %s\n", llmp_http_error_message(&resp));
        llmp_http_free(&resp);
        return LLMP_EXIT_FAILED;
    }

    root = cJSON_Parse(resp.body);
    llmp_http_free(&resp);

    if (root == NULL) {
        fprintf(stderr, "llmproxyctl: the gateway sent invalid JSON\n");
        return LLMP_EXIT_FAILED;
    }

    if (json) {
        text = cJSON_Print(root);
        printf("%s\n", text ? text : "{}");
        free(text);
        cJSON_Delete(root);
        return LLMP_EXIT_OK;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "loaded");
    printf("config:      %s\n", cJSON_IsTrue(v) ? "loaded" : "none loaded");

    v = cJSON_GetObjectItemCaseSensitive(root, "generation");
    printf("generation:  %d\n", cJSON_IsNumber(v) ? v->valueint : 0);

    v = cJSON_GetObjectItemCaseSensitive(root, "config_sha256");
    if (cJSON_IsString(v)) {
        printf("sha256:      %s\n", v->valuestring);
    }

#define LLMP_COUNT(name)                                                     \
    v = cJSON_GetObjectItemCaseSensitive(root, name);                        \
    if (cJSON_IsNumber(v)) {                                                 \
        printf("%-12s %d\n", name ":", v->valueint);                         \
    }

    LLMP_COUNT("providers");
    LLMP_COUNT("deployments");
    LLMP_COUNT("models");
    LLMP_COUNT("aliases");

#undef LLMP_COUNT

    v = cJSON_GetObjectItemCaseSensitive(root, "cooldowns");
    printf("cooldowns:   %d\n", cJSON_GetArraySize(v));

    cJSON_ArrayForEach(item, v) {
        printf("  %s for %.1fs\n",
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item,
                                                              "deployment")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item,
                                        "until_ms_from_now")) / 1000);
    }

    cJSON_Delete(root);

    return LLMP_EXIT_OK;
}


int
llmp_cmd_usage(int argc, char **argv)
{
    if (llmp_wants_help(argc, argv)) {
        printf("usage: llmproxyctl usage [--since 7d] [--by key|model|day] "
               "[--json]\n\nUsage records arrive with usage accounting; "
               "not available yet.\n");
        return LLMP_EXIT_OK;
    }

    fprintf(stderr, "llmproxyctl: usage: not available yet (usage records "
            "arrive with usage accounting)\n");

    return LLMP_EXIT_FAILED;
}

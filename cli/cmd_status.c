/*
 * llmproxyctl status: what the gateway has loaded (never secrets).
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"


static void
ctl_status_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl status [--json] [--gateway URL] "
        "[--master-key-file FILE]\n\n"
        "Shows what the gateway has loaded: config generation, version and\n"
        "digest, the database's state and the number of keys, the models\n"
        "with their deployments (provider, upstream model, weight, health\n"
        "check: healthy or unhealthy when checks are on, cooldown left),\n"
        "aliases and fallbacks.  No secrets.\n\n"
        "  --json                  print the gateway's answer as JSON\n"
        "  --gateway URL           gateway address (else "
        "$LLMPROXY_GATEWAY_URL,\n"
        "                          http://$LLMPROXY_LISTEN, "
        "http://127.0.0.1:4000)\n"
        "  --master-key-file FILE  master key (else $LLMPROXY_MASTER_KEY,\n"
        "                          else var/master_key)\n");
}


/* "a, b, c" of an array of strings into buf; "-" when empty */

static const char *
ctl_status_join(const cJSON *list, char *buf, size_t size)
{
    size_t        n;
    const char   *s;
    const cJSON  *item;

    n = 0;
    buf[0] = '\0';

    cJSON_ArrayForEach(item, list) {
        s = cJSON_GetStringValue(item);

        if (s && n < size) {
            n += snprintf(buf + n, size - n, "%s%s", n ? ", " : "", s);
        }
    }

    if (n >= size && size > 4) {
        memcpy(buf + size - 4, "...", 4);
    }

    return buf[0] ? buf : "-";
}


static const char *
ctl_status_str(const cJSON *obj, const char *name)
{
    const char  *s;

    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));

    return s ? s : "?";
}


static int
ctl_status_width(const cJSON *list, const char *name, int min)
{
    int           w, n;
    const cJSON  *item;

    w = min;

    cJSON_ArrayForEach(item, list) {
        n = (int) strlen(ctl_status_str(item, name));
        w = n > w ? n : w;
    }

    return w;
}


static void
ctl_status_lists(const cJSON *root)
{
    int           wn, wp, wu, checked;
    char          buf[1024], cool[32];
    double        ms;
    const char   *health;
    const cJSON  *list, *item;

    list = cJSON_GetObjectItemCaseSensitive(root, "model_list");

    if (cJSON_GetArraySize(list) > 0) {
        wn = ctl_status_width(list, "name", 5);

        printf("\nmodels:\n  %-*s  %s\n", wn, "MODEL", "DEPLOYMENTS");

        cJSON_ArrayForEach(item, list) {
            printf("  %-*s  %s\n", wn, ctl_status_str(item, "name"),
                   ctl_status_join(cJSON_GetObjectItemCaseSensitive(item,
                                        "deployments"), buf, sizeof(buf)));
        }
    }

    list = cJSON_GetObjectItemCaseSensitive(root, "deployment_list");

    if (cJSON_GetArraySize(list) > 0) {
        wn = ctl_status_width(list, "id", 10);
        wp = ctl_status_width(list, "provider", 8);
        wu = ctl_status_width(list, "upstream_model", 14);

        /* a HEALTH column when health checks are on */

        checked = 0;

        cJSON_ArrayForEach(item, list) {
            checked |= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item,
                                                                  "health"));
        }

        printf("\ndeployments:\n  %-*s  %-*s  %-*s  %6s  %s%s\n",
               wn, "DEPLOYMENT", wp, "PROVIDER", wu, "UPSTREAM MODEL",
               "WEIGHT", checked ? "COOLDOWN    " : "COOLDOWN",
               checked ? "HEALTH" : "");

        cJSON_ArrayForEach(item, list) {
            ms = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item,
                                          "cooldown_ms"));

            if (ms == ms && ms > 0) {
                snprintf(cool, sizeof(cool), "%.1fs left", ms / 1000);

            } else {
                snprintf(cool, sizeof(cool), "-");
            }

            /* not checked (yet): "-" */

            health = cJSON_GetStringValue(
                         cJSON_GetObjectItemCaseSensitive(item, "health"));

            printf("  %-*s  %-*s  %-*s  %6.0f  %-*s%s\n",
                   wn, ctl_status_str(item, "id"),
                   wp, ctl_status_str(item, "provider"),
                   wu, ctl_status_str(item, "upstream_model"),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item,
                                            "weight")),
                   checked ? 12 : 0, cool,
                   checked ? (health ? health : "-") : "");
        }
    }

    list = cJSON_GetObjectItemCaseSensitive(root, "alias_list");

    if (cJSON_GetArraySize(list) > 0) {
        wn = ctl_status_width(list, "name", 0);

        printf("\naliases:\n");

        cJSON_ArrayForEach(item, list) {
            printf("  %-*s -> %s\n", wn, ctl_status_str(item, "name"),
                   ctl_status_str(item, "model"));
        }
    }

    list = cJSON_GetObjectItemCaseSensitive(root, "model_list");

    if (cJSON_GetArraySize(list) > 0) {
        printf("\nfallbacks:\n");

        wn = 0;

        cJSON_ArrayForEach(item, list) {
            if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(item,
                                       "fallbacks")) > 0)
            {
                wn++;
                printf("  %s -> %s\n", ctl_status_str(item, "name"),
                       ctl_status_join(cJSON_GetObjectItemCaseSensitive(item,
                                            "fallbacks"), buf, sizeof(buf)));
            }
        }

        if (wn == 0) {
            printf("  none\n");
        }
    }
}


static void
ctl_status_print(const cJSON *root)
{
    int           i;
    double        ms;
    const char   *d;
    const cJSON  *v, *item;

    static const char *const  counts[] = {
        "keys", "providers", "deployments", "models", "aliases", "fallbacks",
        NULL
    };

    v = cJSON_GetObjectItemCaseSensitive(root, "loaded");
    printf("config:       %s\n", cJSON_IsTrue(v) ? "loaded" : "none loaded");

    v = cJSON_GetObjectItemCaseSensitive(root, "generation");
    if (cJSON_IsNumber(v)) {
        printf("generation:   %.0f\n", v->valuedouble);
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "config_version");
    if (cJSON_IsNumber(v)) {
        printf("version:      %.0f (in the database)\n", v->valuedouble);
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "config_sha256");
    if (cJSON_IsString(v) && v->valuestring[0]) {
        printf("sha256:       %s\n", v->valuestring);
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "database");
    if (cJSON_IsString(v)) {
        printf("database:     %s\n", v->valuestring);
    }

    for (i = 0; counts[i]; i++) {
        v = cJSON_GetObjectItemCaseSensitive(root, counts[i]);

        if (cJSON_IsNumber(v)) {
            printf("%s:%*s%.0f\n", counts[i],
                   (int) (13 - strlen(counts[i])), "", v->valuedouble);
        }
    }

    ctl_status_lists(root);

    v = cJSON_GetObjectItemCaseSensitive(root, "cooldowns");

    if (cJSON_GetArraySize(v) == 0) {
        printf("\ncooldowns:    none\n");
        return;
    }

    printf("\ncooldowns:    %d\n", cJSON_GetArraySize(v));

    cJSON_ArrayForEach(item, v) {
        d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item,
                                     "deployment"));
        ms = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item,
                                      "until_ms_from_now"));

        printf("  %s for %.1fs\n", d ? d : "?",
               ms == ms && ms > 0 ? ms / 1000 : 0);
    }
}


int
ctl_cmd_status(int argc, char **argv)
{
    int                    c, json, rc;
    char                  *key, url[2048], *text, seen[128];
    cJSON                 *root;
    const char            *gateway, *key_file;
    ctl_http_response_t   resp;

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
    memset(seen, 0, sizeof(seen));

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (ctl_option_repeated(seen, c, opts) != 0) {
            return LLMP_EXIT_INVALID;
        }

        switch (c) {
        case 'j':
            json = 1;
            break;

        case 'g':
            gateway = optarg;
            break;

        case 'k':
            key_file = optarg;
            break;

        case 'h':
            ctl_status_help(stdout);
            return LLMP_EXIT_OK;

        default:
            ctl_status_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: status: unexpected argument \"%s\"\n\n",
                argv[optind]);
        ctl_status_help(stderr);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_admin_url(url, sizeof(url), gateway, "status") != 0) {
        return LLMP_EXIT_INVALID;
    }

    key = ctl_master_key(key_file, "status");
    if (key == NULL) {
        return LLMP_EXIT_INVALID;
    }

    rc = ctl_http("GET", url, key, NULL, &resp);
    ctl_secret_free(key);

    if (rc != 0) {
        return LLMP_EXIT_FAILED;
    }

    if (resp.status != 200) {
        fprintf(stderr, "llmproxyctl: status: GET %s: %s\n", url,
                ctl_http_error_message(&resp));
        ctl_http_free(&resp);
        return LLMP_EXIT_FAILED;
    }

    root = cJSON_Parse(resp.body);
    ctl_http_free(&resp);

    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "llmproxyctl: status: the gateway's answer is not "
                "a JSON object\n");
        cJSON_Delete(root);
        return LLMP_EXIT_FAILED;
    }

    if (json) {
        text = cJSON_Print(root);

        if (text == NULL) {
            fprintf(stderr, "llmproxyctl: status: out of memory\n");
            cJSON_Delete(root);
            return LLMP_EXIT_FAILED;
        }

        printf("%s\n", text);
        free(text);

    } else {
        ctl_status_print(root);
    }

    cJSON_Delete(root);

    return LLMP_EXIT_OK;
}

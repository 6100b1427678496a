/*
 * The price list llmproxyctl compiles configs with: configs/prices.json as
 * it was at build time, or the file LLMPROXY_PRICES names (a newer list
 * without a rebuild).
 */

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "llmp_prices.h"
#include "llmp_prices_json.h"


int
ctl_cli_prices(void)
{
    int             rc;
    long            len;
    char           *text;
    FILE           *f;
    size_t          i;
    const char     *path;
    llmp_errors_t   errs;

    path = getenv("LLMPROXY_PRICES");
    text = NULL;

    if (path && path[0]) {
        f = fopen(path, "rb");

        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0
            || fseek(f, 0, SEEK_SET) != 0
            || (text = malloc((size_t) len + 1)) == NULL
            || fread(text, 1, (size_t) len, f) != (size_t) len)
        {
            fprintf(stderr, "llmproxyctl: LLMPROXY_PRICES \"%s\": cannot "
                    "read it\n", path);
            free(text);

            if (f) {
                fclose(f);
            }

            return -1;
        }

        fclose(f);
        text[len] = '\0';
    }

    llmp_errors_init(&errs);

    rc = llmp_prices_use(text ? text : llmp_prices_json, &errs);

    for (i = 0; i < errs.n; i++) {
        fprintf(stderr, "llmproxyctl: %s\n", errs.items[i]);
    }

    llmp_errors_free(&errs);
    free(text);

    return rc;
}


/*
 * Says which models of a compiled config are priced nowhere (their
 * requests are recorded as unpriced): a typo in a model name, or a model
 * newer than the list, shows here rather than in the invoices.
 */

void
ctl_cli_prices_note(const cJSON *compiled)
{
    int           n;
    const char   *checked;
    const cJSON  *d;

    n = 0;

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(compiled,
                                                           "deployments"))
    {
        if (cJSON_GetObjectItemCaseSensitive(d, LLMP_PRICE_INPUT) != NULL) {
            continue;
        }

        if (n++ == 0) {
            checked = llmp_prices_checked();
            fprintf(stderr, "llmproxyctl: note: priced neither in the config "
                    "nor in the price list (of %s), recorded as unpriced:",
                    checked ? checked : "none");
        }

        if (n <= 10) {
            fprintf(stderr, " %s", cJSON_GetStringValue(
                        cJSON_GetObjectItemCaseSensitive(d, "id")));

        } else if (n == 11) {
            fprintf(stderr, " ...");
        }
    }

    if (n) {
        fprintf(stderr, " (%d model%s)\n", n, n == 1 ? "" : "s");
    }
}

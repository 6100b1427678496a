/*
 * libFuzzer target: any bytes through cJSON_Parse, then the compiled-config
 * validator the gateway runs on every document posted to its admin API or
 * read from PostgreSQL.  It must never crash, leak or hit UB on any
 * document, however shaped.  Before validating, the gateway digests each
 * posted provider's "headers" (ngx_http_llmproxy_keep_digests): that runs
 * on the unchecked document too.  A document it accepts must also pass the
 * cross-reference check alone, have its providers and deployments in the
 * order sorting gives and survive sealing.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_config.h"
#include "llmp_crypt.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             i;
    char            hex[65];
    cJSON          *doc, *copy, *p;
    llmp_errors_t   errs;

    static const char *const  lists[] = { "providers", "deployments" };

    doc = cJSON_ParseWithLength((const char *) data, size);
    if (doc == NULL) {
        return 0;
    }

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(doc, "providers"))
    {
        (void) llmp_headers_sha256(cJSON_GetObjectItemCaseSensitive(p,
                                                                "headers"),
                                   hex);
    }

    llmp_errors_init(&errs);

    if (llmp_compiled_validate(doc, &errs) == 0) {
        /* what validates is consistent: no cross-reference error either */
        if (llmp_compiled_check(doc, &errs) != 0) {
            abort();
        }

        /*
         * its lists are in the validator's order: sorting changes
         * neither (aliases and fallbacks are maps, in any order)
         */
        copy = cJSON_Duplicate(doc, 1);
        if (copy != NULL && llmp_compiled_sort(copy) == 0) {
            for (i = 0; i < 2; i++) {
                if (!cJSON_Compare(
                        cJSON_GetObjectItemCaseSensitive(doc, lists[i]),
                        cJSON_GetObjectItemCaseSensitive(copy, lists[i]),
                        1))
                {
                    abort();
                }
            }
        }
        cJSON_Delete(copy);

        (void) llmp_compiled_seal(doc);
    }

    llmp_errors_free(&errs);
    cJSON_Delete(doc);

    return 0;
}

/*
 * libFuzzer target: any bytes through cJSON_Parse, then the compiled-config
 * validator the gateway runs on every document posted to its admin API or
 * read from PostgreSQL.  It must never crash, leak or hit UB on any
 * document, however shaped.  A document it accepts must also pass the
 * cross-reference check alone and survive sorting and sealing, as
 * llmproxyctl sync does with it.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_config.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON          *doc;
    llmp_errors_t   errs;

    doc = cJSON_ParseWithLength((const char *) data, size);
    if (doc == NULL) {
        return 0;
    }

    llmp_errors_init(&errs);

    if (llmp_compiled_validate(doc, &errs) == 0) {
        /* what validates is consistent: no cross-reference error either */
        if (llmp_compiled_check(doc, &errs) != 0) {
            abort();
        }
        (void) llmp_compiled_sort(doc);
        (void) llmp_compiled_seal(doc);
    }

    llmp_errors_free(&errs);
    cJSON_Delete(doc);

    return 0;
}

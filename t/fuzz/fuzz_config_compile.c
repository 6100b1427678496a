/*
 * libFuzzer target: a user config (config.json, and config.local.json when
 * the input holds a NUL: the bytes after the first NUL) through the
 * compiler llmproxyctl runs on user files: deep merge, "$extend", env:
 * secrets, patterns, every field's validation.  It must never crash, leak
 * or hit UB, and whatever it compiles must pass the validator the gateway
 * runs on the compiled document: a config llmproxyctl accepts and the
 * gateway refuses is a bug.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_config.h"
#include "llmp_prices.h"
#include "llmp_prices_json.h"


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* env: references resolve to something, or are reported missing */
    setenv("FUZZ_KEY", "sk-fuzz", 1);
    setenv("OPENAI_API_KEY", "sk-fuzz-openai", 1);
    setenv("ANTHROPIC_API_KEY", "sk-fuzz-anthropic", 1);
    setenv("EMPTY_KEY", "", 1);

    /* the shipped price list, as llmproxyctl loads it: patterns use it */
    if (llmp_prices_use(llmp_prices_json, NULL) != 0) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *base, *local;
    size_t          n, i;
    cJSON          *out;
    llmp_errors_t   errs;

    base = malloc(size + 1);
    if (base == NULL) {
        return 0;
    }
    memcpy(base, data, size);
    base[size] = '\0';

    n = strlen(base);
    local = n < size ? base + n + 1 : NULL;

    llmp_errors_init(&errs);
    out = NULL;

    if (llmp_config_load_string(base, local, &errs, &out) == 0) {
        if (out == NULL || errs.n != 0) {
            abort();
        }

        if (llmp_compiled_validate(out, &errs) != 0) {
            for (i = 0; i < errs.n; i++) {
                fprintf(stderr, "compiled, then refused: %s\n",
                        errs.items[i]);
            }
            abort();
        }

        cJSON_Delete(out);

    } else if (out != NULL || (errs.n == 0 && !errs.oom)) {
        /* a refusal says why */
        abort();
    }

    llmp_errors_free(&errs);
    free(base);

    return 0;
}

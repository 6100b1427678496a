/*
 * Seeds of fuzz_config_validate: compiles each user config given (a file
 * whose bytes after a NUL, if any, are its config.local.json, as
 * fuzz_config_compile reads its input), sorts and seals it as llmproxyctl
 * sync does before it posts it, and writes the compiled document to
 * OUTDIR/compiled-N.json, and the same without provider keys, as the
 * gateway's GET answers, to OUTDIR/get-N.json.
 * Usage: config_seed OUTDIR FILE...
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_config.h"
#include "llmp_prices.h"
#include "llmp_prices_json.h"


static int
write_doc(const char *dir, const char *kind, int n, const cJSON *doc)
{
    int    rc;
    char   path[4096], *text;
    FILE  *f;

    text = cJSON_Print(doc);
    snprintf(path, sizeof(path), "%s/%s-%d.json", dir, kind, n);
    f = fopen(path, "wb");
    if (text == NULL || f == NULL) {
        free(text);
        if (f) {
            fclose(f);
        }
        return -1;
    }
    rc = fputs(text, f) < 0 ? -1 : 0;
    free(text);
    return fclose(f) != 0 ? -1 : rc;
}


int
main(int argc, char **argv)
{
    int             i, bad;
    char            buf[1 << 20];
    size_t          len, n;
    FILE           *f;
    cJSON          *doc, *p;
    llmp_errors_t   errs;

    setenv("FUZZ_KEY", "sk-fuzz", 1);
    setenv("OPENAI_API_KEY", "sk-fuzz-openai", 1);
    setenv("ANTHROPIC_API_KEY", "sk-fuzz-anthropic", 1);
    setenv("CLIPROXY_API_KEY", "sk-fuzz-cliproxy", 1);
    setenv("EMPTY_KEY", "", 1);

    llmp_errors_init(&errs);
    if (argc < 3 || llmp_prices_use(llmp_prices_json, &errs) != 0) {
        fprintf(stderr, "usage: config_seed OUTDIR FILE...\n");
        return 1;
    }

    bad = 0;

    for (i = 2; i < argc; i++) {
        f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        n = strlen(buf);

        doc = NULL;
        if (llmp_config_load_string(buf, n < len ? buf + n + 1 : NULL,
                                    &errs, &doc) != 0
            || llmp_compiled_sort(doc) != 0
            || llmp_compiled_seal(doc) != 0
            || write_doc(argv[1], "compiled", i - 1, doc) != 0)
        {
            for (n = 0; n < errs.n; n++) {
                fprintf(stderr, "%s: %s\n", argv[i], errs.items[n]);
            }
            llmp_errors_free(&errs);
            cJSON_Delete(doc);
            bad = 1;
            continue;
        }

        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(doc,
                                                               "providers"))
        {
            cJSON_DeleteItemFromObjectCaseSensitive(p, "api_key");
        }

        if (write_doc(argv[1], "get", i - 1, doc) != 0) {
            bad = 1;
        }

        cJSON_Delete(doc);
    }

    return bad;
}

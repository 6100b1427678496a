/*
 * llmp_config: config.json (+ config.local.json) to the compiled config the
 * gateway loads.  Shared by llmproxyctl and its tests; nginx-free.
 *
 * Loading deep-merges config.local.json over the base file, resolves
 * "$extend" chains and "env:NAME" secrets, validates every field (unknown
 * fields are errors) and collects every problem as "path: reason".
 */

#ifndef _LLMP_CONFIG_H_INCLUDED_
#define _LLMP_CONFIG_H_INCLUDED_

#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct {
    char   **items;
    size_t   n;
    size_t   cap;
} llmp_errors_t;

void llmp_errors_init(llmp_errors_t *errs);
void llmp_errors_add(llmp_errors_t *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void llmp_errors_free(llmp_errors_t *errs);

/* deep merge: objects key by key, anything else replaced; src is copied */
int llmp_json_merge(cJSON *dst, const cJSON *src);

/*
 * Loads path and config.local.json beside it.  Returns the compiled config
 * (the caller deletes it) or NULL with errs filled.
 */
cJSON *llmp_config_load(const char *path, llmp_errors_t *errs);

/* the same from strings; local_json may be NULL */
cJSON *llmp_config_load_string(const char *json, const char *local_json,
    llmp_errors_t *errs);

/* validates and compiles an already merged user config */
cJSON *llmp_config_compile(const cJSON *config, llmp_errors_t *errs);

/*
 * Checks a compiled config's cross references (deployments to providers,
 * aliases and fallbacks to models).  Returns the number of errors added.
 */
size_t llmp_compiled_check(const cJSON *compiled, llmp_errors_t *errs);

/* sets "config_sha256" to the digest of the document without it */
int llmp_compiled_seal(cJSON *compiled);

#endif /* _LLMP_CONFIG_H_INCLUDED_ */

/*
 * llmp_config: config.json (+ config.local.json) to the compiled config the
 * gateway loads (format 1).  Shared by llmproxyctl, its tests and, later,
 * the gateway; nginx-free.
 *
 * Loading deep-merges config.local.json over the base file, resolves
 * "$extend" chains and "env:NAME" secrets, validates every field (unknown
 * fields are errors) and collects every problem as "path: reason".
 */

#ifndef _LLMP_CONFIG_H_INCLUDED_
#define _LLMP_CONFIG_H_INCLUDED_

#include <stddef.h>
#include <cjson/cJSON.h>


#define LLMP_CONFIG_FORMAT  1


/* a list of "path: reason" strings */

typedef struct {
    char    **items;
    size_t    n;
    size_t    cap;
    int       oom;         /* an error could not be recorded */
} llmp_errors_t;

void llmp_errors_init(llmp_errors_t *errs);
void llmp_errors_add(llmp_errors_t *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 when the exact string is in the list */
int llmp_errors_has(const llmp_errors_t *errs, const char *s);
void llmp_errors_free(llmp_errors_t *errs);


/* deep merge: objects key by key, anything else replaced; src is copied */
int llmp_json_merge(cJSON *dst, const cJSON *src);

/*
 * Loads path and config.local.json beside it (if present), validates and
 * compiles.  Returns 0 and sets *compiled (the caller deletes it), or -1
 * with every problem in errs and *compiled NULL.
 */
int llmp_config_load(const char *path, llmp_errors_t *errs,
    cJSON **compiled);

/* the same from strings; local_json may be NULL */
int llmp_config_load_string(const char *json, const char *local_json,
    llmp_errors_t *errs, cJSON **compiled);

/* validates and compiles an already merged user config */
int llmp_config_compile(const cJSON *config, llmp_errors_t *errs,
    cJSON **compiled);

/*
 * Validates a compiled document: shape, types, order, uniqueness and cross
 * references.  Provider "api_key" is optional (the gateway's GET omits
 * it).  Returns the number of errors added.
 */
size_t llmp_compiled_validate(const cJSON *compiled, llmp_errors_t *errs);

/*
 * Cross references only: deployments to providers, alias targets and
 * fallbacks to models, alias names against model names.  Returns the
 * number of errors added.
 */
size_t llmp_compiled_check(const cJSON *compiled, llmp_errors_t *errs);

/* sorts providers and deployments, and aliases and fallbacks by name */
int llmp_compiled_sort(cJSON *compiled);

/* sets "config_sha256" to the digest of the document with it set to "" */
int llmp_compiled_seal(cJSON *compiled);

/*
 * The offset of the first byte that is not valid UTF-8 (overlong forms,
 * surrogates and code points beyond U+10FFFF are not), or len.
 */
size_t llmp_utf8_invalid(const char *s, size_t len);

#endif /* _LLMP_CONFIG_H_INCLUDED_ */

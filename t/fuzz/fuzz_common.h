/*
 * Shared by the libFuzzer targets: the first input byte picks the
 * interfaces, so one corpus covers all six directed pairs.
 *   bits 0-1: from (0 openai, 1 anthropic, 2 gemini; 3 wraps to 0)
 *   bits 2-3: to, the same way
 *   bit 4:    stream / include_usage
 */

#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_translate.h"


static int
fuzz_iface(unsigned v)
{
    return 1 << (v % 3);
}


/* an output that is not one JSON document is a bug */
static void
fuzz_check_json(const llmp_buf_t *out)
{
    cJSON  *v;

    if (out->data == NULL || strlen(out->data) != out->len) {
        abort();
    }
    v = cJSON_ParseWithLength(out->data, out->len);
    if (v == NULL) {
        abort();
    }
    cJSON_Delete(v);
}

#endif /* _FUZZ_COMMON_H_INCLUDED_ */

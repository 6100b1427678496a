/*
 * LiteLLM's formats, shared by llmproxyctl and the module; see
 * llmp_litellm.h.
 */

#include <stdlib.h>
#include <string.h>

#include "llmp_litellm.h"


/* a century: larger durations are typos, and would overflow intervals */
#define LLMP_LITELLM_MAX_DURATION  (100LL * 366 * 86400)


long long
llmp_litellm_duration(const char *s, int *month)
{
    char       *end;
    long long   n, unit;

    *month = 0;

    if (strcmp(s, "daily") == 0) {
        return 86400;
    }

    if (strcmp(s, "weekly") == 0) {
        return 7 * 86400;
    }

    if (strcmp(s, "monthly") == 0) {
        *month = 1;
        return 30 * 86400;
    }

    if (*s < '0' || *s > '9') {
        return -1;
    }

    n = strtoll(s, &end, 10);

    if (n <= 0 || n > LLMP_LITELLM_MAX_DURATION) {
        return -1;
    }

    if (strcmp(end, "mo") == 0) {
        *month = 1;
        unit = 30 * 86400;

    } else if (end[0] != '\0' && end[1] != '\0') {
        return -1;

    } else {
        switch (end[0]) {
        case '\0': case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return -1;
        }
    }

    if (n > LLMP_LITELLM_MAX_DURATION / unit) {
        return -1;
    }

    return n * unit;
}

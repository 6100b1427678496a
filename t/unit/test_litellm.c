/*
 * Unit tests of LiteLLM's duration format (common/llmp_litellm.c), which
 * `import litellm-keys` and the /key/* API read budget_duration and
 * duration with.
 */

#include <stdio.h>

#include "llmp_litellm.h"
#include "unit_tap.h"


int
main(void)
{
    int        i, month;
    char       what[96];
    long long  got;

    static const struct {
        const char  *in;
        long long    secs;
        int          month;
    } cases[] = {
        { "30s", 30, 0 }, { "10m", 600, 0 }, { "24h", 86400, 0 },
        { "30d", 30 * 86400, 0 }, { "1w", 7 * 86400, 0 },
        { "1mo", 30 * 86400, 1 }, { "3mo", 90 * 86400, 1 },
        { "3600", 3600, 0 }, { "daily", 86400, 0 },
        { "weekly", 7 * 86400, 0 }, { "monthly", 30 * 86400, 1 },
        /* refused: never "forever" by accident */
        { "", -1, 0 }, { "0d", -1, 0 }, { "-5d", -1, 0 }, { "d", -1, 0 },
        { "5x", -1, 0 }, { "5dd", -1, 0 }, { "5 d", -1, 0 },
        { "1moo", -1, 0 }, { " 5d", -1, 0 }, { "+5d", -1, 0 },
        { "99999999999999999999d", -1, 0 }, { "999999999w", -1, 0 },
        { NULL, 0, 0 }
    };

    for (i = 0; cases[i].in; i++) {
        got = llmp_litellm_duration(cases[i].in, &month);
        snprintf(what, sizeof(what), "\"%s\" is %lld", cases[i].in,
                 cases[i].secs);
        TAP_OK(got == cases[i].secs
               && (got < 0 || month == cases[i].month), what);
    }

    return tap_done();
}

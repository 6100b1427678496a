/*
 * A minimal TAP producer for the unit tests: `ok N - what` lines and a
 * closing plan; the exit code is non-zero when anything failed.
 */

#ifndef _UNIT_TAP_H_INCLUDED_
#define _UNIT_TAP_H_INCLUDED_

#include <stdio.h>

static int  tap_n;
static int  tap_failed;

#define TAP_OK(cond, what)                                                   \
    do {                                                                     \
        tap_n++;                                                             \
        if (cond) {                                                          \
            printf("ok %d - %s\n", tap_n, what);                             \
        } else {                                                             \
            tap_failed++;                                                    \
            printf("not ok %d - %s (%s:%d)\n", tap_n, what, __FILE__,        \
                   __LINE__);                                                \
        }                                                                    \
    } while (0)

static int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* _UNIT_TAP_H_INCLUDED_ */

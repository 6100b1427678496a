/*
 * Unit tests of model patterns (common/llmp_pattern.c): matching, the
 * specificity that picks among patterns, and the names a pattern may pass
 * through to a provider.
 */

#include <stdio.h>
#include <string.h>

#include "llmp_pattern.h"
#include "unit_tap.h"


int
main(void)
{
    int   i;
    char  what[160], longname[300];

    static const struct {
        const char  *p;
        const char  *name;
        int          match;
    } cases[] = {
        { "*", "gpt-5", 1 }, { "*", "", 1 }, { "claude-*", "claude-x", 1 },
        { "claude-*", "claude-", 1 }, { "claude-*", "claud", 0 },
        { "claude-*", "xclaude-a", 0 }, { "gemini-*-pro", "gemini-2.5-pro",
                                          1 },
        { "gemini-*-pro", "gemini-2.5-flash", 0 }, { "*-pro", "a-pro", 1 },
        { "a*b*c", "aXbYc", 1 }, { "a*b*c", "aXbYcZ", 0 },
        { "a**", "a", 1 }, { "exact", "exact", 1 }, { "exact", "exactly", 0 },
        { "p/claude-*", "p/claude-y", 1 }, { "p/claude-*", "q/claude-y", 0 },
        { NULL, NULL, 0 }
    };

    static const struct {
        const char  *name;
        int          ok;
    } names[] = {
        { "gpt-5", 1 }, { "claude-sonnet-4-5-20250929", 1 },
        { "llama3:8b", 1 }, { "org/model@v2+x", 1 }, { "a/b/c", 1 },
        { "", 0 }, { "a b", 0 }, { "a\nb", 0 }, { "a/../b", 0 },
        { "../x", 0 }, { "./x", 0 }, { "x/.", 0 }, { "/x", 0 }, { "x/", 0 },
        { "a//b", 0 }, { "a?b", 0 }, { "a#b", 0 }, { "a%2e", 0 },
        { "*", 0 }, { "claude-*", 0 }, { "a\"b", 0 }, { "a\\b", 0 },
        { "..x", 1 }, { "x..", 1 },
        { NULL, 0 }
    };

    for (i = 0; cases[i].p; i++) {
        snprintf(what, sizeof(what), "\"%s\" %s \"%s\"", cases[i].p,
                 cases[i].match ? "matches" : "does not match",
                 cases[i].name);
        TAP_OK(llmp_pattern_match(cases[i].p, strlen(cases[i].p),
                                  cases[i].name, strlen(cases[i].name))
               == cases[i].match, what);
    }

    TAP_OK(llmp_pattern_is("claude-*", 8) && !llmp_pattern_is("claude", 6),
           "a pattern has a star");

    TAP_OK(llmp_pattern_specificity("*", 1) == 0
           && llmp_pattern_specificity("claude-*", 8) == 7
           && llmp_pattern_specificity("p/claude-*", 10) == 9,
           "specificity: the literal characters");

    for (i = 0; names[i].name; i++) {
        snprintf(what, sizeof(what), "name \"%s\" %s", names[i].name,
                 names[i].ok ? "passed through" : "refused");
        TAP_OK(llmp_pattern_name_ok(names[i].name, strlen(names[i].name))
               == names[i].ok, what);
    }

    memset(longname, 'a', sizeof(longname));
    TAP_OK(llmp_pattern_name_ok(longname, LLMP_PATTERN_NAME_MAX)
           && !llmp_pattern_name_ok(longname, LLMP_PATTERN_NAME_MAX + 1),
           "names up to 256 characters");

    /* no backtracking blow-up on a hostile name */
    memset(longname, 'a', sizeof(longname));
    TAP_OK(!llmp_pattern_match("*a*a*a*a*a*a*b", 14, longname, 256),
           "many stars against a long name end quickly");

    return tap_done();
}

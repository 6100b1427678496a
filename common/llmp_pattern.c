/*
 * Model patterns (see llmp_pattern.h).
 */

#include "llmp_pattern.h"

#include <string.h>


int
llmp_pattern_is(const char *p, size_t plen)
{
    return memchr(p, '*', plen) != NULL;
}


/*
 * Iterative glob with backtracking to the last "*" only: linear in
 * practice and never recursive, whatever a config or a client sends.
 */

int
llmp_pattern_match(const char *p, size_t plen, const char *name,
    size_t nlen)
{
    size_t  pi, ni, star, mark;

    pi = 0;
    ni = 0;
    star = (size_t) -1;
    mark = 0;

    while (ni < nlen) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = ni;

        } else if (pi < plen && p[pi] == name[ni]) {
            pi++;
            ni++;

        } else if (star != (size_t) -1) {
            pi = star + 1;
            ni = ++mark;

        } else {
            return 0;
        }
    }

    while (pi < plen && p[pi] == '*') {
        pi++;
    }

    return pi == plen;
}


size_t
llmp_pattern_specificity(const char *p, size_t plen)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < plen; i++) {
        if (p[i] != '*') {
            n++;
        }
    }

    return n;
}


int
llmp_pattern_name_ok(const char *name, size_t nlen)
{
    size_t         i, seg;
    unsigned char  c;

    if (nlen == 0 || nlen > LLMP_PATTERN_NAME_MAX) {
        return 0;
    }

    seg = 0;

    for (i = 0; i <= nlen; i++) {

        if (i == nlen || name[i] == '/') {
            if (seg == 0
                || (seg == 1 && name[i - 1] == '.')
                || (seg == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
            {
                return 0;
            }

            seg = 0;
            continue;
        }

        c = (unsigned char) name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
              || c == ':' || c == '@' || c == '+'))
        {
            return 0;
        }

        seg++;
    }

    return 1;
}

/*
 * Model patterns: a provider's model key with a "*" ("*", "claude-*",
 * "gemini-*-pro") passes every matching requested name through to the
 * provider.  Shared by llmproxyctl's compiler and the module's router.
 */

#ifndef _LLMP_PATTERN_H_INCLUDED_
#define _LLMP_PATTERN_H_INCLUDED_


#include <stddef.h>


/* the longest name a pattern passes through */
#define LLMP_PATTERN_NAME_MAX  256


/* 1 if the model key is a pattern (has a "*") */
int llmp_pattern_is(const char *p, size_t plen);

/* 1 if name matches the pattern; "*" matches any run, even an empty one */
int llmp_pattern_match(const char *p, size_t plen, const char *name,
    size_t nlen);

/*
 * how specific a pattern is: its literal characters.  Among patterns
 * matching a name the most specific wins; on a tie, the first in the
 * compiled order (sorted by deployment id).
 */
size_t llmp_pattern_specificity(const char *p, size_t plen);

/*
 * 1 if a name may be passed through by a pattern: 1-256 characters of
 * letters, digits and "._-:@+/", no empty, "." or ".." path segment.
 * The name goes into upstream URLs (Gemini's models/NAME:...) and bodies
 * as it is: nothing that could turn it into another path.
 */
int llmp_pattern_name_ok(const char *name, size_t nlen);

#endif /* _LLMP_PATTERN_H_INCLUDED_ */

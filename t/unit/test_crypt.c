/*
 * Unit tests of provider key encryption (common/llmp_crypt.c).
 */

#include <stdlib.h>
#include <string.h>

#include "llmp_crypt.h"
#include "unit_tap.h"


int
main(void)
{
    char  *a, *b, *p, *bad;

    a = llmp_encrypt("salt-one", "sk-provider-secret");
    b = llmp_encrypt("salt-one", "sk-provider-secret");

    TAP_OK(a && strncmp(a, "v1:", 3) == 0, "encrypted text is versioned");
    TAP_OK(a && strstr(a, "sk-provider") == NULL, "the secret is not "
                                                   "visible");
    TAP_OK(a && b && strcmp(a, b) != 0, "a fresh IV each time");

    p = a ? llmp_decrypt("salt-one", a) : NULL;
    TAP_OK(p && strcmp(p, "sk-provider-secret") == 0, "round trip");
    free(p);

    TAP_OK(a && llmp_decrypt("salt-two", a) == NULL,
           "another salt key cannot decrypt");

    bad = a ? strdup(a) : NULL;
    if (bad) {
        bad[10] = bad[10] == 'A' ? 'B' : 'A';
    }
    TAP_OK(bad && llmp_decrypt("salt-one", bad) == NULL,
           "damaged text is refused");

    TAP_OK(llmp_decrypt("salt-one", "v1:") == NULL
           && llmp_decrypt("salt-one", "plain") == NULL
           && llmp_decrypt("salt-one", "v1:!!!!") == NULL,
           "garbage is refused");

    p = llmp_encrypt("s", "");
    TAP_OK(p != NULL, "an empty secret encrypts");
    free(p);

    free(a);
    free(b);
    free(bad);

    return tap_done();
}

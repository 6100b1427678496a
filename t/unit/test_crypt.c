/*
 * Unit tests of provider key and headers encryption, and of the header
 * checks (common/llmp_crypt.c).
 */

#include <stdlib.h>
#include <string.h>

#include "llmp_crypt.h"
#include "llmp_sha256.h"
#include "unit_tap.h"


/* the salt key's id: stable, 16 hex digits, telling nothing of the key */

static void
test_salt_key_id(void)
{
    char           a[LLMP_SALT_KEY_ID_LEN + 1], b[LLMP_SALT_KEY_ID_LEN + 1];
    char           c[LLMP_SALT_KEY_ID_LEN + 1], hex[65];
    unsigned char  digest[32];

    llmp_salt_key_id("salt-one", a);
    llmp_salt_key_id("salt-one", b);
    llmp_salt_key_id("salt-two", c);

    TAP_OK(strlen(a) == 16 && strspn(a, "0123456789abcdef") == 16,
           "salt key id: 16 hex digits");
    TAP_OK(strcmp(a, b) == 0, "salt key id: the same for the same key");
    TAP_OK(strcmp(a, c) != 0, "salt key id: another for another key");

    /* SHA-256 of the key is the AES key: no part of it may show */

    llmp_sha256("salt-one", 8, digest);
    llmp_sha256_hex(digest, hex);
    TAP_OK(strstr(hex, a) == NULL && strstr(a, "salt") == NULL,
           "salt key id: not the AES key, not the salt key");
}


static void
test_headers(void)
{
    char        h1[65], h2[65], *enc;
    cJSON      *a, *b, *dec;

    a = cJSON_Parse("{\"X-B\":\"2\",\"Authorization\":\"Bearer hs\"}");
    b = cJSON_Parse("{\"Authorization\":\"Bearer hs\",\"X-B\":\"2\"}");

    TAP_OK(llmp_headers_sha256(a, h1) == 1 && llmp_headers_sha256(b, h2) == 1
           && strcmp(h1, h2) == 0 && strlen(h1) == 64,
           "the headers digest does not depend on their order");

    cJSON_ReplaceItemInObject(b, "X-B", cJSON_CreateString("3"));

    TAP_OK(llmp_headers_sha256(b, h2) == 1 && strcmp(h1, h2) != 0,
           "another value, another digest");

    dec = cJSON_CreateObject();
    TAP_OK(llmp_headers_sha256(dec, h2) == 0
           && llmp_headers_sha256(NULL, h2) == 0,
           "no headers: no digest");
    cJSON_Delete(dec);

    enc = llmp_headers_encrypt("salt-one", a);

    TAP_OK(enc && strncmp(enc, "v1:", 3) == 0 && strstr(enc, "Bearer") == NULL
           && strstr(enc, "Authorization") == NULL,
           "encrypted headers show neither names nor values");

    dec = enc ? llmp_headers_decrypt("salt-one", enc) : NULL;
    TAP_OK(dec && cJSON_Compare(dec, b, 1) == 0
           && cJSON_Compare(dec, a, 1) && llmp_headers_sha256(dec, h2) == 1
           && strcmp(h1, h2) == 0,
           "headers round trip");
    cJSON_Delete(dec);

    TAP_OK(enc && llmp_headers_decrypt("salt-two", enc) == NULL,
           "another salt key cannot decrypt the headers");

    free(enc);

    enc = llmp_encrypt("salt-one", "[\"not\",\"an object\"]");
    TAP_OK(enc && llmp_headers_decrypt("salt-one", enc) == NULL,
           "decrypted text that is not an object is refused");
    free(enc);

    cJSON_Delete(a);
    cJSON_Delete(b);

    TAP_OK(llmp_header_problem("Authorization", "Bearer x") == NULL
           && llmp_header_problem("X-Tab", "a\tb") == NULL
           && llmp_header_problem("x-a!#$%&'*+-.^_`|~", "") == NULL,
           "tokens, blanks and tabs are fine");

    TAP_OK(llmp_header_problem("", "v") && llmp_header_problem("A B", "v")
           && llmp_header_problem("A:", "v")
           && llmp_header_problem("A\r\nB", "v")
           && llmp_header_problem("\xc3\xa9", "v"),
           "header names must be tokens");

    TAP_OK(llmp_header_problem("X", "a\r\nX-Injected: 1")
           && llmp_header_problem("X", "a\nb")
           && llmp_header_problem("X", "a\x01")
           && llmp_header_problem("X", "a\x7f"),
           "no line breaks or control characters in values");

    TAP_OK(llmp_header_problem("content-length", "1")
           && llmp_header_problem("HOST", "h")
           && llmp_header_problem("Transfer-Encoding", "chunked")
           && llmp_header_problem("Connection", "close")
           && llmp_header_problem("TE", "trailers"),
           "headers the gateway sets itself are refused");
}


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

    test_headers();
    test_salt_key_id();

    return tap_done();
}

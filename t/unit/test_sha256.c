/*
 * Unit tests of SHA-256 (common/llmp_sha256.c): FIPS 180-4 / NIST
 * example vectors, streaming in odd pieces, the hex helper.
 */

#include <stdlib.h>
#include <string.h>

#include "llmp_sha256.h"
#include "unit_tap.h"


static const char *
hex_of(const void *data, size_t len)
{
    static char    hex[65];
    unsigned char  digest[32];

    llmp_sha256(data, len, digest);
    llmp_sha256_hex(digest, hex);

    return hex;
}


static void
test_vectors(void)
{
    const char  *s;

    TAP_OK(strcmp(hex_of("", 0), "e3b0c44298fc1c149afbf4c8996fb924"
                  "27ae41e4649b934ca495991b7852b855") == 0,
           "sha256 of the empty string");

    TAP_OK(strcmp(hex_of("abc", 3), "ba7816bf8f01cfea414140de5dae2223"
                  "b00361a396177a9cb410ff61f20015ad") == 0,
           "sha256 of \"abc\"");

    s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    TAP_OK(strcmp(hex_of(s, strlen(s)), "248d6a61d20638b8e5c026930c3e6039"
                  "a33ce45964ff2167f6ecedd419db06c1") == 0,
           "sha256 of the 448-bit vector");

    s = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
        "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

    TAP_OK(strcmp(hex_of(s, strlen(s)), "cf5b16a778af8380036ce59e7b049237"
                  "0b249b11e8f07a51afac45037afee9d1") == 0,
           "sha256 of the 896-bit vector");
}


static void
test_million_a(void)
{
    int                 i;
    char                hex[65], chunk[1000];
    unsigned char       digest[32];
    llmp_sha256_ctx_t   ctx;

    memset(chunk, 'a', sizeof(chunk));

    llmp_sha256_init(&ctx);

    for (i = 0; i < 1000; i++) {
        llmp_sha256_update(&ctx, chunk, sizeof(chunk));
    }

    llmp_sha256_final(&ctx, digest);
    llmp_sha256_hex(digest, hex);

    TAP_OK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
                  "f1809a48a497200e046d39ccc7112cd0") == 0,
           "sha256 of one million 'a' (streamed in 1000-byte pieces)");
}


static void
test_streaming(void)
{
    int                 ok;
    char                a[65], b[65];
    size_t              len, i, step;
    unsigned char       data[300], digest[32];
    llmp_sha256_ctx_t   ctx;

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char) (i * 7 + 3);
    }

    ok = 1;

    /* every length around the 55/56/64-byte padding boundaries */

    for (len = 0; len <= 200 && ok; len++) {
        for (step = 1; step <= 65 && ok; step += 8) {
            llmp_sha256(data, len, digest);
            llmp_sha256_hex(digest, a);

            llmp_sha256_init(&ctx);

            for (i = 0; i < len; i += step) {
                llmp_sha256_update(&ctx, data + i,
                                   len - i < step ? len - i : step);
            }

            llmp_sha256_final(&ctx, digest);
            llmp_sha256_hex(digest, b);

            ok = (strcmp(a, b) == 0);
        }
    }

    TAP_OK(ok, "streamed updates equal one-shot digests for lengths "
           "0..200");

    memcpy(a, hex_of(data, 55), sizeof(a));
    memcpy(b, hex_of(data, 56), sizeof(b));

    TAP_OK(strcmp(a, b) != 0 && strlen(hex_of(data, 64)) == 64,
           "lengths 55, 56 and 64 digest differently and print 64 digits");
}


static void
test_hex(void)
{
    int            i;
    char           hex[65];
    unsigned char  digest[32];

    for (i = 0; i < 32; i++) {
        digest[i] = (unsigned char) (i * 8 + 15);
    }

    hex[64] = 'x';
    llmp_sha256_hex(digest, hex);

    TAP_OK(strncmp(hex, "0f171f272f373f474f575f676f777f87", 32) == 0
           && hex[64] == '\0',
           "hex helper prints lowercase digits and a terminating NUL");
}


int
main(void)
{
    test_vectors();
    test_million_a();
    test_streaming();
    test_hex();

    return tap_done();
}

/*
 * libFuzzer target: the stream translation.  Byte 0 picks the pair and
 * include_usage, bytes 1-4 seed the split positions; the rest is the
 * provider's SSE stream.  It is fed whole and then in random pieces: the
 * two outputs (and results) must be the same.
 */

#include "fuzz_common.h"


static int
fuzz_run(int from, int to, int usage, const char *p, size_t len,
    unsigned seed, llmp_buf_t *out)
{
    int             rc;
    size_t          at, n;
    llmp_stream_t  *s;

    s = llmp_stream_new(from, to, "fuzz-model", usage);
    if (s == NULL) {
        abort();
    }
    llmp_stream_set_nonce(s, 1700000000, "fuzz");

    rc = 0;
    at = 0;
    while (at < len) {
        if (seed == 0) {
            n = len - at;
        } else {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 64;
            if (n > len - at) {
                n = len - at;
            }
        }
        if (llmp_stream_feed(s, p + at, n, out) != 0) {
            rc = -1;
        }
        at += n;
    }
    if (llmp_stream_finish(s, out) != 0) {
        rc = -1;
    }
    llmp_stream_free(s);
    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          from, to, usage, rc1, rc2;
    unsigned     seed;
    llmp_buf_t   whole = { 0 }, split = { 0 };

    if (size < 5) {
        return 0;
    }
    from = fuzz_iface(data[0] & 3);
    to = fuzz_iface((data[0] >> 2) & 3);
    usage = (data[0] >> 4) & 1;
    seed = ((unsigned) data[1] << 24 | (unsigned) data[2] << 16
            | (unsigned) data[3] << 8 | data[4]) | 1;

    rc1 = fuzz_run(from, to, usage, (const char *) data + 5, size - 5, 0,
                   &whole);
    rc2 = fuzz_run(from, to, usage, (const char *) data + 5, size - 5, seed,
                   &split);

    if (rc1 != rc2 || whole.len != split.len
        || (whole.len && memcmp(whole.data, split.data, whole.len) != 0))
    {
        abort();
    }

    llmp_buf_free(&whole);
    llmp_buf_free(&split);
    return 0;
}

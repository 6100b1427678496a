/*
 * libFuzzer target: llmp_translate_request on any bytes, for every pair.
 * A success must produce one valid JSON document.
 */

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          from, to, stream;
    char         err[256];
    llmp_buf_t   out = { 0 };

    if (size < 1) {
        return 0;
    }
    from = fuzz_iface(data[0] & 3);
    to = fuzz_iface((data[0] >> 2) & 3);
    stream = (data[0] >> 4) & 1;

    err[0] = '\0';
    if (llmp_translate_request(from, to, (const char *) data + 1, size - 1,
                               "fuzz-model", stream, &out, err,
                               sizeof(err)) == 0)
    {
        fuzz_check_json(&out);
    } else if (err[0] == '\0') {
        abort();                /* a refusal must say why */
    }

    llmp_buf_free(&out);
    return 0;
}

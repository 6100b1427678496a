/*
 * libFuzzer target: llmp_translate_response and llmp_translate_error on
 * any bytes, for every pair.  Outputs must be valid JSON; the usage is
 * -1 or a count.
 */

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            from, to, status;
    char           err[256];
    llmp_buf_t     out = { 0 };
    llmp_usage_t   usage;

    if (size < 2) {
        return 0;
    }
    from = fuzz_iface(data[0] & 3);
    to = fuzz_iface((data[0] >> 2) & 3);
    status = 400 + data[1] % 200;

    if (llmp_translate_response(from, to, (const char *) data + 2, size - 2,
                                "fuzz-model", &out, &usage, err,
                                sizeof(err)) == 0)
    {
        fuzz_check_json(&out);
        if (usage.prompt_tokens < -1 || usage.completion_tokens < -1) {
            abort();
        }
    }
    llmp_buf_free(&out);

    if (llmp_translate_error(from, to, status, (const char *) data + 2,
                             size - 2, &out) != 0)
    {
        abort();
    }
    fuzz_check_json(&out);
    llmp_buf_free(&out);
    return 0;
}

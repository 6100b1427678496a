/*
 * libFuzzer target: the Responses API translation.  Byte 0 picks the
 * provider interface (bits 0-1: anthropic or gemini, openai wrapping to
 * anthropic) and the direction (bit 4: the request when clear, the
 * provider's answer and stream when set); the rest is the body.  A
 * request or an answer that translates must be one JSON document; a
 * stream fed whole and byte by byte must give the same events.
 */

#include "fuzz_common.h"
#include "llmp_translate_responses.h"


/* the seeds' tools answered as custom tools */
#define CUSTOM_REQ  "{\"tools\":[{\"type\":\"custom\",\"name\":" \
                    "\"get_weather\"},{\"type\":\"custom\",\"name\":\"f\"}]}"


static int
fuzz_stream(int from, const char *p, size_t len, size_t step,
    llmp_buf_t *out)
{
    int              rc;
    size_t           at, n;
    llmp_rstream_t  *s;

    s = llmp_responses_stream_new(from, "fuzz-model", CUSTOM_REQ,
                                  sizeof(CUSTOM_REQ) - 1);
    if (s == NULL) {
        abort();
    }
    llmp_responses_stream_set_nonce(s, 1700000000, "fuzz");

    rc = 0;
    for (at = 0; at < len; at += n) {
        n = step ? step : len - at;
        if (n > len - at) {
            n = len - at;
        }
        if (llmp_responses_stream_feed(s, p + at, n, out) != 0) {
            rc = -1;
        }
    }
    if (llmp_responses_stream_finish(s, out) != 0) {
        rc = -1;
    }
    llmp_responses_stream_free(s);
    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          iface, rc1, rc2;
    char         err[256];
    const char  *p;
    llmp_buf_t   a = { 0 }, b = { 0 };

    if (size < 1) {
        return 0;
    }
    iface = (data[0] & 3) == 2 ? LLMP_IFACE_GEMINI : LLMP_IFACE_ANTHROPIC;
    p = (const char *) data + 1;
    size--;

    if (!(data[0] & 0x10)) {
        if (llmp_responses_request(iface, p, size, "fuzz-model",
                                   (data[0] >> 5) & 1, &a, err,
                                   sizeof(err)) == 0)
        {
            fuzz_check_json(&a);
        }
        llmp_buf_free(&a);
        return 0;
    }

    if (llmp_responses_response(iface, CUSTOM_REQ, sizeof(CUSTOM_REQ) - 1,
                                p, size, "fuzz-model", &a, NULL, err,
                                sizeof(err)) == 0)
    {
        fuzz_check_json(&a);
    }
    llmp_buf_free(&a);
    a.data = NULL;
    a.len = a.size = 0;

    rc1 = fuzz_stream(iface, p, size, 0, &a);
    rc2 = fuzz_stream(iface, p, size, 7, &b);
    if (rc1 != rc2 || a.len != b.len
        || (a.len && memcmp(a.data, b.data, a.len) != 0))
    {
        abort();
    }
    llmp_buf_free(&a);
    llmp_buf_free(&b);
    return 0;
}

/*
 * llmp_translate_responses: the OpenAI Responses API (/v1/responses) to
 * and from providers that speak only the Anthropic Messages or the Gemini
 * generateContent style.
 *
 * A Responses request becomes an OpenAI chat.completions body, which the
 * hub (llmp_translate_request) turns into the provider's; the provider's
 * answer and stream come back through the hub as chat.completions and are
 * written out as a Responses `response` object and its event sequence
 * (response.created ... response.completed).  An OpenAI-style provider is
 * never asked through here: it gets /responses as the client sent it.
 */

#ifndef _LLMP_TRANSLATE_RESPONSES_H_INCLUDED_
#define _LLMP_TRANSLATE_RESPONSES_H_INCLUDED_

#include "llmp_translate.h"

/* a Responses body -> the body for `to` (anthropic or gemini) */
int llmp_responses_request(int to, const char *body, size_t len,
    const char *model, int stream, llmp_buf_t *out, char *err,
    size_t errlen);

/*
 * A provider's non-streamed answer in `from` -> a Responses object.  req
 * (may be NULL) is the client's Responses request: a call of one of its
 * custom (freeform) tools is answered as a custom_tool_call.
 */
int llmp_responses_response(int from, const char *req, size_t req_len,
    const char *body, size_t len, const char *model, llmp_buf_t *out,
    llmp_usage_t *usage, char *err, size_t errlen);

/* a provider's stream in `from` -> Responses streaming events */
typedef struct llmp_rstream_s  llmp_rstream_t;

llmp_rstream_t *llmp_responses_stream_new(int from, const char *model,
    const char *req, size_t req_len);
int llmp_responses_stream_feed(llmp_rstream_t *s, const char *data,
    size_t len, llmp_buf_t *out);
int llmp_responses_stream_finish(llmp_rstream_t *s, llmp_buf_t *out);
void llmp_responses_stream_free(llmp_rstream_t *s);
/* tests: fixed ids and times, as llmp_stream_set_nonce */
void llmp_responses_stream_set_nonce(llmp_rstream_t *s, long long created,
    const char *nonce);

#endif /* _LLMP_TRANSLATE_RESPONSES_H_INCLUDED_ */

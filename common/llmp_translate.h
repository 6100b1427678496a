/*
 * llmp_translate: translation between the OpenAI Chat Completions, the
 * Anthropic Messages and the Gemini generateContent API styles: request
 * bodies, response bodies, error bodies and SSE streams.
 *
 * Plain C over cJSON, no global mutable state, no I/O: usable from nginx
 * workers (event loop or thread pool) and from the CLI.  Every output is
 * appended to a malloc'ed llmp_buf_t that the caller frees.
 */

#ifndef _LLMP_TRANSLATE_H_INCLUDED_
#define _LLMP_TRANSLATE_H_INCLUDED_

#include <stddef.h>

#include "llmp_iface.h"

/* the max_tokens an Anthropic request gets when the source has none */
#define LLMP_TRANSLATE_DEFAULT_MAX_TOKENS  4096

typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
} llmp_buf_t;                           /* malloc'ed, grows; zero it first */

void llmp_buf_free(llmp_buf_t *b);
int llmp_buf_append(llmp_buf_t *b, const char *data, size_t len);

/*
 * Request: a client body in interface `from` (OpenAI chat.completions,
 * Anthropic messages, Gemini generateContent) becomes the body for
 * interface `to`.  `model` is the upstream model name: written into the
 * body for openai/anthropic, omitted for gemini (its model is in the URL).
 * `stream` says whether the client asked to stream (for gemini clients it
 * comes from the URL: :streamGenerateContent); for an openai target with
 * stream set, "stream_options":{"include_usage":true} is added.
 * Returns 0, or -1 with a readable message in err (malformed input:
 * the gateway answers 400 with it).
 */
int llmp_translate_request(int from, int to, const char *body, size_t len,
    const char *model, int stream, llmp_buf_t *out, char *err,
    size_t errlen);

typedef struct {
    long long  prompt_tokens;
    long long  completion_tokens;
} llmp_usage_t;

/*
 * Non-streamed response: provider body in `from` -> client body in `to`.
 * `model` is the model name to show the client (the one it asked for).
 * Fills the usage it found (-1 where unknown).
 */
int llmp_translate_response(int from, int to, const char *body, size_t len,
    const char *model, llmp_buf_t *out, llmp_usage_t *usage,
    char *err, size_t errlen);

/*
 * An upstream error body (any shape, maybe not JSON) with HTTP status ->
 * the client interface's error shape, keeping the upstream message.
 * Returns 0, or -1 when out of memory.
 */
int llmp_translate_error(int from, int to, int status, const char *body,
    size_t len, llmp_buf_t *out);

/*
 * Streams: SSE bytes from the provider in `from`, fed in arbitrary pieces,
 * produce SSE bytes in `to` for the client.  Each feed emits every complete
 * translated event at once, except what the client's interface can only
 * say later: a Gemini client gets each function call whole (when the
 * provider's call ends), an Anthropic client its message_delta and a
 * Gemini client its finishReason/usageMetadata chunk when the provider's
 * stream ends (OpenAI sends the usage after the finish_reason).
 * `include_usage`: an OpenAI client that set stream_options.include_usage
 * gets the final usage chunk (ignored for other clients).
 * A Gemini provider must be asked with :streamGenerateContent?alt=sse
 * (SSE); its stream has no end marker, so llmp_stream_finish ends it.
 *
 * llmp_stream_finish emits what the provider's stream did not:
 *   OpenAI client:    the usage chunk (include_usage, usage known) and
 *                     "data: [DONE]"
 *   Anthropic client: message_start if nothing came, content_block_stop of
 *                     an open block, message_delta, message_stop
 *   Gemini client:    unsent function calls, the last chunk with the
 *                     finishReason and usageMetadata
 * and nothing after an error event (which is translated as the client's
 * stream error) or when the provider's stream already ended properly.
 */
typedef struct llmp_stream_s  llmp_stream_t;

llmp_stream_t *llmp_stream_new(int from, int to, const char *model,
    int include_usage);
/* appends to out; 0, or -1 on a broken stream (and on every later call) */
int llmp_stream_feed(llmp_stream_t *s, const char *data, size_t len,
    llmp_buf_t *out);
/* upstream ended: emits the closing events the client's interface needs */
int llmp_stream_finish(llmp_stream_t *s, llmp_buf_t *out);
void llmp_stream_usage(llmp_stream_t *s, llmp_usage_t *usage);
void llmp_stream_free(llmp_stream_t *s);

/*
 * Tests and fuzzing: fixes the values a stream otherwise takes from the
 * clock and the random generator (the "created" time and the nonce that
 * generated ids are made of), so that two runs give the same bytes.
 * Call right after llmp_stream_new.
 */
void llmp_stream_set_nonce(llmp_stream_t *s, long long created,
    const char *nonce);

#endif /* _LLMP_TRANSLATE_H_INCLUDED_ */

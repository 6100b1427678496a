/*
 * Unit tests of the stream translation (common/llmp_translate_stream.c,
 * common/llmp_sse.c) on recorded SSE streams: each directed pair, fed
 * whole, byte by byte, split at every position and at random positions;
 * the output must not depend on the splitting.
 */

#include "translate_tap.h"


typedef struct {
    int           from;
    int           to;
    const char   *file;
} pair_t;


/* feeds data in the pieces that cuts[] (ascending offsets) give */
static char *
run(int from, int to, const char *data, size_t len, const size_t *cuts,
    size_t ncuts, int include_usage, llmp_usage_t *usage, int *rc)
{
    char           *s;
    size_t          i, at, next;
    llmp_buf_t      out = { 0 };
    llmp_stream_t  *st;

    st = llmp_stream_new(from, to, "client-model", include_usage);
    if (st == NULL) {
        *rc = -2;
        return NULL;
    }
    llmp_stream_set_nonce(st, 1700000000, "n0nce");

    *rc = 0;
    at = 0;
    for (i = 0; i <= ncuts; i++) {
        next = i < ncuts ? cuts[i] : len;
        if (next < at) {
            continue;
        }
        if (llmp_stream_feed(st, data + at, next - at, &out) != 0) {
            *rc = -1;
        }
        at = next;
    }
    if (llmp_stream_finish(st, &out) != 0) {
        *rc = -1;
    }
    if (usage != NULL) {
        llmp_stream_usage(st, usage);
    }
    llmp_stream_free(st);

    s = strdup(out.data ? out.data : "");
    llmp_buf_free(&out);
    return s;
}


/* the events of an SSE output: [{"event":name,"data":json or string}] */
static cJSON *
events(const char *sse)
{
    char        *copy, *p, *end, *line, *next;
    cJSON       *a, *ev, *d;
    const char  *name;

    a = cJSON_CreateArray();
    copy = strdup(sse);

    /* \r\n\r\n (Gemini) or \n\n event ends */
    for (p = copy, line = copy; *p; p++) {
        if (*p != '\r') {
            *line++ = *p;
        }
    }
    *line = '\0';
    p = copy;

    while (*p) {
        end = strstr(p, "\n\n");
        if (end == NULL) {
            break;
        }
        *end = '\0';
        name = NULL;
        ev = cJSON_CreateObject();
        for (line = p; line; line = next) {
            next = strchr(line, '\n');
            if (next) {
                *next++ = '\0';
            }
            if (line[0] && line[strlen(line) - 1] == '\r') {
                line[strlen(line) - 1] = '\0';
            }
            if (strncmp(line, "event: ", 7) == 0) {
                name = line + 7;
                cJSON_AddStringToObject(ev, "event", name);
            } else if (strncmp(line, "data: ", 6) == 0) {
                d = cJSON_Parse(line + 6);
                cJSON_AddItemToObject(ev, "data",
                                      d ? d : cJSON_CreateString(line + 6));
            }
        }
        cJSON_AddItemToArray(a, ev);
        p = end + 2;
    }

    free(copy);
    return a;
}


/* concatenates the strings at one path of every event's data */
static char *
gather(const cJSON *evs, const char *path)
{
    char          full[256];
    cJSON        *ev;
    llmp_buf_t    b = { 0 };
    const char   *s;

    llmp_buf_append(&b, "", 0);
    cJSON_ArrayForEach(ev, evs) {
        snprintf(full, sizeof(full), "data.%s", path);
        s = jstr(ev, full);
        llmp_buf_append(&b, s, strlen(s));
    }
    return b.data;
}


static int
count_events(const cJSON *evs, const char *path, const char *value)
{
    int     n;
    char    full[256];
    cJSON  *ev;

    n = 0;
    snprintf(full, sizeof(full), "data.%s", path);
    cJSON_ArrayForEach(ev, evs) {
        if (strcmp(jstr(ev, full), value) == 0) {
            n++;
        }
    }
    return n;
}


/* the one event whose data has path == value; n: which of them */
static cJSON *
find_event(const cJSON *evs, const char *path, const char *value, int n)
{
    char    full[256];
    cJSON  *ev;

    snprintf(full, sizeof(full), "data.%s", path);
    cJSON_ArrayForEach(ev, evs) {
        if (strcmp(jstr(ev, full), value) == 0 && n-- == 0) {
            return jp(ev, "data");
        }
    }
    return NULL;
}


static void
test_splits(const pair_t *pairs, size_t npairs)
{
    int            rc, ok, ok_bytes, ok_random;
    char          *whole, *got, *data, what[160];
    size_t         i, k, len, *cuts, ncuts;
    unsigned int   seed;

    for (i = 0; i < npairs; i++) {
        data = load(pairs[i].file, &len);
        if (data == NULL) {
            TAP_OK(0, pairs[i].file);
            continue;
        }
        whole = run(pairs[i].from, pairs[i].to, data, len, NULL, 0, 1, NULL,
                    &rc);
        snprintf(what, sizeof(what), "%s %s -> %s: translates",
                 pairs[i].file, llmp_iface_name(pairs[i].from),
                 llmp_iface_name(pairs[i].to));
        TAP_OK(rc == 0 && whole != NULL && strlen(whole) > 0, what);

        cuts = malloc(len * sizeof(size_t));

        /* byte by byte */
        for (k = 0; k < len; k++) {
            cuts[k] = k;
        }
        got = run(pairs[i].from, pairs[i].to, data, len, cuts, len, 1, NULL,
                  &rc);
        ok_bytes = rc == 0 && strcmp(got, whole) == 0;
        free(got);

        /* every single split position */
        ok = 1;
        for (k = 1; k < len && ok; k++) {
            got = run(pairs[i].from, pairs[i].to, data, len, &k, 1, 1, NULL,
                      &rc);
            if (rc != 0 || strcmp(got, whole) != 0) {
                printf("# differs when split at %zu\n", k);
                ok = 0;
            }
            free(got);
        }

        /* random splits */
        ok_random = 1;
        for (seed = 1; seed <= 50 && ok_random; seed++) {
            ncuts = 0;
            for (k = 1; k < len; k++) {
                if (rand_r(&seed) % 7 == 0) {
                    cuts[ncuts++] = k;
                }
            }
            got = run(pairs[i].from, pairs[i].to, data, len, cuts, ncuts, 1,
                      NULL, &rc);
            ok_random = rc == 0 && strcmp(got, whole) == 0;
            free(got);
        }

        snprintf(what, sizeof(what), "%s %s -> %s: same bytes when fed "
                 "byte by byte, split anywhere, split at random",
                 pairs[i].file, llmp_iface_name(pairs[i].from),
                 llmp_iface_name(pairs[i].to));
        TAP_OK(ok_bytes && ok && ok_random, what);

        free(cuts);
        free(whole);
        free(data);
    }
}


static cJSON *
stream_file(int from, int to, const char *file, int include_usage,
    llmp_usage_t *usage, char **raw)
{
    int      rc;
    char    *data, *out;
    cJSON   *evs;
    size_t   len;

    data = load(file, &len);
    if (data == NULL) {
        return NULL;
    }
    out = run(from, to, data, len, NULL, 0, include_usage, usage, &rc);
    free(data);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    evs = events(out);
    if (raw != NULL) {
        *raw = out;
    } else {
        free(out);
    }
    return evs;
}


static void
test_to_anthropic(void)
{
    char          *text;
    cJSON         *e, *ev;
    llmp_usage_t   u;

    e = stream_file(OA, AN, "stream_openai_text.sse", 0, &u, NULL);
    text = gather(e, "delta.text");
    TAP_OK(e != NULL && cJSON_GetArraySize(e) == 7
           && js(e, "0.event", "message_start")
           && js(e, "0.data.message.id", "chatcmpl-123")
           && js(e, "0.data.message.model", "client-model")
           && js(e, "1.event", "content_block_start")
           && js(e, "1.data.content_block.type", "text")
           && jnum(e, "2.data.index", 0)
           && js(e, "2.data.delta.type", "text_delta")
           && js(e, "4.event", "content_block_stop")
           && js(e, "5.event", "message_delta")
           && js(e, "5.data.delta.stop_reason", "end_turn")
           && jnum(e, "5.data.usage.output_tokens", 5)
           && js(e, "6.event", "message_stop")
           && strcmp(text, "Hello, w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80")
              == 0
           && u.prompt_tokens == 9 && u.completion_tokens == 5,
           "oa->an stream: text events in Anthropic's order");
    free(text);
    cJSON_Delete(e);

    e = stream_file(OA, AN, "stream_openai_tool.sse", 0, &u, NULL);
    ev = find_event(e, "content_block.type", "tool_use", 1);
    text = gather(e, "delta.partial_json");
    TAP_OK(e != NULL
           && count_events(e, "type", "content_block_start") == 2
           && count_events(e, "type", "content_block_stop") == 2
           && js(e, "1.data.content_block.id",
                 "call_DdmO9pD3xa9XTPNJ32zg2hcA")
           && js(e, "1.data.content_block.name", "get_weather")
           && ev != NULL && jnum(ev, "index", 1)
           && js(ev, "content_block.name", "get_time")
           && strcmp(text, "{\"location\":\"Paris\"}{\"tz\":\"CET\"}") == 0
           && js(find_event(e, "type", "message_delta", 0),
                 "delta.stop_reason", "tool_use")
           && u.prompt_tokens == 80,
           "oa->an stream: tool calls become tool_use blocks");
    free(text);
    cJSON_Delete(e);

    e = stream_file(GE, AN, "stream_gemini_tool.sse", 0, &u, NULL);
    TAP_OK(e != NULL && jnum(e, "0.data.message.usage.input_tokens", 120)
           && js(e, "1.data.content_block.type", "thinking")
           && js(e, "2.data.delta.type", "thinking_delta")
           && js(e, "2.data.delta.thinking", "Checking.")
           && js(e, "4.data.content_block.type", "text")
           && js(e, "5.data.delta.text", "Let me look.")
           && js(e, "7.data.content_block.type", "tool_use")
           && jnum(e, "7.data.index", 2)
           && js(e, "7.data.content_block.id", "call_n0nce_0")
           && js(e, "8.data.delta.partial_json",
                 "{\"location\":\"Paris\",\"unit\":\"celsius\"}")
           && jnum(e, "10.data.index", 3)
           && js(e, "10.data.content_block.name", "get_time")
           && js(e, "13.data.delta.stop_reason", "tool_use")
           && jnum(e, "13.data.usage.output_tokens", 40)
           && js(e, "14.event", "message_stop")
           && cJSON_GetArraySize(e) == 15
           && u.prompt_tokens == 120 && u.completion_tokens == 40,
           "ge->an stream: a thought is a thinking block, blocks numbered, "
           "usage");
    cJSON_Delete(e);

    e = stream_file(GE, AN, "stream_gemini_text.sse", 0, &u, NULL);
    text = gather(e, "delta.text");
    TAP_OK(e != NULL && strcmp(text, "Hello, w\xc3\xb6rld \xe2\x9c\x93 "
                               "\xf0\x9f\x98\x80") == 0
           && js(e, "0.data.message.id", "Gemini-resp-1")
           && js(find_event(e, "type", "message_delta", 0),
                 "delta.stop_reason", "end_turn")
           && count_events(e, "type", "message_stop") == 1,
           "ge->an stream: text");
    free(text);
    cJSON_Delete(e);
}


static void
test_to_openai(void)
{
    char          *text, *raw;
    cJSON         *e, *ev;
    llmp_usage_t   u;

    e = stream_file(AN, OA, "stream_anthropic_text.sse", 1, &u, &raw);
    text = gather(e, "choices.0.delta.content");
    ev = find_event(e, "choices.0.finish_reason", "stop", 0);
    TAP_OK(e != NULL && js(e, "0.data.choices.0.delta.role", "assistant")
           && js(e, "0.data.object", "chat.completion.chunk")
           && js(e, "0.data.id", "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
           && jnum(e, "0.data.created", 1700000000)
           && strcmp(text, "Hello, w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80")
              == 0
           && ev != NULL && jsize(ev, "choices.0.delta") == 0,
           "an->oa stream: role, content deltas, finish_reason");
    TAP_OK(jsize(jp(e, "4.data"), "choices") == 0
           && jnum(e, "4.data.usage.prompt_tokens", 25)
           && jnum(e, "4.data.usage.completion_tokens", 15)
           && js(e, "5.data", "[DONE]") && cJSON_GetArraySize(e) == 6
           && strstr(raw, "\r") == NULL
           && u.prompt_tokens == 25 && u.completion_tokens == 15,
           "an->oa stream: usage chunk, then [DONE] (CRLF input)");
    free(raw);
    free(text);
    cJSON_Delete(e);

    e = stream_file(AN, OA, "stream_anthropic_text.sse", 0, &u, NULL);
    TAP_OK(e != NULL && cJSON_GetArraySize(e) == 5
           && find_event(e, "object", "chat.completion.chunk", 3) != NULL
           && jsize(jp(e, "3.data"), "choices") == 1
           && js(e, "4.data", "[DONE]") && u.completion_tokens == 15,
           "an->oa stream: no usage chunk unless asked for");
    cJSON_Delete(e);

    e = stream_file(AN, OA, "stream_anthropic_tool.sse", 1, &u, NULL);
    text = gather(e, "choices.0.delta.tool_calls.0.function.arguments");
    ev = find_event(e, "choices.0.delta.tool_calls.0.type", "function", 0);
    TAP_OK(e != NULL && ev != NULL
           && jnum(ev, "choices.0.delta.tool_calls.0.index", 0)
           && js(ev, "choices.0.delta.tool_calls.0.id",
                 "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
           && js(ev, "choices.0.delta.tool_calls.0.function.name",
                 "get_weather")
           && strcmp(text, "{\"location\": \"San Francisco, CA\"}") == 0
           && find_event(e, "choices.0.finish_reason", "tool_calls", 0)
           && js(e, "1.data.choices.0.delta.reasoning_content",
                 "Need weather.")
           && js(e, "2.data.choices.0.delta.content",
                 "Okay, let's check the weather for San Francisco, CA:")
           && u.prompt_tokens == 572 && u.completion_tokens == 89,
           "an->oa stream: thinking is reasoning_content, tool call "
           "argument deltas");
    free(text);
    cJSON_Delete(e);

    e = stream_file(GE, OA, "stream_gemini_tool.sse", 1, &u, NULL);
    ev = find_event(e, "choices.0.delta.tool_calls.0.type", "function", 1);
    TAP_OK(e != NULL && js(e, "0.data.id", "Gemini-resp-2")
           && ev != NULL && jnum(ev, "choices.0.delta.tool_calls.0.index", 1)
           && js(ev, "choices.0.delta.tool_calls.0.id", "call_n0nce_1")
           && js(ev, "choices.0.delta.tool_calls.0.function.name",
                 "get_time")
           && find_event(e, "choices.0.finish_reason", "tool_calls", 0)
           && js(e, "1.data.choices.0.delta.reasoning_content", "Checking.")
           && jnum(jp(e, "8.data"), "usage.completion_tokens", 40)
           && js(e, "9.data", "[DONE]"),
           "ge->oa stream: generated call ids, STOP with calls");
    cJSON_Delete(e);

    e = stream_file(GE, OA, "stream_gemini_text.sse", 1, &u, NULL);
    TAP_OK(e != NULL && find_event(e, "choices.0.finish_reason", "stop", 0)
           && jnum(jp(e, "4.data"), "usage.prompt_tokens", 9)
           && js(e, "5.data", "[DONE]") && u.completion_tokens == 5,
           "ge->oa stream: [DONE] when the upstream ends");
    cJSON_Delete(e);
}


static void
test_to_gemini(void)
{
    char          *text, *raw;
    cJSON         *e;
    llmp_usage_t   u;

    e = stream_file(OA, GE, "stream_openai_text.sse", 0, &u, &raw);
    text = gather(e, "candidates.0.content.parts.0.text");
    TAP_OK(e != NULL && cJSON_GetArraySize(e) == 3
           && strcmp(text, "Hello, w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80")
              == 0
           && js(e, "0.data.candidates.0.content.role", "model")
           && js(e, "0.data.modelVersion", "client-model")
           && js(e, "2.data.candidates.0.finishReason", "STOP")
           && jnum(e, "2.data.usageMetadata.promptTokenCount", 9)
           && jnum(e, "2.data.usageMetadata.candidatesTokenCount", 5)
           && strstr(raw, "}\r\n\r\ndata: ") != NULL,
           "oa->ge stream: text chunks, finish and usage last");
    free(raw);
    free(text);
    cJSON_Delete(e);

    e = stream_file(OA, GE, "stream_openai_tool.sse", 0, &u, NULL);
    TAP_OK(e != NULL && cJSON_GetArraySize(e) == 3
           && js(e, "0.data.candidates.0.content.parts.0.functionCall.name",
                 "get_weather")
           && js(e, "0.data.candidates.0.content.parts.0.functionCall.args."
                 "location", "Paris")
           && js(e, "1.data.candidates.0.content.parts.0.functionCall.args."
                 "tz", "CET")
           && js(e, "2.data.candidates.0.finishReason", "STOP"),
           "oa->ge stream: argument deltas collected into functionCalls");
    cJSON_Delete(e);

    e = stream_file(AN, GE, "stream_anthropic_tool.sse", 0, &u, NULL);
    TAP_OK(e != NULL && cJSON_GetArraySize(e) == 4
           && js(e, "0.data.candidates.0.content.parts.0.text",
                 "Need weather.")
           && cJSON_IsTrue(jp(e, "0.data.candidates.0.content.parts.0."
                                 "thought"))
           && js(e, "1.data.candidates.0.content.parts.0.text",
                 "Okay, let's check the weather for San Francisco, CA:")
           && js(e, "2.data.candidates.0.content.parts.0.functionCall.args."
                 "location", "San Francisco, CA")
           && js(e, "0.data.responseId", "msg_014p7gG3wDgGV9EUtLvnow3U")
           && jnum(e, "3.data.usageMetadata.promptTokenCount", 572)
           && jnum(e, "3.data.usageMetadata.cachedContentTokenCount", 100),
           "an->ge stream: thought, text, functionCall, usage");
    cJSON_Delete(e);
}


static void
test_behaviour(void)
{
    int             rc;
    char           *s, *p;
    size_t          len, cut;
    llmp_buf_t      out = { 0 };
    llmp_usage_t    u;
    llmp_stream_t  *st;

    /* a complete event is translated by the feed that completes it */
    s = load("stream_openai_text.sse", &len);
    p = s ? strstr(strstr(s, "Hello"), "\n\n") : NULL;
    cut = p ? (size_t) (p - s) + 2 : 0;
    st = llmp_stream_new(OA, AN, "m", 0);
    rc = llmp_stream_feed(st, s, cut - 1, &out);
    TAP_OK(rc == 0 && out.data != NULL
           && strstr(out.data, "Hello") == NULL,
           "an event is not translated before its blank line");
    rc = llmp_stream_feed(st, s + cut - 1, 1, &out);
    TAP_OK(rc == 0 && strstr(out.data, "\"text\":\"Hello\"") != NULL,
           "and is translated by the feed that ends it");
    llmp_buf_free(&out);
    llmp_stream_free(st);
    free(s);

    /* an OpenAI stream cut before [DONE]: finish closes it */
    st = llmp_stream_new(OA, OA, "m", 0);
    s = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"x\"}}]}\n\n";
    rc = llmp_stream_feed(st, s, strlen(s), &out);
    rc |= llmp_stream_finish(st, &out);
    TAP_OK(rc == 0 && strstr(out.data, "\"content\":\"x\"") != NULL
           && strcmp(out.data + out.len - 14, "data: [DONE]\n\n") == 0,
           "finish adds data: [DONE]");
    out.len = 0;
    rc = llmp_stream_finish(st, &out);
    TAP_OK(rc == 0 && out.len == 0, "a second finish adds nothing");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    /* an Anthropic stream cut short: finish closes it */
    st = llmp_stream_new(GE, AN, "m", 0);
    rc = llmp_stream_finish(st, &out);
    TAP_OK(rc == 0 && strstr(out.data, "event: message_start") != NULL
           && strstr(out.data, "event: message_delta") != NULL
           && strstr(out.data, "event: message_stop") != NULL,
           "an empty upstream still gets a whole Anthropic message");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    /* errors in the stream */
    st = llmp_stream_new(AN, OA, "m", 1);
    s = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
        "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    rc = llmp_stream_feed(st, s, strlen(s), &out);
    rc |= llmp_stream_finish(st, &out);
    TAP_OK(rc == 0 && strstr(out.data, "data: {\"error\":{\"message\":"
                             "\"Overloaded\",\"type\":\"api_error\"")
                      != NULL
           && strstr(out.data, "[DONE]") == NULL,
           "an->oa stream: an error event, nothing after it");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    st = llmp_stream_new(GE, AN, "m", 1);
    s = "data: {\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
        "\"RESOURCE_EXHAUSTED\"}}\n\n";
    rc = llmp_stream_feed(st, s, strlen(s), &out);
    TAP_OK(rc == 0 && strstr(out.data, "event: error\ndata: {\"type\":"
                             "\"error\",\"error\":{\"type\":"
                             "\"rate_limit_error\",\"message\":\"quota\"}}")
                      != NULL, "ge->an stream: an error event");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    /* a broken stream */
    st = llmp_stream_new(OA, AN, "m", 0);
    rc = llmp_stream_feed(st, "data: {\"id\":\"c\",\"choi", 21, &out);
    TAP_OK(rc == 0, "an unfinished event is waited for");
    rc = llmp_stream_feed(st, "\n\n", 2, &out);
    TAP_OK(rc == -1, "an event that is not JSON breaks the stream");
    TAP_OK(llmp_stream_feed(st, "data: {}\n\n", 10, &out) == -1
           && llmp_stream_finish(st, &out) == -1, "and it stays broken");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    /* comments, \r line ends, "data:" without a space, id fields */
    st = llmp_stream_new(OA, GE, "m", 0);
    s = ": keep-alive\r\rid: 7\rdata:{\"choices\":[{\"index\":0,\"delta\":"
        "{\"content\":\"a\\nb\"}}]}\r\r";
    rc = llmp_stream_feed(st, s, strlen(s), &out);
    TAP_OK(rc == 0 && strstr(out.data, "\"text\":\"a\\nb\"") != NULL,
           "SSE comments, CR line ends, data: without a space");
    llmp_stream_usage(st, &u);
    TAP_OK(u.prompt_tokens == -1 && u.completion_tokens == -1,
           "usage unknown without a usage chunk");
    llmp_buf_free(&out);
    llmp_stream_free(st);

    TAP_OK(llmp_stream_new(OA, 3, "m", 0) == NULL,
           "an unknown interface is refused");
}


/* the rarer branches of the readers and of the endings */

static int
run_has(int from, int to, const char *sse, const char *want)
{
    int    rc, ok;
    char  *out;

    out = run(from, to, sse, strlen(sse), NULL, 0, 1, NULL, &rc);
    ok = rc == 0 && out != NULL && strstr(out, want) != NULL;
    if (!ok) {
        printf("# want %s in:\n# %s\n", want, out ? out : "(none)");
    }
    free(out);
    return ok;
}


static void
test_branches(void)
{
    static const char  *an =
        "event: message_start\ndata: {\"type\":\"message_start\","
        "\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":10}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\","
        "\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"a\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
        "\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"SS\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\","
        "\"index\":1,\"content_block\":{\"type\":\"server_tool_use\","
        "\"id\":\"srv\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\","
        "\"delta\":{\"stop_reason\":\"stop_sequence\","
        "\"stop_sequence\":\"END\"},\"usage\":{\"output_tokens\":2}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    int    rc;
    char  *out;

    TAP_OK(run_has(OA, AN, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,"
                   "\"delta\":{\"thinking_blocks\":[{\"signature\":"
                   "\"SG\"}]}}]}\n\ndata: [DONE]\n\n",
                   "\"signature_delta\",\"signature\":\"SG\""),
           "oa->an: a thinking block's signature is a signature_delta");

    TAP_OK(run_has(AN, OA, an, "\"thinking_blocks\":[{\"type\":\"thinking\","
                   "\"thinking\":\"\",\"signature\":\"SS\"}]"),
           "an->oa: a signature_delta is a thinking block's signature");

    out = run(AN, OA, an, strlen(an), NULL, 0, 1, NULL, &rc);
    TAP_OK(rc == 0 && out != NULL && strstr(out, "srv") == NULL
           && strstr(out, "tool_calls") == NULL,
           "an->oa: a server tool block is not a tool call");
    free(out);

    TAP_OK(run_has(AN, AN, an, "\"stop_sequence\":\"END\""),
           "an->an: the stop sequence that ended it is kept");

    TAP_OK(run_has(GE, OA, "data: {\"candidates\":[{\"content\":{\"parts\":"
                   "[{\"functionCall\":{\"name\":\"f\",\"args\":{}},"
                   "\"thoughtSignature\":\"TS\"}]}}]}\n\n",
                   "\"id\":\"call_n0nce_0__thought__TS\""),
           "ge->oa: a call's thoughtSignature rides in its id");

    TAP_OK(run_has(GE, AN, "data: {\"promptFeedback\":{\"blockReason\":"
                   "\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3}}"
                   "\n\n", "\"stop_reason\":\"refusal\""),
           "ge->an: a blocked prompt ends as a refusal");

    TAP_OK(run_has(OA, AN, "data: {\"error\":{\"type\":\"overloaded_error\","
                   "\"message\":\"busy\"}}\n\n",
                   "event: error\ndata: {\"type\":\"error\",\"error\":"
                   "{\"type\":\"overloaded_error\",\"message\":\"busy\"}}"),
           "oa->an: an error chunk is an error event");
}


int
main(void)
{
    static const pair_t  pairs[] = {
        { OA, AN, "stream_openai_text.sse" },
        { OA, AN, "stream_openai_tool.sse" },
        { OA, GE, "stream_openai_text.sse" },
        { OA, GE, "stream_openai_tool.sse" },
        { AN, OA, "stream_anthropic_text.sse" },
        { AN, OA, "stream_anthropic_tool.sse" },
        { AN, GE, "stream_anthropic_text.sse" },
        { AN, GE, "stream_anthropic_tool.sse" },
        { GE, OA, "stream_gemini_text.sse" },
        { GE, OA, "stream_gemini_tool.sse" },
        { GE, AN, "stream_gemini_text.sse" },
        { GE, AN, "stream_gemini_tool.sse" },
        { OA, OA, "stream_openai_tool.sse" },
        { AN, AN, "stream_anthropic_tool.sse" },
        { GE, GE, "stream_gemini_tool.sse" }
    };

    test_splits(pairs, sizeof(pairs) / sizeof(pairs[0]));
    test_to_anthropic();
    test_to_openai();
    test_to_gemini();
    test_behaviour();
    test_branches();
    return tap_done();
}

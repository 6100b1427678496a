/*
 * Unit tests of the Responses API translation (common/
 * llmp_translate_responses.c) on recorded payloads: a Codex-like request
 * to Anthropic and Gemini, answers back into a Responses object, and
 * streams into the Responses event sequence, fed whole and byte by byte.
 */

#include "translate_tap.h"
#include "llmp_translate_responses.h"


static cJSON *
req(int to, const char *name, char *err)
{
    char        *body;
    size_t       len;
    cJSON       *o;
    llmp_buf_t   out = { 0 };

    body = load(name, &len);
    if (body == NULL) {
        return NULL;
    }
    err[0] = '\0';
    if (llmp_responses_request(to, body, len, "up-model", 1, &out, err, 256)
        != 0)
    {
        printf("# %s\n", err);
        free(body);
        llmp_buf_free(&out);
        return NULL;
    }
    o = cJSON_Parse(out.data);
    free(body);
    llmp_buf_free(&out);
    return o;
}


static cJSON *
resp(int from, const char *name)
{
    char        *body, err[256];
    size_t       len;
    cJSON       *o;
    llmp_buf_t   out = { 0 };

    body = load(name, &len);
    if (body == NULL) {
        return NULL;
    }
    err[0] = '\0';
    if (llmp_responses_response(from, NULL, 0, body, len, "client-model",
                                &out, NULL, err, sizeof(err)) != 0)
    {
        printf("# %s\n", err);
        free(body);
        llmp_buf_free(&out);
        return NULL;
    }
    o = cJSON_Parse(out.data);
    free(body);
    llmp_buf_free(&out);
    return o;
}


/* the JSON text at path contains needle */

static int
has(const cJSON *o, const char *path, const char *needle)
{
    int    found;
    char  *t;

    t = cJSON_PrintUnformatted(jp(o, path));
    found = t != NULL && strstr(t, needle) != NULL;
    free(t);
    return found;
}


static int
is_json(const char *text)
{
    cJSON  *o;

    o = cJSON_Parse(text);
    cJSON_Delete(o);
    return o != NULL;
}


/* the stream fed in pieces of `step` bytes (0: whole) */

static char *
run(int from, const char *data, size_t len, size_t step, int *rc)
{
    char            *s;
    size_t           at, n;
    llmp_buf_t       out = { 0 };
    llmp_rstream_t  *st;

    st = llmp_responses_stream_new(from, "client-model", NULL, 0);
    if (st == NULL) {
        *rc = -2;
        return NULL;
    }
    llmp_responses_stream_set_nonce(st, 1700000000, "n0nce");

    *rc = 0;
    for (at = 0; at < len; at += n) {
        n = step ? step : len;
        if (n > len - at) {
            n = len - at;
        }
        if (llmp_responses_stream_feed(st, data + at, n, &out) != 0) {
            *rc = -1;
        }
    }
    if (llmp_responses_stream_finish(st, &out) != 0) {
        *rc = -1;
    }
    llmp_responses_stream_free(st);

    s = strdup(out.data ? out.data : "");
    llmp_buf_free(&out);
    return s;
}


/*
 * The events as an array of their data objects; each event's "event:"
 * name must equal its data's "type"
 */

static cJSON *
events(const char *sse)
{
    char        *copy, *ev, *save, *name, *data, *nl;
    cJSON       *arr, *o;

    arr = cJSON_CreateArray();
    copy = strdup(sse);

    for (ev = strtok_r(copy, "\n", &save); ev != NULL;
         ev = strtok_r(NULL, "\n", &save))
    {
        if (strncmp(ev, "event: ", 7) != 0) {
            printf("# not an event line: %.60s\n", ev);
            cJSON_Delete(arr);
            free(copy);
            return NULL;
        }
        name = ev + 7;
        data = strtok_r(NULL, "\n", &save);
        if (data == NULL || strncmp(data, "data: ", 6) != 0) {
            cJSON_Delete(arr);
            free(copy);
            return NULL;
        }
        nl = strchr(name, '\n');
        if (nl) {
            *nl = '\0';
        }
        o = cJSON_Parse(data + 6);
        if (o == NULL || !js(o, "type", name)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            free(copy);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }

    free(copy);
    return arr;
}


/* the joined "delta" of the events of a type */

static void
joined(const cJSON *evs, const char *type, char *out, size_t n)
{
    const cJSON  *e;

    out[0] = '\0';
    cJSON_ArrayForEach(e, evs) {
        if (jstr(e, "type") != NULL && strcmp(jstr(e, "type"), type) == 0
            && jstr(e, "delta") != NULL)
        {
            strncat(out, jstr(e, "delta"), n - strlen(out) - 1);
        }
    }
}


static int
index_of(const cJSON *evs, const char *type)
{
    int           i;
    const cJSON  *e;

    i = 0;
    cJSON_ArrayForEach(e, evs) {
        cJSON  *t = cJSON_GetObjectItemCaseSensitive(e, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0) {
            return i;
        }
        i++;
    }
    return -1;
}


static int
sequenced(const cJSON *evs)
{
    int           i;
    const cJSON  *e;

    i = 0;
    cJSON_ArrayForEach(e, evs) {
        if (!jnum(e, "sequence_number", i++)) {
            return 0;
        }
    }
    return i > 0;
}


static void
test_request(void)
{
    char    err[256];
    cJSON  *o;

    o = req(AN, "req_responses.json", err);
    TAP_OK(o != NULL, "responses -> anthropic: translated");
    TAP_OK(o && js(o, "model", "up-model"), "anthropic: the model");
    TAP_OK(o && js(o, "thinking.type", "enabled")
           && jnum(o, "thinking.budget_tokens", 2048),
           "anthropic: reasoning.effort medium is a 2048-token budget");
    TAP_OK(o && jnum(o, "max_tokens", 2048 + 2000),
           "anthropic: max_tokens above the budget by max_output_tokens");
    TAP_OK(o && jp(o, "temperature") == NULL && jp(o, "top_p") == NULL,
           "anthropic: no temperature or top_p with thinking");
    TAP_OK(o && js(o, "messages.1.content.0.type", "thinking")
           && js(o, "messages.1.content.0.thinking", "Need the weather.")
           && js(o, "messages.1.content.0.signature",
                 "EqQBCkYIBxgCKkBsig==")
           && js(o, "messages.1.content.1.type", "text"),
           "anthropic: the reasoning item is the turn's signed thinking "
           "block, first");
    TAP_OK(o && cJSON_IsTrue(jp(o, "stream")), "anthropic: stream");
    TAP_OK(o && has(o, "system", "coding agent")
           && has(o, "system", "Use the tools"),
           "anthropic: instructions and the developer message are system");
    TAP_OK(o && js(o, "messages.0.role", "user")
           && js(o, "messages.0.content.1.type", "image")
           && js(o, "messages.0.content.1.source.type", "base64")
           && js(o, "messages.0.content.1.source.media_type", "image/png"),
           "anthropic: input_image is an image block");
    TAP_OK(o && js(o, "messages.1.role", "assistant")
           && js(o, "messages.2.role", "user"),
           "anthropic: the turns alternate");
    TAP_OK(o && jp(o, "messages.1.content") != NULL
           && has(o, "messages.1.content", "\"tool_use\"")
           && has(o, "messages.1.content", "call_abc"),
           "anthropic: function_call is a tool_use of the assistant turn");
    TAP_OK(o && js(o, "messages.2.content.0.type", "tool_result")
           && js(o, "messages.2.content.0.tool_use_id", "call_abc"),
           "anthropic: function_call_output is a tool_result");
    TAP_OK(o && jsize(o, "tools") == 1 && js(o, "tools.0.name", "get_weather")
           && js(o, "tools.0.input_schema.type", "object"),
           "anthropic: function tools kept, hosted ones left out");
    cJSON_Delete(o);

    o = req(GE, "req_responses.json", err);
    TAP_OK(o != NULL, "responses -> gemini: translated");
    TAP_OK(o && jp(o, "model") == NULL && jp(o, "stream") == NULL,
           "gemini: model and stream are in the URL");
    TAP_OK(o && jnum(o, "generationConfig.maxOutputTokens", 2000)
           && jnum(o, "generationConfig.temperature", 0.2),
           "gemini: maxOutputTokens, temperature");
    TAP_OK(o && jnum(o, "generationConfig.thinkingConfig.thinkingBudget",
                     8192)
           && cJSON_IsTrue(jp(o, "generationConfig.thinkingConfig."
                                 "includeThoughts")),
           "gemini: reasoning.effort medium is thinkingConfig");
    TAP_OK(o && !has(o, "contents", "thought"),
           "gemini: Anthropic's signed thinking is not sent to Gemini");
    TAP_OK(o && jp(o, "contents.0.parts.1.inlineData.data") != NULL,
           "gemini: the image is inlineData");
    TAP_OK(o && js(o, "contents.1.role", "model")
           && has(o, "contents.1", "functionCall"),
           "gemini: function_call is the model's functionCall");
    TAP_OK(o && js(o, "contents.2.parts.0.functionResponse.name",
                   "get_weather"),
           "gemini: function_call_output answers the call by name");
    TAP_OK(o && js(o, "tools.0.functionDeclarations.0.name", "get_weather"),
           "gemini: the function declared");
    cJSON_Delete(o);
}


static void
test_request_file(void)
{
    int          rc;
    char         err[256];
    cJSON       *o;
    llmp_buf_t   out = { 0 };
    const char   body[] = "{\"input\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"input_file\",\"filename\":\"a.pdf\",\"file_data\":"
        "\"data:application/pdf;base64,JVBERi0=\"},{\"type\":\"input_text\","
        "\"text\":\"sum up\"}]}]}";

    rc = llmp_responses_request(AN, body, sizeof(body) - 1, "m", 0, &out,
                                err, sizeof(err));
    o = rc == 0 ? cJSON_Parse(out.data) : NULL;
    llmp_buf_free(&out);
    TAP_OK(o && js(o, "messages.0.content.0.type", "document")
           && js(o, "messages.0.content.0.source.media_type",
                 "application/pdf")
           && js(o, "messages.0.content.0.source.data", "JVBERi0="),
           "input_file with file_data is a document");
    cJSON_Delete(o);
}


/* custom (freeform) tools, such as Codex's apply_patch */

static void
test_custom_tools(void)
{
    int          rc;
    char        *sse, err[256], text[4096];
    cJSON       *o, *evs, *last;
    size_t       len;
    llmp_buf_t   b = { 0 };
    const char   req[] = "{\"tools\":[{\"type\":\"custom\",\"name\":"
        "\"apply_patch\",\"description\":\"edit files\",\"format\":{"
        "\"type\":\"grammar\"}}],\"input\":[{\"role\":\"user\","
        "\"content\":\"fix it\"},{\"type\":\"custom_tool_call\","
        "\"call_id\":\"c1\",\"name\":\"apply_patch\",\"input\":"
        "\"*** Begin Patch\"},{\"type\":\"custom_tool_call_output\","
        "\"call_id\":\"c1\",\"output\":\"Done\"}]}";
    const char   answer[] = "{\"type\":\"message\",\"role\":\"assistant\","
        "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":"
        "\"apply_patch\",\"input\":{\"input\":\"*** Begin Patch\\n\"}}],"
        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":5,"
        "\"output_tokens\":6}}";
    const char   tool_req[] = "{\"tools\":[{\"type\":\"custom\","
        "\"name\":\"get_weather\"}]}";

    rc = llmp_responses_request(AN, req, sizeof(req) - 1, "m", 0, &b, err,
                                sizeof(err));
    o = rc == 0 ? cJSON_Parse(b.data) : NULL;
    llmp_buf_free(&b);
    memset(&b, 0, sizeof(b));
    TAP_OK(o && js(o, "tools.0.name", "apply_patch")
           && js(o, "tools.0.input_schema.properties.input.type", "string")
           && js(o, "tools.0.input_schema.required.0", "input"),
           "a custom tool is a function of one string, input");
    TAP_OK(o && js(o, "messages.1.content.0.type", "tool_use")
           && js(o, "messages.1.content.0.input.input", "*** Begin Patch")
           && js(o, "messages.2.content.0.tool_use_id", "c1")
           && js(o, "messages.2.content.0.content", "Done"),
           "custom_tool_call and its output are a tool_use and result");
    cJSON_Delete(o);

    rc = llmp_responses_response(AN, req, sizeof(req) - 1, answer,
                                 sizeof(answer) - 1, "m", &b, NULL, err,
                                 sizeof(err));
    o = rc == 0 ? cJSON_Parse(b.data) : NULL;
    llmp_buf_free(&b);
    memset(&b, 0, sizeof(b));
    TAP_OK(o && js(o, "output.0.type", "custom_tool_call")
           && js(o, "output.0.call_id", "toolu_9")
           && js(o, "output.0.name", "apply_patch")
           && js(o, "output.0.input", "*** Begin Patch\n"),
           "a call of a custom tool is answered as a custom_tool_call");
    cJSON_Delete(o);

    sse = load("stream_anthropic_tool.sse", &len);
    {
        llmp_rstream_t  *st;

        st = llmp_responses_stream_new(AN, "m", tool_req,
                                       sizeof(tool_req) - 1);
        llmp_responses_stream_set_nonce(st, 1700000000, "n0nce");
        rc = llmp_responses_stream_feed(st, sse, len, &b)
             | llmp_responses_stream_finish(st, &b);
        llmp_responses_stream_free(st);
    }
    free(sse);
    evs = rc == 0 ? events(b.data) : NULL;
    llmp_buf_free(&b);
    joined(evs, "response.custom_tool_call_input.delta", text, sizeof(text));
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(evs && index_of(evs, "response.function_call_arguments.delta") < 0
           && index_of(evs, "response.custom_tool_call_input.done")
              > index_of(evs, "response.custom_tool_call_input.delta")
           && strstr(text, "San Francisco") != NULL
           && js(last, "response.output.2.type", "custom_tool_call")
           && js(last, "response.output.2.input", text),
           "streamed: custom_tool_call_input delta and done, the item");
    cJSON_Delete(evs);
}


/* an OpenAI model's encrypted reasoning is not an Anthropic signature */

static void
test_request_foreign_reasoning(void)
{
    int          rc;
    char         err[256];
    cJSON       *o;
    llmp_buf_t   out = { 0 };
    const char   body[] = "{\"reasoning\":{\"effort\":\"high\"},\"input\":["
        "{\"role\":\"user\",\"content\":\"hi\"},{\"type\":\"reasoning\","
        "\"summary\":[],\"encrypted_content\":\"gAAAAABoOpenAI\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\","
        "\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
        "\"call_id\":\"c1\",\"output\":\"ok\"}],\"tools\":[{\"type\":"
        "\"function\",\"name\":\"f\"}]}";

    rc = llmp_responses_request(AN, body, sizeof(body) - 1, "m", 0, &out,
                                err, sizeof(err));
    o = rc == 0 ? cJSON_Parse(out.data) : NULL;
    llmp_buf_free(&out);
    TAP_OK(o && js(o, "messages.1.content.0.type", "tool_use")
           && !has(o, "messages", "gAAAA") && jp(o, "thinking") == NULL,
           "an untagged encrypted_content is no thinking block; no thinking "
           "in that tool round");
    cJSON_Delete(o);
}


static void
test_request_errors(void)
{
    int          rc;
    char         err[256];
    llmp_buf_t   out = { 0 };
    const char  *bad[] = {
        "{\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}",
        "{\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}",
        "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"input_image\",\"file_id\":\"file-1\"}]}]}",
        "{\"input\":42}",
        "[1,2]",
        "{\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}",
        "{\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        NULL
    };
    const char **b;

    for (b = bad; *b; b++) {
        err[0] = '\0';
        rc = llmp_responses_request(AN, *b, strlen(*b), "m", 0, &out, err,
                                    sizeof(err));
        llmp_buf_free(&out);
        memset(&out, 0, sizeof(out));
        TAP_OK(rc == -1 && err[0] != '\0', *b);
        if (err[0]) {
            printf("# %s\n", err);
        }
    }
}


static void
test_response(void)
{
    cJSON  *o;

    o = resp(AN, "resp_anthropic_tool.json");
    TAP_OK(o != NULL, "anthropic answer -> responses");
    TAP_OK(o && js(o, "object", "response") && js(o, "status", "completed")
           && js(o, "model", "client-model"),
           "responses: object, status, model");
    TAP_OK(o && strncmp(jstr(o, "id") ? jstr(o, "id") : "", "resp_", 5) == 0,
           "responses: a resp_ id");
    TAP_OK(o && js(o, "output.0.type", "message")
           && js(o, "output.0.content.0.type", "output_text")
           && js(o, "output.0.content.0.text",
                 "I'll check the current weather in San Francisco for you."),
           "responses: the text is a message item");
    TAP_OK(o && js(o, "output.1.type", "function_call")
           && js(o, "output.1.call_id", "toolu_01A09q90qw90lq917835lq9")
           && js(o, "output.1.name", "get_weather")
           && strstr(jstr(o, "output.1.arguments")
                     ? jstr(o, "output.1.arguments") : "",
                     "San Francisco") != NULL,
           "responses: the tool_use is a function_call item");
    TAP_OK(o && jnum(o, "usage.input_tokens", 472)
           && jnum(o, "usage.output_tokens", 89)
           && jnum(o, "usage.total_tokens", 561),
           "responses: usage");
    cJSON_Delete(o);

    o = resp(AN, "resp_anthropic_text.json");
    TAP_OK(o && js(o, "output.0.type", "reasoning")
           && js(o, "output.0.summary.0.type", "summary_text")
           && js(o, "output.0.summary.0.text", "Simple greeting.")
           && js(o, "output.0.encrypted_content", "anthropic:EqQBCgIYAhIM")
           && js(o, "output.1.type", "message")
           && js(o, "output.1.content.0.text", "Hi! My name is Claude."),
           "anthropic thinking: a reasoning item, its signature as "
           "encrypted_content");
    cJSON_Delete(o);

    o = resp(GE, "resp_gemini_text.json");
    TAP_OK(o && js(o, "status", "incomplete")
           && js(o, "incomplete_details.reason", "max_output_tokens"),
           "gemini MAX_TOKENS: incomplete, max_output_tokens");
    TAP_OK(o && jnum(o, "usage.output_tokens_details.reasoning_tokens", 20),
           "gemini: thoughts are reasoning tokens");
    TAP_OK(o && js(o, "output.0.type", "reasoning")
           && js(o, "output.0.summary.0.text", "Let me think.")
           && jp(o, "output.0.encrypted_content") == NULL
           && js(o, "output.1.content.0.text",
                 "AI learns patterns from data."),
           "gemini: a thought part is a reasoning item");
    cJSON_Delete(o);
}


static void
test_stream(void)
{
    int      rc, rc1;
    char    *whole, *bytes, text[4096];
    cJSON   *evs, *last;
    size_t   len;
    char    *data;

    data = load("stream_anthropic_tool.sse", &len);
    whole = run(AN, data, len, 0, &rc);
    bytes = run(AN, data, len, 1, &rc1);
    TAP_OK(rc == 0 && rc1 == 0, "anthropic tool stream: translated");
    TAP_OK(whole && bytes && strcmp(whole, bytes) == 0,
           "anthropic tool stream: byte by byte gives the same events");
    evs = whole ? events(whole) : NULL;
    TAP_OK(evs != NULL, "anthropic tool stream: event: lines match types");
    TAP_OK(evs && sequenced(evs), "sequence_number counts from 0");
    TAP_OK(evs && index_of(evs, "response.created") == 0
           && index_of(evs, "response.in_progress") == 1,
           "response.created, response.in_progress first");
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(last && js(last, "type", "response.completed")
           && js(last, "response.status", "completed"),
           "response.completed last");
    TAP_OK(evs && index_of(evs, "response.output_item.added") > 0
           && index_of(evs, "response.content_part.added")
              > index_of(evs, "response.output_item.added")
           && index_of(evs, "response.output_text.done")
              > index_of(evs, "response.output_text.delta")
           && index_of(evs, "response.content_part.done")
              > index_of(evs, "response.output_text.done"),
           "message: item added, part added, deltas, text done, part done");
    joined(evs, "response.output_text.delta", text, sizeof(text));
    TAP_OK(strcmp(text, "Okay, let's check the weather for San "
                  "Francisco, CA:") == 0, "the text deltas");
    joined(evs, "response.function_call_arguments.delta", text,
           sizeof(text));
    TAP_OK(strstr(text, "San Francisco") != NULL
           && is_json(text),
           "the arguments deltas join to JSON");
    TAP_OK(evs && index_of(evs, "response.function_call_arguments.done")
                  > index_of(evs, "response.function_call_arguments.delta"),
           "function_call_arguments.done after its deltas");
    TAP_OK(last && js(last, "response.output.0.type", "reasoning")
           && js(last, "response.output.0.summary.0.text", "Need weather.")
           && js(last, "response.output.1.type", "message")
           && js(last, "response.output.2.type", "function_call")
           && js(last, "response.output.2.call_id",
                 "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
           && js(last, "response.output.2.name", "get_weather"),
           "response.completed: reasoning, message, function_call items");
    /* OpenAI counts cache reads into the input tokens, Anthropic not */
    TAP_OK(last && jnum(last, "response.usage.input_tokens", 572)
           && jnum(last, "response.usage.input_tokens_details.cached_tokens",
                   100),
           "response.completed carries the usage");
    cJSON_Delete(evs);
    free(whole);
    free(bytes);
    free(data);

    data = load("stream_gemini_text.sse", &len);
    whole = run(GE, data, len, 0, &rc);
    bytes = run(GE, data, len, 7, &rc1);
    TAP_OK(rc == 0 && rc1 == 0 && strcmp(whole, bytes) == 0,
           "gemini text stream: translated, splitting changes nothing");
    evs = events(whole);
    joined(evs, "response.output_text.delta", text, sizeof(text));
    TAP_OK(strcmp(text, "Hello, w\xc3\xb6rld \xe2\x9c\x93 "
                  "\xf0\x9f\x98\x80") == 0, "gemini: UTF-8 text deltas");
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(last && js(last, "type", "response.completed")
           && jnum(last, "response.usage.output_tokens", 5)
           && jnum(last, "response.usage.total_tokens", 14),
           "gemini: response.completed with usage");
    cJSON_Delete(evs);
    free(whole);
    free(bytes);
    free(data);

    data = load("stream_anthropic_error.sse", &len);
    whole = run(AN, data, len, 0, &rc);
    evs = whole ? events(whole) : NULL;
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(evs && index_of(evs, "error") > 0
           && index_of(evs, "response.completed") < 0,
           "an upstream error event is an error event, not a completion");
    TAP_OK(last && js(last, "type", "response.failed")
           && js(last, "response.status", "failed")
           && js(last, "response.error.message", "Overloaded"),
           "then response.failed with the message");
    cJSON_Delete(evs);
    free(whole);
    free(data);

    data = load("stream_anthropic_thinking.sse", &len);
    whole = run(AN, data, len, 0, &rc);
    bytes = run(AN, data, len, 3, &rc1);
    TAP_OK(rc == 0 && rc1 == 0 && strcmp(whole, bytes) == 0,
           "anthropic thinking stream: translated, splitting changes "
           "nothing");
    evs = events(whole);
    joined(evs, "response.reasoning_summary_text.delta", text,
           sizeof(text));
    TAP_OK(strcmp(text, "The user greets; answer briefly.") == 0,
           "thinking deltas are reasoning_summary_text deltas");
    TAP_OK(evs && index_of(evs, "response.reasoning_summary_part.added")
                  > index_of(evs, "response.output_item.added")
           && index_of(evs, "response.reasoning_summary_text.done")
              > index_of(evs, "response.reasoning_summary_text.delta")
           && index_of(evs, "response.reasoning_summary_part.done")
              > index_of(evs, "response.reasoning_summary_text.done")
           && index_of(evs, "response.output_text.delta")
              > index_of(evs, "response.reasoning_summary_part.done"),
           "reasoning: item, summary part, deltas, done; then the text");
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(last && js(last, "response.output.0.type", "reasoning")
           && js(last, "response.output.0.summary.0.text",
                 "The user greets; answer briefly.")
           && js(last, "response.output.0.encrypted_content",
                 "anthropic:EqQBCgIYAhIMsig1")
           && js(last, "response.output.1.content.0.text", "Hello!"),
           "the reasoning item keeps the signature as encrypted_content");
    cJSON_Delete(evs);
    free(whole);
    free(bytes);
    free(data);

    data = load("stream_gemini_tool.sse", &len);
    whole = run(GE, data, len, 0, &rc);
    evs = whole ? events(whole) : NULL;
    joined(evs, "response.reasoning_summary_text.delta", text,
           sizeof(text));
    last = evs ? cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1) : NULL;
    TAP_OK(rc == 0 && strcmp(text, "Checking.") == 0
           && js(last, "response.output.0.type", "reasoning")
           && js(last, "response.output.2.name", "get_weather")
           && js(last, "response.output.3.name", "get_time")
           && jnum(last, "response.usage.output_tokens_details."
                   "reasoning_tokens", 15),
           "gemini thought parts stream as reasoning, thoughts as "
           "reasoning tokens; two calls");
    cJSON_Delete(evs);
    free(whole);
    free(data);

    /* nothing came: still a well-formed, completed response */
    whole = run(AN, "", 0, 0, &rc);
    evs = whole ? events(whole) : NULL;
    TAP_OK(evs && index_of(evs, "response.created") == 0
           && cJSON_GetArraySize(evs) >= 3,
           "an empty stream still gives created ... an end event");
    cJSON_Delete(evs);
    free(whole);
}


/* a chat-style request body from one interface to another */

static cJSON *
xreq(int from, int to, const char *body)
{
    char         err[256];
    cJSON       *o;
    llmp_buf_t   out = { 0 };

    err[0] = '\0';
    if (llmp_translate_request(from, to, body, strlen(body), "m", 0, &out,
                               err, sizeof(err)) != 0)
    {
        printf("# %s\n", err);
        llmp_buf_free(&out);
        return NULL;
    }
    o = cJSON_Parse(out.data);
    llmp_buf_free(&out);
    return o;
}


static void
test_think_params(void)
{
    cJSON  *o;

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}],\"reasoning_effort\":\"high\",\"max_tokens\":100,"
             "\"temperature\":0.3}");
    TAP_OK(o && js(o, "thinking.type", "enabled")
           && jnum(o, "thinking.budget_tokens", 4096)
           && jnum(o, "max_tokens", 4196) && jp(o, "temperature") == NULL,
           "oa->an: reasoning_effort high is thinking, max_tokens above it");
    cJSON_Delete(o);

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}],\"reasoning_effort\":\"low\",\"tools\":[{\"type\":"
             "\"function\",\"function\":{\"name\":\"f\"}}],"
             "\"tool_choice\":\"required\"}");
    TAP_OK(o && jp(o, "thinking") == NULL && js(o, "tool_choice.type", "any"),
           "oa->an: no thinking with a forced tool");
    cJSON_Delete(o);

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":null,"
             "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
             "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
             "\"ok\"}],\"reasoning_effort\":\"medium\"}");
    TAP_OK(o && jp(o, "thinking") == NULL,
           "oa->an: no thinking when the tool turn has no signed block");
    cJSON_Delete(o);

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":null,"
             "\"reasoning_content\":\"think\",\"thinking_blocks\":[{"
             "\"type\":\"thinking\",\"thinking\":\"think\",\"signature\":"
             "\"s1\"}],\"tool_calls\":[{\"id\":\"c1\",\"type\":"
             "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
             "\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
             "\"content\":\"ok\"}],\"reasoning_effort\":\"medium\"}");
    TAP_OK(o && jnum(o, "thinking.budget_tokens", 2048)
           && js(o, "messages.1.content.0.type", "thinking")
           && js(o, "messages.1.content.0.signature", "s1")
           && js(o, "messages.1.content.1.type", "tool_use"),
           "oa->an: thinking_blocks go back first, signed, and thinking on");
    cJSON_Delete(o);

    o = xreq(OA, GE, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\","
             "\"reasoning_content\":\"hmm\"},{\"role\":\"user\","
             "\"content\":\"x\"}],\"reasoning_effort\":\"low\"}");
    TAP_OK(o && jnum(o, "generationConfig.thinkingConfig.thinkingBudget",
                     1024)
           && !has(o, "contents", "hmm"),
           "oa->ge: effort low is a 1024 budget; reasoning not sent back");
    cJSON_Delete(o);

    o = xreq(AN, OA, "{\"max_tokens\":20000,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
             "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
             "\"signature\":\"s2\"},{\"type\":\"redacted_thinking\","
             "\"data\":\"r2\"},{\"type\":\"text\",\"text\":\"yo\"}]},"
             "{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{"
             "\"type\":\"enabled\",\"budget_tokens\":10000}}");
    TAP_OK(o && js(o, "reasoning_effort", "high")
           && js(o, "messages.1.reasoning_content", "hm")
           && js(o, "messages.1.thinking_blocks.0.signature", "s2")
           && js(o, "messages.1.thinking_blocks.1.type", "redacted_thinking")
           && js(o, "messages.1.content", "yo"),
           "an->oa: budget 10000 is effort high; thinking blocks kept");
    cJSON_Delete(o);

    o = xreq(AN, GE, "{\"max_tokens\":9000,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"hi\"}],\"thinking\":{\"type\":"
             "\"enabled\",\"budget_tokens\":3000}}");
    TAP_OK(o && jnum(o, "generationConfig.thinkingConfig.thinkingBudget",
                     3000)
           && cJSON_IsTrue(jp(o, "generationConfig.thinkingConfig."
                                 "includeThoughts"))
           && jnum(o, "generationConfig.maxOutputTokens", 9000),
           "an->ge: the budget is Gemini's thinkingBudget");
    cJSON_Delete(o);

    o = xreq(GE, AN, "{\"contents\":[{\"role\":\"user\",\"parts\":[{"
             "\"text\":\"hi\"}]}],\"generationConfig\":{\"thinkingConfig\":"
             "{\"thinkingBudget\":-1}}}");
    TAP_OK(o && jnum(o, "thinking.budget_tokens", 2048)
           && jnum(o, "max_tokens", 4096),
           "ge->an: a dynamic budget is effort medium");
    cJSON_Delete(o);

    o = xreq(GE, OA, "{\"contents\":[{\"role\":\"user\",\"parts\":[{"
             "\"text\":\"hi\"}]},{\"role\":\"model\",\"parts\":[{"
             "\"text\":\"mull\",\"thought\":true},{\"text\":\"yo\"}]},"
             "{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
             "\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":"
             "\"low\"}}}");
    TAP_OK(o && js(o, "reasoning_effort", "low")
           && js(o, "messages.1.reasoning_content", "mull")
           && js(o, "messages.1.content", "yo"),
           "ge->oa: thinkingLevel low, a thought is reasoning_content");
    cJSON_Delete(o);

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}]}");
    TAP_OK(o && jp(o, "thinking") == NULL,
           "oa->an: no effort, no thinking");
    cJSON_Delete(o);
}


/* a response body from one interface to another */

static cJSON *
xresp(int from, int to, const char *body)
{
    char         err[256];
    cJSON       *o;
    llmp_buf_t   out = { 0 };

    if (llmp_translate_response(from, to, body, strlen(body), "m", &out,
                                NULL, err, sizeof(err)) != 0)
    {
        printf("# %s\n", err);
        llmp_buf_free(&out);
        return NULL;
    }
    o = cJSON_Parse(out.data);
    llmp_buf_free(&out);
    return o;
}


static const char  ge_sig_answer[] =
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{"
    "\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}},"
    "\"thoughtSignature\":\"GSig+/=\"}]},\"finishReason\":\"STOP\"}],"
    "\"usageMetadata\":{\"promptTokenCount\":3,"
    "\"candidatesTokenCount\":2}}";


/* Gemini 3's thoughtSignature of a function call, kept in its id */

static void
test_call_signatures(void)
{
    int          rc;
    char        *out, err[256];
    cJSON       *o;
    llmp_buf_t   b = { 0 };

    o = xresp(GE, OA, ge_sig_answer);
    TAP_OK(o && jstr(o, "choices.0.message.tool_calls.0.id")
           && strstr(jstr(o, "choices.0.message.tool_calls.0.id"),
                     "__thought__GSig+/=") != NULL,
           "ge->oa: the call's thoughtSignature rides in its id");
    cJSON_Delete(o);

    rc = llmp_responses_response(GE, NULL, 0, ge_sig_answer,
                                 strlen(ge_sig_answer), "m", &b, NULL, err,
                                 sizeof(err));
    o = rc == 0 ? cJSON_Parse(b.data) : NULL;
    llmp_buf_free(&b);
    TAP_OK(o && js(o, "output.0.type", "function_call")
           && strstr(jstr(o, "output.0.call_id") ? jstr(o, "output.0.call_id")
                                                 : "",
                     "__thought__GSig+/=") != NULL,
           "ge->responses: and in the function_call's call_id");
    cJSON_Delete(o);

    o = xresp(GE, GE, ge_sig_answer);
    TAP_OK(o && js(o, "candidates.0.content.parts.0.thoughtSignature",
                   "GSig+/="), "ge->ge: untouched");
    cJSON_Delete(o);

    o = xreq(OA, GE, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":null,"
             "\"tool_calls\":[{\"id\":\"call_1__thought__GSig+/=\","
             "\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
             "\"tool_call_id\":\"call_1__thought__GSig+/=\",\"content\":"
             "\"ok\"}]}");
    TAP_OK(o && js(o, "contents.1.parts.0.thoughtSignature", "GSig+/=")
           && js(o, "contents.1.parts.0.functionCall.name", "f")
           && js(o, "contents.2.parts.0.functionResponse.name", "f"),
           "oa->ge: the signature goes back beside its functionCall");
    cJSON_Delete(o);

    o = xreq(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"},{\"role\":\"assistant\",\"content\":null,"
             "\"tool_calls\":[{\"id\":\"call_1__thought__GSig+/=\","
             "\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
             "\"tool_call_id\":\"call_1__thought__GSig+/=\",\"content\":"
             "\"ok\"}]}");
    TAP_OK(o && js(o, "messages.1.content.0.id", "call_1")
           && js(o, "messages.2.content.0.tool_use_id", "call_1"),
           "oa->an: Anthropic gets the plain id (its ids are [A-Za-z0-9_-])");
    cJSON_Delete(o);

    /* streamed: a Gemini stream to an OpenAI and to a Gemini client */
    {
        llmp_stream_t  *st;
        const char      sse[] = "data: {\"candidates\":[{\"content\":{"
            "\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
            "\"f\",\"args\":{}},\"thoughtSignature\":\"GSig\"}]},"
            "\"finishReason\":\"STOP\"}]}\r\n\r\n";

        st = llmp_stream_new(GE, OA, "m", 0);
        llmp_stream_set_nonce(st, 1700000000, "n0nce");
        rc = llmp_stream_feed(st, sse, sizeof(sse) - 1, &b)
             | llmp_stream_finish(st, &b);
        llmp_stream_free(st);
        TAP_OK(rc == 0 && b.data
               && strstr(b.data, "\"id\":\"call_n0nce_0__thought__GSig\"")
                  != NULL,
               "ge->oa stream: the signature in the call's id");
        llmp_buf_free(&b);
        memset(&b, 0, sizeof(b));

        st = llmp_stream_new(OA, GE, "m", 0);
        llmp_stream_set_nonce(st, 1700000000, "n0nce");
        out = "data: {\"choices\":[{\"index\":0,\"delta\":{"
              "\"tool_calls\":[{\"index\":0,\"id\":\"c9__thought__S9\","
              "\"type\":\"function\",\"function\":{\"name\":\"f\","
              "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}"
              "\n\ndata: [DONE]\n\n";
        rc = llmp_stream_feed(st, out, strlen(out), &b)
             | llmp_stream_finish(st, &b);
        llmp_stream_free(st);
        TAP_OK(rc == 0 && b.data
               && strstr(b.data, "\"thoughtSignature\":\"S9\"") != NULL,
               "oa->ge stream: a signature in an id is thoughtSignature");
        llmp_buf_free(&b);
        memset(&b, 0, sizeof(b));
    }
}


int
main(void)
{
    test_think_params();
    test_call_signatures();
    test_request_file();
    test_request_foreign_reasoning();
    test_custom_tools();
    test_request();
    test_request_errors();
    test_response();
    test_stream();
    return tap_done();
}

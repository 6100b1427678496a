/*
 * Unit tests of the response and error translation
 * (common/llmp_translate_resp.c) on recorded provider answers.
 */

#include "translate_tap.h"


static llmp_usage_t  usage;


static cJSON *
resp_file(int from, int to, const char *file)
{
    int          rc;
    char        *body, err[256];
    cJSON       *root;
    size_t       len;
    llmp_buf_t   out = { 0 };

    body = load(file, &len);
    if (body == NULL) {
        return NULL;
    }
    rc = llmp_translate_response(from, to, body, len, "client-model", &out,
                                 &usage, err, sizeof(err));
    free(body);
    if (rc != 0) {
        printf("# %s: %s\n", file, err);
        return NULL;
    }
    root = cJSON_Parse(out.data);
    llmp_buf_free(&out);
    return root;
}


static cJSON *
err_str(int from, int to, int status, const char *body)
{
    cJSON       *root;
    llmp_buf_t   out = { 0 };

    if (llmp_translate_error(from, to, status, body, body ? strlen(body) : 0,
                             &out) != 0)
    {
        return NULL;
    }
    root = cJSON_Parse(out.data);
    llmp_buf_free(&out);
    return root;
}


static int
usage_is(long long p, long long c)
{
    if (usage.prompt_tokens != p || usage.completion_tokens != c) {
        printf("# usage %lld/%lld, want %lld/%lld\n", usage.prompt_tokens,
               usage.completion_tokens, p, c);
        return 0;
    }
    return 1;
}


static void
test_from_openai(void)
{
    cJSON  *r;

    r = resp_file(OA, AN, "resp_openai_text.json");
    TAP_OK(r != NULL && js(r, "id", "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")
           && js(r, "type", "message") && js(r, "role", "assistant")
           && js(r, "model", "client-model")
           && jsize(r, "content") == 1
           && js(r, "content.0.type", "text")
           && js(r, "content.0.text", "Hello! How can I assist you today?")
           && js(r, "stop_reason", "end_turn")
           && cJSON_IsNull(jp(r, "stop_sequence"))
           && jnum(r, "usage.input_tokens", 19)
           && jnum(r, "usage.output_tokens", 10) && usage_is(19, 10),
           "oa->an: text answer");
    cJSON_Delete(r);

    r = resp_file(OA, AN, "resp_openai_tool.json");
    TAP_OK(r != NULL && js(r, "stop_reason", "tool_use")
           && js(r, "content.0.type", "tool_use")
           && js(r, "content.0.id", "call_abc123")
           && js(r, "content.0.input.location", "Boston, MA")
           && js(r, "content.1.name", "get_time")
           && jnum(r, "usage.input_tokens", 18)
           && jnum(r, "usage.cache_read_input_tokens", 64)
           && usage_is(82, 17),
           "oa->an: tool calls, cached tokens split out");
    cJSON_Delete(r);

    r = resp_file(OA, GE, "resp_openai_tool.json");
    TAP_OK(r != NULL
           && js(r, "candidates.0.content.role", "model")
           && js(r, "candidates.0.content.parts.0.functionCall.name",
                 "get_current_weather")
           && js(r, "candidates.0.content.parts.0.functionCall.args."
                 "location", "Boston, MA")
           && js(r, "candidates.0.finishReason", "STOP")
           && jnum(r, "usageMetadata.promptTokenCount", 82)
           && jnum(r, "usageMetadata.candidatesTokenCount", 17)
           && jnum(r, "usageMetadata.totalTokenCount", 99)
           && js(r, "modelVersion", "client-model")
           && js(r, "responseId", "chatcmpl-abc123"),
           "oa->ge: function calls, usageMetadata");
    cJSON_Delete(r);

    r = resp_file(OA, OA, "resp_openai_text.json");
    TAP_OK(r != NULL && js(r, "model", "client-model")
           && js(r, "system_fingerprint", "fp_3f58d112f7")
           && usage_is(19, 10),
           "oa->oa: passes through with the client's model name");
    cJSON_Delete(r);
}


static void
test_from_anthropic(void)
{
    cJSON  *r;

    r = resp_file(AN, OA, "resp_anthropic_text.json");
    TAP_OK(r != NULL && js(r, "id", "msg_013Zva2CMHLNnXjNJJKqJ2EF")
           && js(r, "object", "chat.completion")
           && cJSON_IsNumber(jp(r, "created"))
           && js(r, "model", "client-model")
           && jnum(r, "choices.0.index", 0)
           && js(r, "choices.0.message.role", "assistant")
           && js(r, "choices.0.message.content", "Hi! My name is Claude.")
           && jabsent(r, "choices.0.message.tool_calls")
           && js(r, "choices.0.finish_reason", "stop")
           && jnum(r, "usage.prompt_tokens", 2195)
           && jnum(r, "usage.completion_tokens", 503)
           && jnum(r, "usage.total_tokens", 2698)
           && jnum(r, "usage.prompt_tokens_details.cached_tokens", 100)
           && usage_is(2195, 503),
           "an->oa: text, thinking dropped, cache reads counted in");
    cJSON_Delete(r);

    r = resp_file(AN, OA, "resp_anthropic_tool.json");
    TAP_OK(r != NULL && js(r, "choices.0.finish_reason", "tool_calls")
           && js(r, "choices.0.message.content",
                 "I'll check the current weather in San Francisco for you.")
           && js(r, "choices.0.message.tool_calls.0.id",
                 "toolu_01A09q90qw90lq917835lq9")
           && js(r, "choices.0.message.tool_calls.0.type", "function")
           && js(r, "choices.0.message.tool_calls.0.function.name",
                 "get_weather")
           && js(r, "choices.0.message.tool_calls.0.function.arguments",
                 "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}")
           && usage_is(472, 89),
           "an->oa: tool_use becomes tool_calls");
    cJSON_Delete(r);

    r = resp_file(AN, GE, "resp_anthropic_text.json");
    TAP_OK(r != NULL && jsize(r, "candidates.0.content.parts") == 2
           && js(r, "candidates.0.content.parts.0.text", "Simple greeting.")
           && cJSON_IsTrue(jp(r, "candidates.0.content.parts.0.thought"))
           && js(r, "candidates.0.content.parts.1.text",
                 "Hi! My name is Claude.")
           && js(r, "candidates.0.finishReason", "STOP")
           && jnum(r, "usageMetadata.promptTokenCount", 2195)
           && jnum(r, "usageMetadata.cachedContentTokenCount", 100),
           "an->ge: thinking is a thought part, stop_sequence is STOP");
    cJSON_Delete(r);

    r = resp_file(AN, GE, "resp_anthropic_tool.json");
    TAP_OK(r != NULL
           && js(r, "candidates.0.content.parts.1.functionCall.args.unit",
                 "celsius") && js(r, "candidates.0.finishReason", "STOP"),
           "an->ge: tool_use becomes functionCall");
    cJSON_Delete(r);
}


static void
test_from_gemini(void)
{
    cJSON       *r;
    const char  *id;

    r = resp_file(GE, OA, "resp_gemini_text.json");
    TAP_OK(r != NULL && js(r, "id", "AbCdEfGhIjKlMnOpQrStUv")
           && js(r, "choices.0.message.content",
                 "AI learns patterns from data.")
           && js(r, "choices.0.finish_reason", "length")
           && jnum(r, "usage.prompt_tokens", 8)
           && jnum(r, "usage.completion_tokens", 32)
           && jnum(r, "usage.completion_tokens_details.reasoning_tokens", 20)
           && usage_is(8, 32),
           "ge->oa: thought parts dropped, thinking counts as output");
    cJSON_Delete(r);

    r = resp_file(GE, AN, "resp_gemini_text.json");
    TAP_OK(r != NULL && jsize(r, "content") == 2
           && js(r, "content.0.type", "thinking")
           && js(r, "content.0.thinking", "Let me think.")
           && js(r, "content.1.text", "AI learns patterns from data.")
           && js(r, "stop_reason", "max_tokens")
           && jnum(r, "usage.output_tokens", 32),
           "ge->an: a thought is a thinking block, adjacent text parts "
           "make one block");
    cJSON_Delete(r);

    r = resp_file(GE, OA, "resp_gemini_tool.json");
    id = jstr(r, "choices.0.message.tool_calls.0.id");
    TAP_OK(r != NULL && strncmp(jstr(r, "id"), "chatcmpl-", 9) == 0
           && strncmp(id, "call_", 5) == 0
           && strcmp(id, jstr(r, "choices.0.message.tool_calls.1.id")) != 0
           && js(r, "choices.0.message.tool_calls.1.function.arguments",
                 "{\"tz\":\"Europe/Paris\"}")
           && cJSON_IsNull(jp(r, "choices.0.message.content"))
           && js(r, "choices.0.finish_reason", "tool_calls")
           && usage_is(120, 25),
           "ge->oa: generated ids, STOP with calls is tool_calls");
    cJSON_Delete(r);

    r = resp_file(GE, AN, "resp_gemini_tool.json");
    TAP_OK(r != NULL && strncmp(jstr(r, "id"), "msg_", 4) == 0
           && js(r, "content.0.type", "tool_use")
           && strncmp(jstr(r, "content.0.id"), "call_", 5) == 0
           && js(r, "content.0.input.location", "Paris")
           && js(r, "stop_reason", "tool_use"),
           "ge->an: functionCall becomes tool_use");
    cJSON_Delete(r);
}


static void
test_bad_answers(void)
{
    int          rc;
    char         err[256];
    llmp_buf_t   out = { 0 };
    const char  *s;

    s = "{\"candidates\":[],\"promptFeedback\":{\"blockReason\":\"SAFETY\"},"
        "\"usageMetadata\":{\"promptTokenCount\":5}}";
    rc = llmp_translate_response(GE, OA, s, strlen(s), "m", &out, &usage,
                                 err, sizeof(err));
    TAP_OK(rc == 0 && strstr(out.data, "\"finish_reason\":\"content_filter\"")
           && usage_is(5, 0), "ge->oa: a blocked prompt is content_filter");
    llmp_buf_free(&out);

    rc = llmp_translate_response(OA, AN, "not json", 8, "m", &out, &usage,
                                 err, sizeof(err));
    TAP_OK(rc == -1 && out.len == 0 && usage_is(-1, -1),
           "a non-JSON answer is refused");

    s = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}";
    rc = llmp_translate_response(AN, OA, s, strlen(s), "m", &out, &usage,
                                 err, sizeof(err));
    TAP_OK(rc == -1 && strstr(err, "Overloaded") != NULL,
           "an error body is refused with its message");

    s = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"},"
        "\"finish_reason\":\"stop\"}]}";
    rc = llmp_translate_response(OA, AN, s, strlen(s), "m", &out, &usage,
                                 err, sizeof(err));
    TAP_OK(rc == 0 && usage_is(-1, -1)
           && strstr(out.data, "\"input_tokens\":0") != NULL,
           "no usage upstream: unknown, zero for the client");
    llmp_buf_free(&out);
}


static void
test_errors(void)
{
    cJSON  *r;

    r = err_str(OA, AN, 429, "{\"error\":{\"message\":\"Rate limit reached "
                "for gpt-4o\",\"type\":\"requests\",\"param\":null,"
                "\"code\":\"rate_limit_exceeded\"}}");
    TAP_OK(r != NULL && js(r, "type", "error")
           && js(r, "error.type", "rate_limit_error")
           && js(r, "error.message", "Rate limit reached for gpt-4o"),
           "error oa->an: 429");
    cJSON_Delete(r);

    r = err_str(AN, GE, 529, "{\"type\":\"error\",\"error\":{\"type\":"
                "\"overloaded_error\",\"message\":\"Overloaded\"}}");
    TAP_OK(r != NULL && jnum(r, "error.code", 529)
           && js(r, "error.message", "Overloaded")
           && js(r, "error.status", "UNAVAILABLE"),
           "error an->ge: 529");
    cJSON_Delete(r);

    r = err_str(GE, OA, 400, "{\"error\":{\"code\":400,\"message\":"
                "\"API key not valid. Please pass a valid API key.\","
                "\"status\":\"INVALID_ARGUMENT\"}}");
    TAP_OK(r != NULL && js(r, "error.type", "invalid_request_error")
           && js(r, "error.message",
                 "API key not valid. Please pass a valid API key.")
           && js(r, "error.code", "INVALID_ARGUMENT")
           && cJSON_IsNull(jp(r, "error.param")),
           "error ge->oa: 400");
    cJSON_Delete(r);

    r = err_str(GE, AN, 429, "[{\"error\":{\"code\":429,\"message\":"
                "\"Resource has been exhausted\",\"status\":"
                "\"RESOURCE_EXHAUSTED\"}}]");
    TAP_OK(r != NULL && js(r, "error.type", "rate_limit_error")
           && js(r, "error.message", "Resource has been exhausted"),
           "error ge->an: the array form");
    cJSON_Delete(r);

    r = err_str(AN, AN, 404, "{\"type\":\"error\",\"error\":{\"type\":"
                "\"not_found_error\",\"message\":\"model: x\"}}");
    TAP_OK(r != NULL && js(r, "error.type", "not_found_error"),
           "error an->an: the upstream type is kept");
    cJSON_Delete(r);

    r = err_str(OA, GE, 502, "<html><body>502 Bad Gateway</body></html>\n");
    TAP_OK(r != NULL && js(r, "error.message",
                           "<html><body>502 Bad Gateway</body></html>")
           && js(r, "error.status", "UNAVAILABLE")
           && jnum(r, "error.code", 502),
           "error oa->ge: a non-JSON body is the message");
    cJSON_Delete(r);

    r = err_str(OA, OA, 503, "");
    TAP_OK(r != NULL && js(r, "error.message", "upstream answered HTTP 503")
           && js(r, "error.type", "api_error") && cJSON_IsNull(jp(r,
           "error.code")), "error: an empty body gets a message");
    cJSON_Delete(r);

    r = err_str(AN, OA, 401, "bad \xff\xfe bytes \xc3\xa9");
    TAP_OK(r != NULL && js(r, "error.message", "bad ?? bytes \xc3\xa9")
           && js(r, "error.type", "authentication_error"),
           "error: invalid UTF-8 is replaced");
    cJSON_Delete(r);
}


int
main(void)
{
    test_from_openai();
    test_from_anthropic();
    test_from_gemini();
    test_bad_answers();
    test_errors();
    return tap_done();
}

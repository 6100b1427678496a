/*
 * Unit tests of the request translation (common/llmp_translate_req.c) on
 * recorded requests: a chat with a system prompt, images, tool
 * definitions, a tool call and tool result round.
 */

#include "translate_tap.h"


static cJSON *
req_file(int from, int to, const char *file, int stream)
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
    rc = llmp_translate_request(from, to, body, len, "up-model", stream,
                                &out, err, sizeof(err));
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
req_str(int from, int to, const char *body, int stream, char *err,
    size_t errlen)
{
    int          rc;
    cJSON       *root;
    llmp_buf_t   out = { 0 };

    err[0] = '\0';
    rc = llmp_translate_request(from, to, body, strlen(body), "up-model",
                                stream, &out, err, errlen);
    if (rc != 0) {
        llmp_buf_free(&out);
        return NULL;
    }
    root = cJSON_Parse(out.data);
    llmp_buf_free(&out);
    return root;
}


static void
test_openai_to_anthropic(void)
{
    cJSON  *r;

    r = req_file(OA, AN, "req_openai.json", 1);
    TAP_OK(r != NULL, "openai -> anthropic translates");

    TAP_OK(js(r, "model", "up-model"), "oa->an: upstream model");
    TAP_OK(jnum(r, "max_tokens", 1024), "oa->an: max_completion_tokens");
    TAP_OK(jsize(r, "system") == 2
           && js(r, "system.0.text", "You are a helpful weather assistant.")
           && js(r, "system.1.text", "Answer in English."),
           "oa->an: system and developer become system blocks");
    TAP_OK(jsize(r, "messages") == 5, "oa->an: alternating messages");
    TAP_OK(js(r, "messages.0.role", "user")
           && js(r, "messages.0.content.0.type", "text")
           && js(r, "messages.0.content.1.type", "image")
           && js(r, "messages.0.content.1.source.type", "base64")
           && js(r, "messages.0.content.1.source.media_type", "image/png")
           && js(r, "messages.0.content.1.source.data",
                 "iVBORw0KGgoAAAANSUhEUg==")
           && js(r, "messages.0.content.2.source.type", "url")
           && js(r, "messages.0.content.2.source.url",
                 "https://example.com/photos/cat.jpg"),
           "oa->an: data: URL and http URL images");
    TAP_OK(js(r, "messages.1.role", "assistant")
           && jsize(r, "messages.1.content") == 2
           && js(r, "messages.1.content.0.type", "tool_use")
           && js(r, "messages.1.content.0.id", "call_abc123")
           && js(r, "messages.1.content.0.name", "get_weather")
           && js(r, "messages.1.content.0.input.location", "Paris")
           && js(r, "messages.1.content.1.input.tz", "Europe/Paris"),
           "oa->an: tool calls become tool_use blocks with parsed input");
    TAP_OK(js(r, "messages.2.role", "user")
           && js(r, "messages.2.content.0.type", "tool_result")
           && js(r, "messages.2.content.0.tool_use_id", "call_abc123")
           && js(r, "messages.2.content.0.content",
                 "{\"temperature\":22,\"condition\":\"sunny\"}")
           && js(r, "messages.2.content.1.tool_use_id", "call_def456")
           && js(r, "messages.2.content.1.content", "14:05"),
           "oa->an: two tool messages become one user message");
    TAP_OK(js(r, "messages.4.role", "user")
           && jsize(r, "messages.4.content") == 2
           && js(r, "messages.4.content.1.text", "And tomorrow?"),
           "oa->an: consecutive user messages are merged");
    TAP_OK(jsize(r, "tools") == 2
           && js(r, "tools.0.name", "get_weather")
           && js(r, "tools.0.input_schema.properties.location.type",
                 "string")
           && js(r, "tools.0.input_schema.required.0", "location")
           && jabsent(r, "tools.0.strict"),
           "oa->an: tools with input_schema");
    TAP_OK(js(r, "tool_choice.type", "auto")
           && jtrue(r, "tool_choice.disable_parallel_tool_use"),
           "oa->an: tool_choice auto, parallel_tool_calls false");
    TAP_OK(jnum(r, "temperature", 1) && jnum(r, "top_p", 0.9),
           "oa->an: temperature clamped to 1, top_p");
    TAP_OK(jsize(r, "stop_sequences") == 2
           && js(r, "stop_sequences.1", "END"), "oa->an: stop");
    TAP_OK(js(r, "metadata.user_id", "user-1234"), "oa->an: user");
    TAP_OK(jtrue(r, "stream") && jabsent(r, "stream_options")
           && jabsent(r, "logprobs"),
           "oa->an: stream, no OpenAI-only fields");
    cJSON_Delete(r);
}


static void
test_openai_to_gemini(void)
{
    cJSON  *r;

    r = req_file(OA, GE, "req_openai.json", 0);
    TAP_OK(r != NULL, "openai -> gemini translates");

    TAP_OK(jabsent(r, "model") && jabsent(r, "stream"),
           "oa->ge: no model and no stream in the body");
    TAP_OK(jsize(r, "systemInstruction.parts") == 2
           && js(r, "systemInstruction.parts.1.text", "Answer in English."),
           "oa->ge: systemInstruction");
    TAP_OK(jsize(r, "contents") == 5
           && js(r, "contents.0.role", "user")
           && js(r, "contents.1.role", "model")
           && js(r, "contents.2.role", "user")
           && js(r, "contents.3.role", "model")
           && js(r, "contents.4.role", "user"), "oa->ge: roles alternate");
    TAP_OK(js(r, "contents.0.parts.1.inlineData.mimeType", "image/png")
           && js(r, "contents.0.parts.1.inlineData.data",
                 "iVBORw0KGgoAAAANSUhEUg==")
           && js(r, "contents.0.parts.2.fileData.fileUri",
                 "https://example.com/photos/cat.jpg")
           && js(r, "contents.0.parts.2.fileData.mimeType", "image/jpeg"),
           "oa->ge: inlineData and fileData");
    TAP_OK(js(r, "contents.1.parts.0.functionCall.name", "get_weather")
           && js(r, "contents.1.parts.0.functionCall.args.unit", "celsius"),
           "oa->ge: functionCall with args");
    TAP_OK(js(r, "contents.2.parts.0.functionResponse.name", "get_weather")
           && jnum(r, "contents.2.parts.0.functionResponse.response."
                 "temperature", 22)
           && js(r, "contents.2.parts.1.functionResponse.name", "get_time")
           && js(r, "contents.2.parts.1.functionResponse.response.content",
                 "14:05"),
           "oa->ge: functionResponse named after the call, JSON or text");
    TAP_OK(js(r, "tools.0.functionDeclarations.0.parameters.type", "OBJECT")
           && js(r, "tools.0.functionDeclarations.0.parameters.properties."
                 "unit.type", "STRING")
           && jtrue(r, "tools.0.functionDeclarations.0.parameters."
                    "properties.unit.nullable")
           && jabsent(r, "tools.0.functionDeclarations.0.parameters."
                      "additionalProperties"),
           "oa->ge: parameters in Gemini's schema dialect");
    TAP_OK(js(r, "toolConfig.functionCallingConfig.mode", "AUTO"),
           "oa->ge: toolConfig");
    TAP_OK(jnum(r, "generationConfig.temperature", 1.5)
           && jnum(r, "generationConfig.topP", 0.9)
           && jnum(r, "generationConfig.maxOutputTokens", 1024)
           && js(r, "generationConfig.stopSequences.0", "\n\nHuman:"),
           "oa->ge: generationConfig");
    cJSON_Delete(r);
}


static void
test_anthropic_to_openai(void)
{
    cJSON  *r;

    r = req_file(AN, OA, "req_anthropic.json", 1);
    TAP_OK(r != NULL, "anthropic -> openai translates");

    TAP_OK(js(r, "model", "up-model"), "an->oa: model");
    TAP_OK(js(r, "messages.0.role", "system")
           && js(r, "messages.0.content",
                 "You are a helpful weather assistant.\nAnswer in English."),
           "an->oa: system blocks joined into a system message");
    TAP_OK(js(r, "messages.1.content.0.type", "image_url")
           && js(r, "messages.1.content.0.image_url.url",
                 "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==")
           && js(r, "messages.1.content.1.image_url.url",
                 "https://example.com/photos/cat.jpg")
           && js(r, "messages.1.content.2.type", "text"),
           "an->oa: base64 and url images become image_url parts");
    TAP_OK(js(r, "messages.2.role", "assistant")
           && js(r, "messages.2.content", "Let me check.")
           && js(r, "messages.2.tool_calls.0.id",
                 "toolu_01A09q90qw90lq917835lq9")
           && js(r, "messages.2.tool_calls.0.type", "function")
           && js(r, "messages.2.tool_calls.0.function.arguments",
                 "{\"location\":\"Paris\",\"unit\":\"celsius\"}"),
           "an->oa: tool_use becomes tool_calls, thinking dropped");
    TAP_OK(js(r, "messages.3.role", "tool")
           && js(r, "messages.3.tool_call_id",
                 "toolu_01A09q90qw90lq917835lq9")
           && js(r, "messages.4.role", "tool")
           && js(r, "messages.4.content", "14:05"),
           "an->oa: tool_result blocks become tool messages");
    TAP_OK(jsize(r, "messages") == 7
           && js(r, "messages.6.content", "Thanks! And tomorrow?"),
           "an->oa: the last user message");
    TAP_OK(jsize(r, "tools") == 2
           && js(r, "tools.1.function.name", "get_time")
           && js(r, "tools.0.function.parameters.required.0", "location"),
           "an->oa: custom tools kept, server tools dropped");
    TAP_OK(js(r, "tool_choice.type", "function")
           && js(r, "tool_choice.function.name", "get_weather")
           && cJSON_IsFalse(jp(r, "parallel_tool_calls")),
           "an->oa: tool_choice tool");
    TAP_OK(jnum(r, "max_completion_tokens", 1024)
           && jnum(r, "temperature", 0.7) && js(r, "stop.0", "END")
           && js(r, "user", "user-1234") && jabsent(r, "top_k"),
           "an->oa: sampling fields");
    TAP_OK(jtrue(r, "stream") && jtrue(r, "stream_options.include_usage"),
           "an->oa: streaming asks for usage");
    cJSON_Delete(r);
}


static void
test_anthropic_to_gemini(void)
{
    cJSON  *r;

    r = req_file(AN, GE, "req_anthropic.json", 1);
    TAP_OK(r != NULL, "anthropic -> gemini translates");

    TAP_OK(jabsent(r, "model") && jabsent(r, "stream")
           && jsize(r, "contents") == 5, "an->ge: five contents");
    TAP_OK(js(r, "contents.1.parts.0.text", "Let me check.")
           && js(r, "contents.1.parts.1.functionCall.name", "get_weather")
           && jsize(r, "contents.1.parts") == 3,
           "an->ge: thinking dropped, text and calls kept");
    TAP_OK(js(r, "contents.2.parts.1.functionResponse.name", "get_time")
           && js(r, "contents.2.parts.1.functionResponse.response.content",
                 "14:05")
           && js(r, "contents.2.parts.0.functionResponse.response."
                 "condition", "sunny"),
           "an->ge: tool_result names found from the tool_use ids");
    TAP_OK(js(r, "toolConfig.functionCallingConfig.mode", "ANY")
           && js(r, "toolConfig.functionCallingConfig."
                 "allowedFunctionNames.0", "get_weather"),
           "an->ge: a forced tool");
    TAP_OK(jnum(r, "generationConfig.topK", 40)
           && jnum(r, "generationConfig.maxOutputTokens", 1024)
           && js(r, "generationConfig.stopSequences.0", "END"),
           "an->ge: generationConfig");
    TAP_OK(jsize(r, "tools.0.functionDeclarations") == 2,
           "an->ge: two function declarations");
    cJSON_Delete(r);
}


static void
test_gemini_to_openai(void)
{
    cJSON  *r;

    r = req_file(GE, OA, "req_gemini.json", 1);
    TAP_OK(r != NULL, "gemini -> openai translates");

    TAP_OK(js(r, "model", "up-model")
           && js(r, "messages.0.content",
                 "You are a helpful weather assistant.\nAnswer in English."),
           "ge->oa: model and system (snake_case system_instruction)");
    TAP_OK(js(r, "messages.1.content.1.image_url.url",
              "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==")
           && js(r, "messages.1.content.2.image_url.url",
                 "https://example.com/photos/cat.jpg"),
           "ge->oa: inline_data and fileData images");
    TAP_OK(jp(r, "messages.2.content") != NULL
           && cJSON_IsNull(jp(r, "messages.2.content"))
           && js(r, "messages.2.tool_calls.0.id", "call_1")
           && js(r, "messages.2.tool_calls.1.id", "call_2")
           && js(r, "messages.2.tool_calls.1.function.arguments",
                 "{\"tz\":\"Europe/Paris\"}"),
           "ge->oa: generated call ids, thought parts dropped");
    TAP_OK(js(r, "messages.3.tool_call_id", "call_2")
           && js(r, "messages.3.content", "{\"time\":\"14:05\"}")
           && js(r, "messages.4.tool_call_id", "call_1"),
           "ge->oa: functionResponses matched to their calls by name");
    TAP_OK(js(r, "messages.5.content",
              "The image shows a cat. In Paris it is 22 C and sunny at "
              "14:05."), "ge->oa: model text parts joined");
    TAP_OK(js(r, "messages.6.role", "user"), "ge->oa: role-less is user");
    TAP_OK(js(r, "tools.0.function.parameters.type", "object")
           && js(r, "tools.0.function.parameters.properties.unit.type",
                 "string")
           && jabsent(r, "tools.0.function.parameters.properties.unit."
                      "nullable")
           && jabsent(r, "tools.1.function.parameters")
           && jsize(r, "tools") == 2,
           "ge->oa: schema lower-cased, googleSearch dropped");
    TAP_OK(js(r, "tool_choice.function.name", "get_weather"),
           "ge->oa: ANY with one allowed name forces it");
    TAP_OK(jnum(r, "temperature", 0.7) && jnum(r, "max_completion_tokens", 1024)
           && jnum(r, "n", 1) && js(r, "stop.0", "END")
           && jabsent(r, "response_format") && jabsent(r, "safetySettings"),
           "ge->oa: generationConfig");
    cJSON_Delete(r);
}


static void
test_gemini_to_anthropic(void)
{
    cJSON  *r;

    r = req_file(GE, AN, "req_gemini.json", 0);
    TAP_OK(r != NULL, "gemini -> anthropic translates");

    TAP_OK(js(r, "messages.1.content.0.id", "call_1")
           && js(r, "messages.1.content.1.id", "call_2")
           && js(r, "messages.2.content.0.tool_use_id", "call_2")
           && js(r, "messages.2.content.1.tool_use_id", "call_1"),
           "ge->an: tool_use ids and tool_result ids agree");
    TAP_OK(js(r, "messages.0.content.1.source.media_type", "image/png")
           && js(r, "messages.0.content.2.source.type", "url"),
           "ge->an: images");
    TAP_OK(js(r, "tools.1.input_schema.type", "object")
           && js(r, "tool_choice.type", "tool")
           && js(r, "tool_choice.name", "get_weather"),
           "ge->an: a declaration without parameters gets an object");
    TAP_OK(jnum(r, "top_k", 40) && jabsent(r, "stream"),
           "ge->an: top_k, no stream");
    cJSON_Delete(r);
}


static void
test_identity(void)
{
    char    err[256];
    cJSON  *r;

    r = req_str(OA, OA, "{\"model\":\"alias\",\"messages\":[],\"x\":1}", 1,
                err, sizeof(err));
    TAP_OK(r != NULL && js(r, "model", "up-model") && jnum(r, "x", 1)
           && jtrue(r, "stream_options.include_usage")
           && strcmp(r->child->string, "model") == 0,
           "openai -> openai: model rewritten, other fields kept");
    cJSON_Delete(r);

    r = req_str(GE, GE, "{\"model\":\"x\",\"contents\":[]}", 0, err,
                sizeof(err));
    TAP_OK(r != NULL && jabsent(r, "model") && jsize(r, "contents") == 0,
           "gemini -> gemini: model dropped");
    cJSON_Delete(r);

    r = req_str(AN, AN, "{\"model\":\"x\",\"max_tokens\":5,\"messages\":[]}",
                1, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "model", "up-model") && jtrue(r, "stream"),
           "anthropic -> anthropic: model rewritten");
    cJSON_Delete(r);
}


static void
test_edges(void)
{
    char    err[256];
    cJSON  *r;

    r = req_str(OA, AN, "{\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi\"}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && jnum(r, "max_tokens", 4096)
           && js(r, "messages.0.content.0.text", "hi")
           && jabsent(r, "stream"),
           "oa->an: max_tokens defaults to 4096");
    cJSON_Delete(r);

    r = req_str(OA, GE, "{\"messages\":[{\"role\":\"user\",\"content\":"
                "\"hi\"}],\"response_format\":{\"type\":\"json_object\"},"
                "\"tools\":[{\"type\":\"function\",\"function\":"
                "{\"name\":\"noargs\",\"parameters\":{\"type\":\"object\","
                "\"properties\":{}}}}],\"tool_choice\":\"required\"}", 0,
                err, sizeof(err));
    TAP_OK(r != NULL
           && js(r, "generationConfig.responseMimeType", "application/json")
           && jabsent(r, "tools.0.functionDeclarations.0.parameters")
           && js(r, "toolConfig.functionCallingConfig.mode", "ANY"),
           "oa->ge: json mode, an empty object schema is left out");
    cJSON_Delete(r);

    /* two calls of one function answered in order, Gemini has no ids */
    r = req_str(GE, OA, "{\"contents\":["
                "{\"role\":\"user\",\"parts\":[{\"text\":\"w?\"}]},"
                "{\"role\":\"model\",\"parts\":["
                "{\"functionCall\":{\"name\":\"w\",\"args\":{\"c\":\"A\"}}},"
                "{\"functionCall\":{\"name\":\"w\",\"args\":{\"c\":\"B\"}}}"
                "]},{\"role\":\"user\",\"parts\":["
                "{\"functionResponse\":{\"name\":\"w\",\"response\":"
                "{\"t\":1}}},{\"functionResponse\":{\"name\":\"w\","
                "\"response\":{\"t\":2}}}]},"
                "{\"role\":\"model\",\"parts\":["
                "{\"functionCall\":{\"name\":\"w\",\"args\":{}}}]},"
                "{\"role\":\"user\",\"parts\":["
                "{\"functionResponse\":{\"name\":\"w\",\"response\":"
                "{\"t\":3}}}]}]}", 1, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "messages.2.tool_call_id", "call_1")
           && js(r, "messages.2.content", "{\"t\":1}")
           && js(r, "messages.3.tool_call_id", "call_2")
           && js(r, "messages.4.tool_calls.0.id", "call_3")
           && js(r, "messages.5.tool_call_id", "call_3"),
           "ge->oa: same-name calls matched in order, per turn");
    cJSON_Delete(r);

    /* an Anthropic tool result with an image and an error flag */
    r = req_str(AN, GE, "{\"max_tokens\":10,\"messages\":["
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
                "\"id\":\"t1\",\"name\":\"shot\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                "\"tool_use_id\":\"t1\",\"is_error\":true,\"content\":["
                "{\"type\":\"text\",\"text\":\"failed\"},{\"type\":\"image\","
                "\"source\":{\"type\":\"base64\",\"media_type\":"
                "\"image/jpeg\",\"data\":\"/9j/\"}}]}]}]}", 0,
                err, sizeof(err));
    TAP_OK(r != NULL
           && js(r, "contents.1.parts.0.functionResponse.name", "shot")
           && js(r, "contents.1.parts.0.functionResponse.response.error",
                 "failed")
           && js(r, "contents.1.parts.1.inlineData.mimeType", "image/jpeg"),
           "an->ge: error result, its image follows as a part");
    cJSON_Delete(r);

    r = req_str(AN, OA, "{\"max_tokens\":10,\"messages\":["
                "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"image\","
                "\"source\":{\"type\":\"base64\",\"media_type\":"
                "\"image/jpeg\",\"data\":\"/9j/\"}}]},{\"type\":\"text\","
                "\"text\":\"see\"}]}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "messages.0.role", "tool")
           && js(r, "messages.0.content", "")
           && js(r, "messages.1.role", "user")
           && js(r, "messages.1.content.0.type", "image_url")
           && js(r, "messages.1.content.1.text", "see"),
           "an->oa: a tool result's image moves to a user message");
    cJSON_Delete(r);

    r = req_str(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
                "[{\"type\":\"text\",\"text\":\"a\"}]},{\"role\":"
                "\"assistant\",\"content\":\"\"},{\"role\":\"user\","
                "\"content\":\"b\"}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && jsize(r, "messages") == 1
           && jsize(r, "messages.0.content") == 2,
           "oa->an: an empty assistant turn does not break alternation");
    cJSON_Delete(r);

    r = req_str(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
                "[{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\","
                "\"file_data\":\"data:application/pdf;base64,JVBERi0=\"}},"
                "{\"type\":\"input_audio\",\"input_audio\":{\"data\":"
                "\"UklGRg==\",\"format\":\"wav\"}}]}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "messages.0.content.0.type", "document")
           && js(r, "messages.0.content.0.source.media_type",
                 "application/pdf")
           && js(r, "messages.0.content.0.source.data", "JVBERi0=")
           && jsize(r, "messages.0.content") == 1,
           "oa->an: a PDF file part is a document, audio is dropped");
    cJSON_Delete(r);

    r = req_str(AN, GE, "{\"max_tokens\":1,\"system\":\"\",\"messages\":"
                "[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
                "\"source\":{\"type\":\"url\",\"url\":"
                "\"https://x.org/a.pdf\"}}]}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && jabsent(r, "systemInstruction")
           && js(r, "contents.0.parts.0.fileData.mimeType", "application/pdf")
           && js(r, "contents.0.parts.0.fileData.fileUri",
                 "https://x.org/a.pdf"),
           "an->ge: a PDF URL is fileData, an empty system is left out");
    cJSON_Delete(r);

    TAP_OK(req_str(OA, AN, "{\"messages\":", 0, err, sizeof(err)) == NULL
           && strstr(err, "JSON") != NULL, "truncated JSON is refused");
    TAP_OK(req_str(OA, AN, "[1]", 0, err, sizeof(err)) == NULL
           && strstr(err, "object") != NULL, "a non-object is refused");
    TAP_OK(req_str(OA, GE, "{\"model\":\"x\"}", 0, err, sizeof(err)) == NULL
           && strstr(err, "messages") != NULL, "messages are required");
    TAP_OK(req_str(OA, GE, "{\"messages\":[{\"role\":\"robot\","
                   "\"content\":\"x\"}]}", 0, err, sizeof(err)) == NULL
           && strstr(err, "messages[0]") != NULL
           && strstr(err, "robot") != NULL, "an unknown role is refused");
    TAP_OK(req_str(AN, OA, "{\"messages\":[{\"role\":\"user\","
                   "\"content\":5}]}", 0, err, sizeof(err)) == NULL
           && strstr(err, "content") != NULL, "bad content is refused");
    TAP_OK(req_str(GE, AN, "{\"contents\":{}}", 0, err, sizeof(err))
           == NULL && strstr(err, "contents") != NULL,
           "gemini contents must be an array");
    TAP_OK(req_str(OA, AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
                   "[{\"type\":\"image_url\",\"image_url\":{\"url\":"
                   "\"data:image/png,abc\"}}]}]}", 0, err, sizeof(err))
           == NULL && strstr(err, "base64") != NULL,
           "a non-base64 data: URL is refused");
    TAP_OK(req_str(OA, 9, "{}", 0, err, sizeof(err)) == NULL,
           "an unknown interface is refused");

    /* found by the fuzzer: numbers too large for an integer (UBSan) */
    r = req_str(AN, GE, "{\"model\":\"m\",\"max_tokens\":5,\"top_k\":"
                "4.3e86,\"messages\":[{\"role\":\"user\",\"content\":"
                "\"hi\"}]}", 0, err, sizeof(err));
    TAP_OK(r != NULL && cJSON_GetObjectItem(cJSON_GetObjectItem(r,
           "generationConfig"), "topK")->valuedouble == 9.0e15,
           "a huge top_k is clamped, not cast out of range");
    cJSON_Delete(r);
    r = req_str(GE, OA, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],"
                "\"generationConfig\":{\"seed\":-1e300,\"candidateCount\":"
                "1e300,\"maxOutputTokens\":1e300}}", 0, err, sizeof(err));
    TAP_OK(r != NULL, "huge gemini numbers are clamped");
    cJSON_Delete(r);
}


/* each required member the readers check, refused with its own message */

static void
test_refusals(void)
{
    size_t   i;
    char     err[256];
    cJSON   *r;

    static const struct {
        int          from;
        const char  *body;
        const char  *want;
    } cases[] = {
        { OA, "{\"messages\":[{\"content\":\"r\"}]}",
          "messages[0]: \"role\" is required" },
        { OA, "{\"messages\":[{\"role\":\"critic\",\"content\":\"r\"}]}",
          "messages[0]: unknown role \"critic\"" },
        { OA, "{\"messages\":[{\"role\":\"assistant\",\"content\":null,"
              "\"tool_calls\":[{\"id\":\"c\",\"function\":{}}]}]}",
          "messages[0]: a tool call needs function.name" },
        { OA, "{\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}",
          "messages[0]: \"tool_call_id\" is required" },
        { OA, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"tools\":[{\"type\":\"function\",\"function\":{}}]}",
          "tools: a function needs a name" },
        { AN, "{\"messages\":[{\"role\":\"assistant\",\"content\":"
              "[{\"type\":\"tool_use\",\"id\":\"t\"}]}]}",
          "messages[0]: tool_use needs an id and a name" },
        { AN, "{\"messages\":[{\"role\":\"user\",\"content\":"
              "[{\"type\":\"tool_result\"}]}]}",
          "messages[0]: tool_result needs tool_use_id" },
        { GE, "{\"contents\":[{\"parts\":[{\"inlineData\":"
              "{\"mimeType\":\"image/png\"}}]}]}",
          "contents[0]: inlineData needs data" },
        { GE, "{\"contents\":[{\"parts\":[{\"fileData\":"
              "{\"mimeType\":\"image/png\"}}]}]}",
          "contents[0]: fileData needs fileUri" },
        { GE, "{\"contents\":[{\"parts\":[{\"functionCall\":"
              "{\"args\":{}}}]}]}",
          "contents[0]: functionCall needs a name" },
        { GE, "{\"contents\":[{\"parts\":[{\"functionResponse\":"
              "{\"response\":{}}}]}]}",
          "contents[0]: functionResponse needs a name" },
        { GE, "{\"contents\":[{\"parts\":[\"x\"]}]}",
          "contents[0]: a part must be an object" },
        { GE, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],"
              "\"tools\":[{\"functionDeclarations\":[{}]}]}",
          "tools: a function declaration needs a name" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r = req_str(cases[i].from, cases[i].from == OA ? AN : OA,
                    cases[i].body, 0, err, sizeof(err));
        if (r != NULL || strcmp(err, cases[i].want) != 0) {
            printf("# case %zu: have \"%s\"\n", i, err);
        }
        TAP_OK(r == NULL && strcmp(err, cases[i].want) == 0, cases[i].want);
        cJSON_Delete(r);
    }
}


/* OpenAI's legacy functions and function_call, and the parameters only
 * some interfaces have; Gemini's snake_case spellings and modes */

static void
test_params(void)
{
    char    err[256];
    cJSON  *r;

    static const char  *legacy =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"functions\":[{\"name\":\"f\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\",\"properties\":"
        "{\"a\":{\"type\":\"string\"}}}},{\"description\":\"no name\"}],"
        "\"function_call\":{\"name\":\"f\"},\"seed\":7,\"n\":2,"
        "\"presence_penalty\":0.5,\"frequency_penalty\":0.25,"
        "\"max_tokens\":9}";

    static const char  *snake =
        "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],"
        "\"tools\":[{\"function_declarations\":[{\"name\":\"f\"}]}],"
        "\"tool_config\":{\"function_calling_config\":{\"mode\":\"NONE\"}},"
        "\"generation_config\":{\"top_k\":3,\"seed\":5,"
        "\"presence_penalty\":0.1,\"frequency_penalty\":0.2,"
        "\"max_output_tokens\":11,\"candidate_count\":2,"
        "\"stop_sequences\":[\"S\"],"
        "\"response_mime_type\":\"application/json\"}}";

    r = req_str(OA, AN, legacy, 0, err, sizeof(err));
    TAP_OK(r != NULL && jsize(r, "tools") == 1 && js(r, "tools.0.name", "f")
           && js(r, "tools.0.description", "d")
           && js(r, "tools.0.input_schema.properties.a.type", "string")
           && js(r, "tool_choice.type", "tool")
           && js(r, "tool_choice.name", "f") && jnum(r, "max_tokens", 9),
           "oa->an: legacy functions and function_call; nameless dropped");
    cJSON_Delete(r);

    r = req_str(OA, GE, legacy, 0, err, sizeof(err));
    TAP_OK(r != NULL
           && js(r, "tools.0.functionDeclarations.0.parameters.type",
                 "OBJECT")
           && js(r, "toolConfig.functionCallingConfig.mode", "ANY")
           && js(r, "toolConfig.functionCallingConfig.allowedFunctionNames"
                 ".0", "f")
           && jnum(r, "generationConfig.maxOutputTokens", 9)
           && jnum(r, "generationConfig.candidateCount", 2)
           && jnum(r, "generationConfig.seed", 7)
           && jnum(r, "generationConfig.presencePenalty", 0.5)
           && jnum(r, "generationConfig.frequencyPenalty", 0.25),
           "oa->ge: a named function, n, seed and penalties");
    cJSON_Delete(r);

    r = req_str(GE, OA, snake, 0, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "tools.0.function.name", "f")
           && js(r, "tool_choice", "none")
           && jnum(r, "max_completion_tokens", 11) && js(r, "stop.0", "S")
           && jnum(r, "n", 2) && jnum(r, "seed", 5)
           && jnum(r, "presence_penalty", 0.1)
           && jnum(r, "frequency_penalty", 0.2)
           && js(r, "response_format.type", "json_object"),
           "ge->oa: snake_case config, mode NONE");
    cJSON_Delete(r);

    r = req_str(GE, AN, snake, 0, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "tool_choice.type", "none")
           && js(r, "tools.0.input_schema.type", "object")
           && jnum(r, "top_k", 3) && jnum(r, "max_tokens", 11)
           && js(r, "stop_sequences.0", "S"),
           "ge->an: top_k, tool_choice none, an empty input_schema");
    cJSON_Delete(r);

    r = req_str(GE, OA, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],"
                "\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],"
                "\"toolConfig\":{\"functionCallingConfig\":"
                "{\"mode\":\"VALIDATED\"}}}", 0, err, sizeof(err));
    TAP_OK(r != NULL && js(r, "tool_choice", "auto"),
           "ge->oa: mode VALIDATED is auto");
    cJSON_Delete(r);
}


int
main(void)
{
    test_openai_to_anthropic();
    test_openai_to_gemini();
    test_anthropic_to_openai();
    test_anthropic_to_gemini();
    test_gemini_to_openai();
    test_gemini_to_anthropic();
    test_identity();
    test_edges();
    test_refusals();
    test_params();
    return tap_done();
}

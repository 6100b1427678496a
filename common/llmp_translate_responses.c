/*
 * The OpenAI Responses API through the translation hub.  Chat completions
 * is the pivot: a Responses request is rewritten as a chat.completions
 * body and handed to llmp_translate_request; an answer or a stream is
 * translated by the hub into chat.completions and rewritten here as the
 * Responses object or event sequence.  Reasoning rides along as the chat
 * message's "reasoning_content" and "thinking_blocks" (the names LiteLLM
 * and DeepSeek use), which the hub maps to Anthropic thinking blocks and
 * Gemini thought parts.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmp_translate_int.h"
#include "llmp_translate_responses.h"
#include "llmp_sse.h"


#define RS_MAX_CALLS  1024          /* tool calls in one streamed answer */

/*
 * A reasoning item's encrypted_content is the Anthropic signature of its
 * thinking, tagged: an OpenAI model's own encrypted_content (a session
 * that fell back from one) must not reach Anthropic as a signature
 */
#define RS_SIG_TAG  "anthropic:"


/* -- request ------------------------------------------------------------ */

/* a Responses content part -> a chat content part (NULL: not one) */

static cJSON *
rs_in_part(const cJSON *p, const char *where, int i, char *err,
    size_t errlen)
{
    cJSON       *o, *iu;
    const char  *type, *text, *url;

    type = llmp_tr_str(p, "type");
    if (type == NULL) {
        llmp_tr_err(err, errlen, "%s.content[%d].type: expected a string",
                    where, i);
        return NULL;
    }

    o = cJSON_CreateObject();
    if (o == NULL) {
        llmp_tr_err(err, errlen, "out of memory");
        return NULL;
    }

    if (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0
        || strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0
        || strcmp(type, "summary_text") == 0)
    {
        text = llmp_tr_str(p, strcmp(type, "refusal") == 0 ? "refusal"
                                                           : "text");
        if (text == NULL) {
            llmp_tr_err(err, errlen, "%s.content[%d].text: expected a string",
                        where, i);
            cJSON_Delete(o);
            return NULL;
        }
        llmp_tr_add_str(o, "type", "text");
        llmp_tr_add_str(o, "text", text);
        return o;
    }

    if (strcmp(type, "input_image") == 0) {
        url = llmp_tr_str(p, "image_url");
        if (url == NULL) {
            /* a file_id names an upload at OpenAI: nothing to send */
            llmp_tr_err(err, errlen, "%s.content[%d]: only an image_url (a URL "
                        "or a data: URL) is translated", where, i);
            cJSON_Delete(o);
            return NULL;
        }
        llmp_tr_add_str(o, "type", "image_url");
        iu = cJSON_AddObjectToObject(o, "image_url");
        llmp_tr_add_str(iu, "url", url);
        if (llmp_tr_str(p, "detail") != NULL) {
            llmp_tr_add_str(iu, "detail", llmp_tr_str(p, "detail"));
        }
        return o;
    }

    if (strcmp(type, "input_file") == 0
        && llmp_tr_str(p, "file_data") != NULL)
    {
        /* a data: URL, which the hub reads as a document */
        llmp_tr_add_str(o, "type", "file");
        iu = cJSON_AddObjectToObject(o, "file");
        llmp_tr_add_str(iu, "file_data", llmp_tr_str(p, "file_data"));
        if (llmp_tr_str(p, "filename") != NULL) {
            llmp_tr_add_str(iu, "filename", llmp_tr_str(p, "filename"));
        }
        return o;
    }

    llmp_tr_err(err, errlen, "%s.content[%d]: parts of type \"%s\" are not "
                "translated%s", where, i, type,
           strcmp(type, "input_file") == 0
           ? " (only file_data, a data: URL, is)" : "");
    cJSON_Delete(o);
    return NULL;
}


/* a message's content: a string, or parts; `flat` joins texts to a string */

static cJSON *
rs_in_content(const cJSON *c, const char *where, int flat, char *err,
    size_t errlen)
{
    int           i;
    cJSON        *arr, *p, *it;
    llmp_buf_t    b;
    const char   *t;

    if (cJSON_IsString(c)) {
        return cJSON_CreateString(c->valuestring);
    }

    if (!cJSON_IsArray(c)) {
        llmp_tr_err(err, errlen, "%s.content: expected a string or an array",
                    where);
        return NULL;
    }

    arr = cJSON_CreateArray();
    if (arr == NULL) {
        llmp_tr_err(err, errlen, "out of memory");
        return NULL;
    }

    i = 0;
    cJSON_ArrayForEach(it, c) {
        p = rs_in_part(it, where, i++, err, errlen);
        if (p == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, p);
    }

    if (!flat) {
        return arr;
    }

    /* assistant turns and system text: one string */

    memset(&b, 0, sizeof(llmp_buf_t));
    cJSON_ArrayForEach(it, arr) {
        t = llmp_tr_str(it, "text");
        if (t == NULL) {
            llmp_tr_err(err, errlen, "%s.content: only text is translated here",
                        where);
            llmp_buf_free(&b);
            cJSON_Delete(arr);
            return NULL;
        }
        if (llmp_buf_append(&b, t, strlen(t)) != 0) {
            llmp_buf_free(&b);
            cJSON_Delete(arr);
            llmp_tr_err(err, errlen, "out of memory");
            return NULL;
        }
    }
    cJSON_Delete(arr);

    it = cJSON_CreateString(b.data ? b.data : "");
    llmp_buf_free(&b);
    return it;
}


/* the assistant message the next call or reasoning belongs to */

static cJSON *
rs_in_assistant(cJSON *msgs)
{
    cJSON       *last, *m;
    const char  *role;

    last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    role = llmp_tr_str(last, "role");
    if (last != NULL && role != NULL && strcmp(role, "assistant") == 0) {
        return last;
    }

    m = cJSON_CreateObject();
    if (m == NULL) {
        return NULL;
    }
    llmp_tr_add_str(m, "role", "assistant");
    cJSON_AddNullToObject(m, "content");
    cJSON_AddItemToArray(msgs, m);
    return m;
}


/*
 * A reasoning item given back: its summary text becomes the assistant
 * turn's reasoning_content and, with the signature it was sent out with
 * (encrypted_content), a thinking block that Anthropic accepts back.
 */

static int
rs_in_reasoning(cJSON *msgs, const cJSON *item)
{
    cJSON       *a, *blocks, *b, *s, *rc;
    llmp_buf_t   text;
    const char  *t, *sig;

    memset(&text, 0, sizeof(llmp_buf_t));
    cJSON_ArrayForEach(s, llmp_tr_get(item, "summary", NULL)) {
        t = llmp_tr_str(s, "text");
        if (t != NULL && llmp_buf_append(&text, t, strlen(t)) != 0) {
            llmp_buf_free(&text);
            return -1;
        }
    }
    cJSON_ArrayForEach(s, llmp_tr_get(item, "content", NULL)) {
        t = llmp_tr_str(s, "text");
        if (t != NULL && text.len == 0
            && llmp_buf_append(&text, t, strlen(t)) != 0)
        {
            llmp_buf_free(&text);
            return -1;
        }
    }

    sig = llmp_tr_str(item, "encrypted_content");
    if (sig != NULL && strncmp(sig, RS_SIG_TAG, sizeof(RS_SIG_TAG) - 1) == 0
        && sig[sizeof(RS_SIG_TAG) - 1] != '\0')
    {
        sig += sizeof(RS_SIG_TAG) - 1;
    } else {
        sig = NULL;
    }

    if (text.len == 0 && sig == NULL) {
        llmp_buf_free(&text);
        return 0;
    }

    a = rs_in_assistant(msgs);
    if (a == NULL) {
        llmp_buf_free(&text);
        return -1;
    }

    t = text.data ? text.data : "";

    rc = cJSON_GetObjectItemCaseSensitive(a, "reasoning_content");
    if (rc == NULL) {
        llmp_tr_add_str(a, "reasoning_content", t);
    }

    if (sig != NULL) {
        blocks = cJSON_GetObjectItemCaseSensitive(a, "thinking_blocks");
        if (blocks == NULL) {
            blocks = cJSON_AddArrayToObject(a, "thinking_blocks");
        }
        b = cJSON_CreateObject();
        if (blocks == NULL || b == NULL) {
            cJSON_Delete(b);
            llmp_buf_free(&text);
            return -1;
        }
        llmp_tr_add_str(b, "type", "thinking");
        llmp_tr_add_str(b, "thinking", t);
        llmp_tr_add_str(b, "signature", sig);
        cJSON_AddItemToArray(blocks, b);
    }

    llmp_buf_free(&text);
    return 0;
}


/* a message item: developer is system; an assistant message after its
 * own reasoning item fills that turn's content */
static int
rs_in_message(cJSON *msgs, const cJSON *item, const char *where, char *err,
    size_t errlen)
{
    cJSON       *m, *c;
    const char  *role;

    role = llmp_tr_str(item, "role");
    if (role == NULL) {
        llmp_tr_err(err, errlen, "%s.role: expected a string", where);
        return -1;
    }
    if (strcmp(role, "developer") == 0) {
        role = "system";
    }
    if (strcmp(role, "user") != 0 && strcmp(role, "system") != 0
        && strcmp(role, "assistant") != 0)
    {
        llmp_tr_err(err, errlen, "%s.role: \"%s\" is not user, assistant, "
                    "system or developer", where, role);
        return -1;
    }

    c = rs_in_content(llmp_tr_get(item, "content", NULL), where,
                      strcmp(role, "user") != 0, err, errlen);
    if (c == NULL) {
        return -1;
    }

    if (strcmp(role, "assistant") == 0) {
        /* after its own reasoning item: the same turn */
        m = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        if (m != NULL
            && strcmp(llmp_tr_str(m, "role") ? llmp_tr_str(m, "role") : "",
                      "assistant") == 0
            && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m, "content"))
            && cJSON_GetObjectItemCaseSensitive(m, "tool_calls") == NULL)
        {
            cJSON_ReplaceItemInObjectCaseSensitive(m, "content", c);
            return 0;
        }
    }

    m = cJSON_CreateObject();
    if (m == NULL) {
        cJSON_Delete(c);
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }
    llmp_tr_add_str(m, "role", role);
    cJSON_AddItemToObject(m, "content", c);
    cJSON_AddItemToArray(msgs, m);
    return 0;
}


/* a function_call or custom_tool_call item: a tool call of the assistant
 * turn at the end of msgs */
static int
rs_in_call(cJSON *msgs, const cJSON *item, const char *type,
    const char *where, char *err, size_t errlen)
{
    char   *args;
    cJSON  *m, *calls, *tc, *f;

    args = NULL;
    if (type[0] == 'c' && llmp_tr_str(item, "input") != NULL) {
        /* a custom (freeform) tool is a function of one string */
        f = cJSON_CreateObject();
        llmp_tr_add_str(f, "input", llmp_tr_str(item, "input"));
        args = cJSON_PrintUnformatted(f);
        cJSON_Delete(f);
        if (args == NULL) {
            goto oom;
        }
    }
    if (llmp_tr_str(item, "call_id") == NULL
        || llmp_tr_str(item, "name") == NULL
        || (args == NULL && llmp_tr_str(item, "arguments") == NULL))
    {
        llmp_tr_err(err, errlen, "%s: a %s needs call_id, name and %s "
                    "(strings)", where, type,
               type[0] == 'c' ? "input" : "arguments");
        return -1;
    }

    m = rs_in_assistant(msgs);
    if (m != NULL) {
        calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (calls == NULL) {
            calls = cJSON_AddArrayToObject(m, "tool_calls");
        }
    }
    tc = cJSON_CreateObject();
    if (m == NULL || calls == NULL || tc == NULL) {
        cJSON_Delete(tc);
        free(args);
        goto oom;
    }
    llmp_tr_add_str(tc, "id", llmp_tr_str(item, "call_id"));
    llmp_tr_add_str(tc, "type", "function");
    f = cJSON_AddObjectToObject(tc, "function");
    llmp_tr_add_str(f, "name", llmp_tr_str(item, "name"));
    llmp_tr_add_str(f, "arguments",
                    args ? args : llmp_tr_str(item, "arguments"));
    free(args);
    cJSON_AddItemToArray(calls, tc);
    return 0;

oom:

    llmp_tr_err(err, errlen, "out of memory");
    return -1;
}


/* a function_call_output or custom_tool_call_output item: a tool message */
static int
rs_in_call_output(cJSON *msgs, const cJSON *item, const char *where,
    char *err, size_t errlen)
{
    cJSON        *m, *c;
    const char   *s;
    const cJSON  *out;

    s = llmp_tr_str(item, "call_id");
    out = llmp_tr_get(item, "output", NULL);
    if (s == NULL || out == NULL) {
        llmp_tr_err(err, errlen, "%s: a function_call_output needs call_id "
                    "and output", where);
        return -1;
    }
    c = rs_in_content(out, where, 0, err, errlen);
    if (c == NULL) {
        return -1;
    }
    m = cJSON_CreateObject();
    if (m == NULL) {
        cJSON_Delete(c);
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }
    llmp_tr_add_str(m, "role", "tool");
    llmp_tr_add_str(m, "tool_call_id", s);
    cJSON_AddItemToObject(m, "content", c);
    cJSON_AddItemToArray(msgs, m);
    return 0;
}


static int
rs_in_item(cJSON *msgs, const cJSON *item, int i, char *err, size_t errlen)
{
    char         where[32];
    const char  *type;

    snprintf(where, sizeof(where), "input[%d]", i);

    if (!cJSON_IsObject(item)) {
        llmp_tr_err(err, errlen, "%s: expected an object", where);
        return -1;
    }

    type = llmp_tr_str(item, "type");
    if (type == NULL) {
        type = "message";
    }

    if (strcmp(type, "message") == 0) {
        return rs_in_message(msgs, item, where, err, errlen);
    }

    if (strcmp(type, "function_call") == 0
        || strcmp(type, "custom_tool_call") == 0)
    {
        return rs_in_call(msgs, item, type, where, err, errlen);
    }

    if (strcmp(type, "function_call_output") == 0
        || strcmp(type, "custom_tool_call_output") == 0)
    {
        return rs_in_call_output(msgs, item, where, err, errlen);
    }

    if (strcmp(type, "reasoning") == 0) {
        if (rs_in_reasoning(msgs, item) != 0) {
            llmp_tr_err(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }

    llmp_tr_err(err, errlen, "%s: items of type \"%s\" are not translated",
                where, type);
    return -1;
}


static int
rs_in_tools(cJSON *chat, const cJSON *tools, char *err, size_t errlen)
{
    cJSON       *arr, *t, *o, *f, *v;
    const char  *type;

    if (tools == NULL || cJSON_IsNull(tools)) {
        return 0;
    }
    if (!cJSON_IsArray(tools)) {
        llmp_tr_err(err, errlen, "tools: expected an array");
        return -1;
    }

    arr = NULL;

    cJSON_ArrayForEach(t, tools) {
        type = llmp_tr_str(t, "type");

        /* hosted tools (web_search, file_search...) run at OpenAI only */

        if (type == NULL || (strcmp(type, "function") != 0
                             && strcmp(type, "custom") != 0))
        {
            continue;
        }
        if (llmp_tr_str(t, "name") == NULL) {
            llmp_tr_err(err, errlen, "tools: a function needs a name");
            return -1;
        }
        if (arr == NULL) {
            arr = cJSON_AddArrayToObject(chat, "tools");
        }
        o = cJSON_CreateObject();
        if (arr == NULL || o == NULL) {
            cJSON_Delete(o);
            llmp_tr_err(err, errlen, "out of memory");
            return -1;
        }
        llmp_tr_add_str(o, "type", "function");
        f = cJSON_AddObjectToObject(o, "function");
        llmp_tr_add_str(f, "name", llmp_tr_str(t, "name"));
        if (llmp_tr_str(t, "description") != NULL) {
            llmp_tr_add_str(f, "description", llmp_tr_str(t, "description"));
        }
        v = llmp_tr_get(t, "parameters", NULL);
        if (type[0] == 'c') {
            /*
             * a custom (freeform) tool, such as Codex's apply_patch: one
             * string, "input", which Codex's handlers take as a function's
             * arguments too
             */
            v = cJSON_AddObjectToObject(f, "parameters");
            llmp_tr_add_str(v, "type", "object");
            v = cJSON_AddObjectToObject(cJSON_AddObjectToObject(v,
                                                                "properties"),
                                        "input");
            llmp_tr_add_str(v, "type", "string");
            v = cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(f,
                                                                "parameters"),
                                       "required");
            cJSON_AddItemToArray(v, cJSON_CreateString("input"));

        } else if (cJSON_IsObject(v)) {
            cJSON_AddItemToObject(f, "parameters", cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToArray(arr, o);
    }

    return 0;
}


static int
rs_in_tool_choice(cJSON *chat, const cJSON *tc)
{
    cJSON       *o, *f;
    const char  *type;

    if (tc == NULL || cJSON_IsNull(tc)) {
        return 0;
    }

    if (cJSON_IsString(tc)) {
        llmp_tr_add_str(chat, "tool_choice", tc->valuestring);
        return 0;
    }

    type = llmp_tr_str(tc, "type");
    if (type != NULL && strcmp(type, "function") == 0
        && llmp_tr_str(tc, "name") != NULL)
    {
        o = cJSON_AddObjectToObject(chat, "tool_choice");
        llmp_tr_add_str(o, "type", "function");
        f = cJSON_AddObjectToObject(o, "function");
        llmp_tr_add_str(f, "name", llmp_tr_str(tc, "name"));
        return 0;
    }

    /* allowed_tools, hosted tools: the model chooses */

    llmp_tr_add_str(chat, "tool_choice", "auto");
    return 0;
}


/* text.format -> response_format */

static void
rs_in_format(cJSON *chat, const cJSON *text)
{
    cJSON       *fmt, *rf, *js, *v;
    const char  *type;

    fmt = llmp_tr_get(text, "format", NULL);
    type = llmp_tr_str(fmt, "type");
    if (type == NULL || strcmp(type, "text") == 0) {
        return;
    }

    rf = cJSON_AddObjectToObject(chat, "response_format");
    if (strcmp(type, "json_schema") != 0) {
        llmp_tr_add_str(rf, "type", "json_object");
        return;
    }

    llmp_tr_add_str(rf, "type", "json_schema");
    js = cJSON_AddObjectToObject(rf, "json_schema");
    llmp_tr_add_str(js, "name", llmp_tr_str(fmt, "name")
                                ? llmp_tr_str(fmt, "name") : "response");
    v = llmp_tr_get(fmt, "schema", NULL);
    if (v != NULL) {
        cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(v, 1));
    }
    v = llmp_tr_get(fmt, "strict", NULL);
    if (cJSON_IsBool(v)) {
        cJSON_AddBoolToObject(js, "strict", cJSON_IsTrue(v));
    }
}


static const char *rs_numbers[] = { "temperature", "top_p", "top_logprobs",
                                    NULL };


/* "instructions" as a system message, then "input": a string is one user
 * message, an array a list of items */
static int
rs_in_messages(cJSON *msgs, const cJSON *root, char *err, size_t errlen)
{
    int           i;
    cJSON        *m;
    const cJSON  *in, *it, *v;

    v = llmp_tr_get(root, "instructions", NULL);
    if (cJSON_IsString(v) && v->valuestring[0]) {
        m = cJSON_CreateObject();
        if (m == NULL) {
            goto oom;
        }
        llmp_tr_add_str(m, "role", "system");
        llmp_tr_add_str(m, "content", v->valuestring);
        cJSON_AddItemToArray(msgs, m);
    }

    in = llmp_tr_get(root, "input", NULL);

    if (cJSON_IsString(in)) {
        m = cJSON_CreateObject();
        if (m == NULL) {
            goto oom;
        }
        llmp_tr_add_str(m, "role", "user");
        llmp_tr_add_str(m, "content", in->valuestring);
        cJSON_AddItemToArray(msgs, m);
        return 0;
    }

    if (!cJSON_IsArray(in)) {
        llmp_tr_err(err, errlen, "input: expected a string or an array");
        return -1;
    }

    i = 0;
    cJSON_ArrayForEach(it, in) {
        if (rs_in_item(msgs, it, i++, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;

oom:

    llmp_tr_err(err, errlen, "out of memory");
    return -1;
}


/* limits, sampling, user, reasoning effort, output format and stream */
static void
rs_in_params(cJSON *chat, const cJSON *root, int stream)
{
    const cJSON  *v;
    const char  **k;

    v = llmp_tr_get(root, "max_output_tokens", NULL);
    if (cJSON_IsNumber(v)) {
        llmp_tr_add_num(chat, "max_tokens", v->valuedouble);
    }

    for (k = rs_numbers; *k; k++) {
        v = llmp_tr_get(root, *k, NULL);
        if (cJSON_IsNumber(v)) {
            llmp_tr_add_num(chat, *k, v->valuedouble);
        }
    }

    v = llmp_tr_get(root, "user", NULL);
    if (cJSON_IsString(v)) {
        llmp_tr_add_str(chat, "user", v->valuestring);
    }

    v = llmp_tr_get(llmp_tr_get(root, "reasoning", NULL), "effort", NULL);
    if (cJSON_IsString(v)) {
        llmp_tr_add_str(chat, "reasoning_effort", v->valuestring);
    }

    rs_in_format(chat, llmp_tr_get(root, "text", NULL));

    if (stream) {
        cJSON_AddBoolToObject(chat, "stream", 1);
    }
}


int
llmp_responses_request(int to, const char *body, size_t len,
    const char *model, int stream, llmp_buf_t *out, char *err,
    size_t errlen)
{
    int          rc;
    cJSON       *root, *chat, *msgs, *v;
    llmp_buf_t   cb;

    root = llmp_tr_parse(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        llmp_tr_err(err, errlen, "the request body is not a JSON object");
        return -1;
    }

    v = llmp_tr_get(root, "previous_response_id", NULL);
    if (v != NULL && !cJSON_IsNull(v)) {
        /* the conversation is stored at OpenAI, not here */
        cJSON_Delete(root);
        llmp_tr_err(err, errlen, "previous_response_id: this model's provider "
                    "keeps no conversations; send the whole input");
        return -1;
    }

    chat = cJSON_CreateObject();
    msgs = cJSON_AddArrayToObject(chat, "messages");
    if (chat == NULL || msgs == NULL) {
        goto oom;
    }

    if (model != NULL) {
        llmp_tr_add_str(chat, "model", model);
    }

    if (rs_in_messages(msgs, root, err, errlen) != 0) {
        goto failed;
    }

    if (rs_in_tools(chat, llmp_tr_get(root, "tools", NULL), err, errlen) != 0) {
        goto failed;
    }

    if (cJSON_GetObjectItemCaseSensitive(chat, "tools") != NULL) {
        rs_in_tool_choice(chat, llmp_tr_get(root, "tool_choice", NULL));
        v = llmp_tr_get(root, "parallel_tool_calls", NULL);
        if (cJSON_IsBool(v)) {
            cJSON_AddBoolToObject(chat, "parallel_tool_calls",
                                  cJSON_IsTrue(v));
        }
    }

    rs_in_params(chat, root, stream);

    memset(&cb, 0, sizeof(llmp_buf_t));
    if (llmp_tr_print(chat, &cb) != 0) {
        goto oom;
    }
    cJSON_Delete(chat);
    cJSON_Delete(root);

    rc = llmp_translate_request(LLMP_IFACE_OPENAI, to, cb.data, cb.len,
                                model, stream, out, err, errlen);
    llmp_buf_free(&cb);
    return rc;

oom:

    llmp_tr_err(err, errlen, "out of memory");

failed:

    cJSON_Delete(chat);
    cJSON_Delete(root);
    return -1;
}


/* -- the response object --------------------------------------------------- */

static cJSON *
rs_usage(long long in, long long outp, long long cached, long long reasoning)
{
    cJSON  *u, *d;

    u = cJSON_CreateObject();
    if (u == NULL) {
        return NULL;
    }
    in = in > 0 ? in : 0;
    outp = outp > 0 ? outp : 0;
    llmp_tr_add_num(u, "input_tokens", (double) in);
    d = cJSON_AddObjectToObject(u, "input_tokens_details");
    llmp_tr_add_num(d, "cached_tokens", (double) (cached > 0 ? cached : 0));
    llmp_tr_add_num(u, "output_tokens", (double) outp);
    d = cJSON_AddObjectToObject(u, "output_tokens_details");
    llmp_tr_add_num(d, "reasoning_tokens",
                    (double) (reasoning > 0 ? reasoning : 0));
    llmp_tr_add_num(u, "total_tokens", (double) (in + outp));
    return u;
}


/*
 * The response object; takes output (an array) and usage (or NULL).
 * `finish` is the chat finish_reason: "length" makes it incomplete.
 */

static cJSON *
rs_object(const char *id, long long created, const char *model,
    const char *status, const char *finish, cJSON *output, cJSON *usage)
{
    cJSON  *o, *d;

    o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(output);
        cJSON_Delete(usage);
        return NULL;
    }

    if (status == NULL) {
        status = (finish != NULL && strcmp(finish, "length") == 0)
                 ? "incomplete" : "completed";
    }

    llmp_tr_add_str(o, "id", id);
    llmp_tr_add_str(o, "object", "response");
    llmp_tr_add_num(o, "created_at", (double) created);
    llmp_tr_add_str(o, "status", status);
    cJSON_AddNullToObject(o, "error");
    if (strcmp(status, "incomplete") == 0) {
        d = cJSON_AddObjectToObject(o, "incomplete_details");
        llmp_tr_add_str(d, "reason", (finish != NULL
                                 && strcmp(finish, "content_filter") == 0)
                                ? "content_filter" : "max_output_tokens");
    } else {
        cJSON_AddNullToObject(o, "incomplete_details");
    }
    cJSON_AddNullToObject(o, "instructions");
    cJSON_AddNullToObject(o, "max_output_tokens");
    llmp_tr_add_str(o, "model", model ? model : "");
    cJSON_AddItemToObject(o, "output", output ? output
                                              : cJSON_CreateArray());
    cJSON_AddBoolToObject(o, "parallel_tool_calls", 1);
    cJSON_AddNullToObject(o, "previous_response_id");
    d = cJSON_AddObjectToObject(o, "reasoning");
    cJSON_AddNullToObject(d, "effort");
    cJSON_AddNullToObject(d, "summary");
    cJSON_AddBoolToObject(o, "store", 0);
    cJSON_AddNullToObject(o, "temperature");
    d = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "text"), "format");
    llmp_tr_add_str(d, "type", "text");
    llmp_tr_add_str(o, "tool_choice", "auto");
    cJSON_AddArrayToObject(o, "tools");
    cJSON_AddNullToObject(o, "top_p");
    llmp_tr_add_str(o, "truncation", "disabled");
    if (usage != NULL) {
        cJSON_AddItemToObject(o, "usage", usage);
    } else {
        cJSON_AddNullToObject(o, "usage");
    }
    cJSON_AddObjectToObject(o, "metadata");

    return o;
}


static cJSON *
rs_message_item(const char *id, const char *status, const char *text)
{
    cJSON  *it, *c, *p;

    it = cJSON_CreateObject();
    if (it == NULL) {
        return NULL;
    }
    llmp_tr_add_str(it, "id", id);
    llmp_tr_add_str(it, "type", "message");
    llmp_tr_add_str(it, "status", status);
    llmp_tr_add_str(it, "role", "assistant");
    c = cJSON_AddArrayToObject(it, "content");
    if (text != NULL) {
        p = cJSON_CreateObject();
        llmp_tr_add_str(p, "type", "output_text");
        llmp_tr_add_str(p, "text", text);
        cJSON_AddArrayToObject(p, "annotations");
        cJSON_AddItemToArray(c, p);
    }
    return it;
}


static cJSON *
rs_text_part(const char *text)
{
    cJSON  *p;

    p = cJSON_CreateObject();
    if (p == NULL) {
        return NULL;
    }
    llmp_tr_add_str(p, "type", "output_text");
    llmp_tr_add_str(p, "text", text);
    cJSON_AddArrayToObject(p, "annotations");
    return p;
}


/*
 * A tool call output item: a function tool's ("function_call", its JSON
 * "arguments") or a custom tool's ("custom_tool_call", its free-form
 * "input"); the members are the same up to that last one.
 */

static cJSON *
rs_tool_item(int custom, const char *id, const char *status,
    const char *call_id, const char *name, const char *value)
{
    cJSON  *it;

    it = cJSON_CreateObject();
    if (it == NULL) {
        return NULL;
    }
    llmp_tr_add_str(it, "id", id);
    llmp_tr_add_str(it, "type", custom ? "custom_tool_call"
                                       : "function_call");
    llmp_tr_add_str(it, "status", status);
    llmp_tr_add_str(it, "call_id", call_id ? call_id : id);
    llmp_tr_add_str(it, "name", name ? name : "");
    llmp_tr_add_str(it, custom ? "input" : "arguments", value ? value : "");
    return it;
}


/* text may be NULL (no summary part yet); sig: Anthropic's signature */

static cJSON *
rs_reasoning_item(const char *id, const char *text, const char *sig)
{
    char   *b;
    cJSON  *it, *s, *p;

    it = cJSON_CreateObject();
    if (it == NULL) {
        return NULL;
    }
    llmp_tr_add_str(it, "id", id);
    llmp_tr_add_str(it, "type", "reasoning");
    s = cJSON_AddArrayToObject(it, "summary");
    if (text != NULL) {
        p = cJSON_CreateObject();
        llmp_tr_add_str(p, "type", "summary_text");
        llmp_tr_add_str(p, "text", text);
        cJSON_AddItemToArray(s, p);
    }
    if (sig != NULL) {
        b = malloc(sizeof(RS_SIG_TAG) + strlen(sig));
        if (b == NULL) {
            cJSON_Delete(it);
            return NULL;
        }
        memcpy(b, RS_SIG_TAG, sizeof(RS_SIG_TAG) - 1);
        strcpy(b + sizeof(RS_SIG_TAG) - 1, sig);
        llmp_tr_add_str(it, "encrypted_content", b);
        free(b);
    }
    return it;
}


/* the custom (freeform) tools of a Responses request, by name */

typedef struct {
    char  **v;
    int     n;
} rs_names_t;


static void
rs_names_free(rs_names_t *names)
{
    int  i;

    for (i = 0; i < names->n; i++) {
        free(names->v[i]);
    }
    free(names->v);
    names->v = NULL;
    names->n = 0;
}


static int
rs_names_read(rs_names_t *names, const char *req, size_t len)
{
    char        **v;
    cJSON        *root, *t;
    const char   *type, *name;

    memset(names, 0, sizeof(rs_names_t));
    if (req == NULL || len == 0) {
        return 0;
    }

    root = llmp_tr_parse(req, len);

    cJSON_ArrayForEach(t, llmp_tr_get(root, "tools", NULL)) {
        type = llmp_tr_str(t, "type");
        name = llmp_tr_str(t, "name");
        if (type == NULL || strcmp(type, "custom") != 0 || name == NULL) {
            continue;
        }
        v = realloc(names->v, (names->n + 1) * sizeof(char *));
        if (v == NULL) {
            break;
        }
        names->v = v;
        v[names->n] = llmp_tr_strndup_heap(name, strlen(name));
        if (v[names->n] == NULL) {
            break;
        }
        names->n++;
    }

    cJSON_Delete(root);
    return 0;
}


static int
rs_is_custom(const rs_names_t *names, const char *name)
{
    int  i;

    for (i = 0; name != NULL && i < names->n; i++) {
        if (strcmp(names->v[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}


/* a custom tool's input: the "input" of the function's arguments */

static char *
rs_custom_input(const char *args)
{
    cJSON       *o;
    char        *s;
    const char  *in;

    o = llmp_tr_json_object(args ? args : "");
    in = llmp_tr_str(o, "input");
    if (in == NULL) {
        in = args ? args : "";
    }
    s = llmp_tr_strndup_heap(in, strlen(in));
    cJSON_Delete(o);
    return s;
}


static void
rs_chat_usage(const cJSON *u, long long *in, long long *outp,
    long long *cached, long long *reasoning)
{
    if (!cJSON_IsObject(u)) {
        return;
    }
    *in = llmp_tr_int(u, "prompt_tokens");
    *outp = llmp_tr_int(u, "completion_tokens");
    *cached = llmp_tr_int(llmp_tr_get(u, "prompt_tokens_details", NULL),
                          "cached_tokens");
    *reasoning = llmp_tr_int(llmp_tr_get(u, "completion_tokens_details", NULL),
                             "reasoning_tokens");
}


/* the output's reasoning item (it came first), then its message item */
static void
rs_out_text(cJSON *output, const cJSON *msg, const char *nonce)
{
    char          id[64];
    const char   *text, *sig;
    const cJSON  *b;

    text = llmp_tr_str(msg, "reasoning_content");
    sig = NULL;
    cJSON_ArrayForEach(b, llmp_tr_get(msg, "thinking_blocks", NULL)) {
        if (llmp_tr_str(b, "signature") != NULL) {
            sig = llmp_tr_str(b, "signature");
        }
    }
    if ((text != NULL && text[0]) || sig != NULL) {
        snprintf(id, sizeof(id), "rs_%s", nonce);
        cJSON_AddItemToArray(output, rs_reasoning_item(id, text ? text : "",
                                                       sig));
    }

    text = llmp_tr_str(msg, "content");
    if (text != NULL && text[0]) {
        snprintf(id, sizeof(id), "msg_%s", nonce);
        cJSON_AddItemToArray(output, rs_message_item(id, "completed", text));
    }
}


/* the output's tool call items: a call of a tool the request declared as
 * custom is a custom_tool_call */
static void
rs_out_calls(cJSON *output, const cJSON *msg, const char *nonce,
    const char *req, size_t req_len)
{
    int           n;
    char          id[64], *input;
    cJSON        *it;
    rs_names_t    custom;
    const cJSON  *tc, *f;

    rs_names_read(&custom, req, req_len);

    n = 0;
    cJSON_ArrayForEach(tc, llmp_tr_get(msg, "tool_calls", NULL)) {
        f = llmp_tr_get(tc, "function", NULL);
        if (rs_is_custom(&custom, llmp_tr_str(f, "name"))) {
            snprintf(id, sizeof(id), "ctc_%s_%d", nonce, n++);
            input = rs_custom_input(llmp_tr_str(f, "arguments"));
            it = input ? rs_tool_item(1, id, "completed",
                                      llmp_tr_str(tc, "id"),
                                      llmp_tr_str(f, "name"), input)
                       : NULL;
            free(input);
        } else {
            snprintf(id, sizeof(id), "fc_%s_%d", nonce, n++);
            it = rs_tool_item(0, id, "completed", llmp_tr_str(tc, "id"),
                              llmp_tr_str(f, "name"),
                              llmp_tr_str(f, "arguments"));
        }
        cJSON_AddItemToArray(output, it);
    }

    rs_names_free(&custom);
}


int
llmp_responses_response(int from, const char *req, size_t req_len,
    const char *body, size_t len, const char *model, llmp_buf_t *out,
    llmp_usage_t *usage, char *err, size_t errlen)
{
    int           rc;
    char          id[64], nonce[LLMP_TR_NONCE_LEN + 1];
    cJSON        *chat, *ch, *msg, *output, *o, *u;
    llmp_buf_t    cb;
    long long     in, outp, cached, reasoning;
    const char   *finish;

    memset(&cb, 0, sizeof(llmp_buf_t));

    rc = llmp_translate_response(from, LLMP_IFACE_OPENAI, body, len, model,
                                 &cb, usage, err, errlen);
    if (rc != 0) {
        llmp_buf_free(&cb);
        return rc;
    }

    chat = llmp_tr_parse(cb.data, cb.len);
    llmp_buf_free(&cb);
    if (chat == NULL) {
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }

    llmp_tr_nonce(nonce, LLMP_TR_NONCE_LEN);
    output = cJSON_CreateArray();
    if (output == NULL) {
        cJSON_Delete(chat);
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }

    ch = cJSON_GetArrayItem(llmp_tr_get(chat, "choices", NULL), 0);
    msg = llmp_tr_get(ch, "message", NULL);
    finish = llmp_tr_str(ch, "finish_reason");

    rs_out_text(output, msg, nonce);
    rs_out_calls(output, msg, nonce, req, req_len);

    in = outp = cached = reasoning = -1;
    rs_chat_usage(llmp_tr_get(chat, "usage", NULL), &in, &outp, &cached,
                  &reasoning);
    u = rs_usage(in, outp, cached, reasoning);

    snprintf(id, sizeof(id), "resp_%s", nonce);
    o = rs_object(id, (long long) time(NULL), model, NULL, finish, output,
                  u);
    cJSON_Delete(chat);

    if (o == NULL || llmp_tr_print(o, out) != 0) {
        cJSON_Delete(o);
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }

    cJSON_Delete(o);
    return 0;
}


/* -- the stream ------------------------------------------------------------ */

enum {
    RS_NONE = 0,
    RS_MESSAGE,
    RS_REASONING
};

typedef struct {
    int          oi;            /* output_index */
    int          index;         /* the chat chunk's index of the call */
    int          custom;        /* of a custom tool: its input at the end */
    char         id[64];
    char        *call_id;
    char        *name;
    llmp_buf_t   args;
    int          open;
} rs_call_t;

struct llmp_rstream_s {
    llmp_stream_t  *chat;       /* the provider's stream -> chat chunks */
    llmp_sse_t      sse;        /* splits those chunks */
    llmp_buf_t      cbuf;
    llmp_buf_t     *out;        /* where this feed writes */
    char           *model;
    long long       created;
    char            nonce[LLMP_TR_NONCE_LEN + 1];
    long long       seq;        /* sequence_number */
    int             started, ended, errored;
    cJSON          *output;     /* the items done, for response.completed */
    int             next_oi;
    int             cur;        /* the open text item: RS_MESSAGE... */
    int             cur_oi;
    char            cur_id[64];
    llmp_buf_t      text;       /* its text */
    char           *sig;        /* the open reasoning's signature */
    int             nitems;     /* ids */
    rs_call_t      *calls;
    int             ncalls;
    rs_names_t      custom;
    char           *finish;
    long long       in, outp, cached, reasoning;
};


static int
rs_emit(llmp_rstream_t *s, const char *type, cJSON *o)
{
    int          rc;
    llmp_buf_t   b;

    if (o == NULL) {
        return -1;
    }

    llmp_tr_add_str(o, "type", type);
    llmp_tr_add_num(o, "sequence_number", (double) s->seq++);

    /* "type" first reads better, but any order is valid JSON */

    memset(&b, 0, sizeof(llmp_buf_t));
    rc = llmp_tr_print(o, &b);
    cJSON_Delete(o);
    if (rc != 0) {
        llmp_buf_free(&b);
        return -1;
    }

    rc = llmp_buf_append(s->out, "event: ", 7)
         | llmp_buf_append(s->out, type, strlen(type))
         | llmp_buf_append(s->out, "\ndata: ", 7)
         | llmp_buf_append(s->out, b.data, b.len)
         | llmp_buf_append(s->out, "\n\n", 2);
    llmp_buf_free(&b);
    return rc ? -1 : 0;
}


static cJSON *
rs_ev(void)
{
    return cJSON_CreateObject();
}


static cJSON *
rs_snapshot(llmp_rstream_t *s, const char *status)
{
    char    id[64];
    cJSON  *out, *u;

    snprintf(id, sizeof(id), "resp_%s", s->nonce);

    out = NULL;
    u = NULL;
    if (status == NULL || strcmp(status, "in_progress") != 0) {
        out = cJSON_Duplicate(s->output, 1);
        u = rs_usage(s->in, s->outp, s->cached, s->reasoning);
    }

    return rs_object(id, s->created, s->model, status, s->finish, out, u);
}


static int
rs_start(llmp_rstream_t *s)
{
    cJSON  *e;

    if (s->started) {
        return 0;
    }
    s->started = 1;

    e = rs_ev();
    if (e == NULL) {
        return -1;
    }
    cJSON_AddItemToObject(e, "response", rs_snapshot(s, "in_progress"));
    if (rs_emit(s, "response.created", e) != 0) {
        return -1;
    }

    e = rs_ev();
    if (e == NULL) {
        return -1;
    }
    cJSON_AddItemToObject(e, "response", rs_snapshot(s, "in_progress"));
    return rs_emit(s, "response.in_progress", e);
}


static int
rs_item_added(llmp_rstream_t *s, int oi, cJSON *item)
{
    cJSON  *e;

    e = rs_ev();
    if (e == NULL || item == NULL) {
        cJSON_Delete(e);
        cJSON_Delete(item);
        return -1;
    }
    llmp_tr_add_num(e, "output_index", oi);
    cJSON_AddItemToObject(e, "item", item);
    return rs_emit(s, "response.output_item.added", e);
}


static int
rs_item_done(llmp_rstream_t *s, int oi, cJSON *item)
{
    cJSON  *e;

    e = rs_ev();
    if (e == NULL || item == NULL) {
        cJSON_Delete(e);
        cJSON_Delete(item);
        return -1;
    }
    llmp_tr_add_num(e, "output_index", oi);
    cJSON_AddItemToArray(s->output, cJSON_Duplicate(item, 1));
    cJSON_AddItemToObject(e, "item", item);
    return rs_emit(s, "response.output_item.done", e);
}


static cJSON *
rs_item_ev(llmp_rstream_t *s, int idx_key, int idx)
{
    cJSON  *e;

    e = rs_ev();
    if (e == NULL) {
        return NULL;
    }
    llmp_tr_add_str(e, "item_id", s->cur_id);
    llmp_tr_add_num(e, "output_index", s->cur_oi);
    llmp_tr_add_num(e, idx_key ? "summary_index" : "content_index", idx);
    return e;
}


/* ends the open message or reasoning item */

static int
rs_close_text(llmp_rstream_t *s)
{
    cJSON       *e, *p;
    const char  *text;

    if (s->cur == RS_NONE) {
        return 0;
    }

    text = s->text.data ? s->text.data : "";

    if (s->cur == RS_MESSAGE) {
        e = rs_item_ev(s, 0, 0);
        if (e == NULL) {
            return -1;
        }
        llmp_tr_add_str(e, "text", text);
        cJSON_AddArrayToObject(e, "logprobs");
        if (rs_emit(s, "response.output_text.done", e) != 0) {
            return -1;
        }
        e = rs_item_ev(s, 0, 0);
        if (e == NULL) {
            return -1;
        }
        cJSON_AddItemToObject(e, "part", rs_text_part(text));
        if (rs_emit(s, "response.content_part.done", e) != 0) {
            return -1;
        }
        if (rs_item_done(s, s->cur_oi, rs_message_item(s->cur_id,
                                                       "completed", text))
            != 0)
        {
            return -1;
        }

    } else {
        if (s->text.len) {
            e = rs_item_ev(s, 1, 0);
            if (e == NULL) {
                return -1;
            }
            llmp_tr_add_str(e, "text", text);
            if (rs_emit(s, "response.reasoning_summary_text.done", e) != 0) {
                return -1;
            }
            e = rs_item_ev(s, 1, 0);
            if (e == NULL) {
                return -1;
            }
            p = cJSON_AddObjectToObject(e, "part");
            llmp_tr_add_str(p, "type", "summary_text");
            llmp_tr_add_str(p, "text", text);
            if (rs_emit(s, "response.reasoning_summary_part.done", e) != 0) {
                return -1;
            }
        }
        if (rs_item_done(s, s->cur_oi,
                         rs_reasoning_item(s->cur_id,
                                           s->text.len ? text : NULL,
                                           s->sig))
            != 0)
        {
            return -1;
        }
        free(s->sig);
        s->sig = NULL;
    }

    s->cur = RS_NONE;
    s->text.len = 0;
    return 0;
}


static int
rs_open_text(llmp_rstream_t *s, int kind)
{
    cJSON  *e;

    if (s->cur == kind) {
        return 0;
    }
    if (rs_close_text(s) != 0) {
        return -1;
    }

    s->cur = kind;
    s->cur_oi = s->next_oi++;
    s->text.len = 0;
    snprintf(s->cur_id, sizeof(s->cur_id), "%s_%s_%d",
             kind == RS_MESSAGE ? "msg" : "rs", s->nonce, s->nitems++);

    if (kind == RS_REASONING) {
        return rs_item_added(s, s->cur_oi,
                             rs_reasoning_item(s->cur_id, NULL, NULL));
    }

    if (rs_item_added(s, s->cur_oi,
                      rs_message_item(s->cur_id, "in_progress", NULL))
        != 0)
    {
        return -1;
    }
    e = rs_item_ev(s, 0, 0);
    if (e == NULL) {
        return -1;
    }
    cJSON_AddItemToObject(e, "part", rs_text_part(""));
    return rs_emit(s, "response.content_part.added", e);
}


static int
rs_text_delta(llmp_rstream_t *s, int kind, const char *d)
{
    cJSON  *e, *p;
    int     first;

    if (d == NULL || d[0] == '\0') {
        return 0;
    }
    if (rs_open_text(s, kind) != 0) {
        return -1;
    }

    first = (s->text.len == 0);
    if (llmp_buf_append(&s->text, d, strlen(d) + 1) != 0) {
        return -1;
    }
    s->text.len--;                    /* kept NUL-terminated */

    if (kind == RS_MESSAGE) {
        e = rs_item_ev(s, 0, 0);
        if (e == NULL) {
            return -1;
        }
        llmp_tr_add_str(e, "delta", d);
        cJSON_AddArrayToObject(e, "logprobs");
        return rs_emit(s, "response.output_text.delta", e);
    }

    if (first) {
        e = rs_item_ev(s, 1, 0);
        if (e == NULL) {
            return -1;
        }
        p = cJSON_AddObjectToObject(e, "part");
        llmp_tr_add_str(p, "type", "summary_text");
        llmp_tr_add_str(p, "text", "");
        if (rs_emit(s, "response.reasoning_summary_part.added", e) != 0) {
            return -1;
        }
    }

    e = rs_item_ev(s, 1, 0);
    if (e == NULL) {
        return -1;
    }
    llmp_tr_add_str(e, "delta", d);
    return rs_emit(s, "response.reasoning_summary_text.delta", e);
}


static int
rs_close_call(llmp_rstream_t *s, rs_call_t *c)
{
    char        *input;
    cJSON       *e;
    const char  *args;

    if (!c->open) {
        return 0;
    }
    c->open = 0;

    if (llmp_buf_append(&c->args, "", 1) != 0) {
        return -1;
    }
    c->args.len--;
    args = c->args.data;

    if (c->custom) {
        input = rs_custom_input(args);
        if (input == NULL) {
            return -1;
        }
        e = NULL;
        if (input[0] != '\0') {
            e = rs_ev();
            llmp_tr_add_str(e, "item_id", c->id);
            llmp_tr_add_num(e, "output_index", c->oi);
            llmp_tr_add_str(e, "delta", input);
        }
        if (e != NULL
            && rs_emit(s, "response.custom_tool_call_input.delta", e) != 0)
        {
            free(input);
            return -1;
        }
        e = rs_ev();
        if (e == NULL) {
            free(input);
            return -1;
        }
        llmp_tr_add_str(e, "item_id", c->id);
        llmp_tr_add_num(e, "output_index", c->oi);
        llmp_tr_add_str(e, "input", input);
        if (rs_emit(s, "response.custom_tool_call_input.done", e) != 0) {
            free(input);
            return -1;
        }
        e = rs_tool_item(1, c->id, "completed", c->call_id, c->name,
                         input);
        free(input);
        return rs_item_done(s, c->oi, e);
    }

    e = rs_ev();
    if (e == NULL) {
        return -1;
    }
    llmp_tr_add_str(e, "item_id", c->id);
    llmp_tr_add_num(e, "output_index", c->oi);
    llmp_tr_add_str(e, "name", c->name ? c->name : "");
    llmp_tr_add_str(e, "arguments", args);
    if (rs_emit(s, "response.function_call_arguments.done", e) != 0) {
        return -1;
    }

    return rs_item_done(s, c->oi, rs_tool_item(0, c->id, "completed",
                                               c->call_id, c->name, args));
}


static int
rs_tool_delta(llmp_rstream_t *s, const cJSON *tc)
{
    int          i, idx;
    cJSON       *e, *f;
    rs_call_t   *c;
    const char  *a, *name, *id;

    f = llmp_tr_get(tc, "function", NULL);
    idx = (int) llmp_tr_int(tc, "index");
    id = llmp_tr_str(tc, "id");
    name = llmp_tr_str(f, "name");

    /* a call's later pieces name only its index */

    c = NULL;
    for (i = 0; i < s->ncalls; i++) {
        if (s->calls[i].open && s->calls[i].index == idx) {
            c = &s->calls[i];
        }
    }

    if (id != NULL || c == NULL) {
        /* a new call: what was open ends */
        if (s->ncalls == RS_MAX_CALLS) {
            return -1;
        }
        c = realloc(s->calls, (s->ncalls + 1) * sizeof(rs_call_t));
        if (c == NULL) {
            return -1;
        }
        s->calls = c;
        memset(&s->calls[s->ncalls], 0, sizeof(rs_call_t));
        c = NULL;
        for (i = 0; i < s->ncalls; i++) {
            if (s->calls[i].open && s->calls[i].index == idx) {
                c = &s->calls[i];
            }
        }
        if (rs_close_text(s) != 0) {
            return -1;
        }
        if (c != NULL && rs_close_call(s, c) != 0) {
            return -1;
        }
        c = &s->calls[s->ncalls++];
        c->index = idx;
        c->oi = s->next_oi++;
        c->open = 1;
        c->custom = rs_is_custom(&s->custom, name);
        snprintf(c->id, sizeof(c->id), "%s_%s_%d", c->custom ? "ctc" : "fc",
                 s->nonce, s->nitems++);
        c->call_id = llmp_tr_strndup_heap(id ? id : c->id,
                                          strlen(id ? id : c->id));
        c->name = llmp_tr_strndup_heap(name ? name : "",
                                       strlen(name ? name : ""));
        if (c->call_id == NULL || c->name == NULL) {
            return -1;
        }
        e = rs_tool_item(c->custom, c->id, "in_progress", c->call_id,
                         c->name, "");
        if (rs_item_added(s, c->oi, e) != 0) {
            return -1;
        }
    }

    a = llmp_tr_str(f, "arguments");
    if (a == NULL || a[0] == '\0') {
        return 0;
    }
    if (llmp_buf_append(&c->args, a, strlen(a)) != 0) {
        return -1;
    }
    if (c->custom) {
        return 0;                   /* its input is known at its end */
    }

    e = rs_ev();
    if (e == NULL) {
        return -1;
    }
    llmp_tr_add_str(e, "item_id", c->id);
    llmp_tr_add_num(e, "output_index", c->oi);
    llmp_tr_add_str(e, "delta", a);
    return rs_emit(s, "response.function_call_arguments.delta", e);
}


static int
rs_end(llmp_rstream_t *s)
{
    int          i;
    cJSON       *e, *r;
    const char  *status, *type;

    if (s->ended || s->errored) {
        return 0;
    }
    s->ended = 1;

    if (rs_start(s) != 0 || rs_close_text(s) != 0) {
        return -1;
    }
    for (i = 0; i < s->ncalls; i++) {
        if (rs_close_call(s, &s->calls[i]) != 0) {
            return -1;
        }
    }

    r = rs_snapshot(s, NULL);
    if (r == NULL) {
        return -1;
    }
    status = llmp_tr_str(r, "status");
    type = strcmp(status, "incomplete") == 0 ? "response.incomplete"
                                             : "response.completed";
    e = rs_ev();
    if (e == NULL) {
        cJSON_Delete(r);
        return -1;
    }
    cJSON_AddItemToObject(e, "response", r);
    return rs_emit(s, type, e);
}


/* the hub's stream error: an "error" event, then response.failed */

static int
rs_fail(llmp_rstream_t *s, const cJSON *err)
{
    char         code[32];
    cJSON       *e, *r, *re;
    const char  *msg, *c;

    if (s->ended || s->errored) {
        return 0;
    }
    if (rs_start(s) != 0) {
        return -1;
    }
    s->errored = 1;

    msg = llmp_tr_str(err, "message");
    if (msg == NULL) {
        msg = "upstream stream error";
    }
    c = llmp_tr_str(err, "code");
    if (c == NULL) {
        c = llmp_tr_str(err, "type");
    }
    if (c == NULL) {
        snprintf(code, sizeof(code), "%lld", llmp_tr_int(err, "code"));
        c = code;
    }

    e = rs_ev();
    if (e == NULL) {
        return -1;
    }
    llmp_tr_add_str(e, "code", c);
    llmp_tr_add_str(e, "message", msg);
    cJSON_AddNullToObject(e, "param");
    if (rs_emit(s, "error", e) != 0) {
        return -1;
    }

    r = rs_snapshot(s, "failed");
    if (r == NULL) {
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(r, "error");
    re = cJSON_AddObjectToObject(r, "error");
    llmp_tr_add_str(re, "code", "server_error");
    llmp_tr_add_str(re, "message", msg);
    e = rs_ev();
    if (e == NULL) {
        cJSON_Delete(r);
        return -1;
    }
    cJSON_AddItemToObject(e, "response", r);
    return rs_emit(s, "response.failed", e);
}


static int
rs_chunk(void *ctx, const char *event, const char *data, size_t len)
{
    llmp_rstream_t  *s = ctx;
    int              rc;
    cJSON           *o, *ch, *d, *tc, *b, *v;
    const char      *fr, *sig;

    (void) event;

    if (s->ended || s->errored) {
        return 0;
    }

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        return rs_end(s);
    }

    o = llmp_tr_parse(data, len);
    if (o == NULL) {
        return -1;
    }

    rc = 0;

    v = llmp_tr_get(o, "error", NULL);
    if (v != NULL) {
        rc = rs_fail(s, v);
        cJSON_Delete(o);
        return rc;
    }

    if (rs_start(s) != 0) {
        cJSON_Delete(o);
        return -1;
    }

    rs_chat_usage(llmp_tr_get(o, "usage", NULL), &s->in, &s->outp, &s->cached,
                  &s->reasoning);

    cJSON_ArrayForEach(ch, llmp_tr_get(o, "choices", NULL)) {
        d = llmp_tr_get(ch, "delta", NULL);

        rc = rs_text_delta(s, RS_REASONING,
                           llmp_tr_str(d, "reasoning_content"));

        cJSON_ArrayForEach(b, llmp_tr_get(d, "thinking_blocks", NULL)) {
            sig = llmp_tr_str(b, "signature");
            if (rc == 0 && sig != NULL && sig[0]) {
                rc = rs_open_text(s, RS_REASONING);
                free(s->sig);
                s->sig = llmp_tr_strndup_heap(sig, strlen(sig));
                if (s->sig == NULL) {
                    rc = -1;
                }
            }
        }

        if (rc == 0) {
            rc = rs_text_delta(s, RS_MESSAGE, llmp_tr_str(d, "content"));
        }

        cJSON_ArrayForEach(tc, llmp_tr_get(d, "tool_calls", NULL)) {
            if (rc == 0) {
                rc = rs_tool_delta(s, tc);
            }
        }

        fr = llmp_tr_str(ch, "finish_reason");
        if (rc == 0 && fr != NULL) {
            free(s->finish);
            s->finish = llmp_tr_strndup_heap(fr, strlen(fr));
        }

        if (rc != 0) {
            break;
        }
    }

    cJSON_Delete(o);
    return rc;
}


llmp_rstream_t *
llmp_responses_stream_new(int from, const char *model, const char *req,
    size_t req_len)
{
    llmp_rstream_t  *s;

    s = calloc(1, sizeof(llmp_rstream_t));
    if (s == NULL) {
        return NULL;
    }

    s->chat = llmp_stream_new(from, LLMP_IFACE_OPENAI, model, 1);
    s->model = llmp_tr_strndup_heap(model ? model : "",
                                    strlen(model ? model : ""));
    s->output = cJSON_CreateArray();

    if (s->chat == NULL || s->model == NULL || s->output == NULL) {
        llmp_responses_stream_free(s);
        return NULL;
    }

    rs_names_read(&s->custom, req, req_len);
    s->created = (long long) time(NULL);
    llmp_tr_nonce(s->nonce, LLMP_TR_NONCE_LEN);
    s->in = s->outp = s->cached = s->reasoning = -1;

    return s;
}


void
llmp_responses_stream_set_nonce(llmp_rstream_t *s, long long created,
    const char *nonce)
{
    s->created = created;
    snprintf(s->nonce, sizeof(s->nonce), "%s", nonce);
    llmp_stream_set_nonce(s->chat, created, nonce);
}


/*
 * What the hub wrote goes on even when it then broke (rc -1): the events
 * must not depend on where the provider's stream was split
 */

static int
rs_pump(llmp_rstream_t *s, llmp_buf_t *out, int rc)
{
    s->out = out;

    if (s->cbuf.len
        && llmp_sse_feed(&s->sse, s->cbuf.data, s->cbuf.len, rs_chunk, s)
           != 0)
    {
        rc = -1;
    }
    s->cbuf.len = 0;

    return rc;
}


int
llmp_responses_stream_feed(llmp_rstream_t *s, const char *data, size_t len,
    llmp_buf_t *out)
{
    int  rc;

    rc = llmp_stream_feed(s->chat, data, len, &s->cbuf);
    return rs_pump(s, out, rc);
}


int
llmp_responses_stream_finish(llmp_rstream_t *s, llmp_buf_t *out)
{
    int  rc;

    rc = llmp_stream_finish(s->chat, &s->cbuf);
    rc = rs_pump(s, out, rc);
    if (rc == 0) {
        rc = llmp_sse_finish(&s->sse, rs_chunk, s);
    }

    /* a stream that ended without [DONE] and without an error */

    if (rc == 0 && !s->ended && !s->errored) {
        rc = rs_end(s);
    }
    return rc;
}


void
llmp_responses_stream_free(llmp_rstream_t *s)
{
    int  i;

    if (s == NULL) {
        return;
    }
    if (s->chat != NULL) {
        llmp_stream_free(s->chat);
    }
    llmp_sse_free(&s->sse);
    llmp_buf_free(&s->cbuf);
    llmp_buf_free(&s->text);
    for (i = 0; i < s->ncalls; i++) {
        free(s->calls[i].call_id);
        free(s->calls[i].name);
        llmp_buf_free(&s->calls[i].args);
    }
    free(s->calls);
    rs_names_free(&s->custom);
    cJSON_Delete(s->output);
    free(s->model);
    free(s->sig);
    free(s->finish);
    free(s);
}

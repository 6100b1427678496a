/*
 * Response translation: a provider's non-streamed body is read into a
 * neutral form (choices of text and tool call parts, a stop reason,
 * usage) and written out in the client's interface; and error bodies.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmp_translate_int.h"


#define LLMP_TR_MAX_CHOICES  16

typedef struct {
    llmp_tr_parts_t  parts;
    int              finish;
    const char      *stop_seq;
} llmp_tr_choice_t;

typedef struct {
    llmp_tr_arena_t   arena;
    const char       *id;
    llmp_tr_choice_t  ch[LLMP_TR_MAX_CHOICES];
    int               nch;
    long long     prompt;
    long long     completion;
    long long     cached;       /* prompt tokens read from a cache */
    long long     reasoning;    /* completion tokens spent thinking */
    char              nonce[LLMP_TR_NONCE_LEN + 1];
} llmp_tr_resp_t;


static void
resp_free(llmp_tr_resp_t *r)
{
    int  i;

    for (i = 0; i < r->nch; i++) {
        llmp_tr_parts_free(&r->ch[i].parts);
    }
    llmp_tr_arena_free(&r->arena);
}


static llmp_tr_choice_t *
resp_choice(llmp_tr_resp_t *r)
{
    if (r->nch == LLMP_TR_MAX_CHOICES) {
        return NULL;
    }
    return &r->ch[r->nch++];
}


static int
resp_text(llmp_tr_resp_t *r, llmp_tr_choice_t *c, const char *text)
{
    llmp_tr_part_t  *p;

    p = llmp_tr_part_add(&r->arena, &c->parts, LLMP_TR_TEXT);
    if (p == NULL) {
        return -1;
    }
    p->text = text;
    return 0;
}


/* an "error" member in a 200 answer: the message for err */
static int
resp_error_member(const cJSON *root, char *err, size_t errlen)
{
    const cJSON  *e;
    const char   *msg;

    e = llmp_tr_get(root, "error", NULL);
    if (e == NULL || cJSON_IsNull(e)) {
        return 0;
    }
    msg = cJSON_IsString(e) ? e->valuestring : llmp_tr_str(e, "message");
    llmp_tr_err(err, errlen, "upstream error: %.200s", msg ? msg : "unknown");
    return -1;
}


static int
resp_from_openai(llmp_tr_resp_t *r, const cJSON *root, char *err, size_t errlen)
{
    llmp_tr_choice_t  *c;
    const cJSON       *it, *m, *v, *f, *u;

    if (resp_error_member(root, err, errlen) != 0) {
        return -1;
    }

    r->id = llmp_tr_str(root, "id");

    v = llmp_tr_get(root, "choices", NULL);
    if (!cJSON_IsArray(v)) {
        llmp_tr_err(err, errlen, "upstream answer has no choices");
        return -1;
    }

    cJSON_ArrayForEach(it, v) {
        c = resp_choice(r);
        if (c == NULL) {
            break;
        }
        c->finish = llmp_tr_finish_from(LLMP_IFACE_OPENAI,
                                        llmp_tr_str(it, "finish_reason"));
        m = llmp_tr_get(it, "message", NULL);

        if (llmp_tr_think_oa_parts(&r->arena, &c->parts, m) != 0) {
            goto oom;
        }

        v = llmp_tr_get(m, "content", NULL);
        if (cJSON_IsString(v)) {
            if (resp_text(r, c, v->valuestring) != 0) {
                goto oom;
            }
        } else if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(f, v) {
                if (llmp_tr_str(f, "text")
                    && resp_text(r, c, llmp_tr_str(f, "text")))
                {
                    goto oom;
                }
            }
        }
        if (llmp_tr_str(m, "refusal") != NULL
            && resp_text(r, c, llmp_tr_str(m, "refusal")) != 0)
        {
            goto oom;
        }

        if (llmp_tr_oa_tool_calls(&r->arena, &c->parts, m, 0) != 0) {
            goto oom;
        }
    }

    u = llmp_tr_get(root, "usage", NULL);
    r->prompt = llmp_tr_int(u, "prompt_tokens");
    r->completion = llmp_tr_int(u, "completion_tokens");
    r->cached = llmp_tr_int(llmp_tr_get(u, "prompt_tokens_details", NULL),
                            "cached_tokens");
    r->reasoning = llmp_tr_int(llmp_tr_get(u, "completion_tokens_details",
                                           NULL),
                               "reasoning_tokens");
    return 0;

oom:
    llmp_tr_err(err, errlen, "out of memory");
    return -1;
}


static int
resp_from_anthropic(llmp_tr_resp_t *r, const cJSON *root, char *err,
    size_t errlen)
{
    long long     n;
    llmp_tr_part_t    *p;
    llmp_tr_choice_t  *c;
    const char        *type;
    const cJSON       *it, *u;

    type = llmp_tr_str(root, "type");
    if (type != NULL && strcmp(type, "error") == 0) {
        if (resp_error_member(root, err, errlen) == 0) {
            llmp_tr_err(err, errlen, "upstream error");
        }
        return -1;
    }
    if (!cJSON_IsArray(llmp_tr_get(root, "content", NULL))) {
        llmp_tr_err(err, errlen, "upstream answer has no content");
        return -1;
    }

    r->id = llmp_tr_str(root, "id");
    c = resp_choice(r);
    c->finish = llmp_tr_finish_from(LLMP_IFACE_ANTHROPIC,
                                    llmp_tr_str(root, "stop_reason"));
    c->stop_seq = llmp_tr_str(root, "stop_sequence");

    cJSON_ArrayForEach(it, llmp_tr_get(root, "content", NULL)) {
        type = llmp_tr_str(it, "type");
        if (type == NULL) {
            continue;
        }
        if (strcmp(type, "text") == 0 && llmp_tr_str(it, "text") != NULL) {
            if (resp_text(r, c, llmp_tr_str(it, "text")) != 0) {
                goto oom;
            }
        } else if (strcmp(type, "tool_use") == 0
                   && llmp_tr_str(it, "name") != NULL)
        {
            p = llmp_tr_part_add(&r->arena, &c->parts, LLMP_TR_TOOL_CALL);
            if (p == NULL) {
                goto oom;
            }
            p->id = llmp_tr_str(it, "id");
            p->name = llmp_tr_str(it, "name");
            p->input = llmp_tr_get(it, "input", NULL);

        } else if (strcmp(type, "thinking") == 0) {
            if (llmp_tr_think_part(&r->arena, &c->parts,
                                   llmp_tr_str(it, "thinking"),
                                   llmp_tr_str(it, "signature"), NULL) != 0)
            {
                goto oom;
            }

        } else if (strcmp(type, "redacted_thinking") == 0
                   && llmp_tr_str(it, "data") != NULL)
        {
            if (llmp_tr_think_part(&r->arena, &c->parts, NULL, NULL,
                                   llmp_tr_str(it, "data")) != 0)
            {
                goto oom;
            }
        }
        /* server tool blocks: dropped */
    }

    u = llmp_tr_get(root, "usage", NULL);
    r->prompt = llmp_tr_int(u, "input_tokens");
    r->completion = llmp_tr_int(u, "output_tokens");
    r->cached = llmp_tr_int(u, "cache_read_input_tokens");
    if (r->prompt >= 0) {
        n = llmp_tr_int(u, "cache_creation_input_tokens");
        r->prompt += (n > 0 ? n : 0) + (r->cached > 0 ? r->cached : 0);
    }
    return 0;

oom:
    llmp_tr_err(err, errlen, "out of memory");
    return -1;
}


static int
resp_from_gemini(llmp_tr_resp_t *r, const cJSON *root, char *err, size_t errlen)
{
    char               id[64];
    unsigned           ncalls;
    long long     thoughts;
    llmp_tr_part_t    *p;
    llmp_tr_choice_t  *c;
    const cJSON       *it, *v, *part, *u;

    if (resp_error_member(root, err, errlen) != 0) {
        return -1;
    }

    r->id = llmp_tr_str2(root, "responseId", "response_id");
    ncalls = 0;

    cJSON_ArrayForEach(it, llmp_tr_get(root, "candidates", NULL)) {
        c = resp_choice(r);
        if (c == NULL) {
            break;
        }
        c->finish = llmp_tr_finish_from(LLMP_IFACE_GEMINI,
                                        llmp_tr_str2(it, "finishReason",
                                                "finish_reason"));

        cJSON_ArrayForEach(part, llmp_tr_get(llmp_tr_get(it, "content", NULL),
                                             "parts", NULL))
        {
            if (llmp_tr_str(part, "text") != NULL) {
                if (cJSON_IsTrue(llmp_tr_get(part, "thought", NULL))) {
                    if (llmp_tr_think_part(&r->arena, &c->parts,
                                           llmp_tr_str(part, "text"), NULL,
                                           NULL)
                        != 0)
                    {
                        goto oom;
                    }
                    continue;
                }
                if (resp_text(r, c, llmp_tr_str(part, "text")) != 0) {
                    goto oom;
                }
                continue;
            }
            v = llmp_tr_get(part, "functionCall", "function_call");
            if (llmp_tr_str(v, "name") == NULL) {
                continue;
            }
            p = llmp_tr_part_add(&r->arena, &c->parts, LLMP_TR_TOOL_CALL);
            if (p == NULL) {
                goto oom;
            }
            p->name = llmp_tr_str(v, "name");
            p->input = llmp_tr_get(v, "args", NULL);
            p->id = llmp_tr_str(v, "id");
            p->sig = llmp_tr_str2(part, "thoughtSignature",
                                  "thought_signature");
            if (p->id == NULL) {
                snprintf(id, sizeof(id), "call_%.12s_%u", r->nonce,
                         ncalls);
                p->id = llmp_tr_strdup(&r->arena, id);
                if (p->id == NULL) {
                    goto oom;
                }
            }
            ncalls++;
        }
    }

    if (r->nch == 0) {
        /* a blocked prompt: promptFeedback.blockReason, no candidates */
        c = resp_choice(r);
        c->finish = llmp_tr_get(root, "promptFeedback", "prompt_feedback")
                    ? LLMP_TR_FR_FILTER : LLMP_TR_FR_OTHER;
    }

    u = llmp_tr_get(root, "usageMetadata", "usage_metadata");
    r->prompt = llmp_tr_int(u, "promptTokenCount");
    r->completion = llmp_tr_int(u, "candidatesTokenCount");
    thoughts = llmp_tr_int(u, "thoughtsTokenCount");
    if (thoughts >= 0) {
        r->reasoning = thoughts;
        r->completion = (r->completion > 0 ? r->completion : 0) + thoughts;
    }
    r->cached = llmp_tr_int(u, "cachedContentTokenCount");
    if (r->completion < 0 && r->prompt >= 0) {
        r->completion = 0;      /* Gemini leaves out zero counts */
    }
    return 0;

oom:
    llmp_tr_err(err, errlen, "out of memory");
    return -1;
}


static int
choice_finish(const llmp_tr_choice_t *c)
{
    size_t  i;

    if (c->finish == LLMP_TR_FR_STOP || c->finish == LLMP_TR_FR_NONE) {
        for (i = 0; i < c->parts.n; i++) {
            if (c->parts.v[i].type == LLMP_TR_TOOL_CALL) {
                return LLMP_TR_FR_TOOL;
            }
        }
    }
    return c->finish == LLMP_TR_FR_NONE ? LLMP_TR_FR_STOP : c->finish;
}


/* message.content: the choice's text parts joined, or null */
static int
oa_resp_content(cJSON *m, const llmp_tr_choice_t *c)
{
    char    *text, *q;
    size_t   j, len;

    len = 0;
    for (j = 0; j < c->parts.n; j++) {
        if (c->parts.v[j].type == LLMP_TR_TEXT) {
            len += strlen(c->parts.v[j].text) + 1;
        }
    }
    if (len == 0) {
        cJSON_AddNullToObject(m, "content");
        return 0;
    }

    text = malloc(len);
    if (text == NULL) {
        return -1;
    }
    q = text;
    for (j = 0; j < c->parts.n; j++) {
        if (c->parts.v[j].type == LLMP_TR_TEXT) {
            len = strlen(c->parts.v[j].text);
            memcpy(q, c->parts.v[j].text, len);
            q += len;
        }
    }
    *q = '\0';
    cJSON_AddStringToObject(m, "content", text);
    free(text);
    return 0;
}


/* message.tool_calls, if the choice has any; an id the provider did not
 * give is made from the nonce, and a Gemini signature rides in the id */
static int
oa_resp_tool_calls(llmp_tr_resp_t *r, cJSON *m, const llmp_tr_choice_t *c)
{
    char                  id[64], *args, *q;
    size_t                j;
    cJSON                *t, *f;
    const llmp_tr_part_t  *p;

    t = NULL;
    for (j = 0; j < c->parts.n; j++) {
        p = &c->parts.v[j];
        if (p->type != LLMP_TR_TOOL_CALL) {
            continue;
        }
        if (t == NULL) {
            t = cJSON_AddArrayToObject(m, "tool_calls");
        }
        f = cJSON_CreateObject();
        cJSON_AddItemToArray(t, f);
        if (p->id == NULL) {
            snprintf(id, sizeof(id), "call_%.12s_%u", r->nonce, (unsigned) j);
        }
        q = llmp_tr_sig_id(p->id ? p->id : id, p->sig);
        if (q == NULL) {
            return -1;
        }
        cJSON_AddStringToObject(f, "id", q);
        free(q);
        cJSON_AddStringToObject(f, "type", "function");
        f = cJSON_AddObjectToObject(f, "function");
        cJSON_AddStringToObject(f, "name", p->name);
        args = llmp_tr_part_args(p);
        if (args == NULL) {
            return -1;
        }
        cJSON_AddStringToObject(f, "arguments", args);
        free(args);
    }
    return 0;
}


/* usage, with the cached and reasoning details the provider reported */
static void
oa_resp_usage(llmp_tr_resp_t *r, cJSON *root)
{
    cJSON  *u, *o;

    u = cJSON_AddObjectToObject(root, "usage");
    llmp_tr_add_num(u, "prompt_tokens",
                    (double) (r->prompt > 0 ? r->prompt : 0));
    llmp_tr_add_num(u, "completion_tokens",
                    (double) (r->completion > 0 ? r->completion : 0));
    llmp_tr_add_num(u, "total_tokens",
                    (double) ((r->prompt > 0 ? r->prompt : 0)
                         + (r->completion > 0 ? r->completion : 0)));
    if (r->cached >= 0) {
        o = cJSON_AddObjectToObject(u, "prompt_tokens_details");
        llmp_tr_add_num(o, "cached_tokens", (double) r->cached);
    }
    if (r->reasoning >= 0) {
        o = cJSON_AddObjectToObject(u, "completion_tokens_details");
        llmp_tr_add_num(o, "reasoning_tokens", (double) r->reasoning);
    }
}


static int
resp_to_openai(llmp_tr_resp_t *r, cJSON *root, const char *model)
{
    int                i;
    char               id[64];
    cJSON             *a, *o, *m;
    llmp_tr_choice_t  *c;

    if (r->id == NULL) {
        snprintf(id, sizeof(id), "chatcmpl-%s", r->nonce);
    }
    cJSON_AddStringToObject(root, "id", r->id ? r->id : id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    llmp_tr_add_num(root, "created", (double) time(NULL));
    cJSON_AddStringToObject(root, "model", model ? model : "");

    a = cJSON_AddArrayToObject(root, "choices");
    if (a == NULL) {
        return -1;
    }

    for (i = 0; i < r->nch; i++) {
        c = &r->ch[i];
        o = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(a, o)) {
            return -1;
        }
        llmp_tr_add_num(o, "index", i);
        m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (oa_resp_content(m, c) != 0) {
            return -1;
        }
        cJSON_AddNullToObject(m, "refusal");

        if (llmp_tr_think_oa_message(m, &c->parts) != 0
            || oa_resp_tool_calls(r, m, c) != 0)
        {
            return -1;
        }

        cJSON_AddNullToObject(o, "logprobs");
        cJSON_AddStringToObject(o, "finish_reason",
                                llmp_tr_finish_to(LLMP_IFACE_OPENAI,
                                                  choice_finish(c)));
    }

    oa_resp_usage(r, root);
    return 0;
}


/* text parts next to each other become one Anthropic text block */
static int
an_add_text(cJSON *content, cJSON **last, const char *text)
{
    char    *s;
    size_t   a, b;
    cJSON   *o;

    if (*last != NULL) {
        o = cJSON_GetObjectItemCaseSensitive(*last, "text");
        a = strlen(o->valuestring);
        b = strlen(text);
        s = malloc(a + b + 1);
        if (s == NULL) {
            return -1;
        }
        memcpy(s, o->valuestring, a);
        memcpy(s + a, text, b + 1);
        cJSON_ReplaceItemInObjectCaseSensitive(*last, "text",
                                               cJSON_CreateString(s));
        free(s);
        return 0;
    }

    o = cJSON_CreateObject();
    if (!cJSON_AddItemToArray(content, o)) {
        return -1;
    }
    cJSON_AddStringToObject(o, "type", "text");
    cJSON_AddStringToObject(o, "text", text);
    *last = o;
    return 0;
}


static int
resp_to_anthropic(llmp_tr_resp_t *r, cJSON *root, const char *model)
{
    int                fr;
    char               id[64], *sid;
    size_t             j;
    cJSON             *a, *o, *last, *u;
    long long     in;
    llmp_tr_part_t    *p;
    llmp_tr_choice_t  *c;

    if (r->id == NULL) {
        snprintf(id, sizeof(id), "msg_%s", r->nonce);
    }
    cJSON_AddStringToObject(root, "id", r->id ? r->id : id);
    cJSON_AddStringToObject(root, "type", "message");
    cJSON_AddStringToObject(root, "role", "assistant");
    cJSON_AddStringToObject(root, "model", model ? model : "");

    a = cJSON_AddArrayToObject(root, "content");
    if (a == NULL) {
        return -1;
    }

    c = &r->ch[0];          /* Anthropic answers with one message */
    last = NULL;
    for (j = 0; j < c->parts.n; j++) {
        p = &c->parts.v[j];
        if (p->type == LLMP_TR_TEXT) {
            if (p->text[0] != '\0' && an_add_text(a, &last, p->text) != 0) {
                return -1;
            }
            continue;
        }
        last = NULL;
        o = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(a, o)) {
            return -1;
        }
        if (p->type == LLMP_TR_THINKING) {
            if (p->data) {
                cJSON_AddStringToObject(o, "type", "redacted_thinking");
                cJSON_AddStringToObject(o, "data", p->data);
            } else {
                cJSON_AddStringToObject(o, "type", "thinking");
                cJSON_AddStringToObject(o, "thinking", p->text);
                cJSON_AddStringToObject(o, "signature",
                                        p->sig ? p->sig : "");
            }
            continue;
        }
        cJSON_AddStringToObject(o, "type", "tool_use");
        if (p->id == NULL) {
            snprintf(id, sizeof(id), "toolu_%.12s_%u", r->nonce,
                     (unsigned) j);
        }
        sid = llmp_tr_sig_id(p->id ? p->id : id, p->sig);
        if (sid == NULL) {
            return -1;
        }
        cJSON_AddStringToObject(o, "id", sid);
        free(sid);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddItemToObject(o, "input", llmp_tr_part_input(p));
    }

    fr = choice_finish(c);
    cJSON_AddStringToObject(root, "stop_reason",
                            llmp_tr_finish_to(LLMP_IFACE_ANTHROPIC, fr));
    if (fr == LLMP_TR_FR_STOP_SEQ && c->stop_seq != NULL) {
        cJSON_AddStringToObject(root, "stop_sequence", c->stop_seq);
    } else {
        cJSON_AddNullToObject(root, "stop_sequence");
    }

    u = cJSON_AddObjectToObject(root, "usage");
    in = r->prompt > 0 ? r->prompt : 0;
    if (r->cached > 0 && r->cached <= in) {
        in -= r->cached;
    }
    llmp_tr_add_num(u, "input_tokens", (double) in);
    if (r->cached > 0) {
        llmp_tr_add_num(u, "cache_read_input_tokens", (double) r->cached);
    }
    llmp_tr_add_num(u, "output_tokens",
                    (double) (r->completion > 0 ? r->completion : 0));
    return 0;
}


static int
resp_to_gemini(llmp_tr_resp_t *r, cJSON *root, const char *model)
{
    int                i;
    size_t             j;
    cJSON             *a, *o, *parts, *v, *u;
    llmp_tr_part_t    *p;
    llmp_tr_choice_t  *c;

    a = cJSON_AddArrayToObject(root, "candidates");
    if (a == NULL) {
        return -1;
    }

    for (i = 0; i < r->nch; i++) {
        c = &r->ch[i];
        o = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(a, o)) {
            return -1;
        }
        v = cJSON_AddObjectToObject(o, "content");
        parts = cJSON_AddArrayToObject(v, "parts");
        cJSON_AddStringToObject(v, "role", "model");

        for (j = 0; j < c->parts.n; j++) {
            p = &c->parts.v[j];
            v = cJSON_CreateObject();
            if (!cJSON_AddItemToArray(parts, v)) {
                return -1;
            }
            if (p->type == LLMP_TR_TEXT) {
                cJSON_AddStringToObject(v, "text", p->text);
                continue;
            }
            if (p->type == LLMP_TR_THINKING) {
                cJSON_AddStringToObject(v, "text", p->text);
                cJSON_AddTrueToObject(v, "thought");
                continue;
            }
            if (p->sig != NULL) {
                cJSON_AddStringToObject(v, "thoughtSignature", p->sig);
            }
            v = cJSON_AddObjectToObject(v, "functionCall");
            cJSON_AddStringToObject(v, "name", p->name);
            cJSON_AddItemToObject(v, "args", llmp_tr_part_input(p));
        }

        cJSON_AddStringToObject(o, "finishReason",
                                llmp_tr_finish_to(LLMP_IFACE_GEMINI,
                                                  choice_finish(c)));
        llmp_tr_add_num(o, "index", i);
    }

    u = cJSON_AddObjectToObject(root, "usageMetadata");
    llmp_tr_add_num(u, "promptTokenCount",
                    (double) (r->prompt > 0 ? r->prompt : 0));
    llmp_tr_add_num(u, "candidatesTokenCount",
                    (double) (r->completion > 0
                         ? r->completion - (r->reasoning > 0
                                            ? r->reasoning : 0)
                         : 0));
    llmp_tr_add_num(u, "totalTokenCount",
                    (double) ((r->prompt > 0 ? r->prompt : 0)
                         + (r->completion > 0 ? r->completion : 0)));
    if (r->cached > 0) {
        llmp_tr_add_num(u, "cachedContentTokenCount", (double) r->cached);
    }
    if (r->reasoning > 0) {
        llmp_tr_add_num(u, "thoughtsTokenCount", (double) r->reasoning);
    }
    cJSON_AddStringToObject(root, "modelVersion", model ? model : "");
    cJSON_AddStringToObject(root, "responseId", r->id ? r->id : r->nonce);
    return 0;
}


/* the same interface: the body as it is, the model name replaced */
static int
resp_identity(int iface, cJSON *root, const char *model)
{
    const char  *key;

    if (model == NULL) {
        return 0;
    }
    key = iface == LLMP_IFACE_GEMINI ? "modelVersion" : "model";
    if (cJSON_GetObjectItemCaseSensitive(root, key) == NULL) {
        return 0;
    }
    return cJSON_ReplaceItemInObjectCaseSensitive(root, key,
                                                  cJSON_CreateString(model))
           ? 0 : -1;
}


int
llmp_translate_response(int from, int to, const char *body, size_t len,
    const char *model, llmp_buf_t *out, llmp_usage_t *usage,
    char *err, size_t errlen)
{
    int              rc;
    cJSON           *root, *res;
    llmp_tr_resp_t  *r;

    if (usage != NULL) {
        usage->prompt_tokens = -1;
        usage->completion_tokens = -1;
    }

    if (llmp_iface_name(from) == NULL || llmp_iface_name(to) == NULL) {
        llmp_tr_err(err, errlen, "unknown interface");
        return -1;
    }

    root = llmp_tr_parse(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        llmp_tr_err(err, errlen, "upstream answer is not a JSON object");
        return -1;
    }

    r = calloc(1, sizeof(llmp_tr_resp_t));
    if (r == NULL) {
        cJSON_Delete(root);
        llmp_tr_err(err, errlen, "out of memory");
        return -1;
    }
    r->prompt = -1;
    r->completion = -1;
    r->cached = -1;
    r->reasoning = -1;
    llmp_tr_nonce(r->nonce, LLMP_TR_NONCE_LEN);

    switch (from) {
    case LLMP_IFACE_OPENAI:
        rc = resp_from_openai(r, root, err, errlen);
        break;
    case LLMP_IFACE_ANTHROPIC:
        rc = resp_from_anthropic(r, root, err, errlen);
        break;
    default:
        rc = resp_from_gemini(r, root, err, errlen);
    }

    if (rc == 0 && usage != NULL) {
        usage->prompt_tokens = r->prompt;
        usage->completion_tokens = r->completion;
    }

    res = NULL;
    if (rc == 0 && from == to) {
        rc = resp_identity(from, root, model);
        if (rc == 0) {
            rc = llmp_tr_print(root, out);
        }
        if (rc != 0) {
            llmp_tr_err(err, errlen, "out of memory");
        }

    } else if (rc == 0) {
        res = cJSON_CreateObject();
        if (res == NULL) {
            rc = -1;
        } else if (to == LLMP_IFACE_OPENAI) {
            rc = resp_to_openai(r, res, model);
        } else if (to == LLMP_IFACE_ANTHROPIC) {
            rc = resp_to_anthropic(r, res, model);
        } else {
            rc = resp_to_gemini(r, res, model);
        }
        if (rc == 0) {
            rc = llmp_tr_print(res, out);
        }
        if (rc != 0) {
            llmp_tr_err(err, errlen, "out of memory");
        }
    }

    cJSON_Delete(res);
    resp_free(r);
    free(r);
    cJSON_Delete(root);
    return rc;
}


/* errors */

/* copies at most max bytes of s, valid UTF-8 only, trimmed */
static char *
err_clean(const char *s, size_t len, size_t max)
{
    char                 *out, *q;
    size_t                i, n, k;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    while (len && (p[0] == ' ' || p[0] == '\n' || p[0] == '\r'
                   || p[0] == '\t'))
    {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\n'
                   || p[len - 1] == '\r' || p[len - 1] == '\t'))
    {
        len--;
    }
    if (len > max) {
        len = max;
    }

    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    q = out;

    for (i = 0; i < len; /* void */) {
        if (p[i] < 0x80) {
            *q++ = p[i] < 0x20 && p[i] != '\n' && p[i] != '\t'
                   ? ' ' : (char) p[i];
            i++;
            continue;
        }
        if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            n = 2;
        } else if (p[i] >= 0xe0 && p[i] <= 0xef) {
            n = 3;
        } else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
            n = 4;
        } else {
            n = 0;
        }
        if (n == 0 || i + n > len) {
            *q++ = '?';
            i++;
            continue;
        }
        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                break;
            }
        }
        if (k != n) {
            *q++ = '?';
            i++;
            continue;
        }
        memcpy(q, p + i, n);
        q += n;
        i += n;
    }
    *q = '\0';
    return out;
}


typedef struct {
    const char  *message;
    const char  *type;      /* openai/anthropic error type */
    const char  *code;      /* openai code */
    const char  *status;    /* gemini status */
} llmp_tr_err_info_t;


static void
err_find(const cJSON *v, llmp_tr_err_info_t *e)
{
    const cJSON  *x;

    if (cJSON_IsArray(v)) {
        v = cJSON_GetArrayItem(v, 0);
    }
    if (!cJSON_IsObject(v)) {
        return;
    }

    x = llmp_tr_get(v, "error", NULL);
    if (cJSON_IsString(x)) {
        e->message = x->valuestring;
        e->type = llmp_tr_str(v, "type");
    } else if (cJSON_IsObject(x)) {
        e->message = llmp_tr_str(x, "message");
        e->type = llmp_tr_str(x, "type");
        e->code = llmp_tr_str(x, "code");
        e->status = llmp_tr_str(x, "status");
    }
    if (e->message == NULL) {
        e->message = llmp_tr_str(v, "message");
    }
    if (e->message == NULL) {
        e->message = llmp_tr_str(v, "detail");
    }
    if (e->message == NULL) {
        e->message = llmp_tr_str(v, "error_description");
    }
}


int
llmp_translate_error(int from, int to, int status, const char *body,
    size_t len, llmp_buf_t *out)
{
    int                 rc;
    char               *msg, dflt[64];
    cJSON              *root, *res, *e;
    llmp_tr_err_info_t  info;

    if (status < 100 || status > 599) {
        status = 502;
    }

    memset(&info, 0, sizeof(info));
    root = body && len ? llmp_tr_parse(body, len) : NULL;
    err_find(root, &info);

    if (info.message != NULL) {
        msg = err_clean(info.message, strlen(info.message), 4096);
    } else if (root == NULL && body != NULL && len) {
        msg = err_clean(body, len, 1024);
    } else {
        msg = NULL;
    }
    if (msg != NULL && msg[0] == '\0') {
        free(msg);
        msg = NULL;
    }
    if (msg == NULL) {
        snprintf(dflt, sizeof(dflt), "upstream answered HTTP %d", status);
    }

    rc = -1;
    res = cJSON_CreateObject();
    if (res == NULL) {
        goto done;
    }

    switch (to) {

    case LLMP_IFACE_ANTHROPIC:
        cJSON_AddStringToObject(res, "type", "error");
        e = cJSON_AddObjectToObject(res, "error");
        cJSON_AddStringToObject(e, "type",
                                from == LLMP_IFACE_ANTHROPIC && info.type
                                ? info.type
                                : llmp_iface_error_type(LLMP_IFACE_ANTHROPIC,
                                                        status));
        cJSON_AddStringToObject(e, "message", msg ? msg : dflt);
        break;

    case LLMP_IFACE_GEMINI:
        e = cJSON_AddObjectToObject(res, "error");
        llmp_tr_add_num(e, "code", status);
        cJSON_AddStringToObject(e, "message", msg ? msg : dflt);
        cJSON_AddStringToObject(e, "status",
                                from == LLMP_IFACE_GEMINI && info.status
                                ? info.status
                                : llmp_iface_error_type(LLMP_IFACE_GEMINI,
                                                        status));
        break;

    default:
        e = cJSON_AddObjectToObject(res, "error");
        cJSON_AddStringToObject(e, "message", msg ? msg : dflt);
        cJSON_AddStringToObject(e, "type",
                                from == LLMP_IFACE_OPENAI && info.type
                                ? info.type
                                : llmp_iface_error_type(LLMP_IFACE_OPENAI,
                                                        status));
        cJSON_AddNullToObject(e, "param");
        if (info.code != NULL) {
            cJSON_AddStringToObject(e, "code", info.code);
        } else if (info.status != NULL) {
            cJSON_AddStringToObject(e, "code", info.status);
        } else {
            cJSON_AddNullToObject(e, "code");
        }
    }

    rc = llmp_tr_print(res, out);

done:
    cJSON_Delete(res);
    cJSON_Delete(root);
    free(msg);
    return rc;
}

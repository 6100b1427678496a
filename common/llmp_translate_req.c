/*
 * Request translation: a client body is read into the neutral llmp_tr_req_t
 * and written out in the provider's interface.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmp_translate_int.h"


#define LLMP_TR_OOM  "out of memory"


static void
req_free(llmp_tr_req_t *r)
{
    size_t  i;

    llmp_tr_parts_free(&r->system);
    for (i = 0; i < r->nmsgs; i++) {
        llmp_tr_parts_free(&r->msgs[i].parts);
    }
    free(r->msgs);
    free(r->tools);
    llmp_tr_arena_free(&r->arena);
}


static llmp_tr_msg_t *
req_msg(llmp_tr_req_t *r, int role)
{
    size_t          cap;
    llmp_tr_msg_t  *m;

    if (r->nmsgs == r->msgs_cap) {
        cap = r->msgs_cap ? r->msgs_cap * 2 : 8;
        m = realloc(r->msgs, cap * sizeof(llmp_tr_msg_t));
        if (m == NULL) {
            return NULL;
        }
        r->msgs = m;
        r->msgs_cap = cap;
    }
    m = &r->msgs[r->nmsgs++];
    memset(m, 0, sizeof(llmp_tr_msg_t));
    m->role = role;
    return m;
}


static llmp_tr_tool_t *
req_tool(llmp_tr_req_t *r)
{
    llmp_tr_tool_t  *t;

    t = realloc(r->tools, (r->ntools + 1) * sizeof(llmp_tr_tool_t));
    if (t == NULL) {
        return NULL;
    }
    r->tools = t;
    t = &r->tools[r->ntools++];
    memset(t, 0, sizeof(llmp_tr_tool_t));
    return t;
}


static int
req_text(llmp_tr_req_t *r, llmp_tr_parts_t *p, const char *text)
{
    llmp_tr_part_t  *t;

    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_TEXT);
    if (t == NULL) {
        return -1;
    }
    t->text = text;
    return 0;
}


/* a URL (data: or not) as a LLMP_TR_MEDIA part */
static int
req_media_url(llmp_tr_req_t *r, llmp_tr_parts_t *p, const char *url, char *err,
    size_t errlen)
{
    int              rc;
    llmp_tr_part_t  *t;
    const char      *mime, *data;

    mime = NULL;
    data = NULL;
    rc = llmp_tr_parse_data_url(&r->arena, url, &mime, &data);
    if (rc < 0) {
        llmp_tr_err(err, errlen, "a data: URL must be base64-encoded");
        return -1;
    }

    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_MEDIA);
    if (t == NULL) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        return -1;
    }
    if (rc == 1) {
        t->mime = mime;
        t->data = data;
    } else {
        t->url = url;
        t->mime = llmp_tr_guess_mime(url);
    }
    return 0;
}


static void
req_stop(llmp_tr_req_t *r, const cJSON *stop)
{
    cJSON  *v;

    if (cJSON_IsString(stop)) {
        r->stop[0] = stop->valuestring;
        r->nstop = 1;
        return;
    }
    cJSON_ArrayForEach(v, stop) {
        if (cJSON_IsString(v) && r->nstop < LLMP_TR_MAX_STOP) {
            r->stop[r->nstop++] = v->valuestring;
        }
    }
}


/* OpenAI */

static int
oa_content(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *c,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;
    const char      *type, *s, *fmt;
    const cJSON     *it, *v;
    char             mime[64];

    if (c == NULL || cJSON_IsNull(c)) {
        return 0;
    }
    if (cJSON_IsString(c)) {
        return req_text(r, p, c->valuestring)
               ? llmp_tr_err(err, errlen, LLMP_TR_OOM), -1 : 0;
    }
    if (!cJSON_IsArray(c)) {
        llmp_tr_err(err, errlen, "%s: content must be a string or an array",
                    where);
        return -1;
    }

    cJSON_ArrayForEach(it, c) {
        type = llmp_tr_str(it, "type");
        if (type == NULL) {
            llmp_tr_err(err, errlen, "%s: a content part has no type", where);
            return -1;
        }

        if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
            s = llmp_tr_str(it, type);
            if (s == NULL) {
                llmp_tr_err(err, errlen, "%s: a %s part needs \"%s\"", where,
                            type, type);
                return -1;
            }
            if (req_text(r, p, s) != 0) {
                llmp_tr_err(err, errlen, LLMP_TR_OOM);
                return -1;
            }

        } else if (strcmp(type, "image_url") == 0) {
            v = llmp_tr_get(it, "image_url", NULL);
            s = cJSON_IsString(v) ? v->valuestring : llmp_tr_str(v, "url");
            if (s == NULL) {
                llmp_tr_err(err, errlen, "%s: image_url needs a url", where);
                return -1;
            }
            if (req_media_url(r, p, s, err, errlen) != 0) {
                return -1;
            }

        } else if (strcmp(type, "file") == 0) {
            v = llmp_tr_get(it, "file", NULL);
            s = llmp_tr_str(v, "file_data");
            if (s != NULL && req_media_url(r, p, s, err, errlen) != 0) {
                return -1;
            }

        } else if (strcmp(type, "input_audio") == 0) {
            v = llmp_tr_get(it, "input_audio", NULL);
            s = llmp_tr_str(v, "data");
            fmt = llmp_tr_str(v, "format");
            if (s != NULL && fmt != NULL && strlen(fmt) < 32) {
                t = llmp_tr_part_add(&r->arena, p, LLMP_TR_MEDIA);
                snprintf(mime, sizeof(mime), "audio/%s", fmt);
                if (t == NULL
                    || (t->mime = llmp_tr_strdup(&r->arena, mime)) == NULL)
                {
                    llmp_tr_err(err, errlen, LLMP_TR_OOM);
                    return -1;
                }
                t->data = s;
            }
        }
        /* other part types have no counterpart: dropped */
    }

    return 0;
}


/* an assistant turn: reasoning, content, then its tool calls */
static int
oa_assistant_msg(llmp_tr_req_t *r, const cJSON *it, const cJSON *v,
    const char *where, char *err, size_t errlen)
{
    int             rc;
    llmp_tr_msg_t  *m;

    m = req_msg(r, LLMP_TR_ASSISTANT);
    if (m == NULL || llmp_tr_think_oa_parts(&r->arena, &m->parts, it) != 0) {
        goto oom;
    }
    if (oa_content(r, &m->parts, v, where, err, errlen) != 0) {
        return -1;
    }
    rc = llmp_tr_oa_tool_calls(&r->arena, &m->parts, it, 1);
    if (rc == -2) {
        llmp_tr_err(err, errlen, "%s: a tool call needs function.name", where);
        return -1;
    }
    if (rc != 0) {
        goto oom;
    }
    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/* a "tool" (or legacy "function") message: one tool result in a user turn */
static int
oa_tool_msg(llmp_tr_req_t *r, const char *role, const cJSON *it,
    const cJSON *v, const char *where, char *err, size_t errlen)
{
    llmp_tr_msg_t   *m;
    llmp_tr_part_t  *t;

    m = req_msg(r, LLMP_TR_USER);
    if (m == NULL) {
        goto oom;
    }
    t = llmp_tr_part_add(&r->arena, &m->parts, LLMP_TR_TOOL_RESULT);
    if (t == NULL) {
        goto oom;
    }
    t->id = llmp_tr_str(it, "tool_call_id");
    t->name = llmp_tr_str(it, "name");
    if (llmp_tr_sig_split(&r->arena, t) != 0) {
        goto oom;
    }
    if (role[0] == 't' && t->id == NULL) {
        llmp_tr_err(err, errlen, "%s: \"tool_call_id\" is required", where);
        return -1;
    }
    return oa_content(r, &t->content, v, where, err, errlen);

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/* one entry of "messages", by its role */
static int
oa_message(llmp_tr_req_t *r, const cJSON *it, const char *where, char *err,
    size_t errlen)
{
    llmp_tr_msg_t  *m;
    const char     *role;
    const cJSON    *v;

    role = llmp_tr_str(it, "role");
    if (role == NULL) {
        llmp_tr_err(err, errlen, "%s: \"role\" is required", where);
        return -1;
    }
    v = llmp_tr_get(it, "content", NULL);

    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        return oa_content(r, &r->system, v, where, err, errlen);
    }

    if (strcmp(role, "user") == 0) {
        m = req_msg(r, LLMP_TR_USER);
        if (m == NULL) {
            llmp_tr_err(err, errlen, LLMP_TR_OOM);
            return -1;
        }
        return oa_content(r, &m->parts, v, where, err, errlen);
    }

    if (strcmp(role, "assistant") == 0) {
        return oa_assistant_msg(r, it, v, where, err, errlen);
    }

    if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
        return oa_tool_msg(r, role, it, v, where, err, errlen);
    }

    llmp_tr_err(err, errlen, "%s: unknown role \"%.32s\"", where, role);
    return -1;
}


/* "tools" (function tools only) and the legacy "functions" */
static int
oa_tools(llmp_tr_req_t *r, cJSON *root, char *err, size_t errlen)
{
    llmp_tr_tool_t  *tool;
    const char      *s;
    const cJSON     *it, *f, *tools;

    tools = llmp_tr_get(root, "tools", NULL);
    cJSON_ArrayForEach(it, tools) {
        s = llmp_tr_str(it, "type");
        if (s != NULL && strcmp(s, "function") != 0) {
            continue;
        }
        f = llmp_tr_get(it, "function", NULL);
        if (llmp_tr_str(f, "name") == NULL) {
            llmp_tr_err(err, errlen, "tools: a function needs a name");
            return -1;
        }
        tool = req_tool(r);
        if (tool == NULL) {
            goto oom;
        }
        tool->name = llmp_tr_str(f, "name");
        tool->description = llmp_tr_str(f, "description");
        tool->schema = llmp_tr_get(f, "parameters", NULL);
    }

    tools = llmp_tr_get(root, "functions", NULL);
    cJSON_ArrayForEach(f, tools) {
        if (llmp_tr_str(f, "name") == NULL) {
            continue;
        }
        tool = req_tool(r);
        if (tool == NULL) {
            goto oom;
        }
        tool->name = llmp_tr_str(f, "name");
        tool->description = llmp_tr_str(f, "description");
        tool->schema = llmp_tr_get(f, "parameters", NULL);
    }
    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/* "tool_choice" (or legacy "function_call") and "parallel_tool_calls" */
static void
oa_tool_choice(llmp_tr_req_t *r, cJSON *root)
{
    const char   *s;
    const cJSON  *v, *f;

    v = llmp_tr_get(root, "tool_choice", NULL);
    if (v == NULL) {
        v = llmp_tr_get(root, "function_call", NULL);
    }
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "none") == 0) {
            r->tool_choice = LLMP_TR_TC_NONE;
        } else if (strcmp(v->valuestring, "required") == 0) {
            r->tool_choice = LLMP_TR_TC_ANY;
        } else if (strcmp(v->valuestring, "auto") == 0) {
            r->tool_choice = LLMP_TR_TC_AUTO;
        }
    } else if (cJSON_IsObject(v)) {
        f = llmp_tr_get(v, "function", NULL);
        s = f ? llmp_tr_str(f, "name") : llmp_tr_str(v, "name");
        if (s != NULL) {
            r->tool_choice = LLMP_TR_TC_TOOL;
            r->tool_name = s;
        }
    }
    if (cJSON_IsFalse(llmp_tr_get(root, "parallel_tool_calls", NULL))) {
        r->no_parallel = 1;
    }
}


/* sampling, limits, stop sequences, user and JSON mode */
static void
oa_params(llmp_tr_req_t *r, cJSON *root)
{
    double       d;
    const char  *s;

    r->has_temperature = llmp_tr_num(root, "temperature", &r->temperature);
    r->has_top_p = llmp_tr_num(root, "top_p", &r->top_p);
    r->has_presence = llmp_tr_num(root, "presence_penalty", &r->presence);
    r->has_frequency = llmp_tr_num(root, "frequency_penalty", &r->frequency);
    if (llmp_tr_num(root, "seed", &d)) {
        r->has_seed = 1;
        r->seed = llmp_tr_ll(d);
    }
    r->max_tokens = llmp_tr_int(root, "max_completion_tokens");
    if (r->max_tokens < 0) {
        r->max_tokens = llmp_tr_int(root, "max_tokens");
    }
    r->n = llmp_tr_int(root, "n");
    req_stop(r, llmp_tr_get(root, "stop", NULL));
    r->user = llmp_tr_str(root, "user");

    s = llmp_tr_str(llmp_tr_get(root, "response_format", NULL), "type");
    if (s != NULL && strncmp(s, "json", 4) == 0) {
        r->json_mode = 1;
    }
}


static int
req_from_openai(llmp_tr_req_t *r, cJSON *root, char *err, size_t errlen)
{
    int           i;
    char          where[64];
    const cJSON  *msgs, *it;

    msgs = llmp_tr_get(root, "messages", NULL);
    if (!cJSON_IsArray(msgs)) {
        llmp_tr_err(err, errlen, "\"messages\" must be an array");
        return -1;
    }

    i = 0;
    cJSON_ArrayForEach(it, msgs) {
        snprintf(where, sizeof(where), "messages[%d]", i++);
        if (oa_message(r, it, where, err, errlen) != 0) {
            return -1;
        }
    }

    if (oa_tools(r, root, err, errlen) != 0) {
        return -1;
    }
    oa_tool_choice(r, root);
    oa_params(r, root);
    return 0;
}


/* Anthropic */

static int
an_source(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *src,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;
    const char      *type;

    type = llmp_tr_str(src, "type");
    if (type == NULL) {
        llmp_tr_err(err, errlen, "%s: a source needs a type", where);
        return -1;
    }

    if (strcmp(type, "base64") == 0) {
        t = llmp_tr_part_add(&r->arena, p, LLMP_TR_MEDIA);
        if (t == NULL) {
            llmp_tr_err(err, errlen, LLMP_TR_OOM);
            return -1;
        }
        t->mime = llmp_tr_str(src, "media_type");
        t->data = llmp_tr_str(src, "data");
        if (t->data == NULL) {
            llmp_tr_err(err, errlen, "%s: a base64 source needs data", where);
            return -1;
        }
        return 0;
    }

    if (strcmp(type, "url") == 0) {
        if (llmp_tr_str(src, "url") == NULL) {
            llmp_tr_err(err, errlen, "%s: a url source needs a url", where);
            return -1;
        }
        return req_media_url(r, p, llmp_tr_str(src, "url"), err, errlen);
    }

    if (strcmp(type, "text") == 0 && llmp_tr_str(src, "data") != NULL) {
        return req_text(r, p, llmp_tr_str(src, "data"))
               ? llmp_tr_err(err, errlen, LLMP_TR_OOM), -1 : 0;
    }

    return 0;       /* file ids and the like: no counterpart */
}


static int an_content(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *c,
    int nested, const char *where, char *err, size_t errlen);


/* a tool_use block of an assistant turn */
static int
an_tool_use(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *it,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str(it, "name") == NULL || llmp_tr_str(it, "id") == NULL) {
        llmp_tr_err(err, errlen, "%s: tool_use needs an id and a name", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_TOOL_CALL);
    if (t == NULL) {
        goto oom;
    }
    t->id = llmp_tr_str(it, "id");
    t->name = llmp_tr_str(it, "name");
    t->input = llmp_tr_get(it, "input", NULL);
    if (llmp_tr_sig_split(&r->arena, t) != 0) {
        goto oom;
    }
    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/* a tool_result block: its content is read as nested content */
static int
an_tool_result(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *it,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str(it, "tool_use_id") == NULL) {
        llmp_tr_err(err, errlen, "%s: tool_result needs tool_use_id", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_TOOL_RESULT);
    if (t == NULL) {
        goto oom;
    }
    t->id = llmp_tr_str(it, "tool_use_id");
    if (llmp_tr_sig_split(&r->arena, t) != 0) {
        goto oom;
    }
    t->is_error = cJSON_IsTrue(llmp_tr_get(it, "is_error", NULL));
    return an_content(r, &t->content, llmp_tr_get(it, "content", NULL), 1,
                      where, err, errlen);

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


static int
an_content(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *c, int nested,
    const char *where, char *err, size_t errlen)
{
    const char   *type;
    const cJSON  *it;

    if (cJSON_IsString(c)) {
        return req_text(r, p, c->valuestring)
               ? llmp_tr_err(err, errlen, LLMP_TR_OOM), -1 : 0;
    }
    if (c == NULL && nested) {
        return 0;
    }
    if (!cJSON_IsArray(c)) {
        llmp_tr_err(err, errlen, "%s: content must be a string or an array",
                    where);
        return -1;
    }

    cJSON_ArrayForEach(it, c) {
        type = llmp_tr_str(it, "type");
        if (type == NULL) {
            llmp_tr_err(err, errlen, "%s: a content block has no type", where);
            return -1;
        }

        if (strcmp(type, "text") == 0) {
            if (llmp_tr_str(it, "text") == NULL) {
                llmp_tr_err(err, errlen, "%s: a text block needs text", where);
                return -1;
            }
            if (req_text(r, p, llmp_tr_str(it, "text")) != 0) {
                goto oom;
            }

        } else if (strcmp(type, "image") == 0
                   || strcmp(type, "document") == 0)
        {
            if (an_source(r, p, llmp_tr_get(it, "source", NULL), where, err,
                          errlen) != 0)
            {
                return -1;
            }

        } else if (strcmp(type, "tool_use") == 0 && !nested) {
            if (an_tool_use(r, p, it, where, err, errlen) != 0) {
                return -1;
            }

        } else if (strcmp(type, "tool_result") == 0 && !nested) {
            if (an_tool_result(r, p, it, where, err, errlen) != 0) {
                return -1;
            }
        } else if (strcmp(type, "thinking") == 0 && !nested) {
            if (llmp_tr_think_part(&r->arena, p, llmp_tr_str(it, "thinking"),
                                   llmp_tr_str(it, "signature"), NULL) != 0)
            {
                goto oom;
            }

        } else if (strcmp(type, "redacted_thinking") == 0 && !nested) {
            if (llmp_tr_str(it, "data") != NULL
                && llmp_tr_think_part(&r->arena, p, NULL, NULL,
                                      llmp_tr_str(it, "data")) != 0)
            {
                goto oom;
            }
        }
        /* server tools...: dropped */
    }

    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


static int
req_from_anthropic(llmp_tr_req_t *r, cJSON *root, char *err, size_t errlen)
{
    int              i;
    char             where[64];
    double           d;
    llmp_tr_msg_t   *m;
    llmp_tr_tool_t  *tool;
    const char      *role, *s;
    const cJSON     *it, *v;

    v = llmp_tr_get(root, "system", NULL);
    if (v != NULL
        && an_content(r, &r->system, v, 1, "system", err, errlen) != 0)
    {
        return -1;
    }

    v = llmp_tr_get(root, "messages", NULL);
    if (!cJSON_IsArray(v)) {
        llmp_tr_err(err, errlen, "\"messages\" must be an array");
        return -1;
    }

    i = 0;
    cJSON_ArrayForEach(it, v) {
        snprintf(where, sizeof(where), "messages[%d]", i++);
        role = llmp_tr_str(it, "role");
        if (role == NULL || (strcmp(role, "user") != 0
                             && strcmp(role, "assistant") != 0))
        {
            llmp_tr_err(err, errlen, "%s: role must be \"user\" or "
                        "\"assistant\"", where);
            return -1;
        }
        m = req_msg(r, role[0] == 'u' ? LLMP_TR_USER : LLMP_TR_ASSISTANT);
        if (m == NULL) {
            goto oom;
        }
        if (an_content(r, &m->parts, llmp_tr_get(it, "content", NULL), 0, where,
                       err, errlen) != 0)
        {
            return -1;
        }
    }

    cJSON_ArrayForEach(it, llmp_tr_get(root, "tools", NULL)) {
        s = llmp_tr_str(it, "type");
        if (s != NULL && strcmp(s, "custom") != 0) {
            continue;           /* server tools: no counterpart */
        }
        if (llmp_tr_str(it, "name") == NULL) {
            llmp_tr_err(err, errlen, "tools: a tool needs a name");
            return -1;
        }
        tool = req_tool(r);
        if (tool == NULL) {
            goto oom;
        }
        tool->name = llmp_tr_str(it, "name");
        tool->description = llmp_tr_str(it, "description");
        tool->schema = llmp_tr_get(it, "input_schema", NULL);
    }

    v = llmp_tr_get(root, "tool_choice", NULL);
    s = llmp_tr_str(v, "type");
    if (s != NULL) {
        if (strcmp(s, "auto") == 0) {
            r->tool_choice = LLMP_TR_TC_AUTO;
        } else if (strcmp(s, "any") == 0) {
            r->tool_choice = LLMP_TR_TC_ANY;
        } else if (strcmp(s, "none") == 0) {
            r->tool_choice = LLMP_TR_TC_NONE;
        } else if (strcmp(s, "tool") == 0 && llmp_tr_str(v, "name") != NULL) {
            r->tool_choice = LLMP_TR_TC_TOOL;
            r->tool_name = llmp_tr_str(v, "name");
        }
        r->no_parallel = cJSON_IsTrue(llmp_tr_get(v,
                                                  "disable_parallel_tool_use",
                                                  NULL));
    }

    r->max_tokens = llmp_tr_int(root, "max_tokens");
    r->has_temperature = llmp_tr_num(root, "temperature", &r->temperature);
    r->has_top_p = llmp_tr_num(root, "top_p", &r->top_p);
    if (llmp_tr_num(root, "top_k", &d)) {
        r->has_top_k = 1;
        r->top_k = llmp_tr_ll(d);
    }
    req_stop(r, llmp_tr_get(root, "stop_sequences", NULL));
    r->user = llmp_tr_str(llmp_tr_get(root, "metadata", NULL), "user_id");

    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/* Gemini: accepts the camelCase and the snake_case spellings */

/* inlineData: base64 media */
static int
ge_inline_data(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *v,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str(v, "data") == NULL) {
        llmp_tr_err(err, errlen, "%s: inlineData needs data", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_MEDIA);
    if (t == NULL) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        return -1;
    }
    t->mime = llmp_tr_str2(v, "mimeType", "mime_type");
    t->data = llmp_tr_str(v, "data");
    return 0;
}


/* fileData: media by URI */
static int
ge_file_data(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *v,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str2(v, "fileUri", "file_uri") == NULL) {
        llmp_tr_err(err, errlen, "%s: fileData needs fileUri", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_MEDIA);
    if (t == NULL) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        return -1;
    }
    t->url = llmp_tr_str2(v, "fileUri", "file_uri");
    t->mime = llmp_tr_str2(v, "mimeType", "mime_type");
    return 0;
}


/* functionCall v of part it, which may carry the call's thoughtSignature */
static int
ge_function_call(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *it,
    const cJSON *v, const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str(v, "name") == NULL) {
        llmp_tr_err(err, errlen, "%s: functionCall needs a name", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_TOOL_CALL);
    if (t == NULL) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        return -1;
    }
    t->id = llmp_tr_str(v, "id");
    t->name = llmp_tr_str(v, "name");
    t->input = llmp_tr_get(v, "args", NULL);
    t->sig = llmp_tr_str2(it, "thoughtSignature", "thought_signature");
    return 0;
}


/* functionResponse: a tool result whose response is an object */
static int
ge_function_response(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *v,
    const char *where, char *err, size_t errlen)
{
    llmp_tr_part_t  *t;

    if (llmp_tr_str(v, "name") == NULL) {
        llmp_tr_err(err, errlen, "%s: functionResponse needs a name", where);
        return -1;
    }
    t = llmp_tr_part_add(&r->arena, p, LLMP_TR_TOOL_RESULT);
    if (t == NULL) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        return -1;
    }
    t->id = llmp_tr_str(v, "id");
    t->name = llmp_tr_str(v, "name");
    t->response = llmp_tr_get(v, "response", NULL);
    return 0;
}


static int
ge_parts(llmp_tr_req_t *r, llmp_tr_parts_t *p, const cJSON *parts,
    const char *where, char *err, size_t errlen)
{
    int           rc;
    const cJSON  *it, *v;

    if (!cJSON_IsArray(parts)) {
        llmp_tr_err(err, errlen, "%s: \"parts\" must be an array", where);
        return -1;
    }

    cJSON_ArrayForEach(it, parts) {
        if (!cJSON_IsObject(it)) {
            llmp_tr_err(err, errlen, "%s: a part must be an object", where);
            return -1;
        }

        if (llmp_tr_str(it, "text") != NULL) {
            if (cJSON_IsTrue(llmp_tr_get(it, "thought", NULL))) {
                /* its signature is Gemini's: see llmp_tr_think_part */
                rc = llmp_tr_think_part(&r->arena, p, llmp_tr_str(it, "text"),
                                        NULL, NULL);
            } else {
                rc = req_text(r, p, llmp_tr_str(it, "text"));
            }
            if (rc != 0) {
                llmp_tr_err(err, errlen, LLMP_TR_OOM);
                return -1;
            }
            continue;
        }

        if ((v = llmp_tr_get(it, "inlineData", "inline_data")) != NULL) {
            rc = ge_inline_data(r, p, v, where, err, errlen);

        } else if ((v = llmp_tr_get(it, "fileData", "file_data")) != NULL) {
            rc = ge_file_data(r, p, v, where, err, errlen);

        } else if ((v = llmp_tr_get(it, "functionCall", "function_call"))
                   != NULL)
        {
            rc = ge_function_call(r, p, it, v, where, err, errlen);

        } else if ((v = llmp_tr_get(it, "functionResponse",
                                    "function_response")) != NULL)
        {
            rc = ge_function_response(r, p, v, where, err, errlen);

        } else {
            rc = 0;     /* executableCode, codeExecutionResult...: dropped */
        }
        if (rc != 0) {
            return -1;
        }
    }

    return 0;
}


/* tools[].functionDeclarations; a declaration's "parameters" is Gemini's
 * OpenAPI subset, its "parametersJsonSchema" plain JSON schema */
static int
ge_tools(llmp_tr_req_t *r, cJSON *root, char *err, size_t errlen)
{
    llmp_tr_tool_t  *tool;
    const cJSON     *it, *f, *g;

    cJSON_ArrayForEach(it, llmp_tr_get(root, "tools", NULL)) {
        f = llmp_tr_get(it, "functionDeclarations", "function_declarations");
        cJSON_ArrayForEach(g, f) {
            if (llmp_tr_str(g, "name") == NULL) {
                llmp_tr_err(err, errlen, "tools: a function declaration needs "
                            "a name");
                return -1;
            }
            tool = req_tool(r);
            if (tool == NULL) {
                llmp_tr_err(err, errlen, LLMP_TR_OOM);
                return -1;
            }
            tool->name = llmp_tr_str(g, "name");
            tool->description = llmp_tr_str(g, "description");
            tool->schema = llmp_tr_get(g, "parametersJsonSchema",
                                       "parameters_json_schema");
            if (tool->schema == NULL) {
                tool->schema = llmp_tr_get(g, "parameters", NULL);
                tool->gemini_schema = 1;
            }
        }
    }
    return 0;
}


/* toolConfig.functionCallingConfig: the mode, and ANY with one allowed
 * function is that tool */
static void
ge_tool_config(llmp_tr_req_t *r, cJSON *root)
{
    const char   *s;
    const cJSON  *v, *f;

    v = llmp_tr_get(llmp_tr_get(root, "toolConfig", "tool_config"),
                    "functionCallingConfig", "function_calling_config");
    s = llmp_tr_str(v, "mode");
    if (s == NULL) {
        return;
    }
    if (strcmp(s, "AUTO") == 0 || strcmp(s, "VALIDATED") == 0) {
        r->tool_choice = LLMP_TR_TC_AUTO;
    } else if (strcmp(s, "NONE") == 0) {
        r->tool_choice = LLMP_TR_TC_NONE;
    } else if (strcmp(s, "ANY") == 0) {
        r->tool_choice = LLMP_TR_TC_ANY;
        f = llmp_tr_get(v, "allowedFunctionNames", "allowed_function_names");
        if (cJSON_GetArraySize(f) == 1
            && cJSON_IsString(cJSON_GetArrayItem(f, 0)))
        {
            r->tool_choice = LLMP_TR_TC_TOOL;
            r->tool_name = cJSON_GetArrayItem(f, 0)->valuestring;
        }
    }
}


/* generationConfig: sampling, limits, stop sequences and JSON mode */
static void
ge_generation_config(llmp_tr_req_t *r, cJSON *root)
{
    double        d;
    const char   *s;
    const cJSON  *v;

    v = llmp_tr_get(root, "generationConfig", "generation_config");
    if (v == NULL) {
        return;
    }
    r->has_temperature = llmp_tr_num(v, "temperature", &r->temperature);
    r->has_top_p = llmp_tr_num2(v, "topP", "top_p", &r->top_p);
    if (llmp_tr_num2(v, "topK", "top_k", &d)) {
        r->has_top_k = 1;
        r->top_k = llmp_tr_ll(d);
    }
    if (llmp_tr_num(v, "seed", &d)) {
        r->has_seed = 1;
        r->seed = llmp_tr_ll(d);
    }
    r->has_presence = llmp_tr_num2(v, "presencePenalty", "presence_penalty",
                                   &r->presence);
    r->has_frequency = llmp_tr_num2(v, "frequencyPenalty",
                                    "frequency_penalty", &r->frequency);
    if (llmp_tr_num2(v, "maxOutputTokens", "max_output_tokens", &d)
        && d >= 0 && d < 9.0e15)
    {
        r->max_tokens = llmp_tr_ll(d);
    }
    if (llmp_tr_num2(v, "candidateCount", "candidate_count", &d)
        && d >= 1 && d < 1000)
    {
        r->n = llmp_tr_ll(d);
    }
    req_stop(r, llmp_tr_get(v, "stopSequences", "stop_sequences"));
    s = llmp_tr_str2(v, "responseMimeType", "response_mime_type");
    if (s != NULL && strcmp(s, "application/json") == 0) {
        r->json_mode = 1;
    }
}


static int
req_from_gemini(llmp_tr_req_t *r, cJSON *root, char *err, size_t errlen)
{
    int             i;
    char            where[64];
    llmp_tr_msg_t  *m;
    const char     *role;
    const cJSON    *it, *v;

    v = llmp_tr_get(root, "systemInstruction", "system_instruction");
    if (cJSON_IsString(v)) {
        if (req_text(r, &r->system, v->valuestring) != 0) {
            goto oom;
        }
    } else if (v != NULL
               && ge_parts(r, &r->system, llmp_tr_get(v, "parts", NULL),
                           "systemInstruction", err, errlen) != 0)
    {
        return -1;
    }

    v = llmp_tr_get(root, "contents", NULL);
    if (!cJSON_IsArray(v)) {
        llmp_tr_err(err, errlen, "\"contents\" must be an array");
        return -1;
    }

    i = 0;
    cJSON_ArrayForEach(it, v) {
        snprintf(where, sizeof(where), "contents[%d]", i++);
        role = llmp_tr_str(it, "role");
        m = req_msg(r, role && strcmp(role, "model") == 0 ? LLMP_TR_ASSISTANT
                                                          : LLMP_TR_USER);
        if (m == NULL) {
            goto oom;
        }
        if (ge_parts(r, &m->parts, llmp_tr_get(it, "parts", NULL), where, err,
                     errlen) != 0)
        {
            return -1;
        }
    }

    if (ge_tools(r, root, err, errlen) != 0) {
        return -1;
    }
    ge_tool_config(r, root);
    ge_generation_config(r, root);
    return 0;

oom:
    llmp_tr_err(err, errlen, LLMP_TR_OOM);
    return -1;
}


/*
 * Tool calls get ids where the source has none (Gemini): "call_<n>" by
 * position, stable within the request.  Tool results get the id and the
 * name of the call they answer: by id when they have one, else the first
 * unanswered call of that name in the latest assistant turn.
 */
static int
req_link_tools(llmp_tr_req_t *r)
{
    char             id[32];
    size_t           i, j, k, l;
    unsigned         ncalls;
    llmp_tr_part_t  *p, *c, *found;

    ncalls = 0;

    for (i = 0; i < r->nmsgs; i++) {
        for (j = 0; j < r->msgs[i].parts.n; j++) {
            p = &r->msgs[i].parts.v[j];

            if (p->type == LLMP_TR_TOOL_CALL) {
                ncalls++;
                if (p->id == NULL) {
                    snprintf(id, sizeof(id), "call_%u", ncalls);
                    p->id = llmp_tr_strdup(&r->arena, id);
                    if (p->id == NULL) {
                        return -1;
                    }
                }
                continue;
            }

            if (p->type != LLMP_TR_TOOL_RESULT
                || (p->id != NULL && p->name != NULL))
            {
                continue;
            }

            found = NULL;
            if (p->id == NULL && p->name == NULL) {
                k = 0;      /* nothing to look for */
            } else {
                k = i;
            }
            while (k-- > 0 && found == NULL) {
                for (l = 0; l < r->msgs[k].parts.n; l++) {
                    c = &r->msgs[k].parts.v[l];
                    if (c->type != LLMP_TR_TOOL_CALL) {
                        continue;
                    }
                    if (p->id != NULL ? strcmp(c->id, p->id) == 0
                                      : !c->used
                                        && strcmp(c->name, p->name) == 0)
                    {
                        found = c;
                        if (p->id == NULL) {
                            break;
                        }
                    }
                }
                if (found == NULL && p->id == NULL
                    && r->msgs[k].role == LLMP_TR_ASSISTANT)
                {
                    /* answers only the latest assistant turn's calls */
                    break;
                }
            }

            if (found != NULL) {
                found->used = 1;
                p->id = found->id;
                p->name = found->name;
                continue;
            }

            if (p->id == NULL) {
                ncalls++;
                snprintf(id, sizeof(id), "call_%u", ncalls);
                p->id = llmp_tr_strdup(&r->arena, id);
                if (p->id == NULL) {
                    return -1;
                }
            }
            if (p->name == NULL) {
                p->name = p->id;
            }
        }
    }

    return 0;
}


/* output helpers */

static const char *
req_join(llmp_tr_req_t *r, const llmp_tr_parts_t *p, const char *sep)
{
    char    *s, *q;
    size_t   i, len, n, seplen;

    seplen = strlen(sep);
    len = 0;
    n = 0;
    for (i = 0; i < p->n; i++) {
        if (p->v[i].type == LLMP_TR_TEXT) {
            len += strlen(p->v[i].text) + (n++ ? seplen : 0);
        }
    }
    if (n == 1) {
        for (i = 0; i < p->n; i++) {
            if (p->v[i].type == LLMP_TR_TEXT) {
                return p->v[i].text;
            }
        }
    }

    s = llmp_tr_alloc(&r->arena, len);
    if (s == NULL) {
        return NULL;
    }
    q = s;
    n = 0;
    for (i = 0; i < p->n; i++) {
        if (p->v[i].type == LLMP_TR_TEXT) {
            if (n++) {
                memcpy(q, sep, seplen);
                q += seplen;
            }
            len = strlen(p->v[i].text);
            memcpy(q, p->v[i].text, len);
            q += len;
        }
    }
    *q = '\0';
    return s;
}


static int
count_type(const llmp_tr_parts_t *p, int type)
{
    size_t  i;
    int     n;

    n = 0;
    for (i = 0; i < p->n; i++) {
        n += p->v[i].type == type;
    }
    return n;
}


/* a tool result's content as one text */
static const char *
result_text(llmp_tr_req_t *r, const llmp_tr_part_t *p)
{
    char        *s;
    const char  *t;

    if (p->response != NULL) {
        s = llmp_tr_json_text(p->response);
        if (s == NULL) {
            return NULL;
        }
        t = llmp_tr_strdup(&r->arena, s);
        free(s);
        return t;
    }
    return req_join(r, &p->content, "\n");
}


static cJSON *
media_data_url(const llmp_tr_part_t *p)
{
    char        *s;
    cJSON       *v;
    size_t       n;
    const char  *mime;

    mime = p->mime ? p->mime : "application/octet-stream";
    n = strlen(mime) + strlen(p->data) + sizeof("data:;base64,");
    s = malloc(n);
    if (s == NULL) {
        return NULL;
    }
    snprintf(s, n, "data:%s;base64,%s", mime, p->data);
    v = cJSON_CreateString(s);
    free(s);
    return v;
}


/* to OpenAI */

static cJSON *
oa_part(const llmp_tr_part_t *p)
{
    cJSON  *o, *v;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }

    if (p->type == LLMP_TR_TEXT) {
        cJSON_AddStringToObject(o, "type", "text");
        cJSON_AddStringToObject(o, "text", p->text);
        return o;
    }

    if (p->url == NULL && p->mime != NULL
        && strncmp(p->mime, "audio/", 6) == 0)
    {
        cJSON_AddStringToObject(o, "type", "input_audio");
        v = cJSON_AddObjectToObject(o, "input_audio");
        cJSON_AddStringToObject(v, "data", p->data);
        cJSON_AddStringToObject(v, "format", p->mime + 6);
        return o;
    }

    if (p->url == NULL && p->mime != NULL
        && strncmp(p->mime, "image/", 6) != 0)
    {
        cJSON_AddStringToObject(o, "type", "file");
        v = cJSON_AddObjectToObject(o, "file");
        cJSON_AddStringToObject(v, "filename",
                                strcmp(p->mime, "application/pdf") == 0
                                ? "document.pdf" : "file");
        cJSON_AddItemToObject(v, "file_data", media_data_url(p));
        return o;
    }

    cJSON_AddStringToObject(o, "type", "image_url");
    v = cJSON_AddObjectToObject(o, "image_url");
    if (p->url != NULL) {
        cJSON_AddStringToObject(v, "url", p->url);
    } else {
        cJSON_AddItemToObject(v, "url", media_data_url(p));
    }
    return o;
}


static int
oa_user(llmp_tr_req_t *r, cJSON *msgs, const llmp_tr_msg_t *m)
{
    size_t           i, j, n;
    cJSON           *o, *c;
    llmp_tr_part_t  *p;

    for (i = 0; i < m->parts.n; i++) {
        p = &m->parts.v[i];
        if (p->type != LLMP_TR_TOOL_RESULT) {
            continue;
        }
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, o);
        cJSON_AddStringToObject(o, "role", "tool");
        cJSON_AddStringToObject(o, "tool_call_id", p->id);
        cJSON_AddItemToObject(o, "content",
                              cJSON_CreateString(result_text(r, p)));
    }

    /* text and media, with the media tool results carried */
    n = 0;
    for (i = 0; i < m->parts.n; i++) {
        p = &m->parts.v[i];
        if (p->type == LLMP_TR_TEXT || p->type == LLMP_TR_MEDIA) {
            n++;
        } else if (p->type == LLMP_TR_TOOL_RESULT) {
            n += count_type(&p->content, LLMP_TR_MEDIA);
        }
    }
    if (n == 0) {
        return 0;
    }

    o = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, o);
    cJSON_AddStringToObject(o, "role", "user");

    if (n == 1 && count_type(&m->parts, LLMP_TR_TEXT) == 1) {
        cJSON_AddStringToObject(o, "content", req_join(r, &m->parts, ""));
        return 0;
    }

    c = cJSON_AddArrayToObject(o, "content");
    for (i = 0; i < m->parts.n; i++) {
        p = &m->parts.v[i];
        if (p->type == LLMP_TR_TEXT || p->type == LLMP_TR_MEDIA) {
            cJSON_AddItemToArray(c, oa_part(p));
        } else if (p->type == LLMP_TR_TOOL_RESULT) {
            for (j = 0; j < p->content.n; j++) {
                if (p->content.v[j].type == LLMP_TR_MEDIA) {
                    cJSON_AddItemToArray(c, oa_part(&p->content.v[j]));
                }
            }
        }
    }
    return 0;
}


static int
oa_assistant(llmp_tr_req_t *r, cJSON *msgs, const llmp_tr_msg_t *m)
{
    char            *args;
    size_t           i;
    cJSON           *o, *c, *t, *f;
    llmp_tr_part_t  *p;

    o = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, o);
    cJSON_AddStringToObject(o, "role", "assistant");

    if (count_type(&m->parts, LLMP_TR_TEXT)) {
        cJSON_AddStringToObject(o, "content", req_join(r, &m->parts, ""));
    } else if (count_type(&m->parts, LLMP_TR_TOOL_CALL)) {
        cJSON_AddNullToObject(o, "content");
    } else {
        cJSON_AddStringToObject(o, "content", "");
    }

    if (llmp_tr_think_oa_message(o, &m->parts) != 0) {
        return -1;
    }

    if (count_type(&m->parts, LLMP_TR_TOOL_CALL) == 0) {
        return 0;
    }

    c = cJSON_AddArrayToObject(o, "tool_calls");
    for (i = 0; i < m->parts.n; i++) {
        p = &m->parts.v[i];
        if (p->type != LLMP_TR_TOOL_CALL) {
            continue;
        }
        t = cJSON_CreateObject();
        cJSON_AddItemToArray(c, t);
        cJSON_AddStringToObject(t, "id", p->id);
        cJSON_AddStringToObject(t, "type", "function");
        f = cJSON_AddObjectToObject(t, "function");
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


static cJSON *
tool_schema_json(const llmp_tr_tool_t *t)
{
    if (t->schema == NULL) {
        return NULL;
    }
    if (t->gemini_schema) {
        return llmp_tr_schema_from_gemini(t->schema);
    }
    return cJSON_Duplicate(t->schema, 1);
}


/* "tools" as function tools, "tool_choice" and "parallel_tool_calls" */
static void
oa_put_tools(llmp_tr_req_t *r, cJSON *root)
{
    size_t   k;
    cJSON   *o, *f, *a;

    a = cJSON_AddArrayToObject(root, "tools");
    for (k = 0; k < r->ntools; k++) {
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(a, o);
        cJSON_AddStringToObject(o, "type", "function");
        f = cJSON_AddObjectToObject(o, "function");
        cJSON_AddStringToObject(f, "name", r->tools[k].name);
        if (r->tools[k].description) {
            cJSON_AddStringToObject(f, "description", r->tools[k].description);
        }
        if (r->tools[k].schema) {
            cJSON_AddItemToObject(f, "parameters",
                                  tool_schema_json(&r->tools[k]));
        }
    }

    switch (r->tool_choice) {
    case LLMP_TR_TC_AUTO:
        cJSON_AddStringToObject(root, "tool_choice", "auto");
        break;
    case LLMP_TR_TC_ANY:
        cJSON_AddStringToObject(root, "tool_choice", "required");
        break;
    case LLMP_TR_TC_NONE:
        cJSON_AddStringToObject(root, "tool_choice", "none");
        break;
    case LLMP_TR_TC_TOOL:
        o = cJSON_AddObjectToObject(root, "tool_choice");
        cJSON_AddStringToObject(o, "type", "function");
        f = cJSON_AddObjectToObject(o, "function");
        cJSON_AddStringToObject(f, "name", r->tool_name);
        break;
    }
    if (r->no_parallel) {
        cJSON_AddFalseToObject(root, "parallel_tool_calls");
    }
}


/* sampling, limits, stop, user, JSON mode and streaming with usage */
static void
oa_put_params(llmp_tr_req_t *r, cJSON *root)
{
    int     i;
    cJSON  *o, *a;

    if (r->has_temperature) {
        llmp_tr_add_num(root, "temperature", r->temperature);
    }
    if (r->has_top_p) {
        llmp_tr_add_num(root, "top_p", r->top_p);
    }
    if (r->max_tokens >= 0) {
        llmp_tr_add_num(root, "max_completion_tokens", (double) r->max_tokens);
    }
    if (r->nstop) {
        a = cJSON_AddArrayToObject(root, "stop");
        for (i = 0; i < r->nstop; i++) {
            cJSON_AddItemToArray(a, cJSON_CreateString(r->stop[i]));
        }
    }
    if (r->n > 0) {
        llmp_tr_add_num(root, "n", (double) r->n);
    }
    if (r->has_seed) {
        llmp_tr_add_num(root, "seed", (double) r->seed);
    }
    if (r->has_presence) {
        llmp_tr_add_num(root, "presence_penalty", r->presence);
    }
    if (r->has_frequency) {
        llmp_tr_add_num(root, "frequency_penalty", r->frequency);
    }
    if (r->user) {
        cJSON_AddStringToObject(root, "user", r->user);
    }
    if (r->json_mode) {
        o = cJSON_AddObjectToObject(root, "response_format");
        cJSON_AddStringToObject(o, "type", "json_object");
    }
    if (r->stream) {
        cJSON_AddTrueToObject(root, "stream");
        o = cJSON_AddObjectToObject(root, "stream_options");
        cJSON_AddTrueToObject(o, "include_usage");
    }
}


static int
req_to_openai(llmp_tr_req_t *r, cJSON *root)
{
    size_t       k;
    cJSON       *msgs, *o;
    const char  *s;

    msgs = cJSON_AddArrayToObject(root, "messages");
    if (msgs == NULL) {
        return -1;
    }

    if (count_type(&r->system, LLMP_TR_TEXT)) {
        s = req_join(r, &r->system, "\n");
        if (s == NULL) {
            return -1;
        }
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, o);
        cJSON_AddStringToObject(o, "role", "system");
        cJSON_AddStringToObject(o, "content", s);
    }

    for (k = 0; k < r->nmsgs; k++) {
        if (r->msgs[k].role == LLMP_TR_USER) {
            if (oa_user(r, msgs, &r->msgs[k]) != 0) {
                return -1;
            }
        } else if (oa_assistant(r, msgs, &r->msgs[k]) != 0) {
            return -1;
        }
    }

    if (r->ntools) {
        oa_put_tools(r, root);
    }
    oa_put_params(r, root);
    return 0;
}


/* grouping for the interfaces that need user/assistant alternation */

static int
part_emits(int to, int role, const llmp_tr_part_t *p)
{
    switch (p->type) {
    case LLMP_TR_TEXT:
        return p->text[0] != '\0';
    case LLMP_TR_MEDIA:
        if (to == LLMP_IFACE_GEMINI) {
            return 1;
        }
        return p->url != NULL || (p->mime != NULL
               && (strncmp(p->mime, "image/", 6) == 0
                   || strcmp(p->mime, "application/pdf") == 0));
    case LLMP_TR_TOOL_CALL:
        return role == LLMP_TR_ASSISTANT;
    case LLMP_TR_TOOL_RESULT:
        return role == LLMP_TR_USER;
    case LLMP_TR_THINKING:
        /*
         * only Anthropic takes reasoning back, and only signed; a Gemini
         * thought is summarised and its signature Gemini's own
         */
        return to == LLMP_IFACE_ANTHROPIC && role == LLMP_TR_ASSISTANT
               && ((p->sig && p->sig[0]) || p->data);
    }
    return 0;
}


static int
msg_emits(int to, const llmp_tr_msg_t *m)
{
    size_t  i;

    for (i = 0; i < m->parts.n; i++) {
        if (part_emits(to, m->role, &m->parts.v[i])) {
            return 1;
        }
    }
    return 0;
}


/* to Anthropic */

static cJSON *
an_media(const llmp_tr_part_t *p)
{
    cJSON  *o, *s;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "type",
                            p->mime && strcmp(p->mime, "application/pdf") == 0
                            ? "document" : "image");
    s = cJSON_AddObjectToObject(o, "source");
    if (p->url != NULL) {
        cJSON_AddStringToObject(s, "type", "url");
        cJSON_AddStringToObject(s, "url", p->url);
    } else {
        cJSON_AddStringToObject(s, "type", "base64");
        cJSON_AddStringToObject(s, "media_type", p->mime);
        cJSON_AddStringToObject(s, "data", p->data);
    }
    return o;
}


static cJSON *
an_text(const char *text)
{
    cJSON  *o;

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "text");
    cJSON_AddStringToObject(o, "text", text);
    return o;
}


static cJSON *
an_block(llmp_tr_req_t *r, const llmp_tr_part_t *p)
{
    size_t       i, n;
    cJSON       *o, *c;
    const char  *s;

    switch (p->type) {

    case LLMP_TR_TEXT:
        return an_text(p->text);

    case LLMP_TR_MEDIA:
        return an_media(p);

    case LLMP_TR_THINKING:
        o = cJSON_CreateObject();
        if (p->data) {
            cJSON_AddStringToObject(o, "type", "redacted_thinking");
            cJSON_AddStringToObject(o, "data", p->data);
        } else {
            cJSON_AddStringToObject(o, "type", "thinking");
            cJSON_AddStringToObject(o, "thinking", p->text);
            cJSON_AddStringToObject(o, "signature", p->sig);
        }
        return o;

    case LLMP_TR_TOOL_CALL:
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "tool_use");
        cJSON_AddStringToObject(o, "id", p->id);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddItemToObject(o, "input", llmp_tr_part_input(p));
        return o;
    }

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "tool_result");
    cJSON_AddStringToObject(o, "tool_use_id", p->id);

    n = 0;
    for (i = 0; i < p->content.n; i++) {
        n += part_emits(LLMP_IFACE_ANTHROPIC, LLMP_TR_USER, &p->content.v[i]);
    }

    if (p->response != NULL
        || (n && count_type(&p->content, LLMP_TR_MEDIA) == 0))
    {
        s = result_text(r, p);
        cJSON_AddStringToObject(o, "content", s ? s : "");

    } else if (n) {
        c = cJSON_AddArrayToObject(o, "content");
        for (i = 0; i < p->content.n; i++) {
            if (part_emits(LLMP_IFACE_ANTHROPIC, LLMP_TR_USER,
                           &p->content.v[i]))
            {
                cJSON_AddItemToArray(c, an_block(r, &p->content.v[i]));
            }
        }
    }

    if (p->is_error) {
        cJSON_AddTrueToObject(o, "is_error");
    }
    return o;
}


/*
 * Consecutive messages of one role become one message; in a user message
 * the tool results come first, as both Anthropic and Gemini want them.
 */
typedef cJSON *(*llmp_tr_block_pt)(llmp_tr_req_t *r, const llmp_tr_part_t *p);

static cJSON *ge_block(llmp_tr_req_t *r, const llmp_tr_part_t *p);


/* a Gemini functionResponse holds no media: they follow it as parts */
static int
req_result_media(llmp_tr_req_t *r, cJSON *parts, const llmp_tr_part_t *p)
{
    size_t  i;

    for (i = 0; i < p->content.n; i++) {
        if (p->content.v[i].type == LLMP_TR_MEDIA
            && !cJSON_AddItemToArray(parts, ge_block(r, &p->content.v[i])))
        {
            return -1;
        }
    }
    return 0;
}


static int
req_grouped(llmp_tr_req_t *r, int to, cJSON *msgs, llmp_tr_block_pt block,
    const char *content, const char *user, const char *assistant)
{
    int             role, pass;
    size_t          i, j, k, end;
    cJSON          *o, *c;
    llmp_tr_msg_t  *m;

    for (i = 0; i < r->nmsgs; i = end) {
        if (!msg_emits(to, &r->msgs[i])) {
            end = i + 1;
            continue;
        }
        role = r->msgs[i].role;
        for (end = i + 1; end < r->nmsgs; end++) {
            if (r->msgs[end].role != role && msg_emits(to, &r->msgs[end])) {
                break;
            }
        }

        o = cJSON_CreateObject();
        if (o == NULL) {
            return -1;
        }
        cJSON_AddItemToArray(msgs, o);
        cJSON_AddStringToObject(o, "role",
                                role == LLMP_TR_USER ? user : assistant);
        c = cJSON_AddArrayToObject(o, content);
        if (c == NULL) {
            return -1;
        }

        for (pass = 0; pass < 2; pass++) {
            for (k = i; k < end; k++) {
                m = &r->msgs[k];
                if (m->role != role) {
                    continue;
                }
                for (j = 0; j < m->parts.n; j++) {
                    if ((m->parts.v[j].type == LLMP_TR_TOOL_RESULT) != !pass
                        || !part_emits(to, role, &m->parts.v[j]))
                    {
                        continue;
                    }
                    if (!cJSON_AddItemToArray(c, block(r, &m->parts.v[j])))
                    {
                        return -1;
                    }
                    if (to == LLMP_IFACE_GEMINI && pass == 0
                        && req_result_media(r, c, &m->parts.v[j]) != 0)
                    {
                        return -1;
                    }
                }
            }
        }
    }

    return 0;
}


/* "tools" with an input_schema each (an empty object schema if none) */
static void
an_put_tools(llmp_tr_req_t *r, cJSON *root)
{
    size_t   k;
    cJSON   *o, *a, *s;

    a = cJSON_AddArrayToObject(root, "tools");
    for (k = 0; k < r->ntools; k++) {
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(a, o);
        cJSON_AddStringToObject(o, "name", r->tools[k].name);
        if (r->tools[k].description) {
            cJSON_AddStringToObject(o, "description", r->tools[k].description);
        }
        s = tool_schema_json(&r->tools[k]);
        if (s == NULL) {
            s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "type", "object");
            cJSON_AddObjectToObject(s, "properties");
        }
        cJSON_AddItemToObject(o, "input_schema", s);
    }
}


/* "tool_choice"; no parallel calls is a flag in it, so an unset choice
 * that forbids them becomes "auto" */
static void
an_put_tool_choice(llmp_tr_req_t *r, cJSON *root)
{
    cJSON       *o;
    const char  *tc;

    tc = NULL;
    switch (r->tool_choice) {
    case LLMP_TR_TC_AUTO:
        tc = "auto";
        break;
    case LLMP_TR_TC_ANY:
        tc = "any";
        break;
    case LLMP_TR_TC_NONE:
        tc = "none";
        break;
    case LLMP_TR_TC_TOOL:
        tc = "tool";
        break;
    default:
        if (r->no_parallel) {
            tc = "auto";
        }
    }
    if (tc != NULL) {
        o = cJSON_AddObjectToObject(root, "tool_choice");
        cJSON_AddStringToObject(o, "type", tc);
        if (r->tool_choice == LLMP_TR_TC_TOOL) {
            cJSON_AddStringToObject(o, "name", r->tool_name);
        }
        if (r->no_parallel && r->tool_choice != LLMP_TR_TC_NONE) {
            cJSON_AddTrueToObject(o, "disable_parallel_tool_use");
        }
    }
}


/* sampling, stop sequences, the user as metadata, and streaming */
static void
an_put_params(llmp_tr_req_t *r, cJSON *root)
{
    int     i;
    cJSON  *o, *a;

    if (r->has_temperature) {
        /* Anthropic's range is 0..1, OpenAI's and Gemini's 0..2 */
        llmp_tr_add_num(root, "temperature",
                        r->temperature > 1.0 ? 1.0 : r->temperature);
    }
    if (r->has_top_p) {
        llmp_tr_add_num(root, "top_p", r->top_p);
    }
    if (r->has_top_k) {
        llmp_tr_add_num(root, "top_k", (double) r->top_k);
    }
    if (r->nstop) {
        a = cJSON_AddArrayToObject(root, "stop_sequences");
        for (i = 0; i < r->nstop; i++) {
            cJSON_AddItemToArray(a, cJSON_CreateString(r->stop[i]));
        }
    }
    if (r->user) {
        o = cJSON_AddObjectToObject(root, "metadata");
        cJSON_AddStringToObject(o, "user_id", r->user);
    }
    if (r->stream) {
        cJSON_AddTrueToObject(root, "stream");
    }
}


static int
req_to_anthropic(llmp_tr_req_t *r, cJSON *root)
{
    size_t   k;
    cJSON   *msgs, *s;

    llmp_tr_add_num(root, "max_tokens", (double) (r->max_tokens > 0
                    ? r->max_tokens : LLMP_TRANSLATE_DEFAULT_MAX_TOKENS));

    if (count_type(&r->system, LLMP_TR_TEXT) == 1) {
        cJSON_AddStringToObject(root, "system", req_join(r, &r->system, ""));
    } else if (count_type(&r->system, LLMP_TR_TEXT) > 1) {
        s = cJSON_AddArrayToObject(root, "system");
        for (k = 0; k < r->system.n; k++) {
            if (r->system.v[k].type == LLMP_TR_TEXT
                && r->system.v[k].text[0] != '\0')
            {
                cJSON_AddItemToArray(s, an_text(r->system.v[k].text));
            }
        }
    }

    msgs = cJSON_AddArrayToObject(root, "messages");
    if (msgs == NULL
        || req_grouped(r, LLMP_IFACE_ANTHROPIC, msgs, an_block, "content",
                       "user", "assistant") != 0)
    {
        return -1;
    }

    if (r->ntools) {
        an_put_tools(r, root);
        an_put_tool_choice(r, root);
    }
    an_put_params(r, root);
    return 0;
}


/* to Gemini */

static cJSON *
ge_block(llmp_tr_req_t *r, const llmp_tr_part_t *p)
{
    cJSON       *o, *v, *resp;
    const char  *s, *mime;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }

    switch (p->type) {

    case LLMP_TR_TEXT:
        cJSON_AddStringToObject(o, "text", p->text);
        return o;

    case LLMP_TR_MEDIA:
        if (p->url != NULL) {
            v = cJSON_AddObjectToObject(o, "fileData");
            mime = p->mime ? p->mime : llmp_tr_guess_mime(p->url);
            if (mime) {
                cJSON_AddStringToObject(v, "mimeType", mime);
            }
            cJSON_AddStringToObject(v, "fileUri", p->url);
        } else {
            v = cJSON_AddObjectToObject(o, "inlineData");
            cJSON_AddStringToObject(v, "mimeType",
                                    p->mime ? p->mime
                                            : "application/octet-stream");
            cJSON_AddStringToObject(v, "data", p->data);
        }
        return o;

    case LLMP_TR_TOOL_CALL:
        v = cJSON_AddObjectToObject(o, "functionCall");
        cJSON_AddStringToObject(v, "name", p->name);
        cJSON_AddItemToObject(v, "args", llmp_tr_part_input(p));
        if (p->sig != NULL) {
            cJSON_AddStringToObject(o, "thoughtSignature", p->sig);
        }
        return o;
    }

    v = cJSON_AddObjectToObject(o, "functionResponse");
    cJSON_AddStringToObject(v, "name", p->name);

    if (cJSON_IsObject(p->response)) {
        resp = cJSON_Duplicate(p->response, 1);
    } else {
        s = result_text(r, p);
        resp = p->is_error ? NULL : llmp_tr_json_object(s);
        if (resp == NULL) {
            resp = cJSON_CreateObject();
            cJSON_AddStringToObject(resp, p->is_error ? "error" : "content",
                                    s ? s : "");
        }
    }
    cJSON_AddItemToObject(v, "response", resp);
    return o;
}


/* "tools": one entry holding all functionDeclarations */
static void
ge_put_tools(llmp_tr_req_t *r, cJSON *root)
{
    size_t   k;
    cJSON   *o, *a, *f, *s, *g;

    a = cJSON_AddArrayToObject(root, "tools");
    o = cJSON_CreateObject();
    cJSON_AddItemToArray(a, o);
    a = cJSON_AddArrayToObject(o, "functionDeclarations");
    for (k = 0; k < r->ntools; k++) {
        f = cJSON_CreateObject();
        cJSON_AddItemToArray(a, f);
        cJSON_AddStringToObject(f, "name", r->tools[k].name);
        if (r->tools[k].description) {
            cJSON_AddStringToObject(f, "description", r->tools[k].description);
        }
        if (r->tools[k].schema == NULL) {
            continue;
        }
        s = r->tools[k].gemini_schema
            ? cJSON_Duplicate(r->tools[k].schema, 1)
            : llmp_tr_schema_to_gemini(r->tools[k].schema);
        g = cJSON_GetObjectItemCaseSensitive(s, "properties");
        if (cJSON_GetArraySize(g) == 0 && !r->tools[k].gemini_schema) {
            /* Gemini refuses an OBJECT without properties */
            cJSON_Delete(s);
            continue;
        }
        cJSON_AddItemToObject(f, "parameters", s);
    }
}


/* toolConfig.functionCallingConfig: a named tool is ANY with one allowed */
static void
ge_put_tool_config(llmp_tr_req_t *r, cJSON *root)
{
    cJSON       *o, *a;
    const char  *mode;

    mode = NULL;
    switch (r->tool_choice) {
    case LLMP_TR_TC_AUTO:
        mode = "AUTO";
        break;
    case LLMP_TR_TC_ANY:
    case LLMP_TR_TC_TOOL:
        mode = "ANY";
        break;
    case LLMP_TR_TC_NONE:
        mode = "NONE";
        break;
    }
    if (mode != NULL) {
        o = cJSON_AddObjectToObject(root, "toolConfig");
        o = cJSON_AddObjectToObject(o, "functionCallingConfig");
        cJSON_AddStringToObject(o, "mode", mode);
        if (r->tool_choice == LLMP_TR_TC_TOOL) {
            a = cJSON_AddArrayToObject(o, "allowedFunctionNames");
            cJSON_AddItemToArray(a, cJSON_CreateString(r->tool_name));
        }
    }
}


/* generationConfig, left out when it would be empty */
static int
ge_put_generation_config(llmp_tr_req_t *r, cJSON *root)
{
    int     i;
    cJSON  *g, *a;

    g = cJSON_CreateObject();
    if (g == NULL) {
        return -1;
    }
    if (r->has_temperature) {
        llmp_tr_add_num(g, "temperature", r->temperature);
    }
    if (r->has_top_p) {
        llmp_tr_add_num(g, "topP", r->top_p);
    }
    if (r->has_top_k) {
        llmp_tr_add_num(g, "topK", (double) r->top_k);
    }
    if (r->max_tokens >= 0) {
        llmp_tr_add_num(g, "maxOutputTokens", (double) r->max_tokens);
    }
    if (r->nstop) {
        a = cJSON_AddArrayToObject(g, "stopSequences");
        for (i = 0; i < r->nstop; i++) {
            cJSON_AddItemToArray(a, cJSON_CreateString(r->stop[i]));
        }
    }
    if (r->n > 0) {
        llmp_tr_add_num(g, "candidateCount", (double) r->n);
    }
    if (r->has_seed) {
        llmp_tr_add_num(g, "seed", (double) r->seed);
    }
    if (r->has_presence) {
        llmp_tr_add_num(g, "presencePenalty", r->presence);
    }
    if (r->has_frequency) {
        llmp_tr_add_num(g, "frequencyPenalty", r->frequency);
    }
    if (r->json_mode) {
        cJSON_AddStringToObject(g, "responseMimeType", "application/json");
    }
    if (g->child != NULL) {
        cJSON_AddItemToObject(root, "generationConfig", g);
    } else {
        cJSON_Delete(g);
    }
    return 0;
}


static int
req_to_gemini(llmp_tr_req_t *r, cJSON *root)
{
    int      sys;
    size_t   k;
    cJSON   *c, *o, *a;

    sys = 0;
    for (k = 0; k < r->system.n; k++) {
        sys |= r->system.v[k].type == LLMP_TR_TEXT
               && r->system.v[k].text[0] != '\0';
    }
    if (sys) {
        o = cJSON_AddObjectToObject(root, "systemInstruction");
        a = cJSON_AddArrayToObject(o, "parts");
        for (k = 0; k < r->system.n; k++) {
            if (r->system.v[k].type == LLMP_TR_TEXT
                && r->system.v[k].text[0] != '\0')
            {
                o = cJSON_CreateObject();
                cJSON_AddItemToArray(a, o);
                cJSON_AddStringToObject(o, "text", r->system.v[k].text);
            }
        }
    }

    c = cJSON_AddArrayToObject(root, "contents");
    if (c == NULL
        || req_grouped(r, LLMP_IFACE_GEMINI, c, ge_block, "parts",
                       "user", "model") != 0)
    {
        return -1;
    }

    if (r->ntools) {
        ge_put_tools(r, root);
        ge_put_tool_config(r, root);
    }
    return ge_put_generation_config(r, root);
}


/* the same interface on both sides: the body as it is, model rewritten */
static int
req_identity(int iface, cJSON *root, const char *model, int stream)
{
    cJSON  *o;

    cJSON_DeleteItemFromObjectCaseSensitive(root, "model");

    if (iface == LLMP_IFACE_GEMINI) {
        return 0;
    }

    if (model != NULL) {
        if (root->child == NULL) {
            cJSON_AddStringToObject(root, "model", model);
        } else {
            o = cJSON_CreateString(model);
            if (o == NULL) {
                return -1;
            }
            o->string = strdup("model");
            if (o->string == NULL) {
                cJSON_Delete(o);
                return -1;
            }
            /* first, where readers expect it */
            o->next = root->child;
            o->prev = root->child->prev;
            root->child->prev = o;
            root->child = o;
        }
    }

    if (stream) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "stream");
        cJSON_AddTrueToObject(root, "stream");
        if (iface == LLMP_IFACE_OPENAI) {
            o = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
            if (!cJSON_IsObject(o)) {
                cJSON_DeleteItemFromObjectCaseSensitive(root,
                                                        "stream_options");
                o = cJSON_AddObjectToObject(root, "stream_options");
            }
            cJSON_DeleteItemFromObjectCaseSensitive(o, "include_usage");
            cJSON_AddTrueToObject(o, "include_usage");
        }
    }
    return 0;
}


int
llmp_translate_request(int from, int to, const char *body, size_t len,
    const char *model, int stream, llmp_buf_t *out, char *err,
    size_t errlen)
{
    int            rc;
    cJSON         *root, *res;
    llmp_tr_req_t  r;

    if (llmp_iface_name(from) == NULL || llmp_iface_name(to) == NULL) {
        llmp_tr_err(err, errlen, "unknown interface");
        return -1;
    }

    root = llmp_tr_parse(body, len);
    if (root == NULL) {
        llmp_tr_err(err, errlen, "the request body is not valid JSON");
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        llmp_tr_err(err, errlen, "the request body must be a JSON object");
        return -1;
    }

    if (from == to) {
        rc = req_identity(from, root, model, stream);
        if (rc == 0) {
            rc = llmp_tr_print(root, out);
        }
        cJSON_Delete(root);
        if (rc != 0) {
            llmp_tr_err(err, errlen, LLMP_TR_OOM);
        }
        return rc;
    }

    memset(&r, 0, sizeof(llmp_tr_req_t));
    r.max_tokens = -1;
    r.n = -1;
    r.think_budget = -1;
    r.stream = stream;

    switch (from) {
    case LLMP_IFACE_OPENAI:
        rc = req_from_openai(&r, root, err, errlen);
        break;
    case LLMP_IFACE_ANTHROPIC:
        rc = req_from_anthropic(&r, root, err, errlen);
        break;
    default:
        rc = req_from_gemini(&r, root, err, errlen);
    }

    if (rc == 0) {
        llmp_tr_think_request(from, &r, root);
    }

    if (rc == 0 && req_link_tools(&r) != 0) {
        llmp_tr_err(err, errlen, LLMP_TR_OOM);
        rc = -1;
    }

    res = NULL;
    if (rc == 0) {
        res = cJSON_CreateObject();
        if (res == NULL) {
            rc = -1;
        } else if (to != LLMP_IFACE_GEMINI && model != NULL) {
            cJSON_AddStringToObject(res, "model", model);
        }
    }

    if (rc == 0) {
        switch (to) {
        case LLMP_IFACE_OPENAI:
            rc = req_to_openai(&r, res);
            break;
        case LLMP_IFACE_ANTHROPIC:
            rc = req_to_anthropic(&r, res);
            break;
        default:
            rc = req_to_gemini(&r, res);
        }
        if (rc == 0) {
            rc = llmp_tr_think_emit(to, &r, res);
        }
        if (rc == 0) {
            rc = llmp_tr_print(res, out);
        }
        if (rc != 0) {
            llmp_tr_err(err, errlen, LLMP_TR_OOM);
        }
    }

    cJSON_Delete(res);
    req_free(&r);
    cJSON_Delete(root);
    return rc;
}

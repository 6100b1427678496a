/*
 * Stream translation.  The provider's SSE events are split by llmp_sse,
 * read by a parser of the provider's interface, which calls the neutral
 * st_* events (start, text, tool start/arguments/end, finish, end,
 * error); the client's interface writes those as its own SSE events.
 *
 * What a client interface cannot say at once is kept until it can:
 * Gemini wants a function call whole (arguments are collected until the
 * call ends), Anthropic's message_delta and Gemini's last chunk carry the
 * usage, which OpenAI sends after the finish_reason, so they are written
 * at the end of the provider's stream.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmp_translate_int.h"
#include "llmp_sse.h"


#define ST_MAX_CHOICES  8
#define ST_MAX_TOOLS    1024
#define ST_MAX_BLOCKS   65536

enum {
    ST_BLK_NONE = 0,
    ST_BLK_TEXT,
    ST_BLK_TOOL,
    ST_BLK_OTHER,
    ST_BLK_THINK
};

typedef struct {
    int          choice;
    int          no;            /* its index among the choice's calls */
    char        *id;
    char        *name;
    llmp_buf_t   args;          /* gemini client: the arguments so far */
    int          block;         /* anthropic client: its block index */
    int          done;
} st_tool_t;

typedef struct {
    int  kind;
    int  no;
} st_block_t;

struct llmp_stream_s {
    int           from;
    int           to;
    int           include_usage;
    char         *model;
    char         *id;
    long long     created;
    char          nonce[LLMP_TR_NONCE_LEN + 1];

    llmp_sse_t    sse;
    llmp_buf_t   *out;

    int           broken;
    int           started;
    int           ended;
    int           errored;

    long long     prompt;
    long long     completion;
    long long     cached;
    long long     reasoning;    /* completion tokens spent thinking */

    int           finish[ST_MAX_CHOICES];
    char         *stop_seq;
    int           has_tools[ST_MAX_CHOICES];
    int           seen[ST_MAX_CHOICES];

    st_tool_t    *tools;
    int           ntools;

    /* openai provider */
    int           oa_open[ST_MAX_CHOICES];     /* the call being streamed */

    /* anthropic provider */
    st_block_t   *blocks;
    int           nblocks;
    int           an_calls;

    /* gemini provider */
    int           ge_calls[ST_MAX_CHOICES];
    unsigned      ge_ids;

    /* anthropic client */
    int           a_next;       /* the next block index */
    int           a_open;       /* the open block, -1: none */
    int           a_open_kind;
};


static int
st_out(llmp_stream_t *s, const char *p, size_t n)
{
    if (llmp_buf_append(s->out, p, n) != 0) {
        s->broken = 1;
        return -1;
    }
    return 0;
}


/* "data: {json}" plus the interface's event end; frees the tree */
static int
st_emit(llmp_stream_t *s, const char *event, cJSON *o)
{
    int    rc;
    char  *json;

    if (o == NULL) {
        s->broken = 1;
        return -1;
    }
    json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (json == NULL) {
        s->broken = 1;
        return -1;
    }

    rc = 0;
    if (event != NULL) {
        rc |= st_out(s, "event: ", 7);
        rc |= st_out(s, event, strlen(event));
        rc |= st_out(s, "\n", 1);
    }
    rc |= st_out(s, "data: ", 6);
    rc |= st_out(s, json, strlen(json));
    if (s->to == LLMP_IFACE_GEMINI) {
        rc |= st_out(s, "\r\n\r\n", 4);
    } else {
        rc |= st_out(s, "\n\n", 2);
    }
    free(json);
    return rc ? -1 : 0;
}


static st_tool_t *
st_tool(llmp_stream_t *s, int c, int no)
{
    int  i;

    for (i = s->ntools - 1; i >= 0; i--) {
        if (s->tools[i].choice == c && s->tools[i].no == no) {
            return &s->tools[i];
        }
    }
    return NULL;
}


static const char *
st_id(llmp_stream_t *s)
{
    char   id[64];

    if (s->id == NULL) {
        snprintf(id, sizeof(id), "%s%s",
                 s->to == LLMP_IFACE_ANTHROPIC ? "msg_"
                 : s->to == LLMP_IFACE_OPENAI ? "chatcmpl-" : "",
                 s->nonce);
        s->id = strdup(id);
        if (s->id == NULL) {
            s->broken = 1;
            return "";
        }
    }
    return s->id;
}


static int
st_fr(llmp_stream_t *s, int c)
{
    int  fr;

    fr = s->finish[c];
    if ((fr == LLMP_TR_FR_STOP || fr == LLMP_TR_FR_NONE) && s->has_tools[c]) {
        return LLMP_TR_FR_TOOL;
    }
    return fr == LLMP_TR_FR_NONE ? LLMP_TR_FR_STOP : fr;
}


/* OpenAI client */

static cJSON *
oa_chunk(llmp_stream_t *s, int c, cJSON **delta)
{
    cJSON  *o, *a, *ch;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "id", st_id(s));
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    llmp_tr_add_num(o, "created", (double) s->created);
    cJSON_AddStringToObject(o, "model", s->model);
    a = cJSON_AddArrayToObject(o, "choices");
    if (c < 0) {
        return o;
    }
    ch = cJSON_CreateObject();
    cJSON_AddItemToArray(a, ch);
    llmp_tr_add_num(ch, "index", c);
    *delta = cJSON_AddObjectToObject(ch, "delta");
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddNullToObject(ch, "finish_reason");
    if (*delta == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}


static int
oa_role(llmp_stream_t *s, int c)
{
    cJSON  *o, *d;

    if (s->seen[c]) {
        return 0;
    }
    s->seen[c] = 1;
    o = oa_chunk(s, c, &d);
    if (o != NULL) {
        cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", "");
    }
    return st_emit(s, NULL, o);
}


static int
oa_tool_delta(llmp_stream_t *s, st_tool_t *t, const char *frag, size_t len)
{
    char   *copy;
    cJSON  *o, *d, *a, *x, *f;

    o = oa_chunk(s, t->choice, &d);
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    a = cJSON_AddArrayToObject(d, "tool_calls");
    x = cJSON_CreateObject();
    cJSON_AddItemToArray(a, x);
    llmp_tr_add_num(x, "index", t->no);
    if (frag == NULL) {
        cJSON_AddStringToObject(x, "id", t->id);
        cJSON_AddStringToObject(x, "type", "function");
    }
    f = cJSON_AddObjectToObject(x, "function");
    if (frag == NULL) {
        cJSON_AddStringToObject(f, "name", t->name);
        cJSON_AddStringToObject(f, "arguments", "");
    } else {
        copy = llmp_tr_strndup_heap(frag, len);
        if (copy == NULL) {
            cJSON_Delete(o);
            return st_emit(s, NULL, NULL);
        }
        cJSON_AddStringToObject(f, "arguments", copy);
        free(copy);
    }
    return st_emit(s, NULL, o);
}


static cJSON *
oa_usage(llmp_stream_t *s)
{
    cJSON      *u, *d;
    long long   p, c;

    u = cJSON_CreateObject();
    if (u == NULL) {
        return NULL;
    }
    p = s->prompt > 0 ? s->prompt : 0;
    c = s->completion > 0 ? s->completion : 0;
    llmp_tr_add_num(u, "prompt_tokens", (double) p);
    llmp_tr_add_num(u, "completion_tokens", (double) c);
    llmp_tr_add_num(u, "total_tokens", (double) (p + c));
    if (s->cached >= 0) {
        d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
        llmp_tr_add_num(d, "cached_tokens", (double) s->cached);
    }
    if (s->reasoning >= 0) {
        d = cJSON_AddObjectToObject(u, "completion_tokens_details");
        llmp_tr_add_num(d, "reasoning_tokens", (double) s->reasoning);
    }
    return u;
}


/* Anthropic client */

static int
an_start(llmp_stream_t *s)
{
    cJSON      *o, *m, *u;
    long long   in;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    cJSON_AddStringToObject(o, "type", "message_start");
    m = cJSON_AddObjectToObject(o, "message");
    cJSON_AddStringToObject(m, "id", st_id(s));
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", s->model);
    cJSON_AddArrayToObject(m, "content");
    cJSON_AddNullToObject(m, "stop_reason");
    cJSON_AddNullToObject(m, "stop_sequence");
    u = cJSON_AddObjectToObject(m, "usage");
    in = s->prompt > 0 ? s->prompt : 0;
    if (s->cached > 0 && s->cached <= in) {
        in -= s->cached;
    }
    llmp_tr_add_num(u, "input_tokens", (double) in);
    if (s->cached > 0) {
        llmp_tr_add_num(u, "cache_read_input_tokens", (double) s->cached);
    }
    llmp_tr_add_num(u, "output_tokens",
                    (double) (s->completion > 0 ? s->completion : 0));
    return st_emit(s, "message_start", o);
}


static int
an_close(llmp_stream_t *s)
{
    cJSON  *o;

    if (s->a_open < 0) {
        return 0;
    }
    o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "type", "content_block_stop");
        llmp_tr_add_num(o, "index", s->a_open);
    }
    s->a_open = -1;
    s->a_open_kind = ST_BLK_NONE;
    return st_emit(s, "content_block_stop", o);
}


static int
an_open(llmp_stream_t *s, int kind, st_tool_t *t)
{
    cJSON  *o, *b;

    if (an_close(s) != 0) {
        return -1;
    }
    o = cJSON_CreateObject();
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    cJSON_AddStringToObject(o, "type", "content_block_start");
    llmp_tr_add_num(o, "index", s->a_next);
    b = cJSON_AddObjectToObject(o, "content_block");
    if (kind == ST_BLK_TEXT) {
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", "");
    } else if (kind == ST_BLK_THINK) {
        cJSON_AddStringToObject(b, "type", "thinking");
        cJSON_AddStringToObject(b, "thinking", "");
    } else {
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", t->id);
        cJSON_AddStringToObject(b, "name", t->name);
        cJSON_AddObjectToObject(b, "input");
        t->block = s->a_next;
    }
    s->a_open = s->a_next++;
    s->a_open_kind = kind;
    return st_emit(s, "content_block_start", o);
}


static int
an_delta(llmp_stream_t *s, int index, const char *type, const char *key,
    const char *text, size_t len)
{
    char   *copy;
    cJSON  *o, *d;

    copy = llmp_tr_strndup_heap(text, len);
    o = cJSON_CreateObject();
    if (o == NULL || copy == NULL) {
        free(copy);
        cJSON_Delete(o);
        return st_emit(s, NULL, NULL);
    }
    cJSON_AddStringToObject(o, "type", "content_block_delta");
    llmp_tr_add_num(o, "index", index);
    d = cJSON_AddObjectToObject(o, "delta");
    cJSON_AddStringToObject(d, "type", type);
    cJSON_AddStringToObject(d, key, copy);
    free(copy);
    return st_emit(s, "content_block_delta", o);
}


/* Gemini client */

static cJSON *
ge_chunk(llmp_stream_t *s, cJSON **cands)
{
    cJSON  *o;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    *cands = cJSON_AddArrayToObject(o, "candidates");
    if (*cands == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}


static void
ge_tail(llmp_stream_t *s, cJSON *o)
{
    cJSON_AddStringToObject(o, "modelVersion", s->model);
    cJSON_AddStringToObject(o, "responseId", st_id(s));
}


static cJSON *
ge_candidate(cJSON *cands, int c, cJSON **parts)
{
    cJSON  *x, *content;

    x = cJSON_CreateObject();
    cJSON_AddItemToArray(cands, x);
    content = cJSON_AddObjectToObject(x, "content");
    *parts = cJSON_AddArrayToObject(content, "parts");
    cJSON_AddStringToObject(content, "role", "model");
    llmp_tr_add_num(x, "index", c);
    return x;
}


static int
ge_flush_tool(llmp_stream_t *s, st_tool_t *t)
{
    const char  *sig;
    cJSON       *o, *cands, *parts, *p, *f, *args;

    if (t->done) {
        return 0;
    }
    t->done = 1;

    o = ge_chunk(s, &cands);
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    ge_candidate(cands, t->choice, &parts);
    p = cJSON_CreateObject();
    cJSON_AddItemToArray(parts, p);
    sig = llmp_tr_sig_of(t->id);
    if (sig != NULL) {
        cJSON_AddStringToObject(p, "thoughtSignature", sig);
    }
    f = cJSON_AddObjectToObject(p, "functionCall");
    cJSON_AddStringToObject(f, "name", t->name);
    args = t->args.len ? llmp_tr_json_object(t->args.data) : NULL;
    cJSON_AddItemToObject(f, "args", args ? args : cJSON_CreateObject());
    ge_tail(s, o);
    return st_emit(s, NULL, o);
}


static int
ge_flush_tools(llmp_stream_t *s, int c)
{
    int  i;

    for (i = 0; i < s->ntools; i++) {
        if ((c < 0 || s->tools[i].choice == c)
            && ge_flush_tool(s, &s->tools[i]) != 0)
        {
            return -1;
        }
    }
    return 0;
}


/* the neutral events */

static int
st_start(llmp_stream_t *s)
{
    if (s->started) {
        return 0;
    }
    s->started = 1;

    switch (s->to) {
    case LLMP_IFACE_OPENAI:
        return oa_role(s, 0);
    case LLMP_IFACE_ANTHROPIC:
        return an_start(s);
    }
    return 0;
}


static int
st_text(llmp_stream_t *s, int c, const char *text, size_t len)
{
    char   *copy;
    cJSON  *o, *d, *cands, *parts, *p;

    if (len == 0 || st_start(s) != 0) {
        return s->broken ? -1 : 0;
    }

    switch (s->to) {

    case LLMP_IFACE_OPENAI:
        if (oa_role(s, c) != 0) {
            return -1;
        }
        o = oa_chunk(s, c, &d);
        copy = llmp_tr_strndup_heap(text, len);
        if (o == NULL || copy == NULL) {
            free(copy);
            cJSON_Delete(o);
            return st_emit(s, NULL, NULL);
        }
        cJSON_AddStringToObject(d, "content", copy);
        free(copy);
        return st_emit(s, NULL, o);

    case LLMP_IFACE_ANTHROPIC:
        if (c != 0) {
            return 0;
        }
        if (s->a_open_kind != ST_BLK_TEXT
            && an_open(s, ST_BLK_TEXT, NULL) != 0)
        {
            return -1;
        }
        return an_delta(s, s->a_open, "text_delta", "text", text, len);
    }

    if (ge_flush_tools(s, c) != 0) {
        return -1;
    }
    o = ge_chunk(s, &cands);
    copy = llmp_tr_strndup_heap(text, len);
    if (o == NULL || copy == NULL) {
        free(copy);
        cJSON_Delete(o);
        return st_emit(s, NULL, NULL);
    }
    ge_candidate(cands, c, &parts);
    p = cJSON_CreateObject();
    cJSON_AddItemToArray(parts, p);
    cJSON_AddStringToObject(p, "text", copy);
    free(copy);
    ge_tail(s, o);
    return st_emit(s, NULL, o);
}


/*
 * Reasoning: text, or (text NULL) the (Anthropic) signature that closes
 * it.  An OpenAI client gets delta.reasoning_content and a thinking_blocks
 * entry with the signature, an Anthropic one a thinking block, a Gemini
 * one thought parts without the signature.
 */
static int
st_think(llmp_stream_t *s, int c, const char *text, size_t len,
    const char *sig)
{
    char   *copy;
    cJSON  *o, *d, *a, *b, *cands, *parts, *p;

    if ((text != NULL && len == 0) || (text == NULL && sig == NULL)
        || st_start(s) != 0)
    {
        return s->broken ? -1 : 0;
    }

    copy = llmp_tr_strndup_heap(text ? text : sig, text ? len : strlen(sig));
    if (copy == NULL) {
        return st_emit(s, NULL, NULL);
    }

    switch (s->to) {

    case LLMP_IFACE_OPENAI:
        if (oa_role(s, c) != 0) {
            free(copy);
            return -1;
        }
        o = oa_chunk(s, c, &d);
        if (o != NULL && text != NULL) {
            cJSON_AddStringToObject(d, "reasoning_content", copy);
        } else if (o != NULL) {
            a = cJSON_AddArrayToObject(d, "thinking_blocks");
            b = cJSON_CreateObject();
            cJSON_AddItemToArray(a, b);
            cJSON_AddStringToObject(b, "type", "thinking");
            cJSON_AddStringToObject(b, "thinking", "");
            cJSON_AddStringToObject(b, "signature", copy);
        }
        free(copy);
        return st_emit(s, NULL, o);

    case LLMP_IFACE_ANTHROPIC:
        if (c != 0
            || (s->a_open_kind != ST_BLK_THINK
                && an_open(s, ST_BLK_THINK, NULL) != 0))
        {
            free(copy);
            return s->broken ? -1 : 0;
        }
        c = an_delta(s, s->a_open,
                     text ? "thinking_delta" : "signature_delta",
                     text ? "thinking" : "signature", copy, strlen(copy));
        free(copy);
        return c;
    }

    /* an Anthropic signature is no Gemini thoughtSignature */

    if (text == NULL || ge_flush_tools(s, c) != 0) {
        free(copy);
        return s->broken ? -1 : 0;
    }
    o = ge_chunk(s, &cands);
    if (o == NULL) {
        free(copy);
        return st_emit(s, NULL, NULL);
    }
    ge_candidate(cands, c, &parts);
    p = cJSON_CreateObject();
    cJSON_AddItemToArray(parts, p);
    cJSON_AddStringToObject(p, "text", copy);
    cJSON_AddTrueToObject(p, "thought");
    free(copy);
    ge_tail(s, o);
    return st_emit(s, NULL, o);
}


static const char *
st_gen_id(llmp_stream_t *s, char *gen, size_t n)
{
    snprintf(gen, n, "call_%.12s_%u", s->nonce, s->ge_ids++);
    return gen;
}


static int
st_tool_start(llmp_stream_t *s, int c, int no, const char *id,
    const char *name)
{
    char        gen[64];
    st_tool_t  *t;

    if (st_start(s) != 0 || st_tool(s, c, no) != NULL
        || s->ntools == ST_MAX_TOOLS)
    {
        return s->broken ? -1 : 0;
    }

    t = realloc(s->tools, (s->ntools + 1) * sizeof(st_tool_t));
    if (t == NULL) {
        s->broken = 1;
        return -1;
    }
    s->tools = t;
    t = &s->tools[s->ntools++];
    memset(t, 0, sizeof(st_tool_t));
    t->choice = c;
    t->no = no;
    t->block = -1;
    if (id == NULL || id[0] == '\0') {
        id = st_gen_id(s, gen, sizeof(gen));
    }
    t->id = strdup(id);
    t->name = strdup(name ? name : "");
    if (t->id == NULL || t->name == NULL) {
        s->broken = 1;
        return -1;
    }
    s->has_tools[c] = 1;

    switch (s->to) {
    case LLMP_IFACE_OPENAI:
        if (oa_role(s, c) != 0) {
            return -1;
        }
        return oa_tool_delta(s, t, NULL, 0);
    case LLMP_IFACE_ANTHROPIC:
        if (c != 0) {
            return 0;
        }
        return an_open(s, ST_BLK_TOOL, t);
    }
    return 0;
}


static int
st_tool_args(llmp_stream_t *s, int c, int no, const char *frag, size_t len)
{
    st_tool_t  *t;

    t = st_tool(s, c, no);
    if (t == NULL || len == 0) {
        return 0;
    }

    switch (s->to) {
    case LLMP_IFACE_OPENAI:
        return oa_tool_delta(s, t, frag, len);
    case LLMP_IFACE_ANTHROPIC:
        if (c != 0 || t->block < 0) {
            return 0;
        }
        return an_delta(s, t->block, "input_json_delta", "partial_json",
                        frag, len);
    }

    if (t->done) {
        return 0;
    }
    if (t->args.len + len > LLMP_SSE_MAX
        || llmp_buf_append(&t->args, frag, len) != 0)
    {
        s->broken = 1;
        return -1;
    }
    return 0;
}


static int
st_tool_end(llmp_stream_t *s, int c, int no)
{
    st_tool_t  *t;

    t = st_tool(s, c, no);
    if (t == NULL) {
        return 0;
    }

    switch (s->to) {
    case LLMP_IFACE_ANTHROPIC:
        if (c == 0 && t->block >= 0 && s->a_open == t->block) {
            return an_close(s);
        }
        return 0;
    case LLMP_IFACE_GEMINI:
        return ge_flush_tool(s, t);
    }
    return 0;
}


static int
st_finish(llmp_stream_t *s, int c, int fr, const char *stop_seq)
{
    cJSON  *o, *d;

    if (st_start(s) != 0) {
        return -1;
    }
    s->finish[c] = fr;
    if (stop_seq != NULL && c == 0) {
        free(s->stop_seq);
        s->stop_seq = strdup(stop_seq);
    }

    if (s->to != LLMP_IFACE_OPENAI) {
        return 0;
    }
    if (oa_role(s, c) != 0) {
        return -1;
    }
    o = oa_chunk(s, c, &d);
    if (o != NULL) {
        cJSON_ReplaceItemInObjectCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o,
                                                                "choices"),
                               0),
            "finish_reason",
            cJSON_CreateString(llmp_tr_finish_to(LLMP_IFACE_OPENAI,
                                                 st_fr(s, c))));
    }
    return st_emit(s, NULL, o);
}


/* the end of an OpenAI stream: the usage chunk if asked for, then [DONE] */
static int
st_end_openai(llmp_stream_t *s)
{
    cJSON  *o, *d;

    if (s->include_usage && (s->prompt >= 0 || s->completion >= 0)) {
        o = oa_chunk(s, -1, &d);
        if (o != NULL) {
            cJSON_AddItemToObject(o, "usage", oa_usage(s));
        }
        if (st_emit(s, NULL, o) != 0) {
            return -1;
        }
    }
    return st_out(s, "data: [DONE]\n\n", 14);
}


/* the end of an Anthropic stream: message_delta with the stop reason and
 * usage (input without cache reads, as Anthropic counts), message_stop */
static int
st_end_anthropic(llmp_stream_t *s)
{
    cJSON  *o, *d, *u;

    if (st_start(s) != 0 || an_close(s) != 0) {
        return -1;
    }
    o = cJSON_CreateObject();
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    cJSON_AddStringToObject(o, "type", "message_delta");
    d = cJSON_AddObjectToObject(o, "delta");
    cJSON_AddStringToObject(d, "stop_reason",
                            llmp_tr_finish_to(LLMP_IFACE_ANTHROPIC,
                                              st_fr(s, 0)));
    if (st_fr(s, 0) == LLMP_TR_FR_STOP_SEQ && s->stop_seq != NULL) {
        cJSON_AddStringToObject(d, "stop_sequence", s->stop_seq);
    } else {
        cJSON_AddNullToObject(d, "stop_sequence");
    }
    u = cJSON_AddObjectToObject(o, "usage");
    if (s->prompt >= 0) {
        llmp_tr_add_num(u, "input_tokens",
                        (double) (s->prompt - (s->cached > 0
                                          && s->cached <= s->prompt
                                          ? s->cached : 0)));
    }
    llmp_tr_add_num(u, "output_tokens",
                    (double) (s->completion > 0 ? s->completion : 0));
    if (st_emit(s, "message_delta", o) != 0) {
        return -1;
    }
    o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "type", "message_stop");
    }
    return st_emit(s, "message_stop", o);
}


/* the end of a Gemini stream: pending calls, then one last chunk with the
 * finish reasons and usage, if there is any */
static int
st_end_gemini(llmp_stream_t *s)
{
    int     c, n;
    cJSON  *o, *d, *cands, *parts, *u;

    if (ge_flush_tools(s, -1) != 0) {
        return -1;
    }

    o = ge_chunk(s, &cands);
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }
    n = 0;
    for (c = 0; c < ST_MAX_CHOICES; c++) {
        if (s->finish[c] == LLMP_TR_FR_NONE) {
            continue;
        }
        d = ge_candidate(cands, c, &parts);
        u = cJSON_CreateObject();
        cJSON_AddItemToArray(parts, u);
        cJSON_AddStringToObject(u, "text", "");
        cJSON_AddStringToObject(d, "finishReason",
                                llmp_tr_finish_to(LLMP_IFACE_GEMINI,
                                                  st_fr(s, c)));
        n++;
    }
    if (s->prompt >= 0 || s->completion >= 0) {
        u = cJSON_AddObjectToObject(o, "usageMetadata");
        llmp_tr_add_num(u, "promptTokenCount",
                        (double) (s->prompt > 0 ? s->prompt : 0));
        llmp_tr_add_num(u, "candidatesTokenCount",
                        (double) (s->completion > 0 ? s->completion : 0));
        llmp_tr_add_num(u, "totalTokenCount",
                        (double) ((s->prompt > 0 ? s->prompt : 0)
                             + (s->completion > 0 ? s->completion : 0)));
        if (s->cached > 0) {
            llmp_tr_add_num(u, "cachedContentTokenCount", (double) s->cached);
        }
        n++;
    }
    if (n == 0) {
        cJSON_Delete(o);
        return 0;
    }
    ge_tail(s, o);
    return st_emit(s, NULL, o);
}


static int
st_end(llmp_stream_t *s)
{
    if (s->ended || s->errored) {
        return 0;
    }
    s->ended = 1;

    switch (s->to) {
    case LLMP_IFACE_OPENAI:
        return st_end_openai(s);
    case LLMP_IFACE_ANTHROPIC:
        return st_end_anthropic(s);
    }
    return st_end_gemini(s);
}


static int
st_error(llmp_stream_t *s, int status, const char *type, const char *msg)
{
    cJSON  *o, *e;

    if (s->ended || s->errored) {
        return 0;
    }
    s->errored = 1;
    if (msg == NULL || msg[0] == '\0') {
        msg = "upstream stream error";
    }

    o = cJSON_CreateObject();
    if (o == NULL) {
        return st_emit(s, NULL, NULL);
    }

    switch (s->to) {

    case LLMP_IFACE_OPENAI:
        e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type",
                                s->from == LLMP_IFACE_OPENAI && type
                                ? type
                                : llmp_iface_error_type(LLMP_IFACE_OPENAI,
                                                        status));
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
        return st_emit(s, NULL, o);

    case LLMP_IFACE_ANTHROPIC:
        cJSON_AddStringToObject(o, "type", "error");
        e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "type",
                                s->from == LLMP_IFACE_ANTHROPIC && type
                                ? type
                                : llmp_iface_error_type(LLMP_IFACE_ANTHROPIC,
                                                        status));
        cJSON_AddStringToObject(e, "message", msg);
        return st_emit(s, "error", o);
    }

    e = cJSON_AddObjectToObject(o, "error");
    llmp_tr_add_num(e, "code", status);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "status",
                            s->from == LLMP_IFACE_GEMINI && type
                            ? type
                            : llmp_iface_error_type(LLMP_IFACE_GEMINI,
                                                    status));
    return st_emit(s, NULL, o);
}


static void
st_usage_anthropic(llmp_stream_t *s, const cJSON *u)
{
    long long  in, cw, cr, out;

    in = llmp_tr_int(u, "input_tokens");
    cw = llmp_tr_int(u, "cache_creation_input_tokens");
    cr = llmp_tr_int(u, "cache_read_input_tokens");
    out = llmp_tr_int(u, "output_tokens");

    if (in >= 0) {
        s->prompt = in + (cw > 0 ? cw : 0) + (cr > 0 ? cr : 0);
    }
    if (cr >= 0) {
        s->cached = cr;
    }
    if (out >= 0) {
        s->completion = out;
    }
}


/* OpenAI provider */

/* a chunk's tool call fragments for choice c: a new index ends the call
 * open before it */
static int
st_oa_tool_calls(llmp_stream_t *s, int c, const cJSON *d)
{
    int           no;
    const char   *t;
    const cJSON  *tc, *f;

    no = 0;
    cJSON_ArrayForEach(tc, llmp_tr_get(d, "tool_calls", NULL)) {
        if (llmp_tr_int(tc, "index") >= 0
            && llmp_tr_int(tc, "index") < ST_MAX_TOOLS)
        {
            no = (int) llmp_tr_int(tc, "index");
        }
        f = llmp_tr_get(tc, "function", NULL);
        if (st_tool(s, c, no) == NULL) {
            if (s->oa_open[c] >= 0 && st_tool_end(s, c, s->oa_open[c]) != 0) {
                return -1;
            }
            if (st_tool_start(s, c, no, llmp_tr_str(tc, "id"),
                              llmp_tr_str(f, "name")) != 0)
            {
                return -1;
            }
            s->oa_open[c] = no;
        }
        t = llmp_tr_str(f, "arguments");
        if (t != NULL && st_tool_args(s, c, no, t, strlen(t)) != 0) {
            return -1;
        }
        no++;
    }
    return 0;
}


/* one entry of a chunk's "choices": reasoning, text, tool calls, finish */
static int
st_oa_choice(llmp_stream_t *s, int c, const cJSON *it)
{
    const char   *t;
    const cJSON  *d, *tc;

    d = llmp_tr_get(it, "delta", NULL);

    t = llmp_tr_str(d, "reasoning_content");
    if (t != NULL && st_think(s, c, t, strlen(t), NULL) != 0) {
        return -1;
    }
    cJSON_ArrayForEach(tc, llmp_tr_get(d, "thinking_blocks", NULL)) {
        t = llmp_tr_str(tc, "signature");
        if (t != NULL && t[0] != '\0' && st_think(s, c, NULL, 0, t) != 0) {
            return -1;
        }
    }

    t = llmp_tr_str(d, "content");
    if (t != NULL && st_text(s, c, t, strlen(t)) != 0) {
        return -1;
    }
    t = llmp_tr_str(d, "refusal");
    if (t != NULL && st_text(s, c, t, strlen(t)) != 0) {
        return -1;
    }

    if (st_oa_tool_calls(s, c, d) != 0) {
        return -1;
    }

    t = llmp_tr_str(it, "finish_reason");
    if (t != NULL) {
        if (s->oa_open[c] >= 0 && st_tool_end(s, c, s->oa_open[c]) != 0) {
            return -1;
        }
        s->oa_open[c] = -1;
        if (st_finish(s, c, llmp_tr_finish_from(LLMP_IFACE_OPENAI, t), NULL)
            != 0)
        {
            return -1;
        }
    }
    return 0;
}


static int
st_from_openai(llmp_stream_t *s, const cJSON *root)
{
    int           c, pos;
    const char   *t;
    const cJSON  *it, *u, *e;

    e = llmp_tr_get(root, "error", NULL);
    if (e != NULL && !cJSON_IsNull(e)) {
        t = llmp_tr_str(e, "type");
        return st_error(s, llmp_tr_status_from_anthropic_type(t), t,
                        cJSON_IsString(e) ? e->valuestring
                                          : llmp_tr_str(e, "message"));
    }

    if (s->id == NULL && llmp_tr_str(root, "id") != NULL
        && llmp_tr_str(root, "id")[0] != '\0')
    {
        s->id = strdup(llmp_tr_str(root, "id"));
    }

    u = llmp_tr_get(root, "usage", NULL);
    if (cJSON_IsObject(u)) {
        s->prompt = llmp_tr_int(u, "prompt_tokens");
        s->completion = llmp_tr_int(u, "completion_tokens");
        s->cached = llmp_tr_int(llmp_tr_get(u, "prompt_tokens_details", NULL),
                                "cached_tokens");
        s->reasoning = llmp_tr_int(llmp_tr_get(u,
                                               "completion_tokens_details",
                                               NULL),
                                   "reasoning_tokens");
    }

    if (st_start(s) != 0) {
        return -1;
    }

    pos = 0;
    cJSON_ArrayForEach(it, llmp_tr_get(root, "choices", NULL)) {
        c = llmp_tr_int(it, "index") >= 0 ? (int) llmp_tr_int(it, "index")
                                           : pos;
        pos++;
        if (c >= ST_MAX_CHOICES) {
            continue;
        }
        if (st_oa_choice(s, c, it) != 0) {
            return -1;
        }
    }
    return 0;
}


/* Anthropic provider */

static st_block_t *
st_block(llmp_stream_t *s, const cJSON *root, int create)
{
    long long    i;
    st_block_t  *b;

    i = llmp_tr_int(root, "index");
    if (i < 0 || i >= ST_MAX_BLOCKS) {
        return NULL;
    }
    if (i >= s->nblocks) {
        if (!create) {
            return NULL;
        }
        b = realloc(s->blocks, (size_t) (i + 1) * sizeof(st_block_t));
        if (b == NULL) {
            s->broken = 1;
            return NULL;
        }
        memset(b + s->nblocks, 0,
               (size_t) (i + 1 - s->nblocks) * sizeof(st_block_t));
        s->blocks = b;
        s->nblocks = (int) i + 1;
    }
    return &s->blocks[i];
}


/* content_block_start: the block's kind decides what its deltas are */
static int
st_an_block_start(llmp_stream_t *s, const cJSON *root)
{
    const char   *t;
    const cJSON  *v;
    st_block_t   *b;

    b = st_block(s, root, 1);
    if (b == NULL) {
        return s->broken ? -1 : 0;
    }
    v = llmp_tr_get(root, "content_block", NULL);
    t = llmp_tr_str(v, "type");
    if (t != NULL && strcmp(t, "text") == 0) {
        b->kind = ST_BLK_TEXT;
        t = llmp_tr_str(v, "text");
        return t ? st_text(s, 0, t, strlen(t)) : 0;
    }
    if (t != NULL && strcmp(t, "thinking") == 0) {
        b->kind = ST_BLK_THINK;
        t = llmp_tr_str(v, "thinking");
        return t ? st_think(s, 0, t, strlen(t), NULL) : 0;
    }
    if (t != NULL && strcmp(t, "tool_use") == 0) {
        b->kind = ST_BLK_TOOL;
        b->no = s->an_calls++;
        return st_tool_start(s, 0, b->no, llmp_tr_str(v, "id"),
                             llmp_tr_str(v, "name"));
    }
    b->kind = ST_BLK_OTHER;
    return 0;
}


/* content_block_delta: text, thinking or its signature, or tool input */
static int
st_an_block_delta(llmp_stream_t *s, const cJSON *root)
{
    const char   *t;
    const cJSON  *d;
    st_block_t   *b;

    b = st_block(s, root, 0);
    d = llmp_tr_get(root, "delta", NULL);
    if (b == NULL) {
        return 0;
    }
    if (b->kind == ST_BLK_TEXT && (t = llmp_tr_str(d, "text")) != NULL) {
        return st_text(s, 0, t, strlen(t));
    }
    if (b->kind == ST_BLK_THINK && (t = llmp_tr_str(d, "thinking")) != NULL) {
        return st_think(s, 0, t, strlen(t), NULL);
    }
    if (b->kind == ST_BLK_THINK
        && (t = llmp_tr_str(d, "signature")) != NULL && t[0] != '\0')
    {
        return st_think(s, 0, NULL, 0, t);
    }
    if (b->kind == ST_BLK_TOOL
        && (t = llmp_tr_str(d, "partial_json")) != NULL)
    {
        return st_tool_args(s, 0, b->no, t, strlen(t));
    }
    return 0;
}


static int
st_from_anthropic(llmp_stream_t *s, const char *event, const cJSON *root)
{
    const char   *type, *t;
    const cJSON  *v, *d;
    st_block_t   *b;

    type = llmp_tr_str(root, "type");
    if (type == NULL) {
        type = event ? event : "";
    }

    if (strcmp(type, "message_start") == 0) {
        v = llmp_tr_get(root, "message", NULL);
        if (s->id == NULL && llmp_tr_str(v, "id") != NULL) {
            s->id = strdup(llmp_tr_str(v, "id"));
        }
        st_usage_anthropic(s, llmp_tr_get(v, "usage", NULL));
        return st_start(s);
    }

    if (strcmp(type, "content_block_start") == 0) {
        return st_an_block_start(s, root);
    }

    if (strcmp(type, "content_block_delta") == 0) {
        return st_an_block_delta(s, root);
    }

    if (strcmp(type, "content_block_stop") == 0) {
        b = st_block(s, root, 0);
        if (b != NULL && b->kind == ST_BLK_TOOL) {
            return st_tool_end(s, 0, b->no);
        }
        return 0;
    }

    if (strcmp(type, "message_delta") == 0) {
        st_usage_anthropic(s, llmp_tr_get(root, "usage", NULL));
        d = llmp_tr_get(root, "delta", NULL);
        t = llmp_tr_str(d, "stop_reason");
        if (t != NULL) {
            return st_finish(s, 0, llmp_tr_finish_from(LLMP_IFACE_ANTHROPIC, t),
                             llmp_tr_str(d, "stop_sequence"));
        }
        return 0;
    }

    if (strcmp(type, "message_stop") == 0) {
        return st_end(s);
    }

    if (strcmp(type, "error") == 0) {
        v = llmp_tr_get(root, "error", NULL);
        t = llmp_tr_str(v, "type");
        return st_error(s, llmp_tr_status_from_anthropic_type(t), t,
                        llmp_tr_str(v, "message"));
    }

    return 0;       /* ping and unknown events */
}


/* Gemini provider */

/* usageMetadata: Gemini counts thoughts apart from the candidates */
static void
st_ge_usage(llmp_stream_t *s, const cJSON *u)
{
    long long  th;

    s->prompt = llmp_tr_int(u, "promptTokenCount");
    s->completion = llmp_tr_int(u, "candidatesTokenCount");
    th = llmp_tr_int(u, "thoughtsTokenCount");
    if (th > 0) {
        s->completion = (s->completion > 0 ? s->completion : 0) + th;
        s->reasoning = th;
    }
    if (s->completion < 0 && s->prompt >= 0) {
        s->completion = 0;
    }
    s->cached = llmp_tr_int(u, "cachedContentTokenCount");
}


/* a functionCall f of part p, whole in one chunk: start, args and end;
 * a thoughtSignature rides in the call's id */
static int
st_ge_call(llmp_stream_t *s, int c, const cJSON *p, const cJSON *f)
{
    int          no, rc;
    char        *args, *sid, gen[64];
    const char  *t;

    no = s->ge_calls[c]++;
    t = llmp_tr_str2(p, "thoughtSignature", "thought_signature");
    sid = NULL;
    if (t != NULL) {
        sid = llmp_tr_sig_id(llmp_tr_str(f, "id")
                             ? llmp_tr_str(f, "id")
                             : st_gen_id(s, gen, sizeof(gen)), t);
        if (sid == NULL) {
            s->broken = 1;
            return -1;
        }
    }
    rc = st_tool_start(s, c, no, sid ? sid : llmp_tr_str(f, "id"),
                       llmp_tr_str(f, "name"));
    free(sid);
    if (rc != 0) {
        return -1;
    }
    args = llmp_tr_get(f, "args", NULL)
           ? llmp_tr_json_text(llmp_tr_get(f, "args", NULL))
           : NULL;
    if (st_tool_args(s, c, no, args ? args : "{}", args ? strlen(args) : 2)
        != 0
        || st_tool_end(s, c, no) != 0)
    {
        free(args);
        return -1;
    }
    free(args);
    return 0;
}


/* the parts of candidate it (choice c): thoughts, text, function calls */
static int
st_ge_parts(llmp_stream_t *s, int c, const cJSON *it)
{
    const char   *t;
    const cJSON  *p, *f;

    cJSON_ArrayForEach(p, llmp_tr_get(llmp_tr_get(it, "content", NULL),
                                      "parts", NULL))
    {
        t = llmp_tr_str(p, "text");
        if (t != NULL && cJSON_IsTrue(llmp_tr_get(p, "thought", NULL))) {
            if (st_think(s, c, t, strlen(t), NULL) != 0) {
                return -1;
            }
            continue;
        }
        if (t != NULL) {
            if (st_text(s, c, t, strlen(t)) != 0) {
                return -1;
            }
            continue;
        }
        f = llmp_tr_get(p, "functionCall", "function_call");
        if (llmp_tr_str(f, "name") == NULL || s->ge_calls[c] >= ST_MAX_TOOLS) {
            continue;
        }
        if (st_ge_call(s, c, p, f) != 0) {
            return -1;
        }
    }
    return 0;
}


static int
st_from_gemini(llmp_stream_t *s, const cJSON *root)
{
    int           c, pos;
    const char   *t;
    const cJSON  *e, *u, *it;

    e = llmp_tr_get(root, "error", NULL);
    if (e != NULL && !cJSON_IsNull(e)) {
        t = llmp_tr_str(e, "status");
        return st_error(s, llmp_tr_int(e, "code") >= 100
                           && llmp_tr_int(e, "code") < 600
                           ? (int) llmp_tr_int(e, "code")
                           : llmp_tr_status_from_gemini_status(t),
                        t, llmp_tr_str(e, "message"));
    }

    t = llmp_tr_str2(root, "responseId", "response_id");
    if (s->id == NULL && t != NULL && t[0] != '\0') {
        s->id = strdup(t);
    }

    u = llmp_tr_get(root, "usageMetadata", "usage_metadata");
    if (cJSON_IsObject(u)) {
        st_ge_usage(s, u);
    }

    if (st_start(s) != 0) {
        return -1;
    }

    pos = 0;
    cJSON_ArrayForEach(it, llmp_tr_get(root, "candidates", NULL)) {
        c = llmp_tr_int(it, "index") >= 0 ? (int) llmp_tr_int(it, "index")
                                           : pos;
        pos++;
        if (c >= ST_MAX_CHOICES) {
            continue;
        }

        if (st_ge_parts(s, c, it) != 0) {
            return -1;
        }

        t = llmp_tr_str2(it, "finishReason", "finish_reason");
        if (t != NULL
            && llmp_tr_finish_from(LLMP_IFACE_GEMINI, t) != LLMP_TR_FR_NONE
            && st_finish(s, c, llmp_tr_finish_from(LLMP_IFACE_GEMINI, t), NULL)
               != 0)
        {
            return -1;
        }
    }

    if (pos == 0 && llmp_tr_get(root, "promptFeedback", "prompt_feedback")
        && llmp_tr_str(llmp_tr_get(root, "promptFeedback", "prompt_feedback"),
                       "blockReason"))
    {
        return st_finish(s, 0, LLMP_TR_FR_FILTER, NULL);
    }
    return 0;
}


static int
st_event(void *ctx, const char *event, const char *data, size_t len)
{
    int             rc;
    cJSON          *root;
    llmp_stream_t  *s;

    s = ctx;

    if (s->ended || s->errored) {
        return 0;
    }

    if (s->from == LLMP_IFACE_OPENAI && len == 6
        && memcmp(data, "[DONE]", 6) == 0)
    {
        return st_end(s);
    }

    root = llmp_tr_parse(data, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        s->broken = 1;
        return -1;
    }

    switch (s->from) {
    case LLMP_IFACE_OPENAI:
        rc = st_from_openai(s, root);
        break;
    case LLMP_IFACE_ANTHROPIC:
        rc = st_from_anthropic(s, event, root);
        break;
    default:
        rc = st_from_gemini(s, root);
    }

    cJSON_Delete(root);
    return rc != 0 || s->broken ? -1 : 0;
}


llmp_stream_t *
llmp_stream_new(int from, int to, const char *model, int include_usage)
{
    int             c;
    llmp_stream_t  *s;

    if (llmp_iface_name(from) == NULL || llmp_iface_name(to) == NULL) {
        return NULL;
    }

    s = calloc(1, sizeof(llmp_stream_t));
    if (s == NULL) {
        return NULL;
    }
    s->model = strdup(model ? model : "");
    if (s->model == NULL) {
        free(s);
        return NULL;
    }
    s->from = from;
    s->to = to;
    s->include_usage = include_usage;
    s->prompt = -1;
    s->completion = -1;
    s->cached = -1;
    s->reasoning = -1;
    s->a_open = -1;
    s->created = (long long) time(NULL);
    llmp_tr_nonce(s->nonce, LLMP_TR_NONCE_LEN);
    for (c = 0; c < ST_MAX_CHOICES; c++) {
        s->oa_open[c] = -1;
    }
    return s;
}


void
llmp_stream_set_nonce(llmp_stream_t *s, long long created,
    const char *nonce)
{
    s->created = created;
    snprintf(s->nonce, sizeof(s->nonce), "%s", nonce);
}


int
llmp_stream_feed(llmp_stream_t *s, const char *data, size_t len,
    llmp_buf_t *out)
{
    if (s->broken) {
        return -1;
    }
    s->out = out;
    if (llmp_sse_feed(&s->sse, data, len, st_event, s) != 0) {
        s->broken = 1;
    }
    s->out = NULL;
    return s->broken ? -1 : 0;
}


int
llmp_stream_finish(llmp_stream_t *s, llmp_buf_t *out)
{
    if (s->broken) {
        return -1;
    }
    s->out = out;
    if (llmp_sse_finish(&s->sse, st_event, s) != 0) {
        s->broken = 1;
    }
    if (!s->broken) {
        st_end(s);
    }
    s->out = NULL;
    return s->broken ? -1 : 0;
}


void
llmp_stream_usage(llmp_stream_t *s, llmp_usage_t *usage)
{
    usage->prompt_tokens = s->prompt;
    usage->completion_tokens = s->completion;
}


void
llmp_stream_free(llmp_stream_t *s)
{
    int  i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->ntools; i++) {
        free(s->tools[i].id);
        free(s->tools[i].name);
        llmp_buf_free(&s->tools[i].args);
    }
    free(s->tools);
    free(s->blocks);
    free(s->stop_seq);
    free(s->id);
    free(s->model);
    llmp_sse_free(&s->sse);
    free(s);
}

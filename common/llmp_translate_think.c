/*
 * Reasoning across the translations: the parameters that ask for it
 * (OpenAI reasoning_effort, Anthropic thinking.budget_tokens, Gemini
 * thinkingConfig) and its content (Anthropic thinking blocks with their
 * signatures, Gemini thought parts, the reasoning_content and
 * thinking_blocks of an OpenAI-style message, as LiteLLM and DeepSeek
 * write them).
 *
 * Efforts and budgets map both ways: Anthropic's budgets for an effort are
 * LiteLLM's (low 1024, medium 2048, high 4096 tokens), Gemini's are those
 * of Google's OpenAI compatibility layer (low 1024, medium 8192, high
 * 24576); a budget becomes the smallest effort that covers it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llmp_translate_int.h"


#define LLMP_TR_AN_MIN_BUDGET  1024      /* Anthropic refuses less */

/*
 * Gemini 3 wants the thoughtSignature of each function call back with it;
 * clients of the other interfaces have no place for one but the call's
 * id, which they return as it is: "<id>__thought__<signature>" (LiteLLM's
 * spelling, so that its histories read the same)
 */
#define LLMP_TR_SIG_SEP  "__thought__"


typedef struct {
    const char  *effort;
    long long    anthropic;
    long long    gemini;
} llmp_tr_effort_t;

static const llmp_tr_effort_t  llmp_tr_efforts[] = {
    { "none",    0,    0 },
    { "minimal", 0,    512 },
    { "low",     1024, 1024 },
    { "medium",  2048, 8192 },
    { "high",    4096, 24576 },
    { "xhigh",   8192, 32768 },
    { NULL, 0, 0 }
};


static const llmp_tr_effort_t *
think_effort(const char *effort)
{
    const llmp_tr_effort_t  *e;

    for (e = llmp_tr_efforts; effort != NULL && e->effort; e++) {
        if (strcmp(e->effort, effort) == 0) {
            return e;
        }
    }
    return NULL;
}


/* what the client asked for, in its interface's terms */

void
llmp_tr_think_request(int from, llmp_tr_req_t *r, const cJSON *root)
{
    double        d;
    const char   *s;
    const cJSON  *v;

    r->think_budget = -1;

    switch (from) {

    case LLMP_IFACE_OPENAI:
        s = llmp_tr_str(root, "reasoning_effort");
        if (s == NULL) {
            s = llmp_tr_str(llmp_tr_get(root, "reasoning", NULL), "effort");
        }
        if (think_effort(s) != NULL) {
            r->effort = think_effort(s)->effort;
        }
        /* LiteLLM lets OpenAI-style clients pass Anthropic's parameter */
        v = llmp_tr_get(root, "thinking", NULL);
        if (llmp_tr_num(v, "budget_tokens", &d) && d >= 0 && d < 1e9) {
            r->think_budget = llmp_tr_ll(d);
        }
        return;

    case LLMP_IFACE_ANTHROPIC:
        v = llmp_tr_get(root, "thinking", NULL);
        s = llmp_tr_str(v, "type");
        if (s != NULL && strcmp(s, "disabled") == 0) {
            r->think_budget = 0;
        } else if (llmp_tr_num(v, "budget_tokens", &d) && d >= 0 && d < 1e9) {
            r->think_budget = llmp_tr_ll(d);
        } else if (s != NULL) {
            r->effort = "medium";       /* "adaptive": the model decides */
        }
        return;
    }

    v = llmp_tr_get(llmp_tr_get(root, "generationConfig", "generation_config"),
                    "thinkingConfig", "thinking_config");
    if (llmp_tr_num2(v, "thinkingBudget", "thinking_budget", &d)) {
        if (d < 0) {
            r->effort = "medium";       /* -1: dynamic */
        } else if (d < 1e9) {
            r->think_budget = llmp_tr_ll(d);
        }
    }
    s = llmp_tr_str2(v, "thinkingLevel", "thinking_level");
    if (s != NULL && r->think_budget < 0) {
        r->effort = (strcasecmp(s, "low") == 0) ? "low"
                    : (strcasecmp(s, "minimal") == 0) ? "minimal"
                    : "high";
    }
}


/*
 * Anthropic refuses thinking with a forced tool, with a temperature or
 * top_k, with max_tokens not above the budget, and (in a tool round) when
 * the last assistant turn does not start with its signed thinking block:
 * the last is left as it is, asking without thinking.
 */

static int
think_anthropic(llmp_tr_req_t *r, cJSON *root, long long budget)
{
    size_t       i, k;
    cJSON       *o;
    long long    mt;
    llmp_tr_msg_t    *m;
    int          calls, signed_;

    if (budget <= 0 || r->tool_choice == LLMP_TR_TC_ANY
        || r->tool_choice == LLMP_TR_TC_TOOL)
    {
        return 0;
    }

    for (k = r->nmsgs; k > 0; k--) {
        m = &r->msgs[k - 1];
        if (m->role != LLMP_TR_ASSISTANT) {
            continue;
        }
        calls = 0;
        signed_ = 0;
        for (i = 0; i < m->parts.n; i++) {
            calls |= m->parts.v[i].type == LLMP_TR_TOOL_CALL;
            signed_ |= m->parts.v[i].type == LLMP_TR_THINKING
                       && ((m->parts.v[i].sig && m->parts.v[i].sig[0])
                           || m->parts.v[i].data);
        }
        if (calls && !signed_) {
            return 0;
        }
        break;
    }

    if (budget < LLMP_TR_AN_MIN_BUDGET) {
        budget = LLMP_TR_AN_MIN_BUDGET;
    }

    mt = llmp_tr_int(root, "max_tokens");
    if (mt <= budget) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "max_tokens");
        mt = budget + (mt > 0 ? mt : LLMP_TRANSLATE_DEFAULT_MAX_TOKENS);
        llmp_tr_add_num(root, "max_tokens", (double) mt);
    }

    cJSON_DeleteItemFromObjectCaseSensitive(root, "temperature");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "top_p");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "top_k");

    o = cJSON_AddObjectToObject(root, "thinking");
    if (o == NULL) {
        return -1;
    }
    cJSON_AddStringToObject(o, "type", "enabled");
    llmp_tr_add_num(o, "budget_tokens", (double) budget);
    return 0;
}


int
llmp_tr_think_emit(int to, llmp_tr_req_t *r, cJSON *root)
{
    cJSON              *g, *t;
    long long           budget;
    const char         *effort;
    const llmp_tr_effort_t  *e;

    if (r->effort == NULL && r->think_budget < 0) {
        return 0;
    }

    e = think_effort(r->effort);

    switch (to) {

    case LLMP_IFACE_OPENAI:
        effort = r->effort;
        if (effort == NULL) {
            budget = r->think_budget;
            effort = budget == 0 ? NULL
                     : budget <= 2048 ? "low"
                     : budget <= 8192 ? "medium" : "high";
        }
        if (effort != NULL
            && cJSON_AddStringToObject(root, "reasoning_effort", effort)
               == NULL)
        {
            return -1;
        }
        return 0;

    case LLMP_IFACE_ANTHROPIC:
        budget = r->think_budget >= 0 ? r->think_budget
                 : e ? e->anthropic : 0;
        return think_anthropic(r, root, budget);
    }

    budget = r->think_budget >= 0 ? r->think_budget : e ? e->gemini : -1;

    g = cJSON_GetObjectItemCaseSensitive(root, "generationConfig");
    if (g == NULL) {
        g = cJSON_AddObjectToObject(root, "generationConfig");
    }
    t = cJSON_AddObjectToObject(g, "thinkingConfig");
    if (t == NULL) {
        return -1;
    }
    llmp_tr_add_num(t, "thinkingBudget", (double) budget);
    if (budget != 0) {
        cJSON_AddTrueToObject(t, "includeThoughts");
    }
    return 0;
}


/*
 * sig is Anthropic's signature, or NULL: a Gemini thought part's
 * thoughtSignature is not kept, as Anthropic would refuse it for its own
 * and there is no telling the two apart in a history (only the signatures
 * of function calls are kept, see llmp_tr_sig_split)
 */

int
llmp_tr_think_part(llmp_tr_arena_t *a, llmp_tr_parts_t *p, const char *text,
    const char *sig, const char *redacted)
{
    llmp_tr_part_t  *t;

    t = llmp_tr_part_add(a, p, LLMP_TR_THINKING);
    if (t == NULL) {
        return -1;
    }
    t->text = text ? text : "";
    t->sig = sig;
    t->data = redacted;
    return 0;
}


/* an OpenAI-style message's reasoning_content / thinking_blocks */

int
llmp_tr_think_oa_parts(llmp_tr_arena_t *a, llmp_tr_parts_t *p, const cJSON *msg)
{
    int           n;
    const char   *type, *text;
    const cJSON  *b;

    n = 0;
    cJSON_ArrayForEach(b, llmp_tr_get(msg, "thinking_blocks", NULL)) {
        type = llmp_tr_str(b, "type");
        if (type != NULL && strcmp(type, "redacted_thinking") == 0) {
            if (llmp_tr_str(b, "data") != NULL
                && llmp_tr_think_part(a, p, NULL, NULL,
                                      llmp_tr_str(b, "data")) != 0)
            {
                return -1;
            }
            n++;
            continue;
        }
        if (llmp_tr_str(b, "thinking") != NULL
            || llmp_tr_str(b, "signature") != NULL)
        {
            if (llmp_tr_think_part(a, p, llmp_tr_str(b, "thinking"),
                                   llmp_tr_str(b, "signature"), NULL) != 0)
            {
                return -1;
            }
            n++;
        }
    }
    if (n) {
        return 0;
    }

    text = llmp_tr_str(msg, "reasoning_content");
    if (text == NULL) {
        text = llmp_tr_str(msg, "reasoning");
    }
    if (text != NULL && text[0] != '\0') {
        return llmp_tr_think_part(a, p, text, NULL, NULL);
    }
    return 0;
}


int
llmp_tr_think_oa_message(cJSON *m, const llmp_tr_parts_t *p)
{
    size_t             i;
    cJSON             *blocks, *b;
    llmp_buf_t         text;
    const llmp_tr_part_t   *t;

    memset(&text, 0, sizeof(llmp_buf_t));
    blocks = NULL;

    for (i = 0; i < p->n; i++) {
        t = &p->v[i];
        if (t->type != LLMP_TR_THINKING) {
            continue;
        }
        if (t->text && llmp_buf_append(&text, t->text, strlen(t->text)) != 0)
        {
            goto failed;
        }
        if (!((t->sig && t->sig[0]) || t->data)) {
            continue;
        }
        if (blocks == NULL) {
            blocks = cJSON_CreateArray();
            if (blocks == NULL) {
                goto failed;
            }
        }
        b = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(blocks, b)) {
            cJSON_Delete(b);
            goto failed;
        }
        if (t->data) {
            cJSON_AddStringToObject(b, "type", "redacted_thinking");
            cJSON_AddStringToObject(b, "data", t->data);
        } else {
            cJSON_AddStringToObject(b, "type", "thinking");
            cJSON_AddStringToObject(b, "thinking", t->text ? t->text : "");
            cJSON_AddStringToObject(b, "signature", t->sig);
        }
    }

    if (text.len || blocks) {
        if (llmp_buf_append(&text, "", 1) != 0) {
            goto failed;
        }
        cJSON_AddStringToObject(m, "reasoning_content", text.data);
    }
    if (blocks) {
        cJSON_AddItemToObject(m, "thinking_blocks", blocks);
    }
    llmp_buf_free(&text);
    return 0;

failed:

    cJSON_Delete(blocks);
    llmp_buf_free(&text);
    return -1;
}


/* the signature in an id, or NULL */

const char *
llmp_tr_sig_of(const char *id)
{
    const char  *m;

    m = id ? strstr(id, LLMP_TR_SIG_SEP) : NULL;
    if (m == NULL || m[sizeof(LLMP_TR_SIG_SEP) - 1] == '\0') {
        return NULL;
    }
    return m + sizeof(LLMP_TR_SIG_SEP) - 1;
}


/* an id with a signature in it: the id and the signature apart */

int
llmp_tr_sig_split(llmp_tr_arena_t *a, llmp_tr_part_t *p)
{
    const char  *m;

    if (p->id == NULL || (m = strstr(p->id, LLMP_TR_SIG_SEP)) == NULL
        || m[sizeof(LLMP_TR_SIG_SEP) - 1] == '\0')
    {
        return 0;
    }

    if (p->type == LLMP_TR_TOOL_CALL && p->sig == NULL) {
        p->sig = m + sizeof(LLMP_TR_SIG_SEP) - 1;
    }
    p->id = llmp_tr_strndup(a, p->id, (size_t) (m - p->id));
    return p->id ? 0 : -1;
}


/* the id a client gets: malloc'ed, with the signature when there is one */

char *
llmp_tr_sig_id(const char *id, const char *sig)
{
    char    *s;
    size_t   a, b;

    id = id ? id : "";
    a = strlen(id);
    b = (sig && sig[0]) ? strlen(sig) : 0;

    s = malloc(a + sizeof(LLMP_TR_SIG_SEP) + b);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, id, a);
    if (b) {
        memcpy(s + a, LLMP_TR_SIG_SEP, sizeof(LLMP_TR_SIG_SEP) - 1);
        memcpy(s + a + sizeof(LLMP_TR_SIG_SEP) - 1, sig, b);
        a += sizeof(LLMP_TR_SIG_SEP) - 1 + b;
    }
    s[a] = '\0';
    return s;
}

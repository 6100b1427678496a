/*
 * Helpers shared by the translators: buffers, the arena, cJSON access,
 * stop reasons, error names, JSON schema conversion.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "llmp_translate_int.h"


void
llmp_buf_free(llmp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}


int
llmp_buf_append(llmp_buf_t *b, const char *data, size_t len)
{
    char    *p;
    size_t   size;

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 256;
        while (size < b->len + len + 1) {
            size *= 2;
        }
        p = realloc(b->data, size);
        if (p == NULL) {
            return -1;
        }
        b->data = p;
        b->size = size;
    }

    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}


void *
llmp_tr_alloc(llmp_tr_arena_t *a, size_t n)
{
    llmp_tr_blk_t  *b;

    b = calloc(1, sizeof(llmp_tr_blk_t) + n + 1);
    if (b == NULL) {
        return NULL;
    }
    b->next = a->head;
    a->head = b;
    return (char *) b + sizeof(llmp_tr_blk_t);
}


char *
llmp_tr_strndup(llmp_tr_arena_t *a, const char *s, size_t n)
{
    char  *p;

    p = llmp_tr_alloc(a, n);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}


char *
llmp_tr_strndup_heap(const char *s, size_t n)
{
    char  *p;

    p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}


char *
llmp_tr_strdup(llmp_tr_arena_t *a, const char *s)
{
    return llmp_tr_strndup(a, s, strlen(s));
}


void
llmp_tr_arena_free(llmp_tr_arena_t *a)
{
    llmp_tr_blk_t  *b, *next;

    for (b = a->head; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}


llmp_tr_part_t *
llmp_tr_part_add(llmp_tr_arena_t *a, llmp_tr_parts_t *p, int type)
{
    size_t           cap;
    llmp_tr_part_t  *v;

    (void) a;

    if (p->n == p->cap) {
        cap = p->cap ? p->cap * 2 : 4;
        v = realloc(p->v, cap * sizeof(llmp_tr_part_t));
        if (v == NULL) {
            return NULL;
        }
        p->v = v;
        p->cap = cap;
    }

    v = &p->v[p->n++];
    memset(v, 0, sizeof(llmp_tr_part_t));
    v->type = type;
    return v;
}


void
llmp_tr_parts_free(llmp_tr_parts_t *p)
{
    size_t  i;

    for (i = 0; i < p->n; i++) {
        llmp_tr_parts_free(&p->v[i].content);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
    p->cap = 0;
}


cJSON *
llmp_tr_get(const cJSON *o, const char *camel, const char *snake)
{
    cJSON  *v;

    if (!cJSON_IsObject(o)) {
        return NULL;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, camel);
    if (v == NULL && snake != NULL) {
        v = cJSON_GetObjectItemCaseSensitive(o, snake);
    }
    return v;
}


const char *
llmp_tr_str(const cJSON *o, const char *key)
{
    cJSON  *v;

    v = llmp_tr_get(o, key, NULL);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}


const char *
llmp_tr_str2(const cJSON *o, const char *camel, const char *snake)
{
    cJSON  *v;

    v = llmp_tr_get(o, camel, snake);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}


int
llmp_tr_num(const cJSON *o, const char *key, double *v)
{
    return llmp_tr_num2(o, key, NULL, v);
}


int
llmp_tr_num2(const cJSON *o, const char *camel, const char *snake, double *v)
{
    cJSON  *n;

    n = llmp_tr_get(o, camel, snake);
    if (!cJSON_IsNumber(n)) {
        return 0;
    }
    *v = n->valuedouble;
    return 1;
}


long long
llmp_tr_int(const cJSON *o, const char *key)
{
    cJSON  *n;

    n = llmp_tr_get(o, key, NULL);
    if (!cJSON_IsNumber(n) || n->valuedouble < 0
        || n->valuedouble > 9.0e15)
    {
        return -1;
    }
    return (long long) n->valuedouble;
}


void
llmp_tr_nonce(char *out, size_t n)
{
    size_t          i;
    unsigned char   raw[32];
    unsigned long   x;
    static const char  hex[] = "0123456789abcdef";

    if (n > 2 * sizeof(raw)) {
        n = 2 * sizeof(raw);
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* a fallback that is unique enough for ids */
        x = (unsigned long) time(NULL) ^ (unsigned long) (size_t) out;
        for (i = 0; i < sizeof(raw); i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            raw[i] = (unsigned char) (x >> 33);
        }
    }

    for (i = 0; i < n; i++) {
        out[i] = hex[(raw[i / 2] >> ((i & 1) ? 0 : 4)) & 0x0f];
    }
    out[n] = '\0';
}


cJSON *
llmp_tr_parse(const char *body, size_t len)
{
    cJSON       *root;
    const char  *end, *last;

    if (body == NULL) {
        return NULL;
    }

    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        return NULL;
    }

    last = body + len;
    while (end < last && (*end == ' ' || *end == '\t' || *end == '\r'
                          || *end == '\n' || *end == '\0'))
    {
        end++;
    }
    if (end != last) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


int
llmp_tr_print(cJSON *root, llmp_buf_t *out)
{
    int    rc;
    char  *s;

    s = cJSON_PrintUnformatted(root);
    if (s == NULL) {
        return -1;
    }
    rc = llmp_buf_append(out, s, strlen(s));
    free(s);
    return rc;
}


int
llmp_tr_add_str(cJSON *o, const char *key, const char *s)
{
    cJSON  *v;

    v = s ? cJSON_CreateString(s) : cJSON_CreateNull();
    if (v == NULL) {
        return -1;
    }
    return cJSON_AddItemToObject(o, key, v) ? 0 : -1;
}


int
llmp_tr_add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) ? 0 : -1;
}


/* "data:image/png;base64,AAAA" -> "image/png", "AAAA" */
int
llmp_tr_parse_data_url(llmp_tr_arena_t *a, const char *url, const char **mime,
    const char **data)
{
    const char  *p, *comma;

    if (strncmp(url, "data:", 5) != 0) {
        return 0;
    }
    comma = strchr(url, ',');
    if (comma == NULL) {
        return -1;
    }
    p = url + 5;
    if (comma - p < 7 || strncmp(comma - 7, ";base64", 7) != 0) {
        return -1;
    }
    *mime = llmp_tr_strndup(a, p, (size_t) (comma - 7 - p));
    if (*mime == NULL) {
        return -1;
    }
    if ((*mime)[0] == '\0' || strchr(*mime, ';') != NULL) {
        /* parameters such as ";charset=..." before ";base64" */
        p = strchr(*mime, ';');
        if (p != NULL) {
            *(char *) p = '\0';
        }
        if ((*mime)[0] == '\0') {
            *mime = NULL;
        }
    }
    *data = comma + 1;
    return 1;
}


const char *
llmp_tr_guess_mime(const char *url)
{
    size_t       n, i, len;
    const char  *end;

    static const struct {
        const char  *ext;
        const char  *mime;
    } map[] = {
        { ".png", "image/png" }, { ".jpg", "image/jpeg" },
        { ".jpeg", "image/jpeg" }, { ".gif", "image/gif" },
        { ".webp", "image/webp" }, { ".pdf", "application/pdf" },
        { ".heic", "image/heic" }, { ".heif", "image/heif" }
    };

    end = url + strcspn(url, "?#");
    n = (size_t) (end - url);

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        len = strlen(map[i].ext);
        if (n >= len && strncasecmp(end - len, map[i].ext, len) == 0) {
            return map[i].mime;
        }
    }
    return NULL;
}


char *
llmp_tr_json_text(const cJSON *v)
{
    return cJSON_PrintUnformatted(v);
}


cJSON *
llmp_tr_json_object(const char *text)
{
    cJSON  *v;

    if (text == NULL) {
        return NULL;
    }
    v = llmp_tr_parse(text, strlen(text));
    if (v != NULL && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}


void
llmp_tr_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


int
llmp_tr_finish_from(int iface, const char *s)
{
    size_t  i;

    static const struct {
        int          iface;
        const char  *name;
        int          fr;
    } map[] = {
        { LLMP_IFACE_OPENAI, "stop", LLMP_TR_FR_STOP },
        { LLMP_IFACE_OPENAI, "length", LLMP_TR_FR_LENGTH },
        { LLMP_IFACE_OPENAI, "tool_calls", LLMP_TR_FR_TOOL },
        { LLMP_IFACE_OPENAI, "function_call", LLMP_TR_FR_TOOL },
        { LLMP_IFACE_OPENAI, "content_filter", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_ANTHROPIC, "end_turn", LLMP_TR_FR_STOP },
        { LLMP_IFACE_ANTHROPIC, "pause_turn", LLMP_TR_FR_STOP },
        { LLMP_IFACE_ANTHROPIC, "stop_sequence", LLMP_TR_FR_STOP_SEQ },
        { LLMP_IFACE_ANTHROPIC, "max_tokens", LLMP_TR_FR_LENGTH },
        { LLMP_IFACE_ANTHROPIC, "model_context_window_exceeded",
          LLMP_TR_FR_LENGTH },
        { LLMP_IFACE_ANTHROPIC, "tool_use", LLMP_TR_FR_TOOL },
        { LLMP_IFACE_ANTHROPIC, "refusal", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "STOP", LLMP_TR_FR_STOP },
        { LLMP_IFACE_GEMINI, "MAX_TOKENS", LLMP_TR_FR_LENGTH },
        { LLMP_IFACE_GEMINI, "SAFETY", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "RECITATION", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "LANGUAGE", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "BLOCKLIST", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "PROHIBITED_CONTENT", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "SPII", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "IMAGE_SAFETY", LLMP_TR_FR_FILTER },
        { LLMP_IFACE_GEMINI, "FINISH_REASON_UNSPECIFIED", LLMP_TR_FR_NONE }
    };

    if (s == NULL) {
        return LLMP_TR_FR_NONE;
    }
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].iface == iface && strcmp(map[i].name, s) == 0) {
            return map[i].fr;
        }
    }
    return LLMP_TR_FR_OTHER;
}


const char *
llmp_tr_finish_to(int iface, int fr)
{
    switch (iface) {

    case LLMP_IFACE_OPENAI:
        switch (fr) {
        case LLMP_TR_FR_LENGTH:
            return "length";
        case LLMP_TR_FR_TOOL:
            return "tool_calls";
        case LLMP_TR_FR_FILTER:
            return "content_filter";
        case LLMP_TR_FR_NONE:
            return NULL;
        }
        return "stop";

    case LLMP_IFACE_ANTHROPIC:
        switch (fr) {
        case LLMP_TR_FR_STOP_SEQ:
            return "stop_sequence";
        case LLMP_TR_FR_LENGTH:
            return "max_tokens";
        case LLMP_TR_FR_TOOL:
            return "tool_use";
        case LLMP_TR_FR_FILTER:
            return "refusal";
        case LLMP_TR_FR_NONE:
            return NULL;
        }
        return "end_turn";

    default:
        switch (fr) {
        case LLMP_TR_FR_LENGTH:
            return "MAX_TOKENS";
        case LLMP_TR_FR_FILTER:
            return "SAFETY";
        case LLMP_TR_FR_OTHER:
            return "OTHER";
        case LLMP_TR_FR_NONE:
            return NULL;
        }
        return "STOP";
    }
}


int
llmp_tr_status_from_anthropic_type(const char *type)
{
    size_t  i;

    static const struct {
        const char  *type;
        int          status;
    } map[] = {
        { "invalid_request_error", 400 }, { "authentication_error", 401 },
        { "billing_error", 402 }, { "permission_error", 403 },
        { "not_found_error", 404 }, { "request_too_large", 413 },
        { "rate_limit_error", 429 }, { "api_error", 500 },
        { "timeout_error", 504 }, { "overloaded_error", 529 },
        { "server_error", 500 }, { "insufficient_quota", 429 }
    };

    if (type == NULL) {
        return 500;
    }
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].type, type) == 0) {
            return map[i].status;
        }
    }
    return 500;
}


int
llmp_tr_status_from_gemini_status(const char *st)
{
    size_t  i;

    static const struct {
        const char  *st;
        int          status;
    } map[] = {
        { "INVALID_ARGUMENT", 400 }, { "FAILED_PRECONDITION", 400 },
        { "OUT_OF_RANGE", 400 }, { "UNAUTHENTICATED", 401 },
        { "PERMISSION_DENIED", 403 }, { "NOT_FOUND", 404 },
        { "ABORTED", 409 }, { "ALREADY_EXISTS", 409 },
        { "RESOURCE_EXHAUSTED", 429 }, { "CANCELLED", 499 },
        { "INTERNAL", 500 }, { "UNKNOWN", 500 }, { "DATA_LOSS", 500 },
        { "UNIMPLEMENTED", 501 }, { "UNAVAILABLE", 503 },
        { "DEADLINE_EXCEEDED", 504 }
    };

    if (st == NULL) {
        return 500;
    }
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].st, st) == 0) {
            return map[i].status;
        }
    }
    return 500;
}


/*
 * Gemini's "parameters" take an OpenAPI 3.0 subset: keep the keywords it
 * knows, upper-case the types, turn ["string","null"] into a nullable
 * string and "const" into a one-value enum; $ref, additionalProperties and
 * other JSON schema keywords are dropped.
 */
static void
llmp_tr_upper(char *s)
{
    for ( /* void */ ; *s; s++) {
        *s = (char) toupper((unsigned char) *s);
    }
}


cJSON *
llmp_tr_schema_to_gemini(const cJSON *s)
{
    char          tbuf[32];
    cJSON        *o, *v, *c, *e;
    size_t        i;
    const char   *t;
    const cJSON  *it;

    static const char  *keep[] = {
        "format", "title", "description", "nullable", "enum", "maxItems",
        "minItems", "required", "minProperties", "maxProperties",
        "minLength", "maxLength", "pattern", "example", "default",
        "minimum", "maximum", "propertyOrdering"
    };

    if (!cJSON_IsObject(s)) {
        return cJSON_CreateObject();
    }

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }

    it = cJSON_GetObjectItemCaseSensitive(s, "type");
    t = NULL;
    if (cJSON_IsString(it)) {
        t = it->valuestring;
    } else if (cJSON_IsArray(it)) {
        cJSON_ArrayForEach(v, it) {
            if (!cJSON_IsString(v)) {
                continue;
            }
            if (strcmp(v->valuestring, "null") == 0) {
                cJSON_AddTrueToObject(o, "nullable");
            } else if (t == NULL) {
                t = v->valuestring;
            }
        }
    } else if (cJSON_GetObjectItemCaseSensitive(s, "properties")) {
        t = "object";
    }
    if (t != NULL && strlen(t) < sizeof(tbuf)) {
        strcpy(tbuf, t);
        llmp_tr_upper(tbuf);
        cJSON_AddStringToObject(o, "type", tbuf);
    }

    for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        it = cJSON_GetObjectItemCaseSensitive(s, keep[i]);
        if (it != NULL && cJSON_GetObjectItemCaseSensitive(o, keep[i])
                          == NULL)
        {
            cJSON_AddItemToObject(o, keep[i], cJSON_Duplicate(it, 1));
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (it != NULL && cJSON_GetObjectItemCaseSensitive(o, "enum") == NULL) {
        e = cJSON_AddArrayToObject(o, "enum");
        if (e != NULL) {
            cJSON_AddItemToArray(e, cJSON_Duplicate(it, 1));
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(s, "properties");
    if (cJSON_IsObject(it)) {
        c = cJSON_AddObjectToObject(o, "properties");
        if (c != NULL) {
            cJSON_ArrayForEach(v, it) {
                cJSON_AddItemToObject(c, v->string,
                                      llmp_tr_schema_to_gemini(v));
            }
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (cJSON_IsObject(it)) {
        cJSON_AddItemToObject(o, "items", llmp_tr_schema_to_gemini(it));
    }

    it = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    if (it == NULL) {
        it = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
    }
    if (cJSON_IsArray(it)) {
        c = cJSON_AddArrayToObject(o, "anyOf");
        if (c != NULL) {
            cJSON_ArrayForEach(v, it) {
                cJSON_AddItemToArray(c, llmp_tr_schema_to_gemini(v));
            }
        }
    }

    return o;
}


/* and back: lower-case types, drop the Gemini-only keywords */
cJSON *
llmp_tr_schema_from_gemini(const cJSON *s)
{
    char    *p;
    cJSON   *o, *v, *c;
    cJSON   *it;

    if (!cJSON_IsObject(s)) {
        return cJSON_CreateObject();
    }

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }

    cJSON_ArrayForEach(it, s) {
        if (it->string == NULL || strcmp(it->string, "nullable") == 0
            || strcmp(it->string, "propertyOrdering") == 0)
        {
            continue;
        }

        if (strcmp(it->string, "type") == 0 && cJSON_IsString(it)) {
            v = cJSON_CreateString(it->valuestring);
            if (v != NULL) {
                for (p = v->valuestring; *p; p++) {
                    *p = (char) tolower((unsigned char) *p);
                }
            }

        } else if (strcmp(it->string, "properties") == 0
                   && cJSON_IsObject(it))
        {
            v = cJSON_CreateObject();
            if (v != NULL) {
                cJSON_ArrayForEach(c, it) {
                    cJSON_AddItemToObject(v, c->string,
                                          llmp_tr_schema_from_gemini(c));
                }
            }

        } else if (strcmp(it->string, "items") == 0 && cJSON_IsObject(it)) {
            v = llmp_tr_schema_from_gemini(it);

        } else if (strcmp(it->string, "anyOf") == 0 && cJSON_IsArray(it)) {
            v = cJSON_CreateArray();
            if (v != NULL) {
                cJSON_ArrayForEach(c, it) {
                    cJSON_AddItemToArray(v, llmp_tr_schema_from_gemini(c));
                }
            }

        } else {
            v = cJSON_Duplicate(it, 1);
        }

        if (v != NULL) {
            cJSON_AddItemToObject(o, it->string, v);
        }
    }

    return o;
}


/* a tool call's arguments as a JSON object (a new one) */

cJSON *
llmp_tr_part_input(const llmp_tr_part_t *p)
{
    cJSON  *o;

    if (cJSON_IsObject(p->input)) {
        return cJSON_Duplicate(p->input, 1);
    }
    o = llmp_tr_json_object(p->args);
    return o ? o : cJSON_CreateObject();
}


/* a tool call's arguments as JSON text (malloc'ed) */

char *
llmp_tr_part_args(const llmp_tr_part_t *p)
{
    if (p->args != NULL) {
        return strdup(p->args);
    }
    if (p->input != NULL) {
        return llmp_tr_json_text(p->input);
    }
    return strdup("{}");
}


/*
 * An OpenAI message's tool_calls (and the older function_call) as tool
 * call parts.  0; -1: out of memory; -2 (strict only): a call without
 * function.name, which lenient readers skip
 */

int
llmp_tr_oa_tool_calls(llmp_tr_arena_t *a, llmp_tr_parts_t *parts,
    const cJSON *msg, int strict)
{
    cJSON           *v, *f;
    llmp_tr_part_t  *t;

    cJSON_ArrayForEach(v, llmp_tr_get(msg, "tool_calls", NULL)) {
        f = llmp_tr_get(v, "function", NULL);
        if (llmp_tr_str(f, "name") == NULL) {
            if (strict) {
                return -2;
            }
            continue;
        }
        t = llmp_tr_part_add(a, parts, LLMP_TR_TOOL_CALL);
        if (t == NULL) {
            return -1;
        }
        t->id = llmp_tr_str(v, "id");
        t->name = llmp_tr_str(f, "name");
        t->args = llmp_tr_str(f, "arguments");
        if (llmp_tr_sig_split(a, t) != 0) {
            return -1;
        }
    }

    f = llmp_tr_get(msg, "function_call", NULL);
    if (llmp_tr_str(f, "name") != NULL) {
        t = llmp_tr_part_add(a, parts, LLMP_TR_TOOL_CALL);
        if (t == NULL) {
            return -1;
        }
        t->name = llmp_tr_str(f, "name");
        t->args = llmp_tr_str(f, "arguments");
    }

    return 0;
}


/* a number from the client as an integer, without overflowing one */

long long
llmp_tr_ll(double d)
{
    if (!(d > -9.0e15)) {           /* NaN too */
        return d < 0 ? -9000000000000000LL : 0;
    }

    if (d > 9.0e15) {
        return 9000000000000000LL;
    }

    return (long long) d;
}

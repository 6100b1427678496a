/*
 * libFuzzer target, differential: llmp_json_scan_top() against cJSON on
 * any bytes.  For a body the scanner accepts and cJSON parses, the members
 * the gateway acts on must be the ones a provider's parser sees: the same
 * type and decoded value of model, stream, stream_options.include_usage,
 * requests and generateContentRequest, taking the LAST of several members
 * of one name as providers do (cJSON's own lookup takes the first, so the
 * children are walked here), and never two of them; no member whose name
 * a case- or '_'-folding parser would read as one of those.  Then the
 * gateway's edits (the model's value, include_usage; Gemini's "model"s)
 * applied to the body must give a document in which cJSON sees exactly
 * the gateway's values.  A body the gateway refuses proves nothing: it is
 * never sent.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_json_scan.h"


#define CHECK(c)  do { if (!(c)) abort(); } while (0)


static const char  *watched_top[] = {
    "model", "stream", "stream_options", "requests",
    "generateContentRequest", "background", NULL
};


/* the last child of that name, and how many there are */
static const cJSON *
last_child(const cJSON *o, const char *name, int *count)
{
    const cJSON  *c, *last;

    last = NULL;
    *count = 0;

    for (c = o->child; c; c = c->next) {
        if (c->string && strcmp(c->string, name) == 0) {
            last = c;
            (*count)++;
        }
    }

    return last;
}


/* equal once ASCII case and '_' are set aside, but not equal */
static int
folds_to(const char *s, const char *name)
{
    int          ca, cb;
    const char  *a, *b;

    if (strcmp(s, name) == 0) {
        return 0;
    }

    for (a = s, b = name; ; a++, b++) {
        while (*a == '_') {
            a++;
        }

        while (*b == '_') {
            b++;
        }

        if (*a == '\0' || *b == '\0') {
            return *a == *b;
        }

        ca = (*a >= 'A' && *a <= 'Z') ? (*a | 0x20) : *a;
        cb = (*b >= 'A' && *b <= 'Z') ? (*b | 0x20) : *b;

        if (ca != cb) {
            return 0;
        }
    }
}


static llmp_json_type_e
type_of(const cJSON *v)
{
    if (v == NULL) {
        return LLMP_JSON_NONE;
    }

    switch (v->type & 0xff) {
    case cJSON_String: return LLMP_JSON_STRING;
    case cJSON_Number: return LLMP_JSON_NUMBER;
    case cJSON_Object: return LLMP_JSON_OBJECT;
    case cJSON_Array: return LLMP_JSON_ARRAY;
    case cJSON_True: return LLMP_JSON_TRUE;
    case cJSON_False: return LLMP_JSON_FALSE;
    case cJSON_NULL: return LLMP_JSON_NULL;
    }

    abort();
}


/* the members of one object (the body, or one inside it) as cJSON sees */
static void
check_members(const cJSON *o, const llmp_json_top_t *top,
    const unsigned char *p)
{
    int            n, i;
    long           len;
    const cJSON   *c, *v;
    unsigned char *dec;
    const llmp_json_member_t  *m[6];

    m[0] = &top->model;
    m[1] = &top->stream;
    m[2] = &top->stream_options;
    m[3] = &top->requests;
    m[4] = &top->gen_request;
    m[5] = &top->background;

    for (i = 0; watched_top[i]; i++) {
        v = last_child(o, watched_top[i], &n);
        CHECK(n <= 1);
        CHECK(type_of(v) == m[i]->type);
    }

    for (c = o->child; c; c = c->next) {
        for (i = 0; watched_top[i]; i++) {
            CHECK(!folds_to(c->string, watched_top[i]));
        }
    }

    /* the model's decoded value, where the module would take it */

    v = last_child(o, "model", &n);

    if (v && cJSON_IsString(v)) {
        dec = malloc(top->model.end - top->model.start + 1);
        CHECK(dec != NULL);

        len = llmp_json_unescape(p, top->model.start, top->model.end, dec);

        if (len >= 0 && llmp_json_name_ok(dec, (size_t) len)) {
            CHECK(strlen(v->valuestring) == (size_t) len);
            CHECK(memcmp(v->valuestring, dec, len) == 0);
        }

        free(dec);
    }

    /* include_usage, read inside an object stream_options only */

    v = last_child(o, "stream_options", &n);

    if (v && cJSON_IsObject(v)) {
        c = last_child(v, "include_usage", &n);
        CHECK(n <= 1);
        CHECK(type_of(c) == top->include_usage.type);

        for (c = v->child; c; c = c->next) {
            CHECK(!folds_to(c->string, "include_usage"));
        }

    } else {
        CHECK(top->include_usage.type == LLMP_JSON_NONE);
    }
}


/*
 * the body with the OpenAI-style edits: model := "fuzz-model", and
 * include_usage made true; cJSON must see exactly those
 */
static void
check_openai_edits(const unsigned char *p, size_t len,
    const llmp_json_top_t *top)
{
    int                n;
    char              *out, *o;
    size_t             pos, k, ne;
    cJSON             *root;
    const cJSON       *v, *so;
    llmp_json_edit_t   e[2], t;

    ne = 0;

    if (top->model.type == LLMP_JSON_STRING) {
        e[ne].start = top->model.start;
        e[ne].end = top->model.end;
        e[ne].value = "\"fuzz-model\"";
        e[ne].len = sizeof("\"fuzz-model\"") - 1;
        ne++;
    }

    if (llmp_json_usage_edit(p, top, &e[ne]) == 1) {
        ne++;
    }

    if (ne == 2 && e[1].start < e[0].start) {
        t = e[0];
        e[0] = e[1];
        e[1] = t;
    }

    /* never overlapping */
    CHECK(ne < 2 || e[0].end <= e[1].start);

    out = malloc(len + 64);
    CHECK(out != NULL);

    o = out;
    pos = 0;

    for (k = 0; k < ne; k++) {
        memcpy(o, p + pos, e[k].start - pos);
        o += e[k].start - pos;
        memcpy(o, e[k].value, e[k].len);
        o += e[k].len;
        pos = e[k].end;
    }

    memcpy(o, p + pos, len - pos);
    o += len - pos;

    root = cJSON_ParseWithLength(out, o - out);
    CHECK(root != NULL);

    if (top->model.type == LLMP_JSON_STRING) {
        v = last_child(root, "model", &n);
        CHECK(n == 1 && cJSON_IsString(v)
              && strcmp(v->valuestring, "fuzz-model") == 0);
    }

    so = last_child(root, "stream_options", &n);
    CHECK(n == 1 && cJSON_IsObject(so));
    v = last_child(so, "include_usage", &n);
    CHECK(n == 1 && cJSON_IsTrue(v));

    cJSON_Delete(root);
    free(out);
}


/*
 * An object inside the body whose "model" Gemini's path rewrites
 * (generateContentRequest, requests[] elements): scanned on its own as the
 * module does; returns 0 if the module would refuse the body for it
 */
static int
check_inner(const unsigned char *p, size_t start, size_t end,
    const cJSON *v)
{
    llmp_json_top_t  in;

    if (llmp_json_scan_top(p + start, end - start, &in) != LLMP_JSON_OK) {
        return 0;
    }

    check_members(v, &in, p + start);

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               n;
    size_t            pos, start, end;
    cJSON            *root;
    const cJSON      *v, *el;
    const char       *stop, *last;
    llmp_json_top_t   top;

    if (llmp_json_scan_top(data, size, &top) != LLMP_JSON_OK) {
        return 0;
    }

    root = cJSON_ParseWithLengthOpts((const char *) data, size, &stop, 0);
    if (root == NULL) {
        return 0;            /* the provider refuses it too, or differs in
                                what is valid JSON, not in what it means */
    }

    last = (const char *) data + size;

    while (stop < last && (*stop == ' ' || *stop == '\t' || *stop == '\n'
                           || *stop == '\r'))
    {
        stop++;
    }

    if (stop != last) {
        cJSON_Delete(root);
        return 0;
    }

    CHECK(cJSON_IsObject(root));

    check_members(root, &top, data);
    check_openai_edits(data, size, &top);

    v = last_child(root, "generateContentRequest", &n);

    if (v && cJSON_IsObject(v)) {
        (void) check_inner(data, top.gen_request.start, top.gen_request.end,
                           v);
    }

    v = last_child(root, "requests", &n);

    if (v && cJSON_IsArray(v)) {
        pos = top.requests.start;
        el = v->child;

        while (llmp_json_array_next(data, size, &pos, &start, &end)) {
            CHECK(el != NULL);

            if (cJSON_IsObject(el)) {
                CHECK(data[start] == '{');
                (void) check_inner(data, start, end, el);
            }

            el = el->next;
        }

        CHECK(el == NULL);
    }

    cJSON_Delete(root);

    return 0;
}

/*
 * Internals shared by the llmp_translate_*.c files: a small arena, the
 * interface-neutral form of requests and responses, and cJSON helpers.
 * Not for use outside common/llmp_translate_*.c.
 */

#ifndef _LLMP_TRANSLATE_INT_H_INCLUDED_
#define _LLMP_TRANSLATE_INT_H_INCLUDED_

#include <stddef.h>
#include <cjson/cJSON.h>

#include "llmp_translate.h"


#define TR_NONCE_LEN  24            /* hex digits in a generated id */

/* every string the neutral form owns; freed at once */
typedef struct tr_blk_s  tr_blk_t;
struct tr_blk_s {
    tr_blk_t  *next;
};

typedef struct {
    tr_blk_t  *head;
} tr_arena_t;

void *tr_alloc(tr_arena_t *a, size_t n);
char *tr_strndup(tr_arena_t *a, const char *s, size_t n);
char *tr_strdup(tr_arena_t *a, const char *s);
char *tr_strndup_heap(const char *s, size_t n);
void tr_arena_free(tr_arena_t *a);


/* parts of a message or of a response choice */
enum {
    TR_TEXT = 1,
    TR_MEDIA,           /* image or document: base64 data or a URL */
    TR_TOOL_CALL,
    TR_TOOL_RESULT,
    TR_THINKING         /* reasoning: text and sig, or data (redacted) */
};

typedef struct tr_part_s  tr_part_t;

typedef struct {
    tr_part_t  *v;
    size_t      n;
    size_t      cap;
} tr_parts_t;

struct tr_part_s {
    int          type;
    const char  *text;          /* TR_TEXT */
    const char  *mime;          /* TR_MEDIA: media type, may be NULL */
    const char  *data;          /* TR_MEDIA: base64 data, or; */
                                /* TR_THINKING: Anthropic's redacted data */
    const char  *sig;           /* TR_THINKING: its signature; */
                                /* TR_TOOL_CALL: Gemini's thoughtSignature */
    const char  *url;           /* TR_MEDIA: a URL */
    const char  *id;            /* TR_TOOL_CALL, TR_TOOL_RESULT */
    const char  *name;
    const char  *args;          /* TR_TOOL_CALL: arguments as JSON text */
    cJSON       *input;         /* TR_TOOL_CALL: or as a JSON value */
    cJSON       *response;      /* TR_TOOL_RESULT from gemini: an object */
    tr_parts_t   content;       /* TR_TOOL_RESULT: text and media parts */
    int          is_error;      /* TR_TOOL_RESULT */
    int          used;          /* TR_TOOL_CALL: a result names it */
};

enum {
    TR_USER = 1,
    TR_ASSISTANT
};

typedef struct {
    int         role;
    tr_parts_t  parts;
} tr_msg_t;

typedef struct {
    const char  *name;
    const char  *description;
    cJSON       *schema;        /* JSON schema of the parameters, or NULL */
    int          gemini_schema; /* schema is Gemini's OpenAPI subset */
} tr_tool_t;

enum {
    TR_TC_UNSET = 0,
    TR_TC_AUTO,
    TR_TC_ANY,
    TR_TC_TOOL,
    TR_TC_NONE
};

#define TR_MAX_STOP  16

typedef struct {
    tr_arena_t    arena;
    tr_parts_t    system;       /* text parts */
    tr_msg_t     *msgs;
    size_t        nmsgs;
    size_t        msgs_cap;
    tr_tool_t    *tools;
    size_t        ntools;
    int           tool_choice;
    const char   *tool_name;
    int           no_parallel;
    int           has_temperature, has_top_p, has_top_k, has_seed;
    int           has_presence, has_frequency;
    double        temperature, top_p, presence, frequency;
    long long     top_k, seed;
    long long     max_tokens;   /* -1: unset */
    long long     n;            /* -1: unset */
    const char   *stop[TR_MAX_STOP];
    int           nstop;
    const char   *user;
    int           json_mode;    /* the client asked for JSON output */
    int           stream;
    const char   *effort;       /* reasoning effort: "low"... or NULL */
    long long     think_budget; /* thinking tokens: -1 unset, 0 off */
} tr_req_t;


/* why a choice ended */
enum {
    TR_FR_NONE = 0,
    TR_FR_STOP,
    TR_FR_STOP_SEQ,
    TR_FR_LENGTH,
    TR_FR_TOOL,
    TR_FR_FILTER,
    TR_FR_OTHER
};

int tr_finish_from(int iface, const char *s);
const char *tr_finish_to(int iface, int fr);


/* helpers */
tr_part_t *tr_part_add(tr_arena_t *a, tr_parts_t *p, int type);
void tr_parts_free(tr_parts_t *p);
cJSON *tr_get(const cJSON *o, const char *camel, const char *snake);
const char *tr_str(const cJSON *o, const char *key);
const char *tr_str2(const cJSON *o, const char *camel, const char *snake);
int tr_num(const cJSON *o, const char *key, double *v);
int tr_num2(const cJSON *o, const char *camel, const char *snake,
    double *v);
long long tr_int(const cJSON *o, const char *key);
void tr_nonce(char *out, size_t n);
cJSON *tr_parse(const char *body, size_t len);
int tr_print(cJSON *root, llmp_buf_t *out);
int tr_add_str(cJSON *o, const char *key, const char *s);
int tr_add_num(cJSON *o, const char *key, double v);
int tr_parse_data_url(tr_arena_t *a, const char *url, const char **mime,
    const char **data);
const char *tr_guess_mime(const char *url);
cJSON *tr_schema_to_gemini(const cJSON *s);
cJSON *tr_schema_from_gemini(const cJSON *s);
char *tr_json_text(const cJSON *v);
cJSON *tr_json_object(const char *text);
cJSON *tr_part_input(const tr_part_t *p);
char *tr_part_args(const tr_part_t *p);
long long tr_ll(double d);
int tr_oa_tool_calls(tr_arena_t *a, tr_parts_t *parts, const cJSON *msg,
    int strict);
void tr_err(char *err, size_t errlen, const char *fmt, ...);

/* reasoning: llmp_translate_think.c */
void tr_think_request(int from, tr_req_t *r, const cJSON *root);
int tr_think_emit(int to, tr_req_t *r, cJSON *root);
int tr_think_part(tr_arena_t *a, tr_parts_t *p, const char *text,
    const char *sig, const char *redacted);
int tr_think_oa_parts(tr_arena_t *a, tr_parts_t *p, const cJSON *msg);
int tr_think_oa_message(cJSON *m, const tr_parts_t *p);
int tr_sig_split(tr_arena_t *a, tr_part_t *p);
char *tr_sig_id(const char *id, const char *sig);
const char *tr_sig_of(const char *id);

/* error type names by HTTP status */
const char *tr_openai_error_type(int status);
const char *tr_anthropic_error_type(int status);
const char *tr_gemini_status(int status);
int tr_status_from_anthropic_type(const char *type);
int tr_status_from_gemini_status(const char *st);

#endif /* _LLMP_TRANSLATE_INT_H_INCLUDED_ */

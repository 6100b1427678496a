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


#define LLMP_TR_NONCE_LEN  24            /* hex digits in a generated id */

/* every string the neutral form owns; freed at once */
typedef struct llmp_tr_blk_s  llmp_tr_blk_t;
struct llmp_tr_blk_s {
    llmp_tr_blk_t  *next;
};

typedef struct {
    llmp_tr_blk_t  *head;
} llmp_tr_arena_t;

void *llmp_tr_alloc(llmp_tr_arena_t *a, size_t n);
char *llmp_tr_strndup(llmp_tr_arena_t *a, const char *s, size_t n);
char *llmp_tr_strdup(llmp_tr_arena_t *a, const char *s);
char *llmp_tr_strndup_heap(const char *s, size_t n);
void llmp_tr_arena_free(llmp_tr_arena_t *a);


/* parts of a message or of a response choice */
enum {
    LLMP_TR_TEXT = 1,
    LLMP_TR_MEDIA,           /* image or document: base64 data or a URL */
    LLMP_TR_TOOL_CALL,
    LLMP_TR_TOOL_RESULT,
    LLMP_TR_THINKING         /* reasoning: text and sig, or data (redacted) */
};

typedef struct llmp_tr_part_s  llmp_tr_part_t;

typedef struct {
    llmp_tr_part_t  *v;
    size_t           n;
    size_t           cap;
} llmp_tr_parts_t;

struct llmp_tr_part_s {
    int              type;
    const char      *text;      /* LLMP_TR_TEXT */
    const char      *mime;      /* LLMP_TR_MEDIA: media type, may be NULL */
    const char      *data;      /* LLMP_TR_MEDIA: base64 data, or; */
                                /* LLMP_TR_THINKING: Anthropic's redacted */
    const char      *sig;       /* LLMP_TR_THINKING: its signature; */
                                /* LLMP_TR_TOOL_CALL: Gemini's */
                                /* thoughtSignature */
    const char      *url;       /* LLMP_TR_MEDIA: a URL */
    const char      *id;        /* LLMP_TR_TOOL_CALL, LLMP_TR_TOOL_RESULT */
    const char      *name;
    const char      *args;      /* LLMP_TR_TOOL_CALL: arguments as JSON text */
    cJSON           *input;     /* LLMP_TR_TOOL_CALL: or as a JSON value */
    cJSON           *response;  /* LLMP_TR_TOOL_RESULT from gemini: an object */
    llmp_tr_parts_t  content;   /* LLMP_TR_TOOL_RESULT: text and media parts */
    int              is_error;  /* LLMP_TR_TOOL_RESULT */
    int              used;      /* LLMP_TR_TOOL_CALL: a result names it */
};

enum {
    LLMP_TR_USER = 1,
    LLMP_TR_ASSISTANT
};

typedef struct {
    int              role;
    llmp_tr_parts_t  parts;
} llmp_tr_msg_t;

typedef struct {
    const char  *name;
    const char  *description;
    cJSON       *schema;        /* JSON schema of the parameters, or NULL */
    int          gemini_schema; /* schema is Gemini's OpenAPI subset */
} llmp_tr_tool_t;

enum {
    LLMP_TR_TC_UNSET = 0,
    LLMP_TR_TC_AUTO,
    LLMP_TR_TC_ANY,
    LLMP_TR_TC_TOOL,
    LLMP_TR_TC_NONE
};

#define LLMP_TR_MAX_STOP  16

typedef struct {
    llmp_tr_arena_t  arena;
    llmp_tr_parts_t  system;      /* text parts */
    llmp_tr_msg_t   *msgs;
    size_t           nmsgs;
    size_t           msgs_cap;
    llmp_tr_tool_t  *tools;
    size_t           ntools;
    int              tool_choice;
    const char      *tool_name;
    int              no_parallel;
    int              has_temperature, has_top_p, has_top_k, has_seed;
    int              has_presence, has_frequency;
    double           temperature, top_p, presence, frequency;
    long long     top_k, seed;
    long long     max_tokens;   /* -1: unset */
    long long     n;            /* -1: unset */
    const char      *stop[LLMP_TR_MAX_STOP];
    int              nstop;
    const char      *user;
    int              json_mode;   /* the client asked for JSON output */
    int              stream;
    const char      *effort;      /* reasoning effort: "low"... or NULL */
    long long        think_budget; /* thinking tokens: -1 unset, 0 off */
} llmp_tr_req_t;


/* why a choice ended */
enum {
    LLMP_TR_FR_NONE = 0,
    LLMP_TR_FR_STOP,
    LLMP_TR_FR_STOP_SEQ,
    LLMP_TR_FR_LENGTH,
    LLMP_TR_FR_TOOL,
    LLMP_TR_FR_FILTER,
    LLMP_TR_FR_OTHER
};

int llmp_tr_finish_from(int iface, const char *s);
const char *llmp_tr_finish_to(int iface, int fr);


/* helpers */
llmp_tr_part_t *llmp_tr_part_add(llmp_tr_arena_t *a, llmp_tr_parts_t *p,
    int type);
void llmp_tr_parts_free(llmp_tr_parts_t *p);
cJSON *llmp_tr_get(const cJSON *o, const char *camel, const char *snake);
const char *llmp_tr_str(const cJSON *o, const char *key);
const char *llmp_tr_str2(const cJSON *o, const char *camel, const char *snake);
int llmp_tr_num(const cJSON *o, const char *key, double *v);
int llmp_tr_num2(const cJSON *o, const char *camel, const char *snake,
    double *v);
long long llmp_tr_int(const cJSON *o, const char *key);
void llmp_tr_nonce(char *out, size_t n);
cJSON *llmp_tr_parse(const char *body, size_t len);
int llmp_tr_print(cJSON *root, llmp_buf_t *out);
int llmp_tr_add_str(cJSON *o, const char *key, const char *s);
int llmp_tr_add_num(cJSON *o, const char *key, double v);
int llmp_tr_parse_data_url(llmp_tr_arena_t *a, const char *url,
    const char **mime, const char **data);
const char *llmp_tr_guess_mime(const char *url);
cJSON *llmp_tr_schema_to_gemini(const cJSON *s);
cJSON *llmp_tr_schema_from_gemini(const cJSON *s);
char *llmp_tr_json_text(const cJSON *v);
cJSON *llmp_tr_json_object(const char *text);
cJSON *llmp_tr_part_input(const llmp_tr_part_t *p);
char *llmp_tr_part_args(const llmp_tr_part_t *p);
long long llmp_tr_ll(double d);
int llmp_tr_oa_tool_calls(llmp_tr_arena_t *a, llmp_tr_parts_t *parts,
    const cJSON *msg, int strict);
void llmp_tr_err(char *err, size_t errlen, const char *fmt, ...);

/* reasoning: llmp_translate_think.c */
void llmp_tr_think_request(int from, llmp_tr_req_t *r, const cJSON *root);
int llmp_tr_think_emit(int to, llmp_tr_req_t *r, cJSON *root);
int llmp_tr_think_part(llmp_tr_arena_t *a, llmp_tr_parts_t *p,
    const char *text, const char *sig, const char *redacted);
int llmp_tr_think_oa_parts(llmp_tr_arena_t *a, llmp_tr_parts_t *p,
    const cJSON *msg);
int llmp_tr_think_oa_message(cJSON *m, const llmp_tr_parts_t *p);
int llmp_tr_sig_split(llmp_tr_arena_t *a, llmp_tr_part_t *p);
char *llmp_tr_sig_id(const char *id, const char *sig);
const char *llmp_tr_sig_of(const char *id);

/* error type names by HTTP status */
int llmp_tr_status_from_anthropic_type(const char *type);
int llmp_tr_status_from_gemini_status(const char *st);

#endif /* _LLMP_TRANSLATE_INT_H_INCLUDED_ */

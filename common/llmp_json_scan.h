/*
 * llmp_json_scan: a single-pass validating scanner for JSON request bodies.
 *
 * It checks that a buffer holds exactly one well-formed JSON object and
 * records where a few top-level members are, without building a tree, so
 * that the gateway can rewrite "model" by splicing buffers instead of
 * parsing and re-serialising the whole body.
 *
 * The members the gateway acts on are read as the provider's parser reads
 * them: a name with escapes is decoded before it is compared, and a body
 * in which such a member could be read two ways is refused: given twice
 * (parsers keep the last, cJSON the first), or under a name that a
 * case-insensitive or snake/camel-folding parser would take for it
 * ("Model", "streamOptions", "ſtream"), or under a name with a control
 * character or a lone surrogate (cJSON cuts names at a NUL).
 */

#ifndef _LLMP_JSON_SCAN_H_INCLUDED_
#define _LLMP_JSON_SCAN_H_INCLUDED_

#include <stddef.h>

typedef enum {
    LLMP_JSON_NONE = 0,
    LLMP_JSON_STRING,
    LLMP_JSON_NUMBER,
    LLMP_JSON_OBJECT,
    LLMP_JSON_ARRAY,
    LLMP_JSON_TRUE,
    LLMP_JSON_FALSE,
    LLMP_JSON_NULL
} llmp_json_type_e;

typedef enum {
    LLMP_JSON_OK = 0,
    LLMP_JSON_EMPTY,          /* nothing but white space */
    LLMP_JSON_NOT_OBJECT,     /* valid start, but not an object */
    LLMP_JSON_TRUNCATED,      /* ended in the middle of a value */
    LLMP_JSON_SYNTAX,         /* anything else */
    LLMP_JSON_TOO_DEEP,
    LLMP_JSON_DUPLICATE,      /* a member the gateway acts on, twice */
    LLMP_JSON_AMBIGUOUS       /* a name that could be read as such one */
} llmp_json_rc_e;

/* where one top-level member's value is: [start, end) of the raw bytes */
typedef struct {
    llmp_json_type_e  type;
    size_t            start;     /* for a string: at the opening quote */
    size_t            end;       /* for a string: after the closing quote */
    size_t            key_start; /* at the opening quote of the key */
    int               escaped;   /* a string value holds a backslash */
} llmp_json_member_t;

typedef struct {
    llmp_json_member_t  model;
    llmp_json_member_t  stream;
    llmp_json_member_t  stream_options;
    llmp_json_member_t  requests;       /* Gemini's batchEmbedContents */
    llmp_json_member_t  gen_request;    /* Gemini's countTokens:
                                           generateContentRequest */
    llmp_json_member_t  include_usage;  /* of stream_options, if an object */
    llmp_json_member_t  background;     /* OpenAI Responses: run later */
    const char         *name;           /* DUPLICATE, AMBIGUOUS: the
                                           member's name, or NULL */
    size_t              error_offset;   /* where scanning stopped */
    size_t              object_end;     /* offset of the closing brace */
    int                 members;        /* number of top-level members */
} llmp_json_top_t;

#define LLMP_JSON_MAX_DEPTH  128

llmp_json_rc_e llmp_json_scan_top(const unsigned char *p, size_t len,
    llmp_json_top_t *top);

/*
 * The elements of an array of a buffer llmp_json_scan_top() accepted, one
 * a call: *pos at the opening bracket (a member's start) before the first
 * call.  Returns 1 with [*start, *end) set to the next element's raw
 * bytes, or 0 after the last one.
 */
int llmp_json_array_next(const unsigned char *p, size_t len, size_t *pos,
    size_t *start, size_t *end);

/*
 * Decodes the JSON string at [start, end) (quotes included) into out,
 * which must hold end - start bytes.  Returns the decoded length, or -1 on
 * an invalid escape.  \uXXXX is decoded to UTF-8, surrogate pairs included.
 */
long llmp_json_unescape(const unsigned char *p, size_t start, size_t end,
    unsigned char *out);

/*
 * Writes s as a JSON string with quotes into out, which must hold
 * 6 * len + 2 bytes.  Returns the length written.
 */
size_t llmp_json_escape(const unsigned char *s, size_t len,
    unsigned char *out);

/*
 * Whether a decoded name (a model's) is one the gateway can hold, log and
 * compare as the provider does: valid UTF-8 (no surrogates, no overlong
 * forms), no control characters, NUL included.  1 if so.
 */
int llmp_json_name_ok(const unsigned char *s, size_t len);

/* one piece of a body replaced: [start, end) becomes value */
typedef struct {
    size_t       start;
    size_t       end;
    const char  *value;
    size_t       len;
} llmp_json_edit_t;

/*
 * The edit that makes an OpenAI-style stream ask for its usage chunk:
 * stream_options.include_usage becomes true, the only member of that name
 * in the body the provider sees.  Returns 0 when the client asked for it
 * already (nothing to change), 1 with *e set otherwise.
 */
int llmp_json_usage_edit(const unsigned char *p, const llmp_json_top_t *top,
    llmp_json_edit_t *e);

const char *llmp_json_strerror(llmp_json_rc_e rc);

#endif /* _LLMP_JSON_SCAN_H_INCLUDED_ */

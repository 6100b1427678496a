/*
 * llmp_json_scan: a single-pass validating scanner for JSON request bodies.
 *
 * It checks that a buffer holds exactly one well-formed JSON object and
 * records where a few top-level members are, without building a tree, so
 * that the gateway can rewrite "model" by splicing buffers instead of
 * parsing and re-serialising the whole body.
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
    LLMP_JSON_TOO_DEEP
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

const char *llmp_json_strerror(llmp_json_rc_e rc);

#endif /* _LLMP_JSON_SCAN_H_INCLUDED_ */

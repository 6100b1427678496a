/*
 * A single-pass validating JSON scanner; see llmp_json_scan.h.
 */

#include <stddef.h>
#include <string.h>

#include "llmp_json_scan.h"


typedef struct {
    const unsigned char  *p;
    size_t                len;
    size_t                pos;
    int                   depth;
} llmp_scanner_t;


/* a member the gateway acts on */
typedef struct {
    const char           *name;      /* as the gateway expects it */
    size_t                name_len;
    const char           *folded;    /* lowercased, without '_' */
    size_t                folded_len;
    size_t                offset;    /* of its llmp_json_member_t */
} llmp_watch_t;

#define LLMP_WATCH(name, folded, member)                                     \
    { name, sizeof(name) - 1, folded, sizeof(folded) - 1,                    \
      offsetof(llmp_json_top_t, member) }

/* longer than any name watched */
#define LLMP_WATCH_NAME  32


static const llmp_watch_t  llmp_watch_top[] = {
    LLMP_WATCH("model", "model", model),
    LLMP_WATCH("stream", "stream", stream),
    LLMP_WATCH("stream_options", "streamoptions", stream_options),
    LLMP_WATCH("requests", "requests", requests),
    LLMP_WATCH("generateContentRequest", "generatecontentrequest",
               gen_request),
    LLMP_WATCH("background", "background", background),
    { NULL, 0, NULL, 0, 0 }
};


static const llmp_watch_t  llmp_watch_stream_options[] = {
    LLMP_WATCH("include_usage", "includeusage", include_usage),
    { NULL, 0, NULL, 0, 0 }
};


static llmp_json_rc_e llmp_scan_value(llmp_scanner_t *s,
    llmp_json_type_e *type, int *escaped);
static llmp_json_rc_e llmp_scan_container(llmp_scanner_t *s,
    unsigned char close, llmp_json_top_t *top, const llmp_watch_t *watch);


static void
llmp_scan_ws(llmp_scanner_t *s)
{
    while (s->pos < s->len) {
        switch (s->p[s->pos]) {
        case ' ': case '\t': case '\n': case '\r':
            s->pos++;
            continue;
        default:
            return;
        }
    }
}


static int
llmp_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * Strings are skipped with memchr() for the closing quote and for
 * backslashes, so a long prompt costs little more than a memory scan.
 * Raw control characters inside strings are let through: the provider
 * judges its own input, the gateway only needs the structure.
 */

static llmp_json_rc_e
llmp_scan_string(llmp_scanner_t *s, int *escaped)
{
    int                   i;
    const unsigned char  *p, *end, *q, *bs;

    /* s->p[s->pos] == '"' */

    p = s->p + s->pos + 1;
    end = s->p + s->len;
    *escaped = 0;

    for ( ;; ) {
        q = memchr(p, '"', end - p);
        if (q == NULL) {
            s->pos = s->len;
            return LLMP_JSON_TRUNCATED;
        }

        bs = memchr(p, '\\', q - p);

        if (bs == NULL) {
            s->pos = q + 1 - s->p;
            return LLMP_JSON_OK;
        }

        /* an escape before the quote: check it, go on after it */

        *escaped = 1;
        p = bs;

        if (p + 1 >= end) {
            s->pos = s->len;
            return LLMP_JSON_TRUNCATED;
        }

        switch (p[1]) {
        case '"': case '\\': case '/': case 'b':
        case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;

        case 'u':
            if (p + 6 > end) {
                s->pos = s->len;
                return LLMP_JSON_TRUNCATED;
            }

            for (i = 2; i < 6; i++) {
                if (llmp_hex(p[i]) < 0) {
                    s->pos = p + i - s->p;
                    return LLMP_JSON_SYNTAX;
                }
            }

            p += 6;
            break;

        default:
            s->pos = p + 1 - s->p;
            return LLMP_JSON_SYNTAX;
        }
    }
}


static llmp_json_rc_e
llmp_scan_number(llmp_scanner_t *s)
{
    size_t  start, digits;

    start = s->pos;

    if (s->pos < s->len && s->p[s->pos] == '-') {
        s->pos++;
    }

    digits = 0;

    if (s->pos < s->len && s->p[s->pos] == '0') {
        s->pos++;
        digits = 1;

    } else {
        while (s->pos < s->len && s->p[s->pos] >= '0'
               && s->p[s->pos] <= '9')
        {
            s->pos++;
            digits++;
        }
    }

    if (digits == 0) {
        return s->pos >= s->len ? LLMP_JSON_TRUNCATED : LLMP_JSON_SYNTAX;
    }

    if (s->pos < s->len && s->p[s->pos] == '.') {
        s->pos++;
        digits = 0;

        while (s->pos < s->len && s->p[s->pos] >= '0'
               && s->p[s->pos] <= '9')
        {
            s->pos++;
            digits++;
        }

        if (digits == 0) {
            return s->pos >= s->len ? LLMP_JSON_TRUNCATED : LLMP_JSON_SYNTAX;
        }
    }

    if (s->pos < s->len && (s->p[s->pos] | 0x20) == 'e') {
        s->pos++;

        if (s->pos < s->len && (s->p[s->pos] == '+' || s->p[s->pos] == '-')) {
            s->pos++;
        }

        digits = 0;

        while (s->pos < s->len && s->p[s->pos] >= '0'
               && s->p[s->pos] <= '9')
        {
            s->pos++;
            digits++;
        }

        if (digits == 0) {
            return s->pos >= s->len ? LLMP_JSON_TRUNCATED : LLMP_JSON_SYNTAX;
        }
    }

    (void) start;

    return LLMP_JSON_OK;
}


static llmp_json_rc_e
llmp_scan_literal(llmp_scanner_t *s, const char *lit, size_t n)
{
    size_t  avail;

    avail = s->len - s->pos;

    if (avail < n) {
        if (memcmp(s->p + s->pos, lit, avail) == 0) {
            s->pos = s->len;
            return LLMP_JSON_TRUNCATED;
        }

        return LLMP_JSON_SYNTAX;
    }

    if (memcmp(s->p + s->pos, lit, n) != 0) {
        return LLMP_JSON_SYNTAX;
    }

    s->pos += n;

    return LLMP_JSON_OK;
}


/*
 * The next character of a member name that llmp_scan_string() accepted,
 * [*i, end) at its raw bytes: a code point, escapes decoded; -1 for a lone
 * surrogate.  Of the raw non-ASCII bytes only U+017F and U+212A are
 * decoded, the two characters that Go's case folding takes for the ASCII
 * letters 's' and 'k'; any other byte above 0x7f matches no name.
 */

static long
llmp_name_next(const unsigned char *p, size_t *i, size_t end)
{
    long           cp, lo;
    unsigned char  c;

    c = p[*i];

    if (c != '\\') {
        if (c == 0xc5 && *i + 1 < end && p[*i + 1] == 0xbf) {
            *i += 2;
            return 0x17f;
        }

        if (c == 0xe2 && *i + 2 < end && p[*i + 1] == 0x84
            && p[*i + 2] == 0xaa)
        {
            *i += 3;
            return 0x212a;
        }

        (*i)++;
        return c;
    }

    c = p[*i + 1];
    *i += 2;

    switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return c;                  /* '"', '\\', '/' */
    }

    cp = (llmp_hex(p[*i]) << 12) | (llmp_hex(p[*i + 1]) << 8)
         | (llmp_hex(p[*i + 2]) << 4) | llmp_hex(p[*i + 3]);
    *i += 4;

    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return -1;
    }

    if (cp < 0xd800 || cp > 0xdbff) {
        return cp;
    }

    if (*i + 6 > end || p[*i] != '\\' || p[*i + 1] != 'u') {
        return -1;
    }

    lo = (llmp_hex(p[*i + 2]) << 12) | (llmp_hex(p[*i + 3]) << 8)
         | (llmp_hex(p[*i + 4]) << 4) | llmp_hex(p[*i + 5]);

    if (lo < 0xdc00 || lo > 0xdfff) {
        return -1;
    }

    *i += 6;

    return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
}


/*
 * Which of the watched members the name at [key_start, key_end) (quotes
 * included) is, if any.  Exact after decoding: that member.  Equal to one
 * only once case, '_' and Go's folds are set aside: AMBIGUOUS, as some
 * parsers would take it for that member.  A control character or a lone
 * surrogate: AMBIGUOUS too, parsers disagree on what the name is.  One
 * pass: the name decoded and folded into two short buffers, then compared.
 */

static llmp_json_rc_e
llmp_scan_name(llmp_scanner_t *s, size_t key_start, size_t key_end,
    const llmp_watch_t *watch, llmp_json_top_t *top,
    const llmp_watch_t **found)
{
    long           cp, f;
    size_t         i, end, nd, nf;
    unsigned char  dec[LLMP_WATCH_NAME], fold[LLMP_WATCH_NAME];

    *found = NULL;
    nd = 0;
    nf = 0;

    end = key_end - 1;

    for (i = key_start + 1; i < end; /* void */) {
        cp = llmp_name_next(s->p, &i, end);

        if (cp < 0x20) {
            top->name = NULL;
            s->pos = key_start;
            return LLMP_JSON_AMBIGUOUS;
        }

        /* past a buffer, or not ASCII: it matches no name; counted on */

        if (nd <= LLMP_WATCH_NAME) {
            if (nd < LLMP_WATCH_NAME && cp < 0x80) {
                dec[nd] = (unsigned char) cp;
            }

            nd += (cp < 0x80) ? 1 : LLMP_WATCH_NAME + 1;
        }

        if (cp >= 'A' && cp <= 'Z') {
            f = cp | 0x20;

        } else if (cp == 0x17f) {
            f = 's';

        } else if (cp == 0x212a) {
            f = 'k';

        } else {
            f = cp;
        }

        if (f == '_' || nf > LLMP_WATCH_NAME) {
            continue;
        }

        if (nf < LLMP_WATCH_NAME && f < 0x80) {
            fold[nf] = (unsigned char) f;
        }

        nf += (f < 0x80) ? 1 : LLMP_WATCH_NAME + 1;
    }

    for ( /* void */ ; watch->name; watch++) {
        if (nf != watch->folded_len
            || memcmp(fold, watch->folded, nf) != 0)
        {
            continue;
        }

        if (nd == watch->name_len && memcmp(dec, watch->name, nd) == 0) {
            *found = watch;
            return LLMP_JSON_OK;
        }

        top->name = watch->name;
        s->pos = key_start;
        return LLMP_JSON_AMBIGUOUS;
    }

    return LLMP_JSON_OK;
}


/*
 * A member's name and the ':' after it; watch: the names to look for,
 * *w set to the one it is (left alone when watch is NULL)
 */

static llmp_json_rc_e
llmp_scan_key(llmp_scanner_t *s, llmp_json_top_t *top,
    const llmp_watch_t *watch, const llmp_watch_t **w)
{
    int             escaped;
    size_t          key_start, key_end;
    llmp_json_rc_e  rc;

    key_start = s->pos;

    if (s->p[s->pos] != '"') {
        return LLMP_JSON_SYNTAX;
    }

    rc = llmp_scan_string(s, &escaped);
    if (rc != LLMP_JSON_OK) {
        return rc;
    }

    key_end = s->pos;

    if (watch) {
        rc = llmp_scan_name(s, key_start, key_end, watch, top, w);
        if (rc != LLMP_JSON_OK) {
            return rc;
        }
    }

    llmp_scan_ws(s);

    if (s->pos >= s->len) {
        return LLMP_JSON_TRUNCATED;
    }

    if (s->p[s->pos] != ':') {
        return LLMP_JSON_SYNTAX;
    }

    s->pos++;
    llmp_scan_ws(s);

    return LLMP_JSON_OK;
}


/* a member's value; that of a watched stream_options is scanned for its
 * own watched members */

static llmp_json_rc_e
llmp_scan_member_value(llmp_scanner_t *s, llmp_json_top_t *top,
    const llmp_watch_t *w, llmp_json_type_e *type, int *escaped)
{
    if (w && w->offset == offsetof(llmp_json_top_t, stream_options)
        && s->pos < s->len && s->p[s->pos] == '{')
    {
        /* include_usage is read inside it the same way */
        *type = LLMP_JSON_OBJECT;
        *escaped = 0;
        return llmp_scan_container(s, '}', top, llmp_watch_stream_options);
    }

    return llmp_scan_value(s, type, escaped);
}


/* a watched member found, its value ending at s->pos: recorded once */

static llmp_json_rc_e
llmp_scan_record(llmp_scanner_t *s, llmp_json_top_t *top,
    const llmp_watch_t *w, llmp_json_type_e type, int escaped,
    size_t key_start, size_t vstart)
{
    llmp_json_member_t  *m;

    m = (llmp_json_member_t *) ((char *) top + w->offset);

    if (m->type != LLMP_JSON_NONE) {
        /* parsers differ on which one counts: neither does */
        top->name = w->name;
        s->pos = key_start;
        return LLMP_JSON_DUPLICATE;
    }

    m->type = type;
    m->start = vstart;
    m->end = s->pos;
    m->key_start = key_start;
    m->escaped = escaped;

    return LLMP_JSON_OK;
}


/*
 * An object or array; watch: the members to find in this object (the
 * top-level one, or stream_options), NULL for any other
 */

static llmp_json_rc_e
llmp_scan_container(llmp_scanner_t *s, unsigned char close,
    llmp_json_top_t *top, const llmp_watch_t *watch)
{
    int                  escaped, first;
    size_t               key_start, vstart;
    llmp_json_rc_e       rc;
    llmp_json_type_e     type;
    const llmp_watch_t  *w;

    if (++s->depth > LLMP_JSON_MAX_DEPTH) {
        return LLMP_JSON_TOO_DEEP;
    }

    s->pos++;    /* '{' or '[' */
    first = 1;

    for ( ;; ) {
        llmp_scan_ws(s);

        if (s->pos >= s->len) {
            return LLMP_JSON_TRUNCATED;
        }

        if (s->p[s->pos] == close && first) {
            break;
        }

        if (!first) {
            if (s->p[s->pos] == close) {
                break;
            }

            if (s->p[s->pos] != ',') {
                return LLMP_JSON_SYNTAX;
            }

            s->pos++;
            llmp_scan_ws(s);

            if (s->pos >= s->len) {
                return LLMP_JSON_TRUNCATED;
            }
        }

        first = 0;
        key_start = s->pos;
        w = NULL;

        if (close == '}') {
            rc = llmp_scan_key(s, top, watch, &w);
            if (rc != LLMP_JSON_OK) {
                return rc;
            }
        }

        vstart = s->pos;

        rc = llmp_scan_member_value(s, top, w, &type, &escaped);
        if (rc != LLMP_JSON_OK) {
            return rc;
        }

        if (watch == llmp_watch_top) {
            top->members++;
        }

        if (w == NULL) {
            continue;
        }

        rc = llmp_scan_record(s, top, w, type, escaped, key_start, vstart);
        if (rc != LLMP_JSON_OK) {
            return rc;
        }
    }

    s->pos++;    /* the closing bracket */
    s->depth--;

    return LLMP_JSON_OK;
}


static llmp_json_rc_e
llmp_scan_value(llmp_scanner_t *s, llmp_json_type_e *type, int *escaped)
{
    *escaped = 0;

    if (s->pos >= s->len) {
        return LLMP_JSON_TRUNCATED;
    }

    switch (s->p[s->pos]) {

    case '"':
        *type = LLMP_JSON_STRING;
        return llmp_scan_string(s, escaped);

    case '{':
        *type = LLMP_JSON_OBJECT;
        return llmp_scan_container(s, '}', NULL, NULL);

    case '[':
        *type = LLMP_JSON_ARRAY;
        return llmp_scan_container(s, ']', NULL, NULL);

    case 't':
        *type = LLMP_JSON_TRUE;
        return llmp_scan_literal(s, "true", 4);

    case 'f':
        *type = LLMP_JSON_FALSE;
        return llmp_scan_literal(s, "false", 5);

    case 'n':
        *type = LLMP_JSON_NULL;
        return llmp_scan_literal(s, "null", 4);

    default:
        *type = LLMP_JSON_NUMBER;
        return llmp_scan_number(s);
    }
}


llmp_json_rc_e
llmp_json_scan_top(const unsigned char *p, size_t len, llmp_json_top_t *top)
{
    int               escaped;
    llmp_json_rc_e    rc;
    llmp_json_type_e  type;
    llmp_scanner_t    s;

    memset(top, 0, sizeof(llmp_json_top_t));

    s.p = p;
    s.len = len;
    s.pos = 0;
    s.depth = 0;

    llmp_scan_ws(&s);

    if (s.pos >= s.len) {
        top->error_offset = s.pos;
        return LLMP_JSON_EMPTY;
    }

    if (s.p[s.pos] != '{') {
        rc = llmp_scan_value(&s, &type, &escaped);
        top->error_offset = s.pos;
        return rc == LLMP_JSON_OK ? LLMP_JSON_NOT_OBJECT : rc;
    }

    rc = llmp_scan_container(&s, '}', top, llmp_watch_top);

    if (rc != LLMP_JSON_OK) {
        top->error_offset = s.pos;
        return rc;
    }

    top->object_end = s.pos - 1;

    llmp_scan_ws(&s);

    if (s.pos != s.len) {
        top->error_offset = s.pos;
        return LLMP_JSON_SYNTAX;
    }

    return LLMP_JSON_OK;
}


int
llmp_json_array_next(const unsigned char *p, size_t len, size_t *pos,
    size_t *start, size_t *end)
{
    int               escaped;
    llmp_json_type_e  type;
    llmp_scanner_t    s;

    s.p = p;
    s.len = len;
    s.pos = *pos;
    s.depth = 0;

    /* at the opening bracket, or at the comma or bracket after an element */

    if (s.pos >= s.len || (p[s.pos] != '[' && p[s.pos] != ',')) {
        return 0;
    }

    s.pos++;
    llmp_scan_ws(&s);

    if (s.pos >= s.len || p[s.pos] == ']') {
        *pos = s.pos;
        return 0;
    }

    *start = s.pos;

    if (llmp_scan_value(&s, &type, &escaped) != LLMP_JSON_OK) {
        *pos = s.len;
        return 0;
    }

    *end = s.pos;

    llmp_scan_ws(&s);
    *pos = s.pos;

    return 1;
}


long
llmp_json_unescape(const unsigned char *p, size_t start, size_t end,
    unsigned char *out)
{
    size_t         i;
    unsigned long  cp, lo;
    unsigned char *o;

    o = out;

    for (i = start + 1; i + 1 < end; i++) {

        if (p[i] != '\\') {
            *o++ = p[i];
            continue;
        }

        i++;

        switch (p[i]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;

        case 'u':
            if (i + 4 >= end) {
                return -1;
            }

            cp = (llmp_hex(p[i + 1]) << 12) | (llmp_hex(p[i + 2]) << 8)
                 | (llmp_hex(p[i + 3]) << 4) | llmp_hex(p[i + 4]);
            i += 4;

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (i + 6 >= end || p[i + 1] != '\\' || p[i + 2] != 'u') {
                    return -1;
                }

                lo = (llmp_hex(p[i + 3]) << 12) | (llmp_hex(p[i + 4]) << 8)
                     | (llmp_hex(p[i + 5]) << 4) | llmp_hex(p[i + 6]);

                if (lo < 0xdc00 || lo > 0xdfff) {
                    return -1;
                }

                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;

            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;
            }

            if (cp < 0x80) {
                *o++ = (unsigned char) cp;

            } else if (cp < 0x800) {
                *o++ = (unsigned char) (0xc0 | (cp >> 6));
                *o++ = (unsigned char) (0x80 | (cp & 0x3f));

            } else if (cp < 0x10000) {
                *o++ = (unsigned char) (0xe0 | (cp >> 12));
                *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
                *o++ = (unsigned char) (0x80 | (cp & 0x3f));

            } else {
                *o++ = (unsigned char) (0xf0 | (cp >> 18));
                *o++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
                *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
                *o++ = (unsigned char) (0x80 | (cp & 0x3f));
            }

            break;

        default:
            return -1;
        }
    }

    return (long) (o - out);
}


size_t
llmp_json_escape(const unsigned char *s, size_t len, unsigned char *out)
{
    size_t                i;
    unsigned char        *o;
    static const char     hex[] = "0123456789abcdef";

    o = out;
    *o++ = '"';

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;

        default:
            if (s[i] < 0x20) {
                *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[s[i] >> 4];
                *o++ = hex[s[i] & 0xf];

            } else {
                *o++ = s[i];
            }
        }
    }

    *o++ = '"';

    return (size_t) (o - out);
}


int
llmp_json_name_ok(const unsigned char *s, size_t len)
{
    size_t         i, n, k;
    unsigned long  cp, min;

    for (i = 0; i < len; i += n) {

        if (s[i] < 0x80) {
            if (s[i] < 0x20 || s[i] == 0x7f) {
                return 0;
            }

            n = 1;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 2; cp = s[i] & 0x1f; min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3; cp = s[i] & 0x0f; min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4; cp = s[i] & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
            || (cp >= 0x80 && cp < 0xa0))
        {
            return 0;
        }
    }

    return 1;
}


int
llmp_json_usage_edit(const unsigned char *p, const llmp_json_top_t *top,
    llmp_json_edit_t *e)
{
    size_t                     i;
    const llmp_json_member_t  *so, *iu;

    static const char  add_member[] =
        ",\"stream_options\":{\"include_usage\":true}";
    static const char  add_value[] = "{\"include_usage\":true}";
    static const char  add_first[] = "\"include_usage\":true,";

    so = &top->stream_options;
    iu = &top->include_usage;

    if (so->type == LLMP_JSON_NONE) {
        /* a new last member; without the comma in an empty object */
        e->start = top->object_end;
        e->end = top->object_end;
        e->value = add_member + (top->members == 0);
        e->len = sizeof(add_member) - 1 - (top->members == 0);
        return 1;
    }

    if (so->type != LLMP_JSON_OBJECT) {
        e->start = so->start;
        e->end = so->end;
        e->value = add_value;
        e->len = sizeof(add_value) - 1;
        return 1;
    }

    if (iu->type == LLMP_JSON_TRUE) {
        return 0;                       /* the client asked */
    }

    if (iu->type != LLMP_JSON_NONE) {
        /* false, null, or anything else: the one member's value */
        e->start = iu->start;
        e->end = iu->end;
        e->value = add_first + sizeof("\"include_usage\":") - 1;
        e->len = sizeof("true") - 1;
        return 1;
    }

    /* the first member of the object, with a comma if others follow */

    for (i = so->start + 1; i < so->end - 1; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            break;
        }
    }

    e->start = so->start + 1;
    e->end = so->start + 1;
    e->value = add_first;
    e->len = sizeof(add_first) - 1 - (i == so->end - 1);

    return 1;
}


const char *
llmp_json_strerror(llmp_json_rc_e rc)
{
    switch (rc) {
    case LLMP_JSON_OK: return "ok";
    case LLMP_JSON_EMPTY: return "the request body is empty";
    case LLMP_JSON_NOT_OBJECT: return "the request body is not a JSON object";
    case LLMP_JSON_TRUNCATED: return "the request body is truncated JSON";
    case LLMP_JSON_TOO_DEEP: return "the request body is nested too deeply";
    case LLMP_JSON_DUPLICATE: return "the request body has a member twice";
    case LLMP_JSON_AMBIGUOUS:
        return "the request body has a member name that parsers read "
               "differently";
    default: return "the request body is not valid JSON";
    }
}

/*
 * Unit tests of the request body scanner (common/llmp_json_scan.c).
 */

#include <stdio.h>
#include <string.h>

#include "llmp_json_scan.h"
#include "unit_tap.h"


static llmp_json_rc_e
scan(const char *s, llmp_json_top_t *top)
{
    return llmp_json_scan_top((const unsigned char *) s, strlen(s), top);
}


static void
test_valid_documents(void)
{
    llmp_json_top_t  top;
    const char      *s;

    s = "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi \\\"there\\\"\"}],\"stream\":true}";

    TAP_OK(scan(s, &top) == LLMP_JSON_OK, "a chat request scans");
    TAP_OK(top.model.type == LLMP_JSON_STRING, "model is a string");
    TAP_OK(top.model.end - top.model.start == 7, "model span has quotes");
    TAP_OK(memcmp(s + top.model.start, "\"gpt-5\"", 7) == 0,
           "model span is at the value");
    TAP_OK(top.stream.type == LLMP_JSON_TRUE, "stream true is seen");
    TAP_OK(top.members == 3, "three members counted");

    TAP_OK(scan(" {} ", &top) == LLMP_JSON_OK, "an empty object scans");
    TAP_OK(top.model.type == LLMP_JSON_NONE, "no model in an empty object");

    TAP_OK(scan("{\"a\":{\"model\":\"x\"},\"model\":\"y\"}", &top)
           == LLMP_JSON_OK && top.model.start == 27,
           "only a top-level model counts");

    TAP_OK(scan("{\"n\":-1.5e+3,\"z\":0,\"t\":[true,false,null],"
                "\"u\":\"\\u00e9\\ud83d\\ude00\"}", &top) == LLMP_JSON_OK,
           "numbers, literals and unicode escapes scan");

    TAP_OK(scan("{\"model\":5}", &top) == LLMP_JSON_OK
           && top.model.type == LLMP_JSON_NUMBER,
           "a non-string model is reported with its type");
}


static void
test_invalid_documents(void)
{
    llmp_json_top_t  top;

    TAP_OK(scan("", &top) == LLMP_JSON_EMPTY, "empty body");
    TAP_OK(scan("  \n", &top) == LLMP_JSON_EMPTY, "white space only");
    TAP_OK(scan("[1,2]", &top) == LLMP_JSON_NOT_OBJECT, "an array");
    TAP_OK(scan("\"x\"", &top) == LLMP_JSON_NOT_OBJECT, "a string");
    TAP_OK(scan("{\"model\":\"gpt", &top) == LLMP_JSON_TRUNCATED,
           "truncated in a string");
    TAP_OK(scan("{\"model\":\"gpt\"", &top) == LLMP_JSON_TRUNCATED,
           "truncated before the brace");
    TAP_OK(scan("{\"a\":tru", &top) == LLMP_JSON_TRUNCATED,
           "truncated literal");
    TAP_OK(scan("{\"a\":1,}", &top) == LLMP_JSON_SYNTAX, "trailing comma");
    TAP_OK(scan("{a:1}", &top) == LLMP_JSON_SYNTAX, "unquoted key");
    TAP_OK(scan("{\"a\":01}", &top) == LLMP_JSON_SYNTAX, "leading zero");
    TAP_OK(scan("{\"a\":\"\\x\"}", &top) == LLMP_JSON_SYNTAX, "bad escape");
    TAP_OK(scan("{\"a\":\"\x01\"}", &top) == LLMP_JSON_OK,
           "raw control characters in strings are the provider's concern");
    TAP_OK(scan("{\"a\":\"x\\\"}", &top) == LLMP_JSON_TRUNCATED,
           "an escaped quote does not end a string");
    TAP_OK(scan("{} {}", &top) == LLMP_JSON_SYNTAX, "two documents");
    TAP_OK(scan("{\"a\":1 \"b\":2}", &top) == LLMP_JSON_SYNTAX,
           "missing comma");
    TAP_OK(scan("{\"a\":nul}", &top) == LLMP_JSON_SYNTAX, "bad literal");
}


static void
test_depth(void)
{
    char             buf[1024];
    size_t           i, n;
    llmp_json_top_t  top;

    n = 0;
    buf[n++] = '{';
    memcpy(buf + n, "\"a\":", 4);
    n += 4;

    for (i = 0; i < 200; i++) {
        buf[n++] = '[';
    }

    for (i = 0; i < 200; i++) {
        buf[n++] = ']';
    }

    buf[n++] = '}';
    buf[n] = '\0';

    TAP_OK(scan(buf, &top) == LLMP_JSON_TOO_DEEP, "deep nesting refused");
}


static void
test_array_next(void)
{
    int              n;
    size_t           pos, start, end;
    llmp_json_top_t  top;
    const char      *s;
    char             got[64];

    s = "{\"requests\": [ {\"model\":\"models/a\"} , 7,[1,[2]],\"x\" ],"
        "\"z\":1}";

    TAP_OK(scan(s, &top) == LLMP_JSON_OK
           && top.requests.type == LLMP_JSON_ARRAY,
           "a top-level requests array is seen");

    pos = top.requests.start;
    got[0] = '\0';
    n = 0;

    while (llmp_json_array_next((const unsigned char *) s, strlen(s), &pos,
                                &start, &end))
    {
        strncat(got, s + start, end - start);
        strcat(got, "|");
        n++;
    }

    TAP_OK(n == 4, "four elements");
    TAP_OK(strcmp(got, "{\"model\":\"models/a\"}|7|[1,[2]]|\"x\"|") == 0,
           "each element's bytes, without the white space around it");
    TAP_OK(pos == top.requests.end - 1, "stops at the closing bracket");

    s = "{\"requests\":[ ]}";
    pos = 12;
    TAP_OK(scan(s, &top) == LLMP_JSON_OK && top.requests.start == pos
           && llmp_json_array_next((const unsigned char *) s, strlen(s), &pos,
                                   &start, &end) == 0,
           "an empty array has no elements");

    TAP_OK(scan("{\"a\":{\"requests\":[]}}", &top) == LLMP_JSON_OK
           && top.requests.type == LLMP_JSON_NONE,
           "only top-level requests count");
}


static void
test_escape_unescape(void)
{
    unsigned char  out[64];
    long           n;
    size_t         len;
    const char    *s;

    s = "\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\"";
    n = llmp_json_unescape((const unsigned char *) s, 0, strlen(s), out);
    TAP_OK(n == 12 && memcmp(out, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80", 12)
           == 0, "unescape decodes escapes and surrogate pairs");

    s = "\"\\ud83d\"";
    TAP_OK(llmp_json_unescape((const unsigned char *) s, 0, strlen(s), out)
           == -1, "a lone surrogate is refused");

    len = llmp_json_escape((const unsigned char *) "a\"b\\\n\x01", 6, out);
    TAP_OK(len == 16 && memcmp(out, "\"a\\\"b\\\\\\n\\u0001\"", len) == 0,
           "escape quotes a string");
}


int
main(void)
{
    test_valid_documents();
    test_invalid_documents();
    test_depth();
    test_array_next();
    test_escape_unescape();

    return tap_done();
}

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
    TAP_OK(scan("{\"stream_options\":", &top) == LLMP_JSON_TRUNCATED,
           "truncated before stream_options' value");
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


static void
test_duplicates(void)
{
    llmp_json_top_t  top;

    TAP_OK(scan("{\"model\":\"a\",\"model\":\"b\"}", &top)
           == LLMP_JSON_DUPLICATE && strcmp(top.name, "model") == 0
           && top.error_offset == 13,
           "a duplicate model is refused, at the second name");

    TAP_OK(scan("{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", &top)
           == LLMP_JSON_DUPLICATE && strcmp(top.name, "model") == 0,
           "an escaped duplicate model is refused");

    TAP_OK(scan("{\"\\u006d\\u006f\\u0064\\u0065\\u006c\":\"b\"}", &top)
           == LLMP_JSON_OK && top.model.type == LLMP_JSON_STRING
           && top.model.start == 34,
           "a fully escaped model name is the model");

    TAP_OK(scan("{\"model\":\"a\",\"stre\\u0061m\":true}", &top)
           == LLMP_JSON_OK && top.stream.type == LLMP_JSON_TRUE,
           "an escaped stream name is the stream member");

    TAP_OK(scan("{\"stream\":false,\"stream\":true}", &top)
           == LLMP_JSON_DUPLICATE && strcmp(top.name, "stream") == 0,
           "a duplicate stream is refused");

    TAP_OK(scan("{\"stream_options\":{},\"stream_\\u006fptions\":{}}", &top)
           == LLMP_JSON_DUPLICATE, "a duplicate stream_options is refused");

    TAP_OK(scan("{\"stream_options\":{\"include_usage\":true,"
                "\"include_usage\":false}}", &top) == LLMP_JSON_DUPLICATE
           && strcmp(top.name, "include_usage") == 0,
           "a duplicate include_usage is refused");

    TAP_OK(scan("{\"stream_options\":{\"include\\u005fusage\":false}}", &top)
           == LLMP_JSON_OK && top.include_usage.type == LLMP_JSON_FALSE,
           "an escaped include_usage is read");

    TAP_OK(scan("{\"requests\":[],\"requests\":[]}", &top)
           == LLMP_JSON_DUPLICATE, "a duplicate requests is refused");

    TAP_OK(scan("{\"generateContentRequest\":{},"
                "\"generateContentRequest\":{}}", &top)
           == LLMP_JSON_DUPLICATE,
           "a duplicate generateContentRequest is refused");

    TAP_OK(scan("{\"a\":{\"model\":1,\"model\":2},\"b\":1,\"b\":2}", &top)
           == LLMP_JSON_OK,
           "duplicates the gateway does not act on are the provider's");

    TAP_OK(scan("{\"x\":{\"include_usage\":1,\"include_usage\":2}}", &top)
           == LLMP_JSON_OK && top.include_usage.type == LLMP_JSON_NONE,
           "include_usage counts only inside stream_options");
}


static void
test_ambiguous_names(void)
{
    llmp_json_top_t  top;

    TAP_OK(scan("{\"Model\":\"b\"}", &top) == LLMP_JSON_AMBIGUOUS
           && strcmp(top.name, "model") == 0,
           "Model: a case-insensitive parser's model");
    TAP_OK(scan("{\"model\":\"a\",\"MODE\\u004c\":\"b\"}", &top)
           == LLMP_JSON_AMBIGUOUS, "an escaped upper-case model");
    TAP_OK(scan("{\"\\u017ftream\":true}", &top) == LLMP_JSON_AMBIGUOUS
           && strcmp(top.name, "stream") == 0,
           "U+017F folds to s in Go: escaped");
    TAP_OK(scan("{\"\xc5\xbftream\":true}", &top) == LLMP_JSON_AMBIGUOUS,
           "U+017F folds to s in Go: raw UTF-8");
    TAP_OK(scan("{\"streamOptions\":{}}", &top) == LLMP_JSON_AMBIGUOUS
           && strcmp(top.name, "stream_options") == 0,
           "camelCase streamOptions");
    TAP_OK(scan("{\"stream_options\":{\"includeUsage\":false}}", &top)
           == LLMP_JSON_AMBIGUOUS, "camelCase includeUsage");
    TAP_OK(scan("{\"generate_content_request\":{}}", &top)
           == LLMP_JSON_AMBIGUOUS, "snake_case generate_content_request");
    TAP_OK(scan("{\"model\\u0000x\":\"b\"}", &top) == LLMP_JSON_AMBIGUOUS
           && top.name == NULL, "a NUL in a name (cJSON cuts it there)");
    TAP_OK(scan("{\"a\x01\":1}", &top) == LLMP_JSON_AMBIGUOUS,
           "a raw control character in a name");
    TAP_OK(scan("{\"\\ud800model\":\"b\"}", &top) == LLMP_JSON_AMBIGUOUS,
           "a lone surrogate in a name");
    TAP_OK(scan("{\"models\":1,\"mode\":2,\"\xc3\xa9model\":3}", &top)
           == LLMP_JSON_OK && top.model.type == LLMP_JSON_NONE,
           "names that only look alike are not the model");
    TAP_OK(scan("{\"a\":{\"Model\":1,\"x\\u0000\":2}}", &top)
           == LLMP_JSON_OK, "nested names are the provider's");
}


static void
test_name_ok(void)
{
#define NAME_OK(s) llmp_json_name_ok((const unsigned char *) s, sizeof(s) - 1)
    TAP_OK(NAME_OK("gpt-4o") && NAME_OK("mod\xc3\xa9le")
           && NAME_OK("\xf0\x9f\x98\x80"), "plain and UTF-8 names pass");
    TAP_OK(!NAME_OK("a\0b"), "a NUL is refused");
    TAP_OK(!NAME_OK("a\nb") && !NAME_OK("a\x7f"), "control characters");
    TAP_OK(!NAME_OK("a\xff") && !NAME_OK("\xc3"), "invalid UTF-8");
    TAP_OK(!NAME_OK("\xc0\xaf") && !NAME_OK("\xed\xa0\x80"),
           "overlong forms and surrogates");
#undef NAME_OK
}


static void
test_usage_edit(void)
{
    char              out[256];
    const char       *s;
    llmp_json_top_t   top;
    llmp_json_edit_t  e;

#define EDITED(src, want)                                                    \
    (scan(src, &top) == LLMP_JSON_OK                                         \
     && llmp_json_usage_edit((const unsigned char *) src, &top, &e) == 1     \
     && snprintf(out, sizeof(out), "%.*s%.*s%s", (int) e.start, src,        \
                 (int) e.len, e.value, src + e.end) > 0                      \
     && strcmp(out, want) == 0)

    TAP_OK(EDITED("{\"stream\":true}",
                  "{\"stream\":true,\"stream_options\":"
                  "{\"include_usage\":true}}"), "added when absent");
    TAP_OK(EDITED("{}", "{\"stream_options\":{\"include_usage\":true}}"),
           "added to an empty body, without a comma");
    TAP_OK(EDITED("{\"stream_options\":null}",
                  "{\"stream_options\":{\"include_usage\":true}}"),
           "a non-object replaced");
    TAP_OK(EDITED("{\"stream_options\":{ }}",
                  "{\"stream_options\":{\"include_usage\":true }}"),
           "into an empty object");
    TAP_OK(EDITED("{\"stream_options\":{\"x\":1}}",
                  "{\"stream_options\":{\"include_usage\":true,\"x\":1}}"),
           "before the other members");
    TAP_OK(EDITED("{\"stream_options\":{\"x\":\"\\\"include_usage\\\": true\","
                  "\"include_usage\":false}}",
                  "{\"stream_options\":{\"x\":\"\\\"include_usage\\\": true\","
                  "\"include_usage\":true}}"),
           "the member itself, not a string that looks like it");
    TAP_OK(EDITED("{\"stream_options\":{\"include_usage\":\"true\"}}",
                  "{\"stream_options\":{\"include_usage\":true}}"),
           "a string \"true\" becomes true");

    s = "{\"stream_options\":{\"incl\\u0075de_usage\":true}}";
    TAP_OK(scan(s, &top) == LLMP_JSON_OK
           && llmp_json_usage_edit((const unsigned char *) s, &top, &e) == 0,
           "nothing to change when the client asked (escaped or not)");
#undef EDITED
}


int
main(void)
{
    test_valid_documents();
    test_invalid_documents();
    test_depth();
    test_array_next();
    test_escape_unescape();
    test_duplicates();
    test_ambiguous_names();
    test_name_ok();
    test_usage_edit();

    return tap_done();
}

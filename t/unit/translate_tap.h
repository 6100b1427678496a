/*
 * Helpers for the translation tests: recorded payloads from
 * t/unit/data/translate/ and a dotted path into a cJSON tree
 * ("messages.0.content.1.type").
 */

#ifndef _TRANSLATE_TAP_H_INCLUDED_
#define _TRANSLATE_TAP_H_INCLUDED_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "llmp_translate.h"
#include "unit_tap.h"

/* not every test file uses every helper */
#pragma GCC diagnostic ignored "-Wunused-function"


#define OA  LLMP_IFACE_OPENAI
#define AN  LLMP_IFACE_ANTHROPIC
#define GE  LLMP_IFACE_GEMINI


static char *
load(const char *name, size_t *len)
{
    char    path[512];
    char   *buf;
    long    n;
    FILE   *f;

    snprintf(path, sizeof(path), "t/unit/data/translate/%s", name);
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(path, sizeof(path), "%s/t/unit/data/translate/%s",
                 getenv("LLMP_SRC_DIR") ? getenv("LLMP_SRC_DIR") : ".",
                 name);
        f = fopen(path, "rb");
    }
    if (f == NULL) {
        printf("# cannot open %s\n", name);
        *len = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n) {
        fclose(f);
        free(buf);
        *len = 0;
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t) n;
    return buf;
}


static cJSON *
jp(const cJSON *root, const char *path)
{
    char         key[128];
    size_t       n;
    const char  *p, *dot;
    const cJSON *cur;

    cur = root;
    p = path;
    while (cur != NULL && *p) {
        dot = strchr(p, '.');
        n = dot ? (size_t) (dot - p) : strlen(p);
        if (n >= sizeof(key)) {
            return NULL;
        }
        memcpy(key, p, n);
        key[n] = '\0';
        if (cJSON_IsArray(cur)) {
            cur = cJSON_GetArrayItem(cur, atoi(key));
        } else {
            cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        }
        p += n + (dot ? 1 : 0);
    }
    return (cJSON *) cur;
}


static int
js(const cJSON *root, const char *path, const char *want)
{
    cJSON  *v;

    v = jp(root, path);
    if (!cJSON_IsString(v) || strcmp(v->valuestring, want) != 0) {
        printf("# %s: want \"%s\", have %s\n", path, want,
               cJSON_IsString(v) ? v->valuestring : "(not a string)");
        return 0;
    }
    return 1;
}


static int
jnum(const cJSON *root, const char *path, double want)
{
    cJSON  *v;

    v = jp(root, path);
    if (!cJSON_IsNumber(v) || v->valuedouble != want) {
        printf("# %s: want %g, have %s%g\n", path, want,
               cJSON_IsNumber(v) ? "" : "(not a number) ",
               cJSON_IsNumber(v) ? v->valuedouble : 0.0);
        return 0;
    }
    return 1;
}


static int
jsize(const cJSON *root, const char *path)
{
    cJSON  *v;

    v = jp(root, path);
    return cJSON_IsArray(v) || cJSON_IsObject(v) ? cJSON_GetArraySize(v)
                                                 : -1;
}


static const char *
jstr(const cJSON *root, const char *path)
{
    cJSON  *v;

    v = jp(root, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}


static int
jabsent(const cJSON *root, const char *path)
{
    return jp(root, path) == NULL;
}


static int
jtrue(const cJSON *root, const char *path)
{
    return cJSON_IsTrue(jp(root, path));
}

#endif /* _TRANSLATE_TAP_H_INCLUDED_ */

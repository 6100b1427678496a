/*
 * YAML to cJSON for `llmproxyctl import litellm`, with libyaml.
 *
 * LiteLLM reads its config with PyYAML's safe_load, so this follows YAML
 * 1.1 as PyYAML resolves it: anchors and aliases, merge keys ("<<:", a
 * mapping or a list of them; keys written in the mapping win, then the
 * earlier merged mapping), a later duplicate key replacing an earlier one,
 * and exactly one document.  Plain scalars become null, booleans (yes/no,
 * on/off, true/false) or numbers; every scalar keeps its text in
 * valuestring, so a model named 3.5 or "yes" can still be read as text.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "cli.h"


/* an alias bomb or a self-referencing anchor must not eat the machine */
#define LLMP_YAML_MAX_DEPTH  64
#define LLMP_YAML_MAX_NODES  200000


typedef struct {
    yaml_document_t  *doc;
    const char       *name;
    char             *err;
    size_t            errlen;
    size_t            nodes;
} ctl_yaml_t;


static cJSON *ctl_yaml_node(ctl_yaml_t *y, yaml_node_t *node, int depth);


static int
ctl_yaml_fail(ctl_yaml_t *y, yaml_node_t *node, const char *what)
{
    if (y->err[0] == '\0') {
        snprintf(y->err, y->errlen, "%s:%lu:%lu: %s", y->name,
                 (unsigned long) node->start_mark.line + 1,
                 (unsigned long) node->start_mark.column + 1, what);
    }

    return -1;
}


static int
ctl_yaml_is_number(const char *s, double *d)
{
    char        *end;
    const char  *p;

    if (*s == '\0') {
        return 0;
    }

    /* only decimal forms: strtod would also take "0x1f", "inf", "nan" */

    for (p = s; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
              || *p == '+' || *p == 'e' || *p == 'E'))
        {
            return 0;
        }
    }

    errno = 0;
    *d = strtod(s, &end);

    return end != s && *end == '\0' && errno == 0 && isfinite(*d);
}


static cJSON *
ctl_yaml_scalar(ctl_yaml_t *y, yaml_node_t *node)
{
    char        *text;
    cJSON       *v;
    double       d;
    size_t       n;

    static const char *const  yes[] = {
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On",
        "ON", NULL
    };
    static const char *const  no[] = {
        "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off",
        "OFF", NULL
    };

    n = node->data.scalar.length;
    text = malloc(n + 1);
    if (text == NULL) {
        return NULL;
    }

    memcpy(text, node->data.scalar.value, n);
    text[n] = '\0';

    if (strlen(text) != n) {
        free(text);
        ctl_yaml_fail(y, node, "a NUL byte in a scalar");
        return NULL;
    }

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        v = cJSON_CreateString(text);
        free(text);
        return v;
    }

    v = NULL;

    if (n == 0 || strcmp(text, "~") == 0 || strcmp(text, "null") == 0
        || strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0)
    {
        v = cJSON_CreateNull();
    }

    for (n = 0; v == NULL && yes[n]; n++) {
        if (strcmp(text, yes[n]) == 0) {
            v = cJSON_CreateTrue();
        }
    }

    for (n = 0; v == NULL && no[n]; n++) {
        if (strcmp(text, no[n]) == 0) {
            v = cJSON_CreateFalse();
        }
    }

    if (v == NULL && ctl_yaml_is_number(text, &d)) {
        v = cJSON_CreateNumber(d);
    }

    if (v == NULL) {
        v = cJSON_CreateString(text);
        free(text);
        return v;
    }

    /* the text stays with the value (cJSON_Delete frees it) */
    v->valuestring = text;

    return v;
}


static cJSON *
ctl_yaml_sequence(ctl_yaml_t *y, yaml_node_t *node, int depth)
{
    cJSON             *arr, *v;
    yaml_node_item_t  *item;

    arr = cJSON_CreateArray();
    if (arr == NULL) {
        return NULL;
    }

    for (item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++)
    {
        v = ctl_yaml_node(y, yaml_document_get_node(y->doc, *item),
                           depth + 1);
        if (v == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }

        cJSON_AddItemToArray(arr, v);
    }

    return arr;
}


/* adds what src has and obj has not: one "<<" source */

static int
ctl_yaml_merge_one(ctl_yaml_t *y, cJSON *obj, yaml_node_t *key,
    const cJSON *src)
{
    cJSON        *copy;
    const cJSON  *v;

    if (!cJSON_IsObject(src)) {
        return ctl_yaml_fail(y, key, "a merge key (<<) takes a mapping or "
                              "a list of mappings");
    }

    cJSON_ArrayForEach(v, src) {
        if (cJSON_GetObjectItemCaseSensitive(obj, v->string)) {
            continue;
        }

        copy = cJSON_Duplicate(v, 1);
        if (copy == NULL) {
            return -1;
        }

        cJSON_AddItemToObject(obj, v->string, copy);
    }

    return 0;
}


static cJSON *
ctl_yaml_mapping(ctl_yaml_t *y, yaml_node_t *node, int depth)
{
    int               merge;
    char             *name;
    cJSON            *obj, *v, *src;
    yaml_node_t      *k;
    const cJSON      *s;
    yaml_node_pair_t *pair;

    obj = cJSON_CreateObject();
    if (obj == NULL) {
        return NULL;
    }

    /* the keys written here first, then what "<<" brings in */

    for (merge = 0; merge < 2; merge++) {
        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++)
        {
            k = yaml_document_get_node(y->doc, pair->key);

            if (k == NULL || k->type != YAML_SCALAR_NODE) {
                ctl_yaml_fail(y, k ? k : node, "a mapping key must be a "
                               "scalar");
                goto failed;
            }

            if ((k->data.scalar.length == 2
                 && memcmp(k->data.scalar.value, "<<", 2) == 0
                 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                != merge)
            {
                continue;
            }

            v = ctl_yaml_node(y, yaml_document_get_node(y->doc, pair->value),
                               depth + 1);
            if (v == NULL) {
                goto failed;
            }

            if (merge) {
                src = v;

                if (cJSON_IsArray(v)) {
                    cJSON_ArrayForEach(s, v) {
                        if (ctl_yaml_merge_one(y, obj, k, s) != 0) {
                            cJSON_Delete(v);
                            goto failed;
                        }
                    }

                } else if (ctl_yaml_merge_one(y, obj, k, src) != 0) {
                    cJSON_Delete(v);
                    goto failed;
                }

                cJSON_Delete(v);
                continue;
            }

            name = strndup((const char *) k->data.scalar.value,
                           k->data.scalar.length);
            if (name == NULL) {
                cJSON_Delete(v);
                goto failed;
            }

            /* PyYAML keeps the last of duplicate keys */
            cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
            cJSON_AddItemToObject(obj, name, v);
            free(name);
        }
    }

    return obj;

failed:

    cJSON_Delete(obj);
    return NULL;
}


static cJSON *
ctl_yaml_node(ctl_yaml_t *y, yaml_node_t *node, int depth)
{
    if (node == NULL) {
        return NULL;
    }

    if (depth > LLMP_YAML_MAX_DEPTH) {
        ctl_yaml_fail(y, node, "nested too deeply (an alias that refers "
                       "to itself?)");
        return NULL;
    }

    if (++y->nodes > LLMP_YAML_MAX_NODES) {
        ctl_yaml_fail(y, node, "too many values once aliases are "
                       "expanded");
        return NULL;
    }

    switch (node->type) {

    case YAML_SCALAR_NODE:
        return ctl_yaml_scalar(y, node);

    case YAML_SEQUENCE_NODE:
        return ctl_yaml_sequence(y, node, depth);

    case YAML_MAPPING_NODE:
        return ctl_yaml_mapping(y, node, depth);

    default:
        ctl_yaml_fail(y, node, "unexpected node");
        return NULL;
    }
}


static int
ctl_yaml_empty(yaml_document_t *doc)
{
    yaml_node_t  *root;

    root = yaml_document_get_root_node(doc);

    return root == NULL || (root->type == YAML_SCALAR_NODE
                            && root->data.scalar.length == 0
                            && root->data.scalar.style
                               == YAML_PLAIN_SCALAR_STYLE);
}


cJSON *
ctl_yaml_load(const char *path, const char *name, char *err, size_t errlen)
{
    int              ndocs;
    FILE            *f;
    cJSON           *root;
    ctl_yaml_t      y;
    yaml_parser_t    parser;
    yaml_document_t  doc;

    err[0] = '\0';

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        return NULL;
    }

    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }

    yaml_parser_set_input_file(&parser, f);

    y.name = name;
    y.err = err;
    y.errlen = errlen;
    y.nodes = 0;
    y.doc = &doc;

    root = NULL;
    ndocs = 0;

    for ( ;; ) {
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(err, errlen, "%s:%lu:%lu: %s%s%s", name,
                     (unsigned long) parser.problem_mark.line + 1,
                     (unsigned long) parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "invalid YAML",
                     parser.context ? " " : "",
                     parser.context ? parser.context : "");
            cJSON_Delete(root);
            root = NULL;
            break;
        }

        if (yaml_document_get_root_node(&doc) == NULL) {
            /* the end of the stream */
            yaml_document_delete(&doc);

            if (ndocs == 0) {
                snprintf(err, errlen, "%s: empty", name);
            }

            break;
        }

        if (ctl_yaml_empty(&doc)) {
            yaml_document_delete(&doc);
            continue;
        }

        if (++ndocs > 1) {
            /* safe_load refuses this too: LiteLLM never read it */
            snprintf(err, errlen, "%s:%lu:%lu: a second YAML document; "
                     "LiteLLM reads a config of exactly one", name,
                     (unsigned long) doc.start_mark.line + 1,
                     (unsigned long) doc.start_mark.column + 1);
            yaml_document_delete(&doc);
            cJSON_Delete(root);
            root = NULL;
            break;
        }

        root = ctl_yaml_node(&y, yaml_document_get_root_node(&doc), 0);
        yaml_document_delete(&doc);

        if (root == NULL) {
            if (err[0] == '\0') {
                snprintf(err, errlen, "%s: out of memory", name);
            }

            break;
        }
    }

    yaml_parser_delete(&parser);
    fclose(f);

    if (root == NULL && err[0] == '\0') {
        snprintf(err, errlen, "%s: empty", name);
    }

    return root;
}

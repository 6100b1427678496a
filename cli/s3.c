/*
 * llmproxyctl: the S3 requests backups need (PUT, GET, DELETE,
 * ListObjectsV2, multipart upload), signed by libcurl's AWS Signature V4.
 *
 * libcurl 7.88 does not add x-amz-content-sha256, which S3 requires on
 * every signed request; we compute it and send it as a header, and curl
 * signs it with the others (and takes it as the payload hash).  Failed
 * requests (no answer, 5xx, 429) are retried with a growing pause; a
 * multipart upload that cannot finish is aborted so that no half object
 * and no orphaned parts stay in the bucket.
 */

#define _DEFAULT_SOURCE

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "llmp_sha256.h"
#include "cli.h"
#include "s3.h"


#define LLMP_S3_TRIES       4
#define LLMP_S3_PART_SIZE   (16 * 1024 * 1024)
#define LLMP_S3_MAX_PARTS   10000


typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
} llmp_buf_t;


typedef struct {
    const unsigned char  *data;
    size_t                len;
    size_t                pos;
} ctl_reader_t;


typedef struct {
    long         status;
    llmp_buf_t   body;       /* the answer, unless out is set */
    FILE        *out;        /* the answer of a successful GET */
    char         etag[128];
} ctl_s3_resp_t;


struct ctl_s3_upload_s {
    ctl_s3_t   *s3;
    char        *key;
    char        *upload_id;  /* NULL until the first part goes */
    llmp_buf_t   buf;        /* the part being filled */
    llmp_buf_t   etags;      /* "<Part>...</Part>" of the parts sent */
    int          parts;
    int          failed;
};


static const char *
ctl_s3_env(const char *name)
{
    const char  *v;

    v = getenv(name);

    return (v && v[0]) ? v : NULL;
}


size_t
ctl_size(const char *s)
{
    char                *end;
    unsigned long long   n;

    if (s == NULL || !isdigit((unsigned char) s[0])) {
        return 0;
    }

    n = strtoull(s, &end, 10);

    switch (tolower((unsigned char) *end)) {
    case 'k':
        n <<= 10;
        end++;
        break;
    case 'm':
        n <<= 20;
        end++;
        break;
    case 'g':
        n <<= 30;
        end++;
        break;
    }

    if (*end != '\0' || n == 0 || n > (1ULL << 34)) {
        return 0;
    }

    return (size_t) n;
}


static int
ctl_buf_add(llmp_buf_t *b, const void *data, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 4096;

        while (cap < b->len + len + 1) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}


static void
llmp_buf_free(llmp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


int
ctl_s3_open(ctl_s3_t *s3, const char *uri)
{
    size_t       len;
    const char  *p, *slash, *v;

    memset(s3, 0, sizeof(ctl_s3_t));

    if (strncmp(uri, "s3://", 5) != 0 || uri[5] == '\0' || uri[5] == '/') {
        fprintf(stderr, "llmproxyctl: expected s3://BUCKET[/PREFIX], not "
                "\"%s\"\n", uri);
        return -1;
    }

    p = uri + 5;
    slash = strchr(p, '/');
    len = slash ? (size_t) (slash - p) : strlen(p);

    s3->bucket = strndup(p, len);

    p = slash ? slash + 1 : "";
    len = strlen(p);

    while (len > 0 && p[len - 1] == '/') {
        len--;
    }

    s3->prefix = malloc(len + 2);

    if (s3->bucket == NULL || s3->prefix == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    memcpy(s3->prefix, p, len);
    if (len) {
        s3->prefix[len++] = '/';
    }
    s3->prefix[len] = '\0';

    v = ctl_s3_env("AWS_ACCESS_KEY_ID");
    s3->access_key = v ? strdup(v) : NULL;
    v = ctl_s3_env("AWS_SECRET_ACCESS_KEY");
    s3->secret_key = v ? strdup(v) : NULL;
    v = ctl_s3_env("AWS_SESSION_TOKEN");
    s3->token = v ? strdup(v) : NULL;
    v = ctl_s3_env("AWS_REGION");
    if (v == NULL) {
        v = ctl_s3_env("AWS_DEFAULT_REGION");
    }
    s3->region = strdup(v ? v : "us-east-1");

    v = ctl_s3_env("LLMPROXY_S3_ENDPOINT");
    if (v) {
        len = strlen(v);
        while (len > 0 && v[len - 1] == '/') {
            len--;
        }
        s3->endpoint = strndup(v, len);
    }

    if (s3->access_key == NULL || s3->secret_key == NULL) {
        fprintf(stderr, "llmproxyctl: S3 needs AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY\n");
        return -1;
    }

    v = ctl_s3_env("LLMPROXY_S3_PART_SIZE");
    if (v) {
        s3->part_size = ctl_size(v);
        if (s3->part_size == 0) {
            fprintf(stderr, "llmproxyctl: LLMPROXY_S3_PART_SIZE: expected "
                    "a size such as 16m\n");
            return -1;
        }

    } else {
        s3->part_size = LLMP_S3_PART_SIZE;
    }

    return 0;
}


void
ctl_s3_close(ctl_s3_t *s3)
{
    free(s3->endpoint);
    free(s3->bucket);
    free(s3->prefix);
    free(s3->region);
    free(s3->access_key);

    if (s3->secret_key) {
        memset(s3->secret_key, 0, strlen(s3->secret_key));
        free(s3->secret_key);
    }

    if (s3->token) {
        memset(s3->token, 0, strlen(s3->token));
        free(s3->token);
    }

    memset(s3, 0, sizeof(ctl_s3_t));
}


/* RFC 3986 unreserved characters stay, and '/' when keep_slash */
static void
ctl_s3_encode(llmp_buf_t *b, const char *s, int keep_slash)
{
    char                  hex[4];
    const unsigned char  *p;

    for (p = (const unsigned char *) s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~'
            || (keep_slash && *p == '/'))
        {
            ctl_buf_add(b, p, 1);

        } else {
            snprintf(hex, sizeof(hex), "%%%02X", *p);
            ctl_buf_add(b, hex, 3);
        }
    }
}


/* query: already encoded, its parameters sorted by name (curl signs it
 * as given) */
static char *
ctl_s3_url(ctl_s3_t *s3, const char *key, const char *query)
{
    llmp_buf_t  b;

    memset(&b, 0, sizeof(llmp_buf_t));

    if (s3->endpoint) {
        ctl_buf_add(&b, s3->endpoint, strlen(s3->endpoint));
        ctl_buf_add(&b, "/", 1);
        ctl_s3_encode(&b, s3->bucket, 0);

    } else if (strchr(s3->bucket, '.')) {
        /* a dotted bucket name would not match the wildcard certificate
         * of virtual-hosted names: path-style */
        ctl_buf_add(&b, "https://s3.", 11);
        ctl_s3_encode(&b, s3->region, 0);
        ctl_buf_add(&b, ".amazonaws.com/", 15);
        ctl_s3_encode(&b, s3->bucket, 0);

    } else {
        ctl_buf_add(&b, "https://", 8);
        ctl_s3_encode(&b, s3->bucket, 0);
        ctl_buf_add(&b, ".s3.", 4);
        ctl_s3_encode(&b, s3->region, 0);
        ctl_buf_add(&b, ".amazonaws.com", 14);
    }

    ctl_buf_add(&b, "/", 1);

    if (key) {
        ctl_s3_encode(&b, s3->prefix, 1);
        ctl_s3_encode(&b, key, 1);
    }

    if (query) {
        ctl_buf_add(&b, "?", 1);
        ctl_buf_add(&b, query, strlen(query));
    }

    return b.data;
}


static size_t
ctl_s3_read_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
    size_t          n;
    ctl_reader_t  *r;

    r = data;
    n = r->len - r->pos;

    if (n > size * nmemb) {
        n = size * nmemb;
    }

    memcpy(ptr, r->data + r->pos, n);
    r->pos += n;

    return n;
}


static size_t
ctl_s3_write_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
    ctl_s3_resp_t  *resp;

    resp = data;

    /* the body of a failed GET is S3's error, not the object */

    if (resp->out && resp->status / 100 == 2) {
        return fwrite(ptr, size, nmemb, resp->out) == nmemb
               ? size * nmemb : 0;
    }

    if (resp->body.len < 64 * 1024) {
        ctl_buf_add(&resp->body, ptr, size * nmemb);
    }

    return size * nmemb;
}


static size_t
ctl_s3_header_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
    size_t           len, n;
    const char      *v;
    ctl_s3_resp_t  *resp;

    resp = data;
    len = size * nmemb;

    if (len > 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new answer (after a 100 Continue, say) */
        v = memchr(ptr, ' ', len);
        resp->status = v ? strtol(v + 1, NULL, 10) : 0;
        resp->etag[0] = '\0';
        return len;
    }

    if (len > 5 && strncasecmp(ptr, "etag:", 5) == 0) {
        v = ptr + 5;
        n = len - 5;

        while (n > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            n--;
        }

        while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n'
                         || v[n - 1] == ' '))
        {
            n--;
        }

        if (n < sizeof(resp->etag)) {
            memcpy(resp->etag, v, n);
            resp->etag[n] = '\0';
        }
    }

    return len;
}


/* the text between <tag> and </tag> after *from, or NULL; static buffer */
static const char *
ctl_xml_tag(const char *xml, const char *tag, const char **from)
{
    static char   buf[2048];
    char          open[64], close[64];
    size_t        n;
    const char   *s, *e;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);

    s = strstr(from && *from ? *from : xml, open);
    if (s == NULL) {
        return NULL;
    }

    s += strlen(open);
    e = strstr(s, close);
    if (e == NULL) {
        return NULL;
    }

    if (from) {
        *from = e + strlen(close);
    }

    n = (size_t) (e - s);
    if (n >= sizeof(buf)) {
        n = sizeof(buf) - 1;
    }

    memcpy(buf, s, n);
    buf[n] = '\0';

    return buf;
}


/*
 * One request, retried; 0 when an answer came back (resp->status tells
 * which), -1 when none did (reported).  body may be NULL.
 */
static int
ctl_s3_request(ctl_s3_t *s3, const char *method, const char *key,
    const char *query, const void *body, size_t len, ctl_s3_resp_t *resp)
{
    int                 try, rc;
    char               *url, hdr[128], sigv4[128], hex[65];
    long                pos;
    CURL               *curl;
    CURLcode            cc;
    unsigned char       digest[32];
    ctl_reader_t       reader;
    struct curl_slist  *headers;

    url = ctl_s3_url(s3, key, query);
    if (url == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    llmp_sha256(body ? body : "", body ? len : 0, digest);
    llmp_sha256_hex(digest, hex);

    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", s3->region);

    pos = resp->out ? ftell(resp->out) : 0;
    rc = -1;

    for (try = 1; try <= LLMP_S3_TRIES; try++) {

        if (try > 1) {
            /* 0.5 s, 1 s, 2 s */
            struct timespec  ts = { (125 << try) / 1000,
                                    ((125 << try) % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }

        llmp_buf_free(&resp->body);
        resp->status = 0;
        resp->etag[0] = '\0';

        if (resp->out) {
            if (fseek(resp->out, pos, SEEK_SET) != 0
                || ftruncate(fileno(resp->out), pos) != 0)
            {
                fprintf(stderr, "llmproxyctl: cannot rewrite a download\n");
                break;
            }
        }

        curl = curl_easy_init();
        if (curl == NULL) {
            fprintf(stderr, "llmproxyctl: libcurl failed\n");
            break;
        }

        headers = NULL;
        snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hex);
        headers = curl_slist_append(headers, hdr);

        if (s3->token) {
            llmp_buf_t  t;

            memset(&t, 0, sizeof(llmp_buf_t));
            ctl_buf_add(&t, "x-amz-security-token: ", 22);
            ctl_buf_add(&t, s3->token, strlen(s3->token));
            headers = curl_slist_append(headers, t.data);
            memset(t.data, 0, t.len);
            llmp_buf_free(&t);
        }

        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(curl, CURLOPT_USERNAME, s3->access_key);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, s3->secret_key);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        /* a stalled transfer: less than 1 KB/s for 60 s */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ctl_s3_write_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ctl_s3_header_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);

        if (strcmp(method, "PUT") == 0) {
            reader.data = body;
            reader.len = len;
            reader.pos = 0;
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, ctl_s3_read_cb);
            curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                             (curl_off_t) len);

        } else if (strcmp(method, "POST") == 0) {
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t) (body ? len : 0));

        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        }

        cc = curl_easy_perform(curl);

        if (cc == CURLE_OK) {
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        }

        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);

        if (cc != CURLE_OK) {
            fprintf(stderr, "llmproxyctl: s3: %s %s%s (try %d of %d): %s\n",
                    method, s3->prefix, key ? key : "", try, LLMP_S3_TRIES,
                    curl_easy_strerror(cc));
            continue;
        }

        if (resp->status >= 500 || resp->status == 429) {
            fprintf(stderr, "llmproxyctl: s3: %s %s%s (try %d of %d): "
                    "HTTP %ld\n", method, s3->prefix, key ? key : "", try,
                    LLMP_S3_TRIES, resp->status);
            continue;
        }

        rc = 0;
        break;
    }

    if (rc == 0 && resp->out && fflush(resp->out) != 0) {
        fprintf(stderr, "llmproxyctl: cannot write a download\n");
        rc = -1;
    }

    free(url);

    return rc;
}


/* "HTTP 403 SignatureDoesNotMatch" for an answer S3 refused */
static void
ctl_s3_report(ctl_s3_t *s3, const char *what, const char *key,
    ctl_s3_resp_t *resp)
{
    const char  *code;

    code = resp->body.data ? ctl_xml_tag(resp->body.data, "Code", NULL)
                           : NULL;

    fprintf(stderr, "llmproxyctl: s3: %s %s/%s%s: HTTP %ld%s%s\n", what,
            s3->bucket, s3->prefix, key ? key : "", resp->status,
            code ? " " : "", code ? code : "");
}


int
ctl_s3_put(ctl_s3_t *s3, const char *key, const void *data, size_t len)
{
    int             rc;
    ctl_s3_resp_t  resp;

    memset(&resp, 0, sizeof(ctl_s3_resp_t));

    rc = ctl_s3_request(s3, "PUT", key, NULL, data, len, &resp);

    if (rc == 0 && resp.status != 200) {
        ctl_s3_report(s3, "PUT", key, &resp);
        rc = -1;
    }

    llmp_buf_free(&resp.body);

    return rc;
}


int
ctl_s3_get(ctl_s3_t *s3, const char *key, FILE *f)
{
    int             rc;
    ctl_s3_resp_t  resp;

    memset(&resp, 0, sizeof(ctl_s3_resp_t));
    resp.out = f;

    rc = ctl_s3_request(s3, "GET", key, NULL, NULL, 0, &resp);

    if (rc == 0 && resp.status == 404) {
        rc = 1;

    } else if (rc == 0 && resp.status != 200) {
        ctl_s3_report(s3, "GET", key, &resp);
        rc = -1;
    }

    llmp_buf_free(&resp.body);

    return rc;
}


int
ctl_s3_delete(ctl_s3_t *s3, const char *key)
{
    int             rc;
    ctl_s3_resp_t  resp;

    memset(&resp, 0, sizeof(ctl_s3_resp_t));

    rc = ctl_s3_request(s3, "DELETE", key, NULL, NULL, 0, &resp);

    if (rc == 0 && resp.status != 204 && resp.status != 200
        && resp.status != 404)
    {
        ctl_s3_report(s3, "DELETE", key, &resp);
        rc = -1;
    }

    llmp_buf_free(&resp.body);

    return rc;
}


static int
ctl_s3_object_cmp(const void *a, const void *b)
{
    return strcmp(((const ctl_s3_object_t *) a)->key,
                  ((const ctl_s3_object_t *) b)->key);
}


void
ctl_s3_objects_free(ctl_s3_object_t *objs, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(objs[i].key);
    }

    free(objs);
}


/* the few XML entities S3 uses in keys */
static char *
ctl_xml_unescape(const char *s)
{
    char        *out, *o;
    size_t       i;
    static const struct { const char *ent; char c; }  ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
        { "&quot;", '"' }, { "&apos;", '\'' }, { NULL, 0 }
    };

    out = malloc(strlen(s) + 1);
    if (out == NULL) {
        return NULL;
    }

    for (o = out; *s; ) {
        if (*s == '&') {
            for (i = 0; ents[i].ent; i++) {
                if (strncmp(s, ents[i].ent, strlen(ents[i].ent)) == 0) {
                    break;
                }
            }

            if (ents[i].ent) {
                *o++ = ents[i].c;
                s += strlen(ents[i].ent);
                continue;
            }
        }

        *o++ = *s++;
    }

    *o = '\0';

    return out;
}


int
ctl_s3_list(ctl_s3_t *s3, const char *sub, ctl_s3_object_t **objs,
    size_t *n)
{
    char               *token, *key;
    size_t              cap, plen;
    llmp_buf_t          q, prefix;
    const char         *from, *v, *item, *truncated;
    ctl_s3_resp_t      resp;
    ctl_s3_object_t   *o, *list;

    *objs = NULL;
    *n = 0;
    list = NULL;
    cap = 0;
    token = NULL;

    memset(&prefix, 0, sizeof(llmp_buf_t));
    ctl_buf_add(&prefix, s3->prefix, strlen(s3->prefix));
    ctl_buf_add(&prefix, sub, strlen(sub));
    plen = strlen(s3->prefix);

    memset(&resp, 0, sizeof(ctl_s3_resp_t));

    for ( ;; ) {
        /* parameters in name order: curl signs the query as it is */

        memset(&q, 0, sizeof(llmp_buf_t));

        if (token) {
            ctl_buf_add(&q, "continuation-token=", 19);
            ctl_s3_encode(&q, token, 0);
            ctl_buf_add(&q, "&", 1);
        }

        ctl_buf_add(&q, "list-type=2&prefix=", 19);
        ctl_s3_encode(&q, prefix.data, 0);

        if (ctl_s3_request(s3, "GET", NULL, q.data, NULL, 0, &resp) != 0) {
            llmp_buf_free(&q);
            goto failed;
        }

        llmp_buf_free(&q);

        if (resp.status != 200 || resp.body.data == NULL) {
            ctl_s3_report(s3, "LIST", sub, &resp);
            goto failed;
        }

        from = resp.body.data;

        while ((item = strstr(from, "<Contents>")) != NULL) {
            from = item;

            v = ctl_xml_tag(resp.body.data, "Key", &from);
            if (v == NULL) {
                break;
            }

            key = ctl_xml_unescape(v);
            if (key == NULL) {
                goto nomem;
            }

            if (strncmp(key, s3->prefix, plen) != 0) {
                free(key);
                continue;
            }

            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                o = realloc(list, cap * sizeof(ctl_s3_object_t));
                if (o == NULL) {
                    free(key);
                    goto nomem;
                }
                list = o;
            }

            memmove(key, key + plen, strlen(key + plen) + 1);
            list[*n].key = key;

            v = ctl_xml_tag(resp.body.data, "Size", &from);
            list[*n].size = v ? atoll(v) : 0;
            (*n)++;
        }

        truncated = ctl_xml_tag(resp.body.data, "IsTruncated", NULL);
        free(token);
        token = NULL;

        if (truncated == NULL || strcmp(truncated, "true") != 0) {
            break;
        }

        v = ctl_xml_tag(resp.body.data, "NextContinuationToken", NULL);
        if (v == NULL || (token = strdup(v)) == NULL) {
            fprintf(stderr, "llmproxyctl: s3: a truncated listing without "
                    "a continuation token\n");
            goto failed;
        }
    }

    llmp_buf_free(&resp.body);
    llmp_buf_free(&prefix);

    if (*n) {
        qsort(list, *n, sizeof(ctl_s3_object_t), ctl_s3_object_cmp);
    }

    *objs = list;

    return 0;

nomem:

    fprintf(stderr, "llmproxyctl: out of memory\n");

failed:

    free(token);
    llmp_buf_free(&resp.body);
    llmp_buf_free(&prefix);
    ctl_s3_objects_free(list, *n);
    *n = 0;

    return -1;
}


/* "[partNumber=N&]uploadId=ID", the id encoded */
static int
ctl_s3_upload_query(ctl_s3_upload_t *up, int part, char *buf,
    size_t size)
{
    int         n;
    llmp_buf_t  id;

    memset(&id, 0, sizeof(llmp_buf_t));
    ctl_s3_encode(&id, up->upload_id, 0);

    if (part) {
        n = snprintf(buf, size, "partNumber=%d&uploadId=%s", part,
                     id.data ? id.data : "");
    } else {
        n = snprintf(buf, size, "uploadId=%s", id.data ? id.data : "");
    }

    llmp_buf_free(&id);

    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}


ctl_s3_upload_t *
ctl_s3_upload_start(ctl_s3_t *s3, const char *key)
{
    ctl_s3_upload_t  *up;

    up = calloc(1, sizeof(ctl_s3_upload_t));
    if (up == NULL || (up->key = strdup(key)) == NULL) {
        free(up);
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return NULL;
    }

    up->s3 = s3;

    return up;
}


static int
ctl_s3_upload_part(ctl_s3_upload_t *up)
{
    char            query[512], part[256];
    const char     *v;
    ctl_s3_resp_t  resp;

    memset(&resp, 0, sizeof(ctl_s3_resp_t));

    if (up->upload_id == NULL) {
        if (ctl_s3_request(up->s3, "POST", up->key, "uploads=", NULL, 0,
                            &resp) != 0)
        {
            goto failed;
        }

        v = (resp.status == 200 && resp.body.data)
            ? ctl_xml_tag(resp.body.data, "UploadId", NULL) : NULL;

        if (v == NULL || (up->upload_id = strdup(v)) == NULL) {
            ctl_s3_report(up->s3, "CreateMultipartUpload", up->key, &resp);
            goto failed;
        }
    }

    if (up->parts == LLMP_S3_MAX_PARTS) {
        fprintf(stderr, "llmproxyctl: s3: %s: more than %d parts: raise "
                "the part size\n", up->key, LLMP_S3_MAX_PARTS);
        goto failed;
    }

    up->parts++;

    /* partNumber sorts before uploadId */

    if (ctl_s3_upload_query(up, up->parts, query, sizeof(query)) != 0
        || ctl_s3_request(up->s3, "PUT", up->key, query, up->buf.data,
                        up->buf.len, &resp) != 0)
    {
        goto failed;
    }

    if (resp.status != 200 || resp.etag[0] == '\0') {
        ctl_s3_report(up->s3, "UploadPart", up->key, &resp);
        goto failed;
    }

    snprintf(part, sizeof(part), "<Part><PartNumber>%d</PartNumber>"
             "<ETag>%s</ETag></Part>", up->parts, resp.etag);
    ctl_buf_add(&up->etags, part, strlen(part));

    up->buf.len = 0;
    llmp_buf_free(&resp.body);

    return 0;

failed:

    llmp_buf_free(&resp.body);
    up->failed = 1;

    return -1;
}


int
ctl_s3_upload_write(ctl_s3_upload_t *up, const void *data, size_t len)
{
    size_t                n;
    const unsigned char  *p;

    if (up->failed) {
        return -1;
    }

    p = data;

    while (len > 0) {
        n = up->s3->part_size - up->buf.len;
        if (n > len) {
            n = len;
        }

        if (ctl_buf_add(&up->buf, p, n) != 0) {
            fprintf(stderr, "llmproxyctl: out of memory\n");
            up->failed = 1;
            return -1;
        }

        p += n;
        len -= n;

        if (up->buf.len == up->s3->part_size
            && ctl_s3_upload_part(up) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static void
ctl_s3_upload_free(ctl_s3_upload_t *up)
{
    llmp_buf_free(&up->buf);
    llmp_buf_free(&up->etags);
    free(up->upload_id);
    free(up->key);
    free(up);
}


int
ctl_s3_upload_finish(ctl_s3_upload_t *up)
{
    int             rc;
    char            query[512];
    llmp_buf_t      xml;
    ctl_s3_resp_t  resp;

    if (up->failed) {
        ctl_s3_upload_abort(up);
        return -1;
    }

    if (up->upload_id == NULL) {
        /* it stayed small: one PUT */
        rc = ctl_s3_put(up->s3, up->key, up->buf.data ? up->buf.data : "",
                         up->buf.len);
        ctl_s3_upload_free(up);
        return rc;
    }

    if (up->buf.len > 0 && ctl_s3_upload_part(up) != 0) {
        ctl_s3_upload_abort(up);
        return -1;
    }

    memset(&xml, 0, sizeof(llmp_buf_t));
    ctl_buf_add(&xml, "<CompleteMultipartUpload>", 25);
    ctl_buf_add(&xml, up->etags.data, up->etags.len);
    ctl_buf_add(&xml, "</CompleteMultipartUpload>", 26);

    memset(&resp, 0, sizeof(ctl_s3_resp_t));

    rc = ctl_s3_upload_query(up, 0, query, sizeof(query));
    rc = rc ? rc : ctl_s3_request(up->s3, "POST", up->key, query,
                                   xml.data, xml.len, &resp);

    /* S3 may answer 200 with an <Error> in the body */

    if (rc == 0 && (resp.status != 200 || resp.body.data == NULL
                    || strstr(resp.body.data, "<Error>") != NULL))
    {
        ctl_s3_report(up->s3, "CompleteMultipartUpload", up->key, &resp);
        rc = -1;
    }

    llmp_buf_free(&resp.body);
    llmp_buf_free(&xml);

    if (rc != 0) {
        ctl_s3_upload_abort(up);
        return -1;
    }

    ctl_s3_upload_free(up);

    return 0;
}


void
ctl_s3_upload_abort(ctl_s3_upload_t *up)
{
    char            query[512];
    ctl_s3_resp_t  resp;

    if (up->upload_id) {
        memset(&resp, 0, sizeof(ctl_s3_resp_t));

        if (ctl_s3_upload_query(up, 0, query, sizeof(query)) == 0
            && ctl_s3_request(up->s3, "DELETE", up->key, query, NULL, 0,
                            &resp) == 0
            && resp.status / 100 != 2 && resp.status != 404)
        {
            ctl_s3_report(up->s3, "AbortMultipartUpload", up->key, &resp);
        }

        llmp_buf_free(&resp.body);
    }

    ctl_s3_upload_free(up);
}

/*
 * llmproxyctl: HTTP to the gateway's admin API over libcurl.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"


#define LLMP_HTTP_CONNECT_TIMEOUT  5L          /* seconds */
#define LLMP_HTTP_TIMEOUT          60L
#define LLMP_HTTP_PROBE_TIMEOUT    2L
#define LLMP_HTTP_MAX_BODY         (64 * 1024 * 1024)


static size_t
ctl_http_write(char *data, size_t size, size_t n, void *userdata)
{
    char                  *p;
    size_t                 len;
    ctl_http_response_t  *resp = userdata;

    len = size * n;

    if (resp->len + len > LLMP_HTTP_MAX_BODY) {
        return 0;
    }

    p = realloc(resp->body, resp->len + len + 1);
    if (p == NULL) {
        return 0;           /* curl fails with CURLE_WRITE_ERROR */
    }

    memcpy(p + resp->len, data, len);
    resp->body = p;
    resp->len += len;
    resp->body[resp->len] = '\0';

    return len;
}


static struct curl_slist *
ctl_http_headers(const char *key)
{
    char               *auth;
    size_t              n;
    struct curl_slist  *headers, *h;

    headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (headers == NULL || key == NULL) {
        return headers;
    }

    n = sizeof("Authorization: Bearer ") + strlen(key);

    auth = malloc(n);
    if (auth == NULL) {
        curl_slist_free_all(headers);
        return NULL;
    }

    snprintf(auth, n, "Authorization: Bearer %s", key);

    h = curl_slist_append(headers, auth);

    explicit_bzero(auth, n);
    free(auth);

    if (h == NULL) {
        curl_slist_free_all(headers);
        return NULL;
    }

    return h;
}


static int
ctl_http_run(const char *method, const char *url, const char *key,
    const char *body, ctl_http_response_t *resp, long timeout, int quiet)
{
    CURL               *curl;
    CURLcode            rc;
    struct curl_slist  *headers;

    memset(resp, 0, sizeof(ctl_http_response_t));

    curl = curl_easy_init();
    headers = ctl_http_headers(key);

    if (curl == NULL || headers == NULL) {
        fprintf(stderr, "llmproxyctl: %s %s: out of memory\n", method, url);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return -1;
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ctl_http_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                     timeout < LLMP_HTTP_CONNECT_TIMEOUT
                     ? timeout : LLMP_HTTP_CONNECT_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");

    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }

    rc = curl_easy_perform(curl);

    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);

    } else if (!quiet) {
        fprintf(stderr, "llmproxyctl: %s %s: %s\n", method, url,
                rc == CURLE_WRITE_ERROR ? "answer too large or out of memory"
                : curl_easy_strerror(rc));
    }

    if (rc != CURLE_OK) {
        ctl_http_free(resp);
    }

    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    return rc == CURLE_OK ? 0 : -1;
}


int
ctl_http(const char *method, const char *url, const char *key,
    const char *body, ctl_http_response_t *resp)
{
    return ctl_http_run(method, url, key, body, resp, LLMP_HTTP_TIMEOUT, 0);
}


int
ctl_http_probe(const char *url, const char *key,
    ctl_http_response_t *resp)
{
    return ctl_http_run("GET", url, key, NULL, resp, LLMP_HTTP_PROBE_TIMEOUT,
                         1);
}


void
ctl_http_free(ctl_http_response_t *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(ctl_http_response_t));
}


const char *
ctl_http_error_message(const ctl_http_response_t *resp)
{
    static char   buf[1024];
    cJSON        *root, *msg;

    root = resp->body ? cJSON_Parse(resp->body) : NULL;
    msg = cJSON_GetObjectItemCaseSensitive(
              cJSON_GetObjectItemCaseSensitive(root, "error"), "message");

    if (cJSON_IsString(msg)) {
        snprintf(buf, sizeof(buf), "HTTP %ld: %s", resp->status,
                 msg->valuestring);

    } else if (resp->status == 401 || resp->status == 403) {
        snprintf(buf, sizeof(buf), "HTTP %ld: the master key was refused",
                 resp->status);

    } else {
        snprintf(buf, sizeof(buf), "HTTP %ld", resp->status);
    }

    cJSON_Delete(root);

    return buf;
}

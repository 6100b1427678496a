/*
 * The gateway's admin API over libcurl.
 */

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"


static size_t
llmp_http_write(char *data, size_t size, size_t n, void *userdata)
{
    char                  *p;
    size_t                 len;
    llmp_http_response_t  *resp = userdata;

    len = size * n;

    p = realloc(resp->body, resp->len + len + 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p + resp->len, data, len);
    resp->body = p;
    resp->len += len;
    resp->body[resp->len] = '\0';

    return len;
}


/* returns 0 when an HTTP answer came back (any status), -1 otherwise */

int
llmp_http(const char *method, const char *url, const char *key,
    const char *body, llmp_http_response_t *resp)
{
    char                auth[600];
    CURL               *curl;
    CURLcode            rc;
    struct curl_slist  *headers;

    memset(resp, 0, sizeof(llmp_http_response_t));

    curl = curl_easy_init();
    if (curl == NULL) {
        return -1;
    }

    headers = curl_slist_append(NULL, "Content-Type: application/json");

    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        headers = curl_slist_append(headers, auth);
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, llmp_http_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);

    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }

    rc = curl_easy_perform(curl);

    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);

    } else {
        fprintf(stderr, "llmproxyctl: cannot reach the gateway at %s: %s\n",
                url, curl_easy_strerror(rc));
    }

    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    return rc == CURLE_OK ? 0 : -1;
}


void
llmp_http_free(llmp_http_response_t *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(llmp_http_response_t));
}


/* the message of an error answer, in the gateway's OpenAI shape */

const char *
llmp_http_error_message(llmp_http_response_t *resp)
{
    static char   buf[1024];
    cJSON        *root, *msg;

    snprintf(buf, sizeof(buf), "HTTP %ld", resp->status);

    root = resp->body ? cJSON_Parse(resp->body) : NULL;
    msg = cJSON_GetObjectItemCaseSensitive(
              cJSON_GetObjectItemCaseSensitive(root, "error"), "message");

    if (cJSON_IsString(msg)) {
        snprintf(buf, sizeof(buf), "HTTP %ld: %s", resp->status,
                 msg->valuestring);
    }

    cJSON_Delete(root);

    return buf;
}

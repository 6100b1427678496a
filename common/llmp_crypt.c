/*
 * AES-256-GCM for provider keys at rest; see llmp_crypt.h.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "llmp_crypt.h"
#include "llmp_sha256.h"


#define LLMP_IV   12
#define LLMP_TAG  16


char *
llmp_encrypt(const char *salt_key, const char *plain)
{
    int              n, len, ok;
    char            *out;
    size_t           plen, raw_len;
    unsigned char    key[32], *raw;
    EVP_CIPHER_CTX  *ctx;

    plen = strlen(plain);
    raw_len = LLMP_IV + LLMP_TAG + plen;

    raw = malloc(raw_len);
    out = malloc(3 + 4 * ((raw_len + 2) / 3) + 1);
    ctx = EVP_CIPHER_CTX_new();

    if (raw == NULL || out == NULL || ctx == NULL
        || RAND_bytes(raw, LLMP_IV) != 1)
    {
        goto failed;
    }

    llmp_sha256(salt_key, strlen(salt_key), key);

    ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, LLMP_IV, NULL)
         && EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw)
         && EVP_EncryptUpdate(ctx, raw + LLMP_IV + LLMP_TAG, &len,
                              (const unsigned char *) plain, (int) plen)
         && EVP_EncryptFinal_ex(ctx, raw + LLMP_IV + LLMP_TAG + len, &n)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, LLMP_TAG,
                                raw + LLMP_IV);

    memset(key, 0, sizeof(key));

    if (!ok) {
        goto failed;
    }

    memcpy(out, "v1:", 3);
    EVP_EncodeBlock((unsigned char *) out + 3, raw, (int) raw_len);

    EVP_CIPHER_CTX_free(ctx);
    free(raw);

    return out;

failed:

    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(out);

    return NULL;
}


char *
llmp_decrypt(const char *salt_key, const char *text)
{
    int              n, len, raw_len, ok;
    char            *plain;
    size_t           tlen;
    unsigned char    key[32], *raw;
    EVP_CIPHER_CTX  *ctx;

    if (strncmp(text, "v1:", 3) != 0) {
        return NULL;
    }

    text += 3;
    tlen = strlen(text);

    if (tlen % 4 != 0 || tlen < 4 * ((LLMP_IV + LLMP_TAG + 2) / 3)) {
        return NULL;
    }

    raw = malloc(tlen / 4 * 3 + 1);
    if (raw == NULL) {
        return NULL;
    }

    raw_len = EVP_DecodeBlock(raw, (const unsigned char *) text, (int) tlen);

    /* EVP_DecodeBlock counts the padding as zero bytes */

    if (raw_len >= 0 && tlen >= 1 && text[tlen - 1] == '=') {
        raw_len--;
    }

    if (raw_len >= 0 && tlen >= 2 && text[tlen - 2] == '=') {
        raw_len--;
    }

    if (raw_len < LLMP_IV + LLMP_TAG) {
        free(raw);
        return NULL;
    }

    plain = malloc(raw_len - LLMP_IV - LLMP_TAG + 1);
    ctx = EVP_CIPHER_CTX_new();

    if (plain == NULL || ctx == NULL) {
        EVP_CIPHER_CTX_free(ctx);
        free(plain);
        free(raw);
        return NULL;
    }

    llmp_sha256(salt_key, strlen(salt_key), key);

    len = 0;
    n = 0;

    ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, LLMP_IV, NULL)
         && EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw)
         && EVP_DecryptUpdate(ctx, (unsigned char *) plain, &len,
                              raw + LLMP_IV + LLMP_TAG,
                              raw_len - LLMP_IV - LLMP_TAG)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, LLMP_TAG,
                                raw + LLMP_IV)
         && EVP_DecryptFinal_ex(ctx, (unsigned char *) plain + len, &n) > 0;

    memset(key, 0, sizeof(key));
    EVP_CIPHER_CTX_free(ctx);
    free(raw);

    if (!ok) {
        free(plain);
        return NULL;
    }

    plain[len + n] = '\0';

    return plain;
}


void
llmp_salt_key_id(const char *salt_key, char out[LLMP_SALT_KEY_ID_LEN + 1])
{
    char                hex[65];
    unsigned char       digest[32];
    llmp_sha256_ctx_t   ctx;

    /* the label's NUL keeps it apart from any key */

    static const char   label[] = "llmproxy salt key id v1";

    llmp_sha256_init(&ctx);
    llmp_sha256_update(&ctx, label, sizeof(label));
    llmp_sha256_update(&ctx, salt_key, strlen(salt_key));
    llmp_sha256_final(&ctx, digest);
    llmp_sha256_hex(digest, hex);

    memcpy(out, hex, LLMP_SALT_KEY_ID_LEN);
    out[LLMP_SALT_KEY_ID_LEN] = '\0';

    memset(&ctx, 0, sizeof(ctx));
    memset(digest, 0, sizeof(digest));
}


static int
llmp_headers_cmp(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *) a)->string,
                  (*(cJSON *const *) b)->string);
}


/* the headers as one canonical text (cJSON_free), or NULL */

static char *
llmp_headers_text(const cJSON *headers)
{
    char    *text;
    cJSON   *copy, **items, *v;
    size_t   i, n;

    copy = cJSON_Duplicate(headers, 1);
    if (copy == NULL) {
        return NULL;
    }

    n = 0;

    cJSON_ArrayForEach(v, copy) {
        n++;
    }

    items = malloc((n + 1) * sizeof(cJSON *));
    if (items == NULL) {
        cJSON_Delete(copy);
        return NULL;
    }

    i = 0;

    cJSON_ArrayForEach(v, copy) {
        items[i++] = v;
    }

    qsort(items, n, sizeof(cJSON *), llmp_headers_cmp);

    for (i = 0; i < n; i++) {
        items[i]->prev = i ? items[i - 1] : items[n - 1];
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }

    copy->child = n ? items[0] : NULL;
    free(items);

    text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);

    return text;
}


int
llmp_headers_sha256(const cJSON *headers, char hex[65])
{
    char           *text;
    unsigned char   digest[32];

    if (!cJSON_IsObject(headers) || headers->child == NULL) {
        return 0;
    }

    text = llmp_headers_text(headers);
    if (text == NULL) {
        return -1;
    }

    llmp_sha256(text, strlen(text), digest);
    llmp_sha256_hex(digest, hex);

    memset(text, 0, strlen(text));
    cJSON_free(text);

    return 1;
}


char *
llmp_headers_encrypt(const char *salt_key, const cJSON *headers)
{
    char  *text, *enc;

    text = llmp_headers_text(headers);
    if (text == NULL) {
        return NULL;
    }

    enc = llmp_encrypt(salt_key, text);

    memset(text, 0, strlen(text));
    cJSON_free(text);

    return enc;
}


cJSON *
llmp_headers_decrypt(const char *salt_key, const char *text)
{
    char   *plain;
    cJSON  *headers, *v;

    plain = llmp_decrypt(salt_key, text);
    if (plain == NULL) {
        return NULL;
    }

    headers = cJSON_Parse(plain);

    memset(plain, 0, strlen(plain));
    free(plain);

    if (!cJSON_IsObject(headers)) {
        cJSON_Delete(headers);
        return NULL;
    }

    cJSON_ArrayForEach(v, headers) {
        if (!cJSON_IsString(v)) {
            cJSON_Delete(headers);
            return NULL;
        }
    }

    return headers;
}


const char *
llmp_header_problem(const char *name, const char *value)
{
    size_t        i;
    const char   *s;
    unsigned char c;

    static const char *const  reserved[] = {
        "host", "content-length", "transfer-encoding", "connection",
        "keep-alive", "upgrade", "te", "trailer", "proxy-connection", NULL
    };

    if (name[0] == '\0') {
        return "invalid header name";
    }

    for (s = name; *s; s++) {
        c = (unsigned char) *s;

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c)))
        {
            return "invalid header name";
        }
    }

    for (i = 0; reserved[i]; i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            return "header set by the gateway itself";
        }
    }

    for (s = value; *s; s++) {
        c = (unsigned char) *s;

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return "invalid header value";
        }
    }

    return NULL;
}

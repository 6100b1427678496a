/*
 * AES-256-GCM for provider keys at rest; see llmp_crypt.h.
 */

#include <stdlib.h>
#include <string.h>

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

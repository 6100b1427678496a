/*
 * SHA-256 (FIPS 180-4), shared by the gateway and llmproxyctl: virtual
 * keys are stored and compared as SHA-256 digests.
 */

#ifndef _LLMP_SHA256_H_INCLUDED_
#define _LLMP_SHA256_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t       state[8];
    uint64_t       bits;
    unsigned char  buf[64];
    size_t         used;
} llmp_sha256_ctx_t;

void llmp_sha256_init(llmp_sha256_ctx_t *ctx);
void llmp_sha256_update(llmp_sha256_ctx_t *ctx, const void *data,
    size_t len);
void llmp_sha256_final(llmp_sha256_ctx_t *ctx, unsigned char out[32]);

void llmp_sha256(const void *data, size_t len, unsigned char out[32]);

/* 64 lowercase hex digits and a terminating NUL */
void llmp_sha256_hex(const unsigned char digest[32], char out[65]);

#endif /* _LLMP_SHA256_H_INCLUDED_ */

/*
 * Provider API keys at rest: AES-256-GCM with a key derived from
 * LLMPROXY_SALT_KEY (SHA-256 of it).  Shared by llmproxyctl, which
 * encrypts, and the gateway, which decrypts.
 *
 * Format: "v1:" base64(12-byte IV | 16-byte tag | ciphertext).
 */

#ifndef _LLMP_CRYPT_H_INCLUDED_
#define _LLMP_CRYPT_H_INCLUDED_

#include <stddef.h>

/* returns a malloc()ed string, or NULL */
char *llmp_encrypt(const char *salt_key, const char *plain);

/* returns a malloc()ed string, or NULL (wrong key, damaged text) */
char *llmp_decrypt(const char *salt_key, const char *text);

#endif /* _LLMP_CRYPT_H_INCLUDED_ */

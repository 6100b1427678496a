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
#include <cjson/cJSON.h>

/* returns a malloc()ed string, or NULL */
char *llmp_encrypt(const char *salt_key, const char *plain);

/* returns a malloc()ed string, or NULL (wrong key, damaged text) */
char *llmp_decrypt(const char *salt_key, const char *text);


/*
 * Which salt key encrypted a stored secret, so that sync knows what to
 * encrypt again after a rotation: 16 hex digits of SHA-256 over a fixed
 * label and the key.  Not the AES key (SHA-256 of the salt key alone),
 * and no help guessing the salt key: checking a guess against a
 * ciphertext's GCM tag costs the same.
 */

#define LLMP_SALT_KEY_ID_LEN  16

void llmp_salt_key_id(const char *salt_key,
    char out[LLMP_SALT_KEY_ID_LEN + 1]);


/*
 * Provider "headers" at rest.  Their values are secrets like api_key
 * (often an Authorization): the object, names in byte order, is printed
 * unformatted and encrypted whole ("headers_enc"); "headers_sha256", the
 * hex SHA-256 of the same text, lets sync compare them without reading
 * them back.
 */

/* 1 with hex set for a non-empty object, 0 for none, -1 on no memory */
int llmp_headers_sha256(const cJSON *headers, char hex[65]);

/* returns a malloc()ed string, or NULL */
char *llmp_headers_encrypt(const char *salt_key, const cJSON *headers);

/* returns an object (the caller deletes it), or NULL */
cJSON *llmp_headers_decrypt(const char *salt_key, const char *text);

/*
 * NULL when a provider header may be sent as it is: the name a token,
 * not one the gateway sets itself (framing, Host, hop-by-hop), the value
 * visible characters, blanks and tabs only.  Else what is wrong, without
 * the value.
 */
const char *llmp_header_problem(const char *name, const char *value);

#endif /* _LLMP_CRYPT_H_INCLUDED_ */

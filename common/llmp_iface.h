/*
 * llmp_iface: the three API styles the gateway speaks, once for the
 * module, the translation library and the CLI: their bit values (a
 * provider's "interfaces" is a set of them), their names and each one's
 * documented mapping of an HTTP status to its error type.
 */

#ifndef _LLMP_IFACE_H_INCLUDED_
#define _LLMP_IFACE_H_INCLUDED_

#include <stddef.h>

#define LLMP_IFACE_OPENAI     0x01
#define LLMP_IFACE_ANTHROPIC  0x02
#define LLMP_IFACE_GEMINI     0x04

#define LLMP_IFACE_ALL                                                        \
    (LLMP_IFACE_OPENAI|LLMP_IFACE_ANTHROPIC|LLMP_IFACE_GEMINI)

/* the interface name ("openai", "anthropic", "gemini") or NULL */
const char *llmp_iface_name(int iface);

/* the interface of a name of len bytes, or 0 */
int llmp_iface_by_name(const char *name, size_t len);

/*
 * The error type an HTTP status has in the interface's error body: the
 * OpenAI "type", the Anthropic "error.type", the Gemini "error.status"
 * (google.rpc.Code), as each provider documents them.
 */
const char *llmp_iface_error_type(int iface, int status);

#endif /* _LLMP_IFACE_H_INCLUDED_ */

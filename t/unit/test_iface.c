/*
 * Unit tests of the interfaces' names and their HTTP status -> error type
 * mappings (common/llmp_iface.c), which the module's own errors and the
 * translated provider errors both use: one type per status per interface.
 */

#include <stdio.h>
#include <string.h>

#include "llmp_iface.h"
#include "unit_tap.h"


int
main(void)
{
    int   i;
    char  what[96];

    static const struct {
        int          iface;
        int          status;
        const char  *type;
    } cases[] = {
        /* docs.anthropic.com/en/api/errors, every documented status */
        { LLMP_IFACE_ANTHROPIC, 400, "invalid_request_error" },
        { LLMP_IFACE_ANTHROPIC, 401, "authentication_error" },
        { LLMP_IFACE_ANTHROPIC, 402, "billing_error" },
        { LLMP_IFACE_ANTHROPIC, 403, "permission_error" },
        { LLMP_IFACE_ANTHROPIC, 404, "not_found_error" },
        { LLMP_IFACE_ANTHROPIC, 413, "request_too_large" },
        { LLMP_IFACE_ANTHROPIC, 429, "rate_limit_error" },
        { LLMP_IFACE_ANTHROPIC, 500, "api_error" },
        { LLMP_IFACE_ANTHROPIC, 503, "overloaded_error" },
        { LLMP_IFACE_ANTHROPIC, 504, "timeout_error" },
        { LLMP_IFACE_ANTHROPIC, 529, "overloaded_error" },
        { LLMP_IFACE_ANTHROPIC, 405, "invalid_request_error" },
        { LLMP_IFACE_ANTHROPIC, 502, "api_error" },

        /* google.rpc.Code's HTTP mapping */
        { LLMP_IFACE_GEMINI, 400, "INVALID_ARGUMENT" },
        { LLMP_IFACE_GEMINI, 401, "UNAUTHENTICATED" },
        { LLMP_IFACE_GEMINI, 403, "PERMISSION_DENIED" },
        { LLMP_IFACE_GEMINI, 404, "NOT_FOUND" },
        { LLMP_IFACE_GEMINI, 405, "UNIMPLEMENTED" },
        { LLMP_IFACE_GEMINI, 409, "ABORTED" },
        { LLMP_IFACE_GEMINI, 413, "INVALID_ARGUMENT" },
        { LLMP_IFACE_GEMINI, 429, "RESOURCE_EXHAUSTED" },
        { LLMP_IFACE_GEMINI, 499, "CANCELLED" },
        { LLMP_IFACE_GEMINI, 500, "INTERNAL" },
        { LLMP_IFACE_GEMINI, 501, "UNIMPLEMENTED" },
        { LLMP_IFACE_GEMINI, 502, "UNAVAILABLE" },
        { LLMP_IFACE_GEMINI, 503, "UNAVAILABLE" },
        { LLMP_IFACE_GEMINI, 504, "DEADLINE_EXCEEDED" },
        { LLMP_IFACE_GEMINI, 529, "UNAVAILABLE" },
        { LLMP_IFACE_GEMINI, 411, "FAILED_PRECONDITION" },

        /* platform.openai.com/docs/guides/error-codes */
        { LLMP_IFACE_OPENAI, 400, "invalid_request_error" },
        { LLMP_IFACE_OPENAI, 401, "authentication_error" },
        { LLMP_IFACE_OPENAI, 403, "permission_error" },
        { LLMP_IFACE_OPENAI, 429, "rate_limit_error" },
        { LLMP_IFACE_OPENAI, 500, "api_error" },
        { LLMP_IFACE_OPENAI, 529, "api_error" }
    };

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        snprintf(what, sizeof(what), "%s %d is %s",
                 llmp_iface_name(cases[i].iface), cases[i].status,
                 cases[i].type);
        TAP_OK(strcmp(llmp_iface_error_type(cases[i].iface, cases[i].status),
                      cases[i].type) == 0, what);
    }

    TAP_OK(strcmp(llmp_iface_name(LLMP_IFACE_GEMINI), "gemini") == 0,
           "name of gemini");
    TAP_OK(llmp_iface_name(0x08) == NULL, "no name for an unknown bit");
    TAP_OK(llmp_iface_by_name("anthropic", 9) == LLMP_IFACE_ANTHROPIC,
           "anthropic by name");
    TAP_OK(llmp_iface_by_name("openai", 6) == LLMP_IFACE_OPENAI,
           "openai by name");
    TAP_OK(llmp_iface_by_name("gemin", 5) == 0, "a prefix is no name");

    return tap_done();
}

/*
 * The interfaces' names and error types (see llmp_iface.h).  The module
 * renders the gateway's own errors and the translation library the
 * providers' errors with the same tables, so a client sees one type per
 * status whoever produced the error.
 */

#include <string.h>

#include "llmp_iface.h"


const char *
llmp_iface_name(int iface)
{
    switch (iface) {
    case LLMP_IFACE_OPENAI:
        return "openai";
    case LLMP_IFACE_ANTHROPIC:
        return "anthropic";
    case LLMP_IFACE_GEMINI:
        return "gemini";
    }
    return NULL;
}


int
llmp_iface_by_name(const char *name, size_t len)
{
    int          iface;
    const char  *s;

    for (iface = LLMP_IFACE_OPENAI; iface <= LLMP_IFACE_GEMINI; iface <<= 1) {
        s = llmp_iface_name(iface);
        if (strlen(s) == len && memcmp(s, name, len) == 0) {
            return iface;
        }
    }
    return 0;
}


/* platform.openai.com/docs/guides/error-codes */

static const char *
llmp_iface_openai_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    }
    return status >= 500 ? "api_error" : "invalid_request_error";
}


/*
 * docs.anthropic.com/en/api/errors; 503 (nginx's own "unavailable")
 * reads as Anthropic's 529 does
 */

static const char *
llmp_iface_anthropic_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    }
    return status >= 500 ? "api_error" : "invalid_request_error";
}


/*
 * google.rpc.Code's HTTP mapping (ai.google.dev/gemini-api/docs/
 * troubleshooting); 405 and 413, which it does not list, as the nearest
 * code, and 502 as gRPC maps an HTTP 502 (UNAVAILABLE: worth a retry)
 */

static const char *
llmp_iface_gemini_status(int status)
{
    switch (status) {
    case 400:
    case 413:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 405:
    case 501:
        return "UNIMPLEMENTED";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 502:
    case 503:
    case 529:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    }
    return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
}


const char *
llmp_iface_error_type(int iface, int status)
{
    switch (iface) {
    case LLMP_IFACE_ANTHROPIC:
        return llmp_iface_anthropic_type(status);
    case LLMP_IFACE_GEMINI:
        return llmp_iface_gemini_status(status);
    }
    return llmp_iface_openai_type(status);
}

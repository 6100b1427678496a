/*
 * The three interfaces the gateway speaks, one row each (defined by
 * _openai.c, _anthropic.c, _gemini.c): where their handlers, body checks
 * and error bodies are, how a provider of each takes its key, and which
 * path a translated chat goes to.  The rest of the
 * module looks a difference up here instead of switching on the interface.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"

#include <llmp_iface.h>


/*
 * Each row is its interface's file's (it names that file's handler, body
 * check and error body), registered here by _module.c before the
 * configuration is read: the floors below the interfaces' files look a row
 * up without naming anything above them.
 */

static const ngx_http_llmproxy_iface_t  *ngx_http_llmproxy_ifaces[3];


static ngx_uint_t
ngx_http_llmproxy_iface_slot(ngx_uint_t iface)
{
    switch (iface) {

    case LLMP_IFACE_ANTHROPIC:
        return 1;

    case LLMP_IFACE_GEMINI:
        return 2;

    default:
        return 0;
    }
}


void
ngx_http_llmproxy_iface_register(const ngx_http_llmproxy_iface_t *row)
{
    ngx_http_llmproxy_ifaces[ngx_http_llmproxy_iface_slot(row->iface)] = row;
}


/* OpenAI's row for anything else, as the module always defaulted to it */

const ngx_http_llmproxy_iface_t *
ngx_http_llmproxy_iface(ngx_uint_t iface)
{
    return ngx_http_llmproxy_ifaces[ngx_http_llmproxy_iface_slot(iface)];
}


/*
 * The API path of a URL, the one place its version prefix is parsed:
 * "/v1beta/x" and "/v1/x" give "/x", anything else is itself.  Returns 1
 * for "/v1beta/", which only Gemini's API has.
 */

ngx_uint_t
ngx_http_llmproxy_api_path(ngx_str_t *uri, ngx_str_t *path)
{
    *path = *uri;

    if (path->len >= 8 && ngx_strncmp(path->data, "/v1beta/", 8) == 0) {
        path->data += 7;
        path->len -= 7;
        return 1;
    }

    if (path->len >= 4 && ngx_strncmp(path->data, "/v1/", 4) == 0) {
        path->data += 3;
        path->len -= 3;
    }

    return 0;
}


/*
 * Anthropic: /v1/messages...; Gemini: /v1beta/... or a model method
 * ("/v1/models/NAME:generateContent"); everything else is OpenAI's
 */

ngx_uint_t
ngx_http_llmproxy_iface_of(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t   uri;

    if (ngx_http_llmproxy_api_path(&r->uri, &uri)) {
        return LLMP_IFACE_GEMINI;
    }

    if (uri.len >= 9 && ngx_strncmp(uri.data, "/messages", 9) == 0
        && (uri.len == 9 || uri.data[9] == '/'))
    {
        return LLMP_IFACE_ANTHROPIC;
    }

    if (uri.len > 8 && ngx_strncmp(uri.data, "/models/", 8) == 0) {
        last = uri.data + uri.len;

        for (p = uri.data + 8; p < last; p++) {
            if (*p == ':') {
                return LLMP_IFACE_GEMINI;
            }
        }
    }

    return LLMP_IFACE_OPENAI;
}


/* an error of the gateway's, as the client's interface shapes it */

ngx_int_t
ngx_http_llmproxy_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    return ngx_http_llmproxy_iface(ctx->iface)->error_body(r, ctx, out);
}

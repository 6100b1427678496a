/*
 * The three interfaces the gateway speaks, one row each (defined by
 * _openai.c, _anthropic.c, _gemini.c): where their URL parsers, body
 * checks and error bodies are, how a provider of each takes its key, and which
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
 * Each row is its interface's file's (it names that file's URL parser,
 * body check and error body), registered here by _module.c before the
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
 * What a URL means, the one place it is parsed: its interface (returned)
 * and, from its API path, the endpoint (the interface's row parses that).
 * Anthropic: /v1/messages...; Gemini: /v1beta/... or a model method
 * ("/v1/models/NAME:generateContent"); everything else is OpenAI's.
 */

ngx_uint_t
ngx_http_llmproxy_iface_parse(ngx_str_t *uri, ngx_http_llmproxy_url_t *url)
{
    u_char      *p, *last;
    ngx_str_t    path;
    ngx_uint_t   iface;

    ngx_memzero(url, sizeof(ngx_http_llmproxy_url_t));

    iface = LLMP_IFACE_OPENAI;

    if (ngx_http_llmproxy_api_path(uri, &path)) {
        iface = LLMP_IFACE_GEMINI;

    } else if (path.len >= 9 && ngx_strncmp(path.data, "/messages", 9) == 0
               && (path.len == 9 || path.data[9] == '/'))
    {
        iface = LLMP_IFACE_ANTHROPIC;

    } else if (path.len > 8 && ngx_strncmp(path.data, "/models/", 8) == 0) {
        last = path.data + path.len;

        for (p = path.data + 8; p < last; p++) {
            if (*p == ':') {
                iface = LLMP_IFACE_GEMINI;
                break;
            }
        }
    }

    ngx_http_llmproxy_iface(iface)->url(&path, url);

    return iface;
}


ngx_uint_t
ngx_http_llmproxy_iface_of(ngx_http_request_t *r)
{
    ngx_http_llmproxy_url_t  url;

    return ngx_http_llmproxy_iface_parse(&r->uri, &url);
}


/*
 * The URL's endpoint becomes the request's once the gateway takes the
 * request (its access handler or its content handler): a request nginx
 * refused before, by "deny" say, is no model call in the records.
 */

void
ngx_http_llmproxy_iface_take(ngx_http_llmproxy_ctx_t *ctx)
{
    if (ctx->req.endpoint
        || ctx->req.url.endpoint == NGX_HTTP_LLMPROXY_EP_NONE)
    {
        return;
    }

    ctx->req.endpoint = ctx->req.url.endpoint;
    ctx->req.endpoint_path = ctx->req.url.path;
    ctx->req.action = ctx->req.url.action;

    if (ctx->req.url.model.len) {
        /* Gemini's: the model is in the URL, not in the body */
        ctx->req.model = ctx->req.url.model;
        ctx->req.stream = ctx->req.url.stream;
    }
}

/* an error of the gateway's, as the client's interface shapes it */

ngx_int_t
ngx_http_llmproxy_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    return ngx_http_llmproxy_iface(ctx->req.iface)->error_body(r, ctx, out);
}

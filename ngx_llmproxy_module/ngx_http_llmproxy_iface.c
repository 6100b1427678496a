/*
 * The three interfaces the gateway speaks, one row each: where their
 * handlers, body checks and error bodies are, how a provider of each takes
 * its key, and which path a translated chat goes to.  The rest of the
 * module looks a difference up here instead of switching on the interface.
 */

#include "ngx_http_llmproxy_module.h"


static ngx_http_llmproxy_iface_t  ngx_http_llmproxy_ifaces[] = {

    { LLMP_IFACE_OPENAI,
      ngx_http_llmproxy_openai_handler,
      ngx_http_llmproxy_openai_check,
      ngx_http_llmproxy_openai_error_body,
      ngx_string("Authorization: Bearer "),
      ngx_null_string,
      ngx_null_string,
      ngx_string("/chat/completions"),
      "{\"input_tokens\":%uz}",
      ngx_string("data: "),
      ngx_string("{\"object\":\"list\",\"data\":["),
      ngx_http_llmproxy_openai_model_json },

    { LLMP_IFACE_ANTHROPIC,
      ngx_http_llmproxy_anthropic_handler,
      ngx_http_llmproxy_anthropic_check,
      ngx_http_llmproxy_anthropic_error_body,
      ngx_string("x-api-key: "),
      ngx_string("anthropic-version: 2023-06-01" CRLF),
      ngx_string("anthropic-version"),
      ngx_string("/messages"),
      "{\"input_tokens\":%uz}",
      ngx_string("event: error\ndata: "),
      ngx_string("{\"data\":["),
      ngx_http_llmproxy_anthropic_model_json },

    { LLMP_IFACE_GEMINI,
      ngx_http_llmproxy_gemini_handler,
      ngx_http_llmproxy_gemini_check,
      ngx_http_llmproxy_gemini_error_body,
      ngx_string("x-goog-api-key: "),
      ngx_null_string,
      ngx_null_string,
      ngx_null_string,
      "{\"totalTokens\":%uz}",
      ngx_string("data: "),
      ngx_string("{\"models\":["),
      ngx_http_llmproxy_gemini_model_json }
};


/* OpenAI's row for anything else, as the module always defaulted to it */

const ngx_http_llmproxy_iface_t *
ngx_http_llmproxy_iface(ngx_uint_t iface)
{
    switch (iface) {

    case LLMP_IFACE_ANTHROPIC:
        return &ngx_http_llmproxy_ifaces[1];

    case LLMP_IFACE_GEMINI:
        return &ngx_http_llmproxy_ifaces[2];

    default:
        return &ngx_http_llmproxy_ifaces[0];
    }
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
    return ngx_http_llmproxy_iface(ctx->req.iface)->error_body(r, ctx, out);
}

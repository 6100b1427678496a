/*
 * The OpenAI interface: endpoints, request body checks, the model list and
 * the error shape {"error":{"message","type","param","code"}}.
 */

#include "ngx_http_llmproxy_module.h"


typedef struct {
    ngx_str_t                     path;
    ngx_uint_t                    endpoint;
} ngx_http_llmproxy_openai_endpoint_t;


static ngx_http_llmproxy_openai_endpoint_t  ngx_http_llmproxy_openai_eps[] = {
    { ngx_string("/chat/completions"), NGX_HTTP_LLMPROXY_EP_CHAT },
    { ngx_string("/completions"), NGX_HTTP_LLMPROXY_EP_COMPLETIONS },
    { ngx_string("/embeddings"), NGX_HTTP_LLMPROXY_EP_EMBEDDINGS },
    { ngx_string("/responses"), NGX_HTTP_LLMPROXY_EP_RESPONSES },
    { ngx_null_string, 0 }
};


static void ngx_http_llmproxy_openai_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_llmproxy_openai_read_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_openai_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static void ngx_http_llmproxy_openai_include_usage(
    ngx_http_llmproxy_ctx_t *ctx);
static ngx_int_t ngx_http_llmproxy_openai_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *id);
static u_char *ngx_http_llmproxy_openai_model_object(u_char *p,
    ngx_str_t *id, ngx_str_t *owner);


ngx_int_t
ngx_http_llmproxy_openai_handler(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    ngx_int_t                             rc;
    ngx_str_t                             path, id;
    ngx_http_llmproxy_loc_conf_t         *llcf;
    ngx_http_llmproxy_openai_endpoint_t  *ep;

    path = r->uri;

    if (path.len >= 4 && ngx_strncmp(path.data, "/v1/", 4) == 0) {
        path.data += 3;
        path.len -= 3;
    }

    for (ep = ngx_http_llmproxy_openai_eps; ep->path.len; ep++) {
        if (ep->path.len == path.len
            && ngx_strncmp(ep->path.data, path.data, path.len) == 0)
        {
            break;
        }
    }

    ngx_str_null(&id);

    if (ep->path.len == 0) {

        if (path.len == 7 && ngx_strncmp(path.data, "/models", 7) == 0) {
            /* the list */

        } else if (path.len > 8 && ngx_strncmp(path.data, "/models/", 8) == 0)
        {
            id.data = path.data + 8;
            id.len = path.len - 8;

        } else {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                                          "invalid_request_error",
                                          "unknown_url",
                                          "Unknown request URL: %V %V",
                                          &r->method_name, &r->uri);
        }
    }

    ctx->endpoint = ep->endpoint;        /* NONE for the model list */
    ctx->endpoint_path = ep->path;

    rc = ngx_http_llmproxy_check_key(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->rt = ngx_http_llmproxy_runtime_get(r);

    if (ctx->rt == NULL) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "api_error", "not_configured",
                                      "the gateway has no configuration yet: "
                                      "run \"llmproxyctl sync\"");
    }

    if (ep->path.len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                          "invalid_request_error",
                                          "method_not_allowed",
                                          "use GET for %V", &r->uri);
        }

        return ngx_http_llmproxy_openai_models(r, ctx, &id);
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_ALLOWED,
                                      "invalid_request_error",
                                      "method_not_allowed",
                                      "use POST for %V", &r->uri);
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body of %O bytes is larger "
                                      "than the limit of %uz bytes",
                                      r->headers_in.content_length_n,
                                      llcf->max_body_size);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_llmproxy_openai_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_llmproxy_openai_body(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);

    rc = ngx_http_llmproxy_openai_read_body(r, ctx);

    if (rc == NGX_OK) {
        rc = ngx_http_llmproxy_openai_check(r, ctx);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llmproxy_route_plan(r, ctx);
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    (void) ngx_http_llmproxy_upstream_start(r, ctx);
}


/* the body as one contiguous piece of memory */

static ngx_int_t
ngx_http_llmproxy_openai_read_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char                        *p;
    off_t                          len;
    ssize_t                        n;
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_http_llmproxy_loc_conf_t  *llcf;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ctx->body = (u_char *) "";
        ctx->body_len = 0;
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        ctx->body = cl->buf->pos;
        ctx->body_len = cl->buf->last - cl->buf->pos;
        goto check;
    }

    /*
     * The usual case for a large body: the part read with the headers,
     * then the rest in the body buffer, which nginx sized with room for
     * that first part (request_body_in_single_buf).  Joining them in place
     * saves allocating and faulting in another copy of the body.
     */

    b = cl->next ? cl->next->buf : NULL;

    if (b && cl->next->next == NULL && !cl->buf->in_file && !b->in_file
        && b == r->request_body->buf && b->temporary
        && (size_t) (b->end - b->last) >= (size_t) ngx_buf_size(cl->buf)
        && b->pos == b->start)
    {
        len = ngx_buf_size(cl->buf);

        ngx_memmove(b->start + len, b->pos, b->last - b->pos);
        ngx_memcpy(b->start, cl->buf->pos, len);

        b->last += len;
        cl->buf->pos = cl->buf->last;

        ctx->body = b->start;
        ctx->body_len = b->last - b->start;
        goto check;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (len > (off_t) llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body is larger than the "
                                      "limit of %uz bytes",
                                      llcf->max_body_size);
    }

    p = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        /* a body larger than client_body_buffer_size, in a temp file */

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != (ssize_t) (b->file_last - b->file_pos)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p += n;
    }

    ctx->body_len = p - ctx->body;

check:

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_llmproxy_module);

    if (ctx->body_len > llcf->max_body_size) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "invalid_request_error",
                                      "request_too_large",
                                      "request body is larger than the "
                                      "limit of %uz bytes",
                                      llcf->max_body_size);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llmproxy_openai_check(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    long             n;
    u_char          *p;
    llmp_json_rc_e   rc;

    rc = llmp_json_scan_top(ctx->body, ctx->body_len, &ctx->top);

    if (rc != LLMP_JSON_OK) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_json", "%s (at byte %uz)",
                                      llmp_json_strerror(rc),
                                      ctx->top.error_offset);
    }

    if (ctx->top.model.type == LLMP_JSON_NONE) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "missing_model",
                                      "you must provide a model parameter");
    }

    if (ctx->top.model.type != LLMP_JSON_STRING) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_model",
                                      "model: expected a string");
    }

    if (ctx->top.model.escaped) {
        p = ngx_pnalloc(r->pool, ctx->top.model.end - ctx->top.model.start);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = llmp_json_unescape(ctx->body, ctx->top.model.start,
                               ctx->top.model.end, p);
        if (n < 0) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request_error",
                                          "invalid_model",
                                          "model: invalid escape");
        }

        ctx->model.data = p;
        ctx->model.len = n;

    } else {
        ctx->model.data = ctx->body + ctx->top.model.start + 1;
        ctx->model.len = ctx->top.model.end - ctx->top.model.start - 2;
    }

    if (ctx->model.len == 0) {
        return ngx_http_llmproxy_fail(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "missing_model",
                                      "you must provide a model parameter");
    }

    ctx->stream = (ctx->top.stream.type == LLMP_JSON_TRUE);

    if (ctx->stream
        && (ctx->endpoint == NGX_HTTP_LLMPROXY_EP_CHAT
            || ctx->endpoint == NGX_HTTP_LLMPROXY_EP_COMPLETIONS))
    {
        ngx_http_llmproxy_openai_include_usage(ctx);
    }

    return NGX_OK;
}


/*
 * A stream's tokens are known only if the provider sends its usage chunk,
 * which it does when asked: stream_options.include_usage is added to the
 * request when the client did not set it, and that chunk is then kept from
 * the client (ctx->hide_usage).
 */

static void
ngx_http_llmproxy_openai_include_usage(ngx_http_llmproxy_ctx_t *ctx)
{
    u_char               *p, *q, *last;
    llmp_json_member_t   *so;

    static ngx_str_t  add_member =
        ngx_string(",\"stream_options\":{\"include_usage\":true}");
    static ngx_str_t  add_value = ngx_string("{\"include_usage\":true}");
    static ngx_str_t  add_first = ngx_string("\"include_usage\":true");
    static ngx_str_t  add_next = ngx_string(",\"include_usage\":true");

    so = &ctx->top.stream_options;

    if (so->type == LLMP_JSON_NONE) {
        ctx->edit_start = ctx->top.object_end;
        ctx->edit_end = ctx->top.object_end;
        ctx->edit = add_member;
        ctx->hide_usage = 1;
        return;
    }

    if (so->type != LLMP_JSON_OBJECT) {
        ctx->edit_start = so->start;
        ctx->edit_end = so->end;
        ctx->edit = add_value;
        ctx->hide_usage = 1;
        return;
    }

    p = ctx->body + so->start + 1;
    last = ctx->body + so->end - 1;          /* the closing brace */

    q = ngx_strlcasestrn(p, last, (u_char *) "\"include_usage\"",
                         sizeof("\"include_usage\"") - 2);

    if (q) {
        for (q += sizeof("\"include_usage\"") - 1;
             q < last && (*q == ' ' || *q == ':' || *q == '\t'
                          || *q == '\n' || *q == '\r');
             q++)
        {
            /* void */
        }

        if (last - q >= 4 && ngx_strncmp(q, "true", 4) == 0) {
            return;                           /* the client asked */
        }
    }

    /* a later duplicate member wins in JSON parsers: added at the end */

    for (q = p; q < last && (*q == ' ' || *q == '\t' || *q == '\n'
                             || *q == '\r');
         q++)
    {
        /* void */
    }

    ctx->edit_start = so->end - 1;
    ctx->edit_end = so->end - 1;
    ctx->edit = (q == last) ? add_first : add_next;
    ctx->hide_usage = 1;
}


static ngx_int_t
ngx_http_llmproxy_openai_models(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *id)
{
    u_char                          *p, *start;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        owner;
    ngx_uint_t                       i, n;
    ngx_keyval_t                    *kv;
    ngx_http_llmproxy_group_t       *g;
    ngx_http_llmproxy_target_t      *t;
    ngx_http_llmproxy_runtime_t     *rt;
    ngx_http_llmproxy_deployment_t  *d;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rt = ctx->rt;

    if (id->len) {
        t = ngx_http_llmproxy_runtime_find(rt, id);

        if (t == NULL || !ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
            return ngx_http_llmproxy_fail(r, NGX_HTTP_NOT_FOUND,
                       "invalid_request_error", "model_not_found",
                       "The model `%V` does not exist or you do not have "
                       "access to it.", id);
        }

        d = t->deployment ? t->deployment
                          : ((ngx_http_llmproxy_deployment_t **)
                             t->group->deployments.elts)[0];

        p = ngx_pnalloc(r->pool, 6 * (id->len + d->provider->name.len) + 128);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        start = p;
        p = ngx_http_llmproxy_openai_model_object(p, id, &d->provider->name);

        return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, start, p - start);
    }

    /* the list: model groups, then aliases */

    len = sizeof("{\"object\":\"list\",\"data\":[]}");

    g = rt->groups.elts;

    for (i = 0; i < rt->groups.nelts; i++) {
        d = ((ngx_http_llmproxy_deployment_t **) g[i].deployments.elts)[0];
        len += 6 * (g[i].name.len + d->provider->name.len) + 128;
    }

    kv = rt->aliases.elts;

    for (i = 0; i < rt->aliases.nelts; i++) {
        len += 6 * kv[i].key.len + 128 + sizeof("llmproxy");
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    start = p;
    p = ngx_cpymem(p, "{\"object\":\"list\",\"data\":[",
                   sizeof("{\"object\":\"list\",\"data\":[") - 1);

    n = 0;

    for (i = 0; i < rt->groups.nelts; i++) {
        if (!ngx_http_llmproxy_keys_allow_target(&ctx->key, &g[i].target)) {
            continue;
        }

        d = ((ngx_http_llmproxy_deployment_t **) g[i].deployments.elts)[0];

        if (n++) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_openai_model_object(p, &g[i].name,
                                                  &d->provider->name);
    }

    ngx_str_set(&owner, "llmproxy");

    for (i = 0; i < rt->aliases.nelts; i++) {
        t = ngx_http_llmproxy_runtime_find(rt, &kv[i].key);

        if (t == NULL || !ngx_http_llmproxy_keys_allow_target(&ctx->key, t)) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_http_llmproxy_openai_model_object(p, &kv[i].key, &owner);
    }

    *p++ = ']';
    *p++ = '}';

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, start, p - start);
}


static u_char *
ngx_http_llmproxy_openai_model_object(u_char *p, ngx_str_t *id,
    ngx_str_t *owner)
{
    p = ngx_cpymem(p, "{\"id\":", sizeof("{\"id\":") - 1);
    p += llmp_json_escape(id->data, id->len, p);
    p = ngx_cpymem(p, ",\"object\":\"model\",\"created\":1700000000,"
                   "\"owned_by\":",
                   sizeof(",\"object\":\"model\",\"created\":1700000000,"
                          "\"owned_by\":") - 1);
    p += llmp_json_escape(owner->data, owner->len, p);
    *p++ = '}';

    return p;
}


ngx_int_t
ngx_http_llmproxy_openai_error_body(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx, ngx_str_t *out)
{
    u_char  *p;
    size_t   len;

    len = sizeof("{\"error\":{\"message\":,\"type\":\"\",\"param\":null,"
                 "\"code\":}}")
          + 6 * ctx->err_message.len + 2 + 64 + 64 + 2;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, "{\"error\":{\"message\":",
                   sizeof("{\"error\":{\"message\":") - 1);
    p += llmp_json_escape(ctx->err_message.data, ctx->err_message.len, p);
    p = ngx_sprintf(p, ",\"type\":\"%s\",\"param\":null,\"code\":",
                    ctx->err_type ? ctx->err_type : "api_error");

    if (ctx->err_code) {
        p = ngx_sprintf(p, "\"%s\"", ctx->err_code);

    } else {
        p = ngx_sprintf(p, "\"%ui\"", ctx->err_status);
    }

    *p++ = '}';
    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}

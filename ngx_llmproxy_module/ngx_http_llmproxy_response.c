/*
 * The bottom floor, used by every handler: a request's context (its
 * interface and id), the gateway's errors (recorded here, rendered in the
 * client's shape by the header filter), JSON answers, and numbers written
 * without ngx_sprintf() on the request path.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_response.h"


static void ngx_http_llmproxy_request_id(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx);
static u_char *ngx_http_llmproxy_hex(u_char *p, uint32_t v,
    ngx_uint_t digits);


ngx_http_llmproxy_ctx_t *
ngx_http_llmproxy_get_ctx(ngx_http_request_t *r)
{
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llmproxy_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_llmproxy_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->time.start = ngx_current_msec;
    ctx->req.iface = ngx_http_llmproxy_iface_parse(&r->uri, &ctx->req.url);

    ngx_http_llmproxy_request_id(r, ctx);

    ngx_http_set_ctx(r, ctx, ngx_http_llmproxy_module);

    return ctx;
}


/*
 * A time-ordered UUID (version 7, RFC 9562): the request's start in Unix
 * milliseconds, the time its usage record carries as created_at, then 74
 * random bits.  A record is looked up by its id within that minute
 * (llmproxy_usage_request(), schema 10), not by reading every record.
 */

static void
ngx_http_llmproxy_request_id(ngx_http_request_t *r,
    ngx_http_llmproxy_ctx_t *ctx)
{
    u_char    *p;
    uint32_t   b, c, d;
    uint64_t   ms;

    p = ngx_pnalloc(r->pool, 36);
    if (p == NULL) {
        return;
    }

    ms = (uint64_t) r->start_sec * 1000 + r->start_msec;

    b = (uint32_t) ngx_random() ^ (uint32_t) (r->connection->number << 16);
    c = (uint32_t) ngx_random() ^ (uint32_t) ngx_current_msec;
    d = (uint32_t) ngx_random() ^ (uint32_t) ngx_pid;

    b = (b & 0x00000fff) | 0x00007000;          /* version 7, rand_a */
    c = (c & 0x3fffffff) | 0x80000000;          /* the variant, rand_b */

    /* as "%08xD-%04xD-%04xD-%04xD-%04xD%08xD" */

    ctx->request_id.data = p;

    p = ngx_http_llmproxy_hex(p, (uint32_t) (ms >> 16), 8);
    *p++ = '-';
    p = ngx_http_llmproxy_hex(p, (uint32_t) ms & 0xffff, 4);
    *p++ = '-';
    p = ngx_http_llmproxy_hex(p, b, 4);
    *p++ = '-';
    p = ngx_http_llmproxy_hex(p, c >> 16, 4);
    *p++ = '-';
    p = ngx_http_llmproxy_hex(p, c & 0xffff, 4);
    p = ngx_http_llmproxy_hex(p, d, 8);

    ctx->request_id.len = p - ctx->request_id.data;
}


/* the low digits of v in lowercase hex, zero-padded */

static u_char *
ngx_http_llmproxy_hex(u_char *p, uint32_t v, ngx_uint_t digits)
{
    ngx_uint_t     i;
    static u_char  hex[] = "0123456789abcdef";

    for (i = digits; i; i--) {
        p[i - 1] = hex[v & 0xf];
        v >>= 4;
    }

    return p + digits;
}


/*
 * Numbers of the per-request headers and request lines without
 * ngx_sprintf(), whose format parsing costs more than the digits: "%uL"
 * and "%.8f", character for character as ngx_vslprintf() writes them.
 */

u_char *
ngx_http_llmproxy_format_uint(u_char *p, uint64_t n)
{
    u_char  *t, tmp[NGX_INT64_LEN];

    t = tmp + NGX_INT64_LEN;

    do {
        *--t = (u_char) (n % 10 + '0');
        n /= 10;
    } while (n);

    return ngx_cpymem(p, t, tmp + NGX_INT64_LEN - t);
}


u_char *
ngx_http_llmproxy_format_fixed8(u_char *p, double f)
{
    uint64_t    ui64, frac;
    ngx_uint_t  i;

    if (f < 0) {
        *p++ = '-';
        f = -f;
    }

    ui64 = (int64_t) f;
    frac = (uint64_t) ((f - (double) ui64) * 100000000 + 0.5);

    if (frac == 100000000) {
        ui64++;
        frac = 0;
    }

    p = ngx_http_llmproxy_format_uint(p, ui64);
    *p++ = '.';

    for (i = 8; i; i--) {
        p[i - 1] = (u_char) (frac % 10 + '0');
        frac /= 10;
    }

    return p + 8;
}


ngx_int_t
ngx_http_llmproxy_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *fmt, ...)
{
    u_char                   *p, buf[512];
    va_list                   args;
    ngx_uint_t                level;
    ngx_http_llmproxy_ctx_t  *ctx;

    ctx = ngx_http_llmproxy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ctx->err.status = status;
    ctx->err.type = type;
    ctx->err.code = code;
    ctx->err.message.len = p - buf;
    ctx->err.message.data = buf;
    ctx->err.message.data = ngx_pstrdup(r->pool, &ctx->err.message);

    if (ctx->err.message.data == NULL) {
        ctx->err.message.len = 0;
    }

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                       : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0, "llmproxy: %ui %V", status,
                  &ctx->err.message);

    return status;
}


ngx_int_t
ngx_http_llmproxy_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    ngx_int_t  rc;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_llmproxy_send_body(r, data, len);
}


ngx_int_t
ngx_http_llmproxy_send_body(ngx_http_request_t *r, u_char *data, size_t len)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_uint_t
ngx_http_llmproxy_has_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return 1;
        }
    }
}

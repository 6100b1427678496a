/*
 * No key in any log: the query parameters that could carry one are taken
 * out of the request line, $request_uri and $args (post-read and log
 * phases), and every error log line a worker writes goes through a
 * writer that masks them and the key headers' values.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_response.h"


static void ngx_http_llmproxy_scrub_request(ngx_http_request_t *r,
    ngx_uint_t args);
static ngx_int_t ngx_http_llmproxy_scrub_uri(ngx_pool_t *pool,
    ngx_str_t *s, ngx_uint_t query);
static ngx_uint_t ngx_http_llmproxy_key_param(u_char *p, u_char *last);
static ngx_uint_t ngx_http_llmproxy_has_key_param(u_char *p, u_char *last);
static u_char *ngx_http_llmproxy_scrub_query(u_char *dst, u_char *p,
    u_char *last);
static size_t ngx_http_llmproxy_scrub_line(u_char *dst, u_char *p,
    size_t len);
static void ngx_http_llmproxy_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_http_llmproxy_scrub_location_logs(
    ngx_http_core_loc_conf_t *clcf);
static void ngx_http_llmproxy_scrub_tree_logs(
    ngx_http_location_tree_node_t *node);
static void ngx_http_llmproxy_set_writer(ngx_log_t *log);


/*
 * No key in any log.  A key can come as a query parameter (Gemini's
 * "?key=", and clients that send it where it does not belong), and nginx
 * logs the request line, $request_uri and $args wherever it logs a
 * request: a refused key, an unknown path, a wrong method, a header key
 * sent as well, and errors nginx finds before any location (400, 414).
 * So every parameter that could carry a key is taken out of
 *
 *   - the request line and $request_uri, as soon as the headers are read
 *     (post-read phase), in servers with an llmproxy location;
 *   - $args as well, when the gateway takes the key, and before the
 *     access log writes (the first log phase handler);
 *   - every error log line a worker writes (a writer on the error logs):
 *     the only way to reach lines nginx writes while it reads the request
 *     line and headers, before any phase.  Header values of keys
 *     (Authorization, *api-key) in such lines (a duplicate Authorization)
 *     are masked too.
 *
 * The key itself stays readable for the gateway: the scrubbed strings are
 * copies, the original buffer is left alone.
 */

void
ngx_http_llmproxy_strip_key_arg(ngx_http_request_t *r)
{
    ngx_http_llmproxy_scrub_request(r, 1);
}


/* in servers with an llmproxy location: $request and $request_uri */

ngx_int_t
ngx_http_llmproxy_post_read(ngx_http_request_t *r)
{
    ngx_http_llmproxy_srv_conf_t  *lscf;

    lscf = ngx_http_get_module_srv_conf(r, ngx_http_llmproxy_module);

    if (lscf->gateway && r->args.len) {
        ngx_http_llmproxy_scrub_request(r, 0);
    }

    return NGX_DECLINED;
}


/*
 * Before the access log: all three, also for requests nginx refused while
 * reading them (their server is then the default one of the address).
 */

ngx_int_t
ngx_http_llmproxy_log_scrub(ngx_http_request_t *r)
{
    ngx_http_llmproxy_srv_conf_t  *lscf;

    lscf = ngx_http_get_module_srv_conf(r, ngx_http_llmproxy_module);

    if (lscf->gateway) {
        ngx_http_llmproxy_scrub_request(r, 1);
    }

    return NGX_OK;
}


static void
ngx_http_llmproxy_scrub_request(ngx_http_request_t *r, ngx_uint_t args)
{
    if (args && r->args.len) {
        (void) ngx_http_llmproxy_scrub_uri(r->pool, &r->args, 1);
    }

    if (r->unparsed_uri.len) {
        (void) ngx_http_llmproxy_scrub_uri(r->pool, &r->unparsed_uri, 0);
    }

    if (r->request_line.len) {
        (void) ngx_http_llmproxy_scrub_uri(r->pool, &r->request_line, 0);
    }
}


/*
 * s is a query (query), or a URI or request line whose query runs from its
 * first "?" to the next space; a copy without key parameters replaces it
 */

static ngx_int_t
ngx_http_llmproxy_scrub_uri(ngx_pool_t *pool, ngx_str_t *s, ngx_uint_t query)
{
    u_char  *p, *q, *d, *end, *last;

    last = s->data + s->len;

    if (query) {
        q = s->data;
        end = last;

    } else {
        q = ngx_strlchr(s->data, last, '?');
        if (q == NULL) {
            return NGX_OK;
        }

        q++;

        end = ngx_strlchr(q, last, ' ');
        if (end == NULL) {
            end = last;
        }
    }

    if (!ngx_http_llmproxy_has_key_param(q, end)) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, s->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(p, s->data, q - s->data);

    q = ngx_http_llmproxy_scrub_query(d, q, end);

    if (q == d && !query) {
        q--;                             /* no parameter left: nor "?" */
    }

    q = ngx_cpymem(q, end, last - end);

    s->data = p;
    s->len = q - p;

    return NGX_OK;
}


/*
 * A parameter name that could carry a key, in any case and percent-encoded
 * or not: what a provider's server would decode to "key" (Gemini's) or to
 * the usual names of key parameters.
 */

static ngx_uint_t
ngx_http_llmproxy_key_param(u_char *p, u_char *last)
{
    u_char      c, h, l, name[16];
    size_t      n;
    ngx_uint_t  i;

    static ngx_str_t  names[] = {
        ngx_string("key"),
        ngx_string("apikey"),
        ngx_string("api_key"),
        ngx_string("api-key"),
        ngx_string("x-api-key"),
        ngx_string("x-goog-api-key"),
        ngx_null_string
    };

    n = 0;

    while (p < last && *p != '=') {
        c = *p++;

        if (c == '%' && last - p >= 2) {
            h = (u_char) (p[0] | 0x20);
            l = (u_char) (p[1] | 0x20);

            if (((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'))
                && ((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f')))
            {
                h = (h >= 'a') ? h - 'a' + 10 : h - '0';
                l = (l >= 'a') ? l - 'a' + 10 : l - '0';
                c = (u_char) ((h << 4) | l);
                p += 2;

                if (c == '=') {
                    break;              /* "key%3D..." reads as "key=..." */
                }
            }
        }

        if (n == sizeof(name)) {
            return 0;
        }

        name[n++] = ngx_tolower(c);
    }

    for (i = 0; names[i].len; i++) {
        if (n == names[i].len && ngx_memcmp(name, names[i].data, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_llmproxy_has_key_param(u_char *p, u_char *last)
{
    u_char  *amp;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        if (ngx_http_llmproxy_key_param(p, amp)) {
            return 1;
        }

        p = amp + 1;
    }

    return 0;
}


/* the parameters of the query [p, last) that carry no key, to dst */

static u_char *
ngx_http_llmproxy_scrub_query(u_char *dst, u_char *p, u_char *last)
{
    u_char  *amp, *start;

    start = dst;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        if (!ngx_http_llmproxy_key_param(p, amp)) {
            if (dst != start) {
                *dst++ = '&';
            }

            dst = ngx_cpymem(dst, p, amp - p);
        }

        p = amp + 1;
    }

    return dst;
}


/*
 * An error log line without key parameters in the URIs it quotes (the
 * request line, the referrer) and with the values of key headers masked
 * ("client sent duplicate header line: "Authorization: ...""); never longer
 * than the line.
 */

static size_t
ngx_http_llmproxy_scrub_line(u_char *dst, u_char *p, size_t len)
{
    u_char  *d, *e, *end, *last;
    size_t   n;

    d = dst;
    last = p + len;

    while (p < last) {

        if (*p == '?') {
            *d++ = *p++;

            for (end = p; end < last; end++) {
                if (*end == ' ' || *end == '"' || *end == CR || *end == LF) {
                    break;
                }
            }

            if (ngx_http_llmproxy_has_key_param(p, end)) {
                e = ngx_http_llmproxy_scrub_query(d, p, end);
                d = (e == d) ? d - 1 : e;

            } else {
                d = ngx_cpymem(d, p, end - p);
            }

            p = end;
            continue;
        }

        n = 0;

        if ((*p | 0x20) == 'a') {
            if (last - p >= 14
                && ngx_strncasecmp(p, (u_char *) "authorization:", 14) == 0)
            {
                n = 14;

            } else if (last - p >= 8
                       && ngx_strncasecmp(p, (u_char *) "api-key:", 8) == 0)
            {
                n = 8;
            }
        }

        if (n == 0) {
            *d++ = *p++;
            continue;
        }

        d = ngx_cpymem(d, p, n);
        p += n;

        while (p < last && *p == ' ') {
            *d++ = *p++;
        }

        for (end = p; end < last; end++) {
            if (*end == '"' || *end == CR || *end == LF) {
                break;
            }
        }

        if (end - p > 3) {
            d = ngx_cpymem(d, "...", 3);

        } else {
            d = ngx_cpymem(d, p, end - p);
        }

        p = end;
    }

    return d - dst;
}


static void
ngx_http_llmproxy_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    u_char   line[NGX_MAX_ERROR_STR];
    ssize_t  n;

    /* a copy: the next log of the chain is given the same buffer */

    len = ngx_http_llmproxy_scrub_line(line, buf,
                                       ngx_min(len, NGX_MAX_ERROR_STR));

    if (ngx_time() == log->disk_full_time) {
        return;
    }

    n = ngx_write_fd(log->file->fd, line, len);

    if (n == -1 && ngx_errno == NGX_ENOSPC) {
        log->disk_full_time = ngx_time();
    }
}


/*
 * In a worker of an nginx with a gateway: the writer on the main error log
 * and on those of every server and location (a request starts with its
 * server's, and the connection's log copies its writer from the one of
 * the location it is in).  Logs that have a writer of their own (syslog,
 * memory) are left as they are.
 */

void
ngx_http_llmproxy_scrub_logs(ngx_cycle_t *cycle)
{
    ngx_uint_t                      s, gateway;
    ngx_http_core_loc_conf_t      **clcfp;
    ngx_http_core_srv_conf_t      **cscfp;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_llmproxy_srv_conf_t   *lscf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);
    if (cmcf == NULL) {
        return;
    }

    cscfp = cmcf->servers.elts;
    gateway = 0;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        lscf = cscfp[s]->ctx->srv_conf[ngx_http_llmproxy_module.ctx_index];

        if (lscf->gateway) {
            gateway = 1;
        }
    }

    if (!gateway) {
        return;
    }

    ngx_http_llmproxy_set_writer(cycle->log);

    for (s = 0; s < cmcf->servers.nelts; s++) {
        ngx_http_llmproxy_scrub_location_logs(
                cscfp[s]->ctx->loc_conf[ngx_http_core_module.ctx_index]);

        clcfp = cscfp[s]->named_locations;

        for ( /* void */ ; clcfp && *clcfp; clcfp++) {
            ngx_http_llmproxy_scrub_location_logs(*clcfp);
        }
    }
}


static void
ngx_http_llmproxy_scrub_location_logs(ngx_http_core_loc_conf_t *clcf)
{
#if (NGX_PCRE)
    ngx_http_core_loc_conf_t  **clcfp;
#endif

    ngx_http_llmproxy_set_writer(clcf->error_log);

    ngx_http_llmproxy_scrub_tree_logs(clcf->static_locations);

#if (NGX_PCRE)
    for (clcfp = clcf->regex_locations; clcfp && *clcfp; clcfp++) {
        ngx_http_llmproxy_scrub_location_logs(*clcfp);
    }
#endif
}


static void
ngx_http_llmproxy_scrub_tree_logs(ngx_http_location_tree_node_t *node)
{
    if (node == NULL) {
        return;
    }

    ngx_http_llmproxy_scrub_tree_logs(node->left);
    ngx_http_llmproxy_scrub_tree_logs(node->right);
    ngx_http_llmproxy_scrub_tree_logs(node->tree);

    if (node->exact) {
        ngx_http_llmproxy_scrub_location_logs(node->exact);
    }

    if (node->inclusive) {
        ngx_http_llmproxy_scrub_location_logs(node->inclusive);
    }
}


static void
ngx_http_llmproxy_set_writer(ngx_log_t *log)
{
    for ( /* void */ ; log; log = log->next) {
        if (log->writer == NULL && log->file) {
            log->writer = ngx_http_llmproxy_log_writer;
        }
    }
}

/*
 * Incremental Server-Sent Events splitter; see llmp_sse.h.
 */

#include <string.h>

#include "llmp_sse.h"


static int
sse_dispatch(llmp_sse_t *p, llmp_sse_handler_pt handler, void *ctx)
{
    int     rc;
    size_t  len;

    rc = 0;
    if (p->has_data) {
        len = p->data.len;
        if (len && p->data.data[len - 1] == '\n') {
            len--;
        }
        rc = handler(ctx, p->event[0] ? p->event : NULL,
                     len ? p->data.data : "", len);
    }
    p->data.len = 0;
    p->has_data = 0;
    p->event[0] = '\0';
    return rc;
}


static int
sse_line(llmp_sse_t *p, const char *l, size_t n, llmp_sse_handler_pt handler,
    void *ctx)
{
    size_t       flen;
    const char  *colon, *v;

    if (n == 0) {
        return sse_dispatch(p, handler, ctx);
    }
    if (l[0] == ':') {
        return 0;                       /* a comment */
    }

    colon = memchr(l, ':', n);
    if (colon != NULL) {
        flen = (size_t) (colon - l);
        v = colon + 1;
        if (v < l + n && *v == ' ') {
            v++;
        }
    } else {
        flen = n;
        v = l + n;
    }

    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if (p->data.len + (size_t) (l + n - v) + 1 > LLMP_SSE_MAX
            || llmp_buf_append(&p->data, v, (size_t) (l + n - v)) != 0
            || llmp_buf_append(&p->data, "\n", 1) != 0)
        {
            return -1;
        }
        p->has_data = 1;

    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        n = (size_t) (l + n - v);
        if (n >= sizeof(p->event)) {
            n = sizeof(p->event) - 1;
        }
        memcpy(p->event, v, n);
        p->event[n] = '\0';
    }
    /* id, retry and unknown fields: ignored */

    return 0;
}


int
llmp_sse_feed(llmp_sse_t *p, const char *buf, size_t len,
    llmp_sse_handler_pt handler, void *ctx)
{
    size_t       i, start;
    const char  *l;

    start = 0;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n' && buf[i] != '\r') {
            p->cr = 0;
            continue;
        }

        if (buf[i] == '\n' && p->cr) {
            /* the \n of a \r\n */
            p->cr = 0;
            start = i + 1;
            continue;
        }
        p->cr = buf[i] == '\r';

        if (p->line.len) {
            if (llmp_buf_append(&p->line, buf + start, i - start) != 0) {
                return -1;
            }
            l = p->line.data;
            if (sse_line(p, l, p->line.len, handler, ctx) != 0) {
                return -1;
            }
            p->line.len = 0;
        } else if (sse_line(p, buf + start, i - start, handler, ctx) != 0) {
            return -1;
        }
        start = i + 1;
    }

    if (start < len) {
        if (p->line.len + (len - start) > LLMP_SSE_MAX
            || llmp_buf_append(&p->line, buf + start, len - start) != 0)
        {
            return -1;
        }
    }
    return 0;
}


int
llmp_sse_finish(llmp_sse_t *p, llmp_sse_handler_pt handler, void *ctx)
{
    if (p->line.len) {
        if (sse_line(p, p->line.data, p->line.len, handler, ctx) != 0) {
            return -1;
        }
        p->line.len = 0;
    }
    return sse_dispatch(p, handler, ctx);
}


void
llmp_sse_free(llmp_sse_t *p)
{
    llmp_buf_free(&p->line);
    llmp_buf_free(&p->data);
}

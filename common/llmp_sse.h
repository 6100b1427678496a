/*
 * llmp_sse: an incremental splitter of Server-Sent Events.  Bytes go in
 * as they come from the network, split anywhere; each complete event
 * (its "event:" name and its joined "data:" lines) goes to a handler.
 * Lines end in \n, \r\n or \r; an empty line ends an event.
 */

#ifndef _LLMP_SSE_H_INCLUDED_
#define _LLMP_SSE_H_INCLUDED_

#include <stddef.h>

#include "llmp_translate.h"

/* an event (or a line) longer than this breaks the stream */
#define LLMP_SSE_MAX  (64 * 1024 * 1024)

typedef struct {
    llmp_buf_t  line;           /* the line not yet ended */
    llmp_buf_t  data;           /* the data of the event not yet ended */
    char        event[64];      /* its "event:" name */
    int         has_data;
    int         cr;             /* the last byte was \r */
} llmp_sse_t;

/* returns 0, or -1 to stop the splitting */
typedef int (*llmp_sse_handler_pt)(void *ctx, const char *event,
    const char *data, size_t len);

/* 0, or -1 when the handler failed or an event is too long */
int llmp_sse_feed(llmp_sse_t *p, const char *buf, size_t len,
    llmp_sse_handler_pt handler, void *ctx);
/* the input ended: an event whose blank line never came is handed over */
int llmp_sse_finish(llmp_sse_t *p, llmp_sse_handler_pt handler, void *ctx);
void llmp_sse_free(llmp_sse_t *p);

#endif /* _LLMP_SSE_H_INCLUDED_ */

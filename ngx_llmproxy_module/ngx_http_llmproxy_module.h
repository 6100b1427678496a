/*
 * ngx_http_llmproxy_module: an LLM API gateway inside nginx.
 *
 * The module's declarations live in one header per concern, listed here
 * from the bottom floor up (scripts/layers.txt has the files' floors);
 * each file includes only the headers it uses.  This umbrella is for a
 * file that is yet to be given its own list.
 */

#ifndef _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_
#define _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_


#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"
#include "ngx_http_llmproxy_ctx.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_iface.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_keys.h"
#include "ngx_http_llmproxy_route.h"
#include "ngx_http_llmproxy_usage.h"
#include "ngx_http_llmproxy_upstream.h"
#include "ngx_http_llmproxy_request.h"
#include "ngx_http_llmproxy_poll.h"
#include "ngx_http_llmproxy_admin.h"


#endif /* _NGX_HTTP_LLMPROXY_MODULE_H_INCLUDED_ */

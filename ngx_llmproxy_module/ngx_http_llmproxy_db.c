/*
 * PostgreSQL connections for the threads of the pool: the keys' and
 * config's poller, the usage writer, retention, the admin API's key
 * statements and the dashboard's queries.  Each opens its own: libpq
 * blocks, so a connection is only ever used in a thread, never on the
 * event loop.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_poll.h"

#include <libpq-fe.h>


/*
 * libpq's GSSAPI probe is off unless the URI asks for it: it costs a
 * round trip at every connect and brings Kerberos' pages into every
 * worker.  Parameters before "dbname" are the URI's to override.
 */

PGconn *
ngx_http_llmproxy_db_connect(const char *uri, const char *options,
    const char *application)
{
    const char *keywords[] = {
        "gssencmode", "dbname", "connect_timeout", "options",
        "application_name", NULL
    };

    const char *values[] = {
        "disable", uri, "5", options, application, NULL
    };

    return PQconnectdbParams(keywords, values, 1);
}

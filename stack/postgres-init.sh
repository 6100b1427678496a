#!/bin/sh
# PostgreSQL's first start (/docker-entrypoint-initdb.d, a Docker config of
# stack/llmproxy.yaml): the role Netdata collects with, which may read the
# statistics views (pg_monitor) and nothing else.  Its password is the
# NETDATA_PG_PASSWORD of the stack's environment (it is in the DSN label
# too, so it must not be a password that guards anything else).
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -v pw="$NETDATA_PG_PASSWORD" <<'SQL'
CREATE ROLE netdata LOGIN PASSWORD :'pw' IN ROLE pg_monitor;
SQL

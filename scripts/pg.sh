#!/usr/bin/env bash
# A local PostgreSQL cluster for `make run` (and the tests): start DIR PORT
# creates the cluster on first use (as user postgres when run as root) and
# starts it on 127.0.0.1:PORT; stop DIR stops it.  Prints the URI on start.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server not installed" >&2; exit 1; }

cmd=${1:?usage: pg.sh start DIR PORT | stop DIR}
dir=$(realpath -m "${2:?data directory}")

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    port=${3:?port}
    if [ ! -s "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
        chmod 700 "$dir"
        as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust \
            --no-sync -E UTF8 >/dev/null
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir" -w -t 30 -l "$dir/server.log" \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start \
            >/dev/null
    fi
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'llmproxy'" postgres \
        | grep -q 1 \
        || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres llmproxy
    echo "postgresql://postgres@127.0.0.1:$port/llmproxy"
    ;;
stop)
    if [ -s "$dir/PG_VERSION" ]; then
        as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: pg.sh start DIR PORT | stop DIR" >&2
    exit 1
    ;;
esac

#!/usr/bin/env bash
# `make run`: builds (done by make), writes var/nginx.conf from the
# environment, starts nginx with the module in the foreground, pushes
# configs/config.json and prints how to call the gateway.
# `scripts/run.sh --config-only` writes var/nginx.conf (and the key files)
# and exits: nothing is started.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
config_only=
[ "${1:-}" = --config-only ] && config_only=1

listen=${LLMPROXY_LISTEN:-127.0.0.1:4000}
config=${LLMPROXY_CONFIG:-configs/config.json}
var=${LLMPROXY_VAR:-$top/var}
mkdir -p "$var" && var=$(cd "$var" && pwd)

mkdir -p "$var/logs" "$var/state" "$var/tmp"

# PostgreSQL: the one given, or a local cluster under var/pg, reused by the
# next run and stopped when the gateway stops
pg_started=
pg_port=${LLMPROXY_PG_PORT:-54329}
if [ -n "$config_only" ]; then
    db="postgresql://postgres@127.0.0.1:$pg_port/llmproxy"
    LLMPROXY_DATABASE_URL=${LLMPROXY_DATABASE_URL:-$db}
elif [ -z "${LLMPROXY_DATABASE_URL:-}" ]; then
    LLMPROXY_DATABASE_URL=$(bash scripts/pg.sh start "$var/pg" "$pg_port")
    pg_started=1
    echo "PostgreSQL under $var/pg: $LLMPROXY_DATABASE_URL"
fi
export LLMPROXY_DATABASE_URL
[ -n "$config_only" ] || "$top/build/llmproxyctl" migrate >/dev/null

# the master key: from the environment, or generated once
if [ -n "${LLMPROXY_MASTER_KEY:-}" ]; then
    umask 077
    printf '%s\n' "$LLMPROXY_MASTER_KEY" > "$var/master_key"
elif [ ! -s "$var/master_key" ]; then
    umask 077
    printf 'sk-%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        > "$var/master_key"
    echo "generated a master key in $var/master_key"
fi
# the key that encrypts provider keys stored in PostgreSQL
if [ -n "${LLMPROXY_SALT_KEY:-}" ]; then
    umask 077
    printf '%s\n' "$LLMPROXY_SALT_KEY" > "$var/salt_key"
elif [ ! -s "$var/salt_key" ]; then
    umask 077
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$var/salt_key"
    echo >> "$var/salt_key"
fi
umask 022
LLMPROXY_SALT_KEY=$(cat "$var/salt_key")
export LLMPROXY_SALT_KEY

cat > "$var/nginx.conf" <<CONF
# written by make run: edit configs/nginx.conf for a real deployment
load_module $top/build/ngx_http_llmproxy_module.so;
worker_processes auto;
daemon off;
pid $var/nginx.pid;
error_log $var/logs/error.log notice;
events { worker_connections 4096; }
thread_pool llmproxy threads=4;
http {
    access_log $var/logs/access.log;
    client_body_temp_path $var/tmp;
    llmproxy_zone llmproxy:64m;
    llmproxy_master_key_file $var/master_key;
    llmproxy_state_path $var/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $LLMPROXY_DATABASE_URL;
    llmproxy_salt_key_file $var/salt_key;
    server {
        listen $listen;
        location / { llmproxy; }
        # key aliases and spend: local scrapers only (see README, /metrics)
        location = /metrics {
            llmproxy;
            allow 127.0.0.1;
            allow ::1;
            deny all;
        }
        location /llmproxy/admin/ {
            llmproxy_admin;
            allow 127.0.0.1;
            allow ::1;
            deny all;
        }
        # LiteLLM's key API (/key/generate, ...): scripts written for
        # LiteLLM keep working; master key, from this host only
        location /key/ {
            llmproxy_admin;
            allow 127.0.0.1;
            allow ::1;
            deny all;
        }
        # the dashboard: static files, and its data behind a key
        location = /llmproxy/ui { return 301 /llmproxy/ui/; }
        location /llmproxy/ui/ {
            alias $top/build/ui/;
            types { text/html html; text/css css; application/javascript js; }
            default_type application/octet-stream;
            add_header X-Content-Type-Options nosniff;
            add_header Content-Security-Policy "default-src 'self'; frame-ancestors 'none'";
            add_header Referrer-Policy no-referrer;
        }
        location /llmproxy/ui/api/ { llmproxy; }
    }
}
CONF

[ -z "$config_only" ] || { echo "$var/nginx.conf"; exit 0; }

nginx=${NGINX_BIN:-/usr/sbin/nginx}
"$nginx" -t -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" 2>&1 \
    | grep -v "syntax is ok\|test is successful" || true

stop() {
    kill -QUIT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ -n "$pg_started" ] && bash scripts/pg.sh stop "$var/pg"
    exit 0
}

"$nginx" -p "$var" -c "$var/nginx.conf" -e "$var/logs/error.log" &
pid=$!
trap stop INT TERM

url="http://$listen"
for _ in $(seq 50); do
    curl -fs "$url/health/liveliness" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "nginx did not start: see $var/logs/error.log"; exit 1; }
    sleep 0.1
done

export LLMPROXY_GATEWAY_URL=$url
export LLMPROXY_MASTER_KEY
LLMPROXY_MASTER_KEY=$(cat "$var/master_key")
if ! "$top/build/llmproxyctl" sync -c "$config" --force; then
    echo "the config was refused; the gateway keeps its last good one"
fi

cat <<MSG

llmproxy listens on $url (logs in $var/logs/)
master key: in $var/master_key
database:   $LLMPROXY_DATABASE_URL (provider keys encrypted with $var/salt_key)

  # a virtual key for a team (from this directory llmproxyctl finds $var/)
  build/llmproxyctl key create --alias team-a --models gpt-5 --rpm 60

  curl $url/v1/chat/completions \\
    -H "Authorization: Bearer \$(cat $var/master_key)" \\
    -H "Content-Type: application/json" \\
    -d '{"model": "gpt-5", "messages": [{"role": "user", "content": "Hello"}]}'

  curl $url/v1/models -H "Authorization: Bearer \$(cat $var/master_key)"

Ctrl-C stops it.
MSG

wait $pid
[ -n "$pg_started" ] && bash scripts/pg.sh stop "$var/pg"

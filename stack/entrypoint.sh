#!/usr/bin/env bash
# The gateway image's entrypoint (stack/Dockerfile): writes nginx.conf from
# the environment and Docker secrets, waits for PostgreSQL, applies the
# schema migrations, syncs the config given as a Docker config, then runs
# nginx in the foreground and stays its parent, so that
#
#   TERM, INT   (docker stop, a rolling update)  drain: nginx QUIT, the
#               workers finish the requests and streams in flight
#   HUP         re-reads the secrets, rewrites nginx.conf, `nginx -t`, and
#               reloads nginx (HUP) only if the new file passes
#   QUIT        passed on as it is
#
# Every variable is listed with its default in stack/.env.example.  Nothing
# here needs a container: t/integration/21-stack-entrypoint.test.js runs it
# as a plain process with temp dirs for the paths.
set -euo pipefail

log() { printf 'llmproxy-entrypoint: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}
ctl_bin=${LLMPROXYCTL:-llmproxyctl}
module=${LLMPROXY_MODULE:-/usr/lib/nginx/modules/ngx_http_llmproxy_module.so}
run=${LLMPROXY_RUN_DIR:-/run/llmproxy}
state=${LLMPROXY_STATE_PATH:-/var/lib/llmproxy}
listen=${LLMPROXY_LISTEN:-0.0.0.0:4000}
user=${LLMPROXY_USER:-llmproxy}
group=${LLMPROXY_GROUP:-$user}

# A value that goes into nginx.conf unquoted: one word of safe characters,
# so that no environment variable can add a directive.
word() {   # word NAME VALUE
    local re='^[][A-Za-z0-9._:/@+-]+$'
    [[ $2 =~ $re ]] \
        || die "$1: '$2' is not a plain value"
}

# NAME or NAME_FILE (a Docker secret), never both; the first line of the
# file, without its line end.  Sets the variable named by $2.
secret() {   # secret NAME VAR
    local name=$1 file_var=${1}_FILE value file
    value=${!name:-}
    file=${!file_var:-}
    if [ -n "$value" ] && [ -n "$file" ]; then
        die "set $name or ${name}_FILE, not both"
    fi
    if [ -n "$file" ]; then
        [ -r "$file" ] || die "${name}_FILE: cannot read $file"
        IFS= read -r value < "$file" || [ -n "$value" ] \
            || die "${name}_FILE: $file is empty"
        value=${value%$'\r'}
    fi
    printf -v "$2" '%s' "$value"
}

# allow/deny lines of a location from a list of addresses or CIDRs
allow_lines() {   # allow_lines NAME LIST
    local a out=
    for a in ${2//,/ }; do
        [[ $a =~ ^([0-9.]+|[0-9A-Fa-f:]+)(/[0-9]{1,3})?$ || $a == all ]] \
            || die "$1: '$a' is not an address or CIDR"
        out+="            allow $a;"$'\n'
    done
    printf '%s            deny all;' "$out"
}

read_secrets() {
    secret LLMPROXY_MASTER_KEY master_key
    secret LLMPROXY_SALT_KEY salt_key
    secret LLMPROXY_DB_PASSWORD db_password
    [ ${#master_key} -ge 8 ] \
        || die "no master key: set LLMPROXY_MASTER_KEY_FILE (a secret)"
}

# The database URI for nginx and llmproxyctl.  A password never goes into
# it: libpq reads it from a pgpass file (passfile=), readable only by the
# workers' user, so nginx.conf and `ps` show none.
database_url() {
    local url=${LLMPROXY_DATABASE_URL:-} sep
    if [ -z "$url" ] && [ -n "${LLMPROXY_DB_HOST:-}" ]; then
        local h=$LLMPROXY_DB_HOST p=${LLMPROXY_DB_PORT:-5432}
        local u=${LLMPROXY_DB_USER:-llmproxy} d=${LLMPROXY_DB_NAME:-llmproxy}
        word LLMPROXY_DB_HOST "$h"; word LLMPROXY_DB_PORT "$p"
        word LLMPROXY_DB_USER "$u"; word LLMPROXY_DB_NAME "$d"
        url="postgresql://$u@$h:$p/$d"
    fi
    [[ $url != *[\"\\\;[:space:]]* ]] \
        || die "LLMPROXY_DATABASE_URL: quotes, backslashes, ';' and blanks" \
               "are not allowed"
    if [ -n "$url" ] && [ -n "$db_password" ]; then
        local esc=${db_password//\\/\\\\}
        esc=${esc//:/\\:}
        # renamed into place: a worker may be connecting meanwhile
        (umask 077; printf '*:*:*:*:%s\n' "$esc" > "$run/pgpass.$$")
        [ "$(id -u)" -ne 0 ] || chown "$user:$group" "$run/pgpass.$$"
        mv -f "$run/pgpass.$$" "$run/pgpass"
        sep='?'; [[ $url == *\?* ]] && sep='&'
        url="$url${sep}passfile=$run/pgpass"
    fi
    database=$url
}

# writes $1 (nginx.conf) from the environment
render() {
    local out=$1 workers=${LLMPROXY_WORKERS:-auto}
    local conns=${LLMPROXY_WORKER_CONNECTIONS:-4096}
    local threads=${LLMPROXY_THREADS:-4} zone=${LLMPROXY_ZONE_SIZE:-64m}
    local poll=${LLMPROXY_DATABASE_POLL:-1s}
    local flush=${LLMPROXY_USAGE_FLUSH:-200ms}
    local body=${LLMPROXY_MAX_BODY_SIZE:-32m}
    local level=${LLMPROXY_ERROR_LOG_LEVEL:-notice}
    local drain=${LLMPROXY_DRAIN_TIMEOUT:-90s}
    local access=${LLMPROXY_ACCESS_LOG:-/dev/stdout}
    local v
    for v in workers conns threads zone poll flush body level drain access \
             listen module run state user group; do
        word "$v" "${!v}"
    done
    local metrics admin
    # (a substitution's die ends the substitution only: hence the exits)
    metrics=$(allow_lines LLMPROXY_METRICS_ALLOW \
                          "${LLMPROXY_METRICS_ALLOW:-127.0.0.1}") || exit 1
    admin=$(allow_lines LLMPROXY_ADMIN_ALLOW \
                        "${LLMPROXY_ADMIN_ALLOW:-127.0.0.1}") || exit 1

    (umask 077; : > "$out")
    {
        echo "# written by llmproxy-entrypoint at start and on HUP: change"
        echo "# the environment (stack/.env.example), not this file"
        echo "load_module $module;"
        [ "$(id -u)" -ne 0 ] || echo "user $user $group;"
        echo "worker_processes $workers;"
        echo "worker_shutdown_timeout $drain;"
        echo "daemon off;"
        echo "pid $run/nginx.pid;"
        echo "error_log stderr $level;"
        echo "events { worker_connections $conns; }"
        echo "thread_pool llmproxy threads=$threads;"
        echo "http {"
        cat <<'FORMAT'
    log_format llmproxy_json escape=json
        '{"time":"$time_iso8601","id":"$llmproxy_request_id",'
        '"key":"$llmproxy_key_alias","model":"$llmproxy_model",'
        '"deployment":"$llmproxy_deployment","status":$status,'
        '"tokens":"$llmproxy_total_tokens","cost":"$llmproxy_cost",'
        '"latency":$request_time}';
FORMAT
        if [ "$access" = off ]; then
            echo "    access_log off;"
        else
            echo "    access_log $access llmproxy_json;"
        fi
        echo "    client_body_temp_path $run/body;"
        echo "    proxy_temp_path $run/proxy;"
        echo "    fastcgi_temp_path $run/fastcgi;"
        echo "    uwsgi_temp_path $run/uwsgi;"
        echo "    scgi_temp_path $run/scgi;"
        echo "    llmproxy_zone llmproxy:$zone;"
        echo "    llmproxy_master_key_file $run/master_key;"
        echo "    llmproxy_state_path $state;"
        echo "    llmproxy_thread_pool llmproxy;"
        if [ -n "$database" ]; then
            echo "    llmproxy_database \"$database\";"
            echo "    llmproxy_database_poll $poll;"
            echo "    llmproxy_usage_flush $flush;"
        fi
        [ -z "$salt_key" ] || echo "    llmproxy_salt_key_file $run/salt_key;"
        echo "    server {"
        echo "        listen $listen;"
        echo "        llmproxy_max_body_size $body;"
        echo "        location / { llmproxy; }"
        echo "        # Prometheus text: for the monitoring network only"
        echo "        location = /metrics {"
        echo "            llmproxy;"
        echo "$metrics"
        echo "        }"
        echo "        location /llmproxy/admin/ {"
        echo "            llmproxy_admin;"
        echo "$admin"
        echo "        }"
        echo "    }"
        echo "}"
    } >> "$out"
}

# writes the secrets, the database's pgpass and nginx.conf, and checks it
prepare() {
    read_secrets
    (umask 077
     printf '%s\n' "$master_key" > "$run/master_key"
     if [ -n "$salt_key" ]; then
         printf '%s\n' "$salt_key" > "$run/salt_key"
     else
         rm -f "$run/salt_key"
     fi)
    database_url
    render "$run/nginx.conf.new"
    if ! "$nginx_bin" -t -q -p "$run" -c "$run/nginx.conf.new" -e stderr; then
        rm -f "$run/nginx.conf.new"
        return 1
    fi
    mv -f "$run/nginx.conf.new" "$run/nginx.conf"
}

# llmproxyctl with the secrets in its environment only
ctl() {
    env LLMPROXY_DATABASE_URL="$database" LLMPROXY_SALT_KEY="$salt_key" \
        LLMPROXY_MASTER_KEY="$master_key" LLMPROXY_GATEWAY_URL="$local_url" \
        PGCONNECT_TIMEOUT=5 "$ctl_bin" "$@"
}

# `llmproxyctl migrate` until PostgreSQL answers (it also waits for a
# migration another replica runs: the CLI takes an advisory lock)
wait_database() {
    local deadline=$((SECONDS + ${LLMPROXY_DB_WAIT:-120})) err said=
    while :; do
        if err=$(ctl migrate 2>&1); then
            log "database schema up to date"
            return 0
        fi
        [ $SECONDS -lt $deadline ] \
            || die "PostgreSQL not ready after ${LLMPROXY_DB_WAIT:-120} s:" \
                   "$err"
        [ -n "$said" ] || log "waiting for PostgreSQL ($err)"
        said=1
        sleep 1
    done
}

# The config given as a Docker config (and its secret config.local.json,
# deep-merged over it by llmproxyctl), copied side by side.  A config
# llmproxyctl refuses stops the task, so that a rolling update with a
# broken config rolls back; a database busy with another replica's sync is
# retried.
sync_config() {
    local cfg=${LLMPROXY_CONFIG_FILE:-/etc/llmproxy/config.json}
    local local_cfg=${LLMPROXY_CONFIG_LOCAL_FILE:-}
    if [ ! -e "$cfg" ]; then
        [ -z "${LLMPROXY_CONFIG_FILE:-}" ] \
            || die "LLMPROXY_CONFIG_FILE: $cfg does not exist"
        log "no config at $cfg: serving the one already stored"
        return 0
    fi
    mkdir -p "$run/config"
    cp "$cfg" "$run/config/config.json"
    rm -f "$run/config/config.local.json"
    if [ -n "$local_cfg" ]; then
        (umask 077; cp "$local_cfg" "$run/config/config.local.json")
    fi
    local args try rc out
    read -ra args <<< "${LLMPROXY_SYNC_ARGS---force --prune}"
    for try in 1 2 3 4 5; do
        rc=0
        out=$(ctl sync -c "$run/config/config.json" "${args[@]}" 2>&1) \
            || rc=$?
        printf '%s\n' "$out" | sed 's/^/llmproxyctl: /' >&2
        [ $rc -eq 0 ] && return 0
        [ $rc -eq 1 ] && die "the config was refused; not starting"
        sleep "$try"
    done
    die "llmproxyctl sync failed 5 times"
}

# the address llmproxyctl and the health check reach this gateway at
local_address() {
    local port=${listen##*:} host=${listen%:*}
    [[ $listen == *:* ]] || { port=$listen; host=; }
    case $host in ''|'*'|0.0.0.0|'[::]') host=127.0.0.1 ;; esac
    local_url="http://$host:$port"
}

local_address

# `llmproxy-entrypoint COMMAND...` runs COMMAND (llmproxyctl backup, key
# create, a shell loop) with the database URI and the keys of the
# environment, without nginx: the backup service, and `docker exec` into a
# gateway
if [ $# -gt 0 ]; then
    mkdir -p "$run"
    secret LLMPROXY_MASTER_KEY master_key
    secret LLMPROXY_SALT_KEY salt_key
    secret LLMPROXY_DB_PASSWORD db_password
    secret AWS_SECRET_ACCESS_KEY aws_secret_key
    database_url
    unset LLMPROXY_MASTER_KEY_FILE LLMPROXY_SALT_KEY_FILE \
          LLMPROXY_DB_PASSWORD_FILE AWS_SECRET_ACCESS_KEY_FILE \
          LLMPROXY_DB_PASSWORD
    export LLMPROXY_DATABASE_URL=$database LLMPROXY_GATEWAY_URL=$local_url
    [ -z "$master_key" ] || export LLMPROXY_MASTER_KEY=$master_key
    [ -z "$salt_key" ] || export LLMPROXY_SALT_KEY=$salt_key
    [ -z "$aws_secret_key" ] || export AWS_SECRET_ACCESS_KEY=$aws_secret_key
    exec "$@"
fi

mkdir -p "$run" "$state"
chmod 755 "$run"
[ "$(id -u)" -ne 0 ] || chown "$user:$group" "$state"
prepare || die "nginx -t refused the nginx.conf written from the environment"
# kept for HUP, but out of the environment of nginx and every other child
export -n LLMPROXY_MASTER_KEY LLMPROXY_SALT_KEY LLMPROXY_DB_PASSWORD

if [ -n "$database" ]; then
    wait_database
    # stored in the database before nginx starts: every replica loads it
    [ "${LLMPROXY_SYNC:-1}" = 0 ] || sync_config
fi

drain() {
    log "$1: draining (nginx QUIT)"
    kill -QUIT "$pid" 2>/dev/null || true
}

reload() {
    log "HUP: rewriting nginx.conf and reloading"
    if (prepare); then
        kill -HUP "$pid" 2>/dev/null || true
    else
        log "the new nginx.conf was refused: nginx keeps the running one"
    fi
}

"$nginx_bin" -p "$run" -c "$run/nginx.conf" -e stderr &
pid=$!
trap 'drain TERM' TERM
trap 'drain INT' INT
trap 'drain QUIT' QUIT
trap reload HUP
log "nginx $pid listens on $listen"

if [ -z "$database" ] && [ "${LLMPROXY_SYNC:-1}" != 0 ]; then
    # no database: the config goes to this gateway's admin endpoint (in a
    # subshell: a refused config stops nginx too)
    for _ in $(seq 100); do
        curl -fsS "$local_url/health/liveliness" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! (sync_config); then
        kill -QUIT "$pid" 2>/dev/null
        wait "$pid" || true
        exit 1
    fi
fi

# wait returns early for every trapped signal; nginx's own exit ends it
rc=0
while :; do
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
log "nginx exited ($rc)"
exit "$rc"

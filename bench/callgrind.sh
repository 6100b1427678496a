#!/usr/bin/env bash
# Instructions per request of the gateway's worker and of plain nginx's, by
# valgrind's callgrind: one process each (master_process off), the same mock
# as bench/run.sh, a fixed number of requests from a small client.  Unlike
# time on a shared machine, the count repeats to within a few instructions.
#
#   bash bench/callgrind.sh [sse8|json] [REQUESTS]
#
# CG_OUT     a directory to keep callgrind.out.{plain,gw} in (for
#            callgrind_annotate); default: a temporary one, removed
# CG_CONNS   concurrent connections of the client (default 8)
# CG_RECORDS on (default) or off: usage records to PostgreSQL
# CG_KEY     master (default) or virtual: the key the client sends (a
#            virtual key made with llmproxyctl, as make bench's vkey50)
# CG_VALGRIND_ARGS  more options for valgrind (e.g. --dump-instr=yes)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

pass=${1:-sse8}
n=${2:-2000}
conns=${CG_CONNS:-8}
nginx=${NGINX_BIN:-/usr/sbin/nginx}

dir=$(mktemp -d /tmp/llmproxy-cg.XXXXXX)
chmod 755 "$dir"
cleanup() {
    for p in mock plain gw; do
        [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    done
    sleep 0.5
    bash "$top/scripts/pg.sh" stop "$dir/pg" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

. "$top/bench/lib.sh"
. "$top/bench/mock.sh"

mock_port=$(free_port); plain_port=$(free_port); gw_port=$(free_port)
pg_port=$(free_port)

db=$(bash "$top/scripts/pg.sh" start "$dir/pg" "$pg_port")
export LLMPROXY_DATABASE_URL=$db
"$top/build/llmproxyctl" migrate >/dev/null

mkdir -p "$dir/mock" "$dir/plain" "$dir/gw/state"
bench_mock_conf "$dir/mock" "$mock_port" > "$dir/mock/nginx.conf"
"$nginx" -p "$dir/mock" -c "$dir/mock/nginx.conf" -e "$dir/mock/error.log"
cp "$dir/mock/nginx.pid" "$dir/mock.pid"

master_key="sk-bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$master_key" > "$dir/gw/master_key"

cat > "$dir/plain/nginx.conf" <<CONF
master_process off;
daemon off;
worker_processes 1;
pid $dir/plain/nginx.pid;
error_log $dir/plain/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream mock { server 127.0.0.1:$mock_port; keepalive 64; }
    server {
        listen 127.0.0.1:$plain_port;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF

# the key poll is not per request: a long interval keeps it out of the count
gw_conf() {     # poll interval
    cat <<CONF
load_module $top/build/ngx_http_llmproxy_module.so;
master_process off;
daemon off;
worker_processes 1;
pid $dir/gw/nginx.pid;
thread_pool llmproxy threads=4;
error_log $dir/gw/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    llmproxy_zone llmproxy:64m;
    llmproxy_master_key_file $dir/gw/master_key;
    llmproxy_state_path $dir/gw/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $db;
    llmproxy_database_poll $1;
    llmproxy_usage_records ${CG_RECORDS:-on};
    server {
        listen 127.0.0.1:$gw_port;
        location / { llmproxy; }
        location /llmproxy/admin/ { llmproxy_admin; }
    }
}
CONF
}

cat > "$dir/config.json" <<CONF
{
  "providers": {
    "mock": {"api_base": "http://127.0.0.1:$mock_port",
             "interfaces": ["openai"],
             "models": {"bench-model": {"model": "mock-model",
                                        "input_cost_per_million": 1,
                                        "output_cost_per_million": 2}}}
  },
  "settings": {"num_retries": 1, "request_timeout_seconds": 30}
}
CONF

case $pass in
sse8) body=$bench_sse_body; accept=text/event-stream ;;
json) body=$bench_json_body; accept=application/json ;;
*)    echo "unknown pass $pass" >&2; exit 1 ;;
esac

client() {      # port count: requests, $conns at a time, bodies read whole
    node -e '
const http = require("http");
const [port, count, conns, key, body, accept] = process.argv.slice(1);
const agent = new http.Agent({keepAlive: true, maxSockets: +conns});
let sent = 0, done = 0, bad = 0;
const one = () => {
  if (sent >= +count) return;
  sent++;
  const req = http.request({port, host: "127.0.0.1", agent, method: "POST",
    path: "/v1/chat/completions", headers: {"content-type": "application/json",
    "authorization": "Bearer " + key, "accept": accept}}, (res) => {
    let n = 0;
    res.on("data", (d) => { n += d.length; });
    res.on("end", () => {
      if (res.statusCode !== 200 || n === 0) bad++;
      if (++done === +count) {
        if (bad) { console.error(bad + " bad answers"); process.exit(1); }
        process.exit(0);
      }
      one();
    });
  });
  req.end(body);
};
for (let i = 0; i < +conns; i++) one();
' "$1" "$2" "$conns" "$client_key" "$body" "$accept"
}

ir() {          # total instructions of a callgrind output file
    awk '/^totals:/ {t = $2} END {print t + 0}' "$1"
}

# the config stored once by a gateway outside valgrind; the measured one
# loads it at start
gw_conf 200ms > "$dir/gw/nginx.conf"
"$nginx" -p "$dir/gw" -c "$dir/gw/nginx.conf" -e "$dir/gw/error.log" \
    > /dev/null 2>&1 &
echo $! > "$dir/gw.pid"
for i in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$gw_port/health/liveliness" && break
    sleep 0.1
done
LLMPROXY_GATEWAY_URL=http://127.0.0.1:$gw_port LLMPROXY_MASTER_KEY=$master_key \
    "$top/build/llmproxyctl" sync -c "$dir/config.json" --force >/dev/null
client_key=$master_key
if [ "${CG_KEY:-master}" = virtual ]; then
    client_key=$("$top/build/llmproxyctl" key create --alias cg)
fi
kill "$(cat "$dir/gw.pid")"; wait "$(cat "$dir/gw.pid")" 2>/dev/null || true
rm -f "$dir/gw.pid"
gw_conf 30s > "$dir/gw/nginx.conf"

sysc() {        # read and write system calls of a process so far
    awk '/^syscr:/ {r = $2} /^syscw:/ {w = $2} END {print r, w}' "/proc/$1/io"
}

declare -A IR SC
for who in plain gw; do
    if [ $who = plain ]; then port=$plain_port; else port=$gw_port; fi
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.$who" \
        --instr-atstart=no ${CG_VALGRIND_ARGS:-} \
        "$nginx" -p "$dir/$who" -c "$dir/$who/nginx.conf" \
        -e "$dir/$who/error.log" > "$dir/$who.vg.log" 2>&1 &
    echo $! > "$dir/$who.pid"
    for i in $(seq 300); do
        if [ $who = plain ]; then
            curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        elif curl -s -o /dev/null -w '%{http_code}' \
                "http://127.0.0.1:$port/health/readiness" | grep -q 200; then
            break
        fi
        sleep 0.2
    done
    client "$port" 200                  # warm up: connections, pools
    sleep 1
    callgrind_control -i on "$(cat "$dir/$who.pid")" >/dev/null 2>&1
    io0=$(sysc "$(cat "$dir/$who.pid")")
    client "$port" "$n"
    sleep 1                             # the records' flush
    io1=$(sysc "$(cat "$dir/$who.pid")")
    callgrind_control -i off "$(cat "$dir/$who.pid")" >/dev/null 2>&1
    SC[$who]=$(awk -v a="$io0" -v b="$io1" -v n="$n" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%.2f reads, %.2f writes", (y[1] - x[1]) / n, (y[2] - x[2]) / n }')
    kill "$(cat "$dir/$who.pid")"
    wait "$(cat "$dir/$who.pid")" 2>/dev/null || true
    rm -f "$dir/$who.pid"
    IR[$who]=$(ir "$dir/callgrind.out.$who")
    if [ -n "${CG_OUT:-}" ]; then
        mkdir -p "$CG_OUT"; cp "$dir/callgrind.out.$who" "$CG_OUT/"
    fi
done

awk -v p="${IR[plain]}" -v g="${IR[gw]}" -v n="$n" -v pass="$pass" 'BEGIN {
    printf "%s: %d requests; instructions/request: plain %.0f, gateway %.0f (%.2fx)\n",
        pass, n, p / n, g / n, g / p }'
echo "system calls/request: plain ${SC[plain]}; gateway ${SC[gw]}"

#!/usr/bin/env bash
# Usage records under stress (issue 6): how fast they reach PostgreSQL,
# whether any is lost, and whether requests notice PostgreSQL stopping and
# starting under load.  Called by bench/run.sh; also runs alone:
#
#   BENCH_SECONDS=5 bash bench/usage.sh      (default 10 s per pass)
#
# Prints a markdown section on stdout (run.sh appends it to its report).
#
# Passes, all through the real gateway and its real write path:
#   drain    N synthetic records (20,000 per second of BENCH_SECONDS) in
#            spill files, as a gateway leaves them while the database is
#            away; a fresh gateway replays them: records/s into the table
#            (COPY + llmproxy_usage_ingest, spend updates of 1,000 keys)
#   live     wrk with a virtual key, 50 connections: every answered
#            request must have its record, and how long the last takes
#   outage   the same load while PostgreSQL is stopped for a third of the
#            pass and started again: p99 against the live pass, records
#            lost (must be 0)
#
# PostgreSQL's CPU per record (drain and live): the run time (ns, from
# /proc/PID/schedstat) of the postmaster and its live children (backends,
# walwriter, checkpointer, ...) over the pass, divided by the records.
# psql's own short-lived backends (the polls for the record count) have
# exited when the pass ends, so they are not counted.
#
# BENCH_FLUSH=1s sets llmproxy_usage_flush (default 200ms, as shipped).
# BENCH_SQL="..." runs after the migrations, for experiments.
# BENCH_DB_DETAIL=1 prints each process's run time (ns) at each sample.
# BENCH_PASSES="drain live" runs only those passes (default: all three).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

secs=${BENCH_SECONDS:-10}
nginx=${NGINX_BIN:-/usr/sbin/nginx}

dir=$(mktemp -d /tmp/llmproxy-bench-usage.XXXXXX)
chmod 755 "$dir"
cleanup() {
    for p in mock gw; do
        [ -f "$dir/$p/nginx.pid" ] && kill -QUIT "$(cat "$dir/$p/nginx.pid")" \
            2>/dev/null || true
    done
    sleep 0.3
    bash "$top/scripts/pg.sh" stop "$dir/pg" >/dev/null 2>&1 || true
    [ -n "${BENCH_LEAVE:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

. "$top/bench/lib.sh"

mock_port=$(free_port); gw_port=$(free_port); pg_port=$(free_port)

db=$(bash "$top/scripts/pg.sh" start "$dir/pg" "$pg_port")
export LLMPROXY_DATABASE_URL=$db
"$top/build/llmproxyctl" migrate >/dev/null
# an experiment's schema change (an index dropped, a setting), after migrate
[ -z "${BENCH_SQL:-}" ] || psql -Atq "$db" -c "$BENCH_SQL" >/dev/null

q() { psql -Atq "$db" -c "$1"; }

passes=${BENCH_PASSES:-drain live outage}
pg_ns() {       # run time (ns) of PostgreSQL's live processes
    local pm p
    pm=$(head -1 "$dir/pg/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do
        awk '{print $1}' "/proc/$p/schedstat" 2>/dev/null || true
        [ -z "${BENCH_DB_DETAIL:-}" ] || echo "db $p $(awk '{print $1}' \
            "/proc/$p/schedstat") $(tr '\0' ' ' < "/proc/$p/cmdline")" >&2
    done | awk '{s += $1} END {printf "%.0f", s}'
}
per_record() {  # ns0 ns1 records: µs per record
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
        if (n > 0) printf "%.2f", (b - a) / 1000 / n; else print "-" }'
}

mkdir -p "$dir/mock" "$dir/gw/state"

cat > "$dir/mock/nginx.conf" <<CONF
worker_processes 1;
pid $dir/mock/nginx.pid;
error_log $dir/mock/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$mock_port;
        location / {
            default_type application/json;
            return 200 '{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":180,"total_tokens":192}}';
        }
    }
}
CONF

master_key="sk-bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$master_key" > "$dir/gw/master_key"

cat > "$dir/gw/nginx.conf" <<CONF
load_module $top/build/ngx_http_llmproxy_module.so;
worker_processes 1;
pid $dir/gw/nginx.pid;
error_log $dir/gw/error.log notice;
events { worker_connections 4096; }
thread_pool llmproxy threads=4;
http {
    access_log off;
    keepalive_requests 1000000;
    llmproxy_zone llmproxy:64m;
    llmproxy_master_key_file $dir/gw/master_key;
    llmproxy_state_path $dir/gw/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $db;
    llmproxy_database_poll 500ms;
    llmproxy_usage_flush ${BENCH_FLUSH:-200ms};
    server {
        listen 127.0.0.1:$gw_port;
        location / { llmproxy; }
        location /llmproxy/admin/ { llmproxy_admin; }
    }
}
CONF

cat > "$dir/config.json" <<CONF
{"providers": {"mock": {"api_base": "http://127.0.0.1:$mock_port",
  "interfaces": ["openai"],
  "models": {"bench-model": {"input_cost_per_million": 1,
                             "output_cost_per_million": 2}}}}}
CONF

# 1,000 keys the synthetic records belong to, and one for the live passes
q "INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
   SELECT encode(sha256(('sk-usage-' || i)::bytea), 'hex'), 'sk-usage',
          'usage-' || i FROM generate_series(1, 1000) i"
vkey=$("$top/build/llmproxyctl" key create --alias bench-usage 2>/dev/null)

# -- drain: spill files a gateway left, replayed by a fresh one ---------------

n=$((20000 * secs))
node -e '
// spill files as a gateway writes them, 1,000 records each
const crypto = require("crypto"), fs = require("fs");
const { spillFile } = require(process.argv[3] + "/t/lib/spill.js");
const n = +process.argv[1], dir = process.argv[2];
const hashes = [];
for (let i = 1; i <= 1000; i++)
  hashes.push(crypto.createHash("sha256").update("sk-usage-" + i)
              .digest("hex"));
let records = [], file = 0;
const flush = () => {
  fs.writeFileSync(`${dir}/usage-1-1-${file++}.copy`, spillFile(records));
  records = [];
};
for (let i = 0; i < n; i++) {
  records.push({ id: crypto.randomUUID(), hash: hashes[i % 1000],
    alias: `usage-${i % 1000 + 1}`, model: "bench-model",
    deployment: "mock/bench-model", prompt: 12, completion: 180, total: 192,
    cost: 0.000372, latency: 3, ttfb: 2, attempts: 1 });
  if (records.length === 1000) flush();
}
if (records.length) flush();' "$n" "$dir/gw/state" "$top"
chown nobody "$dir/gw/state"/usage-*.copy 2>/dev/null || true

# the records written so far, counted without reading them (the view
# llmproxy_usage would decode every pack); only the gateway writes them
records="SELECT (SELECT coalesce(sum(n), 0) FROM llmproxy_usage_packs)
                + (SELECT count(*) FROM llmproxy_usage_rows)"

d0=$(pg_ns)
t0=$(ms_now)
"$nginx" -p "$dir/mock" -c "$dir/mock/nginx.conf" -e "$dir/mock/error.log"
"$nginx" -p "$dir/gw" -c "$dir/gw/nginx.conf" -e "$dir/gw/error.log"
drained=timeout
for i in $(seq $((secs * 100 + 600))); do
    if [ "$(q "$records")" -ge "$n" ]; then
        drained=$(( $(ms_now) - t0 ))
        break
    fi
    sleep 0.1
done
d1=$(pg_ns)
drain_cpu=$(per_record "$d0" "$d1" "$n")
drain_rate=$(awk -v n="$n" -v ms="$drained" 'BEGIN {
    if (ms + 0 > 0) printf "%.0f", n / ms * 1000; else print "-" }')
spend_ok=$(q "SELECT abs(sum(spend) - $n * 0.000372) < 1e-6
              FROM llmproxy_keys WHERE alias LIKE 'usage-%'")

export LLMPROXY_GATEWAY_URL=http://127.0.0.1:$gw_port
export LLMPROXY_MASTER_KEY=$master_key
"$top/build/llmproxyctl" sync -c "$dir/config.json" --force >/dev/null
for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' \
         -H "Authorization: Bearer $vkey" \
         -d '{"model":"bench-model","messages":[]}' \
         "http://127.0.0.1:$gw_port/v1/chat/completions")" = 200 ] && break
    sleep 0.1
done

# -- live and outage: wrk with the virtual key --------------------------------

cat > "$dir/vkey.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $vkey"
LUA


declare -A R

load() {    # name seconds: wrk, then wait for every record
    local name=$1 d=$2 before o reqs t0 last
    before=$(q "$records")
    R[$name,ns0]=$(pg_ns)
    o=$(wrk -t1 -c50 -d"${d}s" --latency -s "$dir/vkey.lua" \
        "http://127.0.0.1:$gw_port/v1/chat/completions" 2>&1)
    t0=$(ms_now)
    reqs=$(echo "$o" | awk '/requests in/ {print $1}')
    R[$name,rps]=$(echo "$o" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    R[$name,p50]=$(to_us "$(echo "$o" | awk '$1 == "50%" {print $2}')")
    R[$name,p99]=$(to_us "$(echo "$o" | awk '$1 == "99%" {print $2}')")
    R[$name,errors]=$(echo "$o" | awk '/Non-2xx|Socket errors/ {e = e $0 "; "} END {print e}')
    R[$name,reqs]=$reqs
    R[$name,behind]=timeout
    for i in $(seq 600); do
        last=$(q "$records")
        if [ $((last - before)) -ge "$reqs" ]; then
            R[$name,behind]=$(( $(ms_now) - t0 ))
            R[$name,cpu]=$(per_record "${R[$name,ns0]}" "$(pg_ns)" "$reqs")
            break
        fi
        sleep 0.1
    done
    R[$name,lost]=$(( reqs - (last - before) ))
    [ "${R[$name,lost]}" -ge 0 ] || R[$name,lost]=0
}

for k in rps p50 p99 reqs lost behind cpu; do R[live,$k]=-; R[outage,$k]=-; done
case " $passes " in *" live "*) load live "$secs" ;; esac

third=$(awk -v s="$secs" 'BEGIN {printf "%.1f", s}')
if [[ " $passes " == *" outage "* ]]; then
    (
        sleep "$third"
        bash "$top/scripts/pg.sh" stop "$dir/pg" >/dev/null 2>&1
        sleep "$third"
        bash "$top/scripts/pg.sh" start "$dir/pg" "$pg_port" >/dev/null 2>&1
    ) &
    load outage $((secs * 3))
    wait
fi

# the dashboard's daily totals against the records they add up
totals_ok=$(q "SELECT (SELECT sum(requests) FROM llmproxy_usage_daily)
                      = (SELECT count(*) FROM llmproxy_usage)
                  AND abs((SELECT sum(cost) FROM llmproxy_usage_daily)
                          - (SELECT coalesce(sum(cost), 0)
                             FROM llmproxy_usage)) < 1e-6")

spilled=$(grep -c 'usage records left in spill\|cannot be written' \
          "$dir/gw/error.log" || true)

cat <<MD

## Usage records (bench/usage.sh, ${secs}s passes)

| pass | what | result | PostgreSQL CPU µs/record |
|---|---|---|---|
| drain | $n records from spill files into PostgreSQL (1,000 keys' spend) | ${drained} ms: **${drain_rate} records/s**; spend exact: ${spend_ok} | ${drain_cpu} |
| live | wrk 50 conns, virtual key | ${R[live,rps]} req/s, p50 ${R[live,p50]} µs, p99 ${R[live,p99]} µs; last record in ${R[live,behind]} ms after the load; lost ${R[live,lost]} of ${R[live,reqs]} | **${R[live,cpu]}** |
| outage | the same, PostgreSQL stopped ${third}s into a $((secs * 3))s pass for ${third}s | ${R[outage,rps]} req/s, p50 ${R[outage,p50]} µs, p99 ${R[outage,p99]} µs; lost ${R[outage,lost]} of ${R[outage,reqs]}; errors: ${R[outage,errors]:-none} | - |

Daily totals (llmproxy_usage_daily) equal to the records' sums after all
passes: ${totals_ok}.

p99 with PostgreSQL stopped and started under load against without:
$(awk -v a="${R[outage,p99]}" -v b="${R[live,p99]}" 'BEGIN {
    if (b > 0) printf "%.2f", a / b; else print "-" }')x.
MD

if grep -q "\[alert\]\|\[emerg\]" "$dir/gw/error.log"; then
    echo "gateway error log has alerts:" >&2
    grep "\[alert\]\|\[emerg\]" "$dir/gw/error.log" | head >&2
    exit 1
fi
[[ "${R[live,lost]}" =~ ^(0|-)$ ]] && [[ "${R[outage,lost]}" =~ ^(0|-)$ ]] \
    && [ "$totals_ok" = t ]

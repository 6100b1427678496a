#!/usr/bin/env bash
# make bench: llmproxy against plain nginx proxy_pass, same mock, one run.
#
# BENCH_SECONDS   seconds per pass and side (default 10; `make test` uses 1)
# BENCH_ROUNDS    rounds a pass is split in, the sides taking turns
#                 (default 3; 1 when BENCH_SECONDS is smaller)
# BENCH_OUT       markdown report (default bench/results/latest.md)
# BENCH_PASSES    passes to run (default: all of them, in order)
# BENCH_LEAVE     keep the temporary directory (logs, configs)
# BENCH_PERF      a directory: `perf record -g` the gateway's worker during
#                 each pass into DIR/PASS.perf.data
# BENCH_ENV_GW    environment for the gateway (e.g. MALLOC_ARENA_MAX=1)
# BENCH_USAGE_RECORDS  on (default) or off: usage records to PostgreSQL
# BENCH_STREAMS   concurrent streams of the streams10k pass (default 10000;
#                 500 when BENCH_SECONDS is 1)
# BENCH_DB_DETAIL print PostgreSQL's processes' CPU ticks after each pass
# BENCH_PIN       on (default with 2 CPUs or more) or off: the nginx under
#                 test (plain or gateway, with its threads) on CPU 0; wrk,
#                 the mock and PostgreSQL on the others
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
[ "$secs" -ge "$rounds" ] || rounds=1
round_secs=$(( secs / rounds ))
out=${BENCH_OUT:-$top/bench/results/latest.md}
nginx=${NGINX_BIN:-/usr/sbin/nginx}

command -v wrk >/dev/null || {
    echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }

# On a small machine the scheduler puts the mock or wrk on the core of the
# nginx under test as often as not, and which one it does moves a ratio by
# a quarter from run to run.  Pinned, both sides get one core each and the
# load generator the other(s); the pass measures what the proxy costs.
ncpu=$(nproc)
pin=${BENCH_PIN:-on}
[ "$ncpu" -ge 2 ] || pin=off
if [ "$pin" = on ]; then
    sut_cpu="taskset -c 0"
    load_cpu="taskset -c 1-$((ncpu - 1))"
else
    sut_cpu=; load_cpu=
fi

dir=$(mktemp -d /tmp/llmproxy-bench.XXXXXX)
chmod 755 "$dir"
cleanup() {
    for p in mock plain gw plains gws; do
        [ -f "$dir/$p/nginx.pid" ] && kill -QUIT "$(cat "$dir/$p/nginx.pid")" \
            2>/dev/null || true
    done
    [ -n "${slow_pid:-}" ] && kill "$slow_pid" 2>/dev/null || true
    sleep 0.3
    bash "$top/scripts/pg.sh" stop "$dir/pg" 2>/dev/null || true
    [ -n "${BENCH_LEAVE:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

. "$top/bench/lib.sh"

mock_port=$(free_port); plain_port=$(free_port); gw_port=$(free_port)
pg_port=$(free_port); slow_port=$(free_port)
plains_port=$(free_port); gws_port=$(free_port)

# the streams pass: 10,000 streams of 5 chunks a second apart (make test:
# 500 of 3 chunks 200 ms apart)
if [ "$secs" -le 1 ]; then
    streams=${BENCH_STREAMS:-500}; slow_chunks=3; slow_interval=200
else
    streams=${BENCH_STREAMS:-10000}; slow_chunks=5; slow_interval=1000
fi

# a PostgreSQL of its own, for the virtual keys
db=$(bash "$top/scripts/pg.sh" start "$dir/pg" "$pg_port")
if [ "$pin" = on ]; then     # backends forked later inherit the postmaster's
    pgm=$(head -1 "$dir/pg/postmaster.pid")
    for p in $pgm $(pgrep -P "$pgm"); do
        taskset -a -p -c "1-$((ncpu - 1))" "$p" >/dev/null
    done
fi
export LLMPROXY_DATABASE_URL=$db
"$top/build/llmproxyctl" migrate >/dev/null

# the mock provider: a ~1 KB chat completion, or an SSE stream with a usage
# chunk (bench/mock.sh)
. "$top/bench/mock.sh"

mkdir -p "$dir/mock" "$dir/plain" "$dir/gw/state" "$dir/plains" \
    "$dir/gws/state"

node "$top/bench/sse-mock.js" "$slow_port" "$slow_chunks" "$slow_interval" \
    > "$dir/slow.log" 2>&1 &
slow_pid=$!

bench_mock_conf "$dir/mock" "$mock_port" > "$dir/mock/nginx.conf"

cat > "$dir/plain/nginx.conf" <<CONF
worker_processes 1;
pid $dir/plain/nginx.pid;
error_log $dir/plain/error.log error;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_buffer_size 1m;
    client_max_body_size 0;
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

master_key="sk-bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$master_key" > "$dir/gw/master_key"

cat > "$dir/gw/nginx.conf" <<CONF
load_module $top/build/ngx_http_llmproxy_module.so;
worker_processes 1;
pid $dir/gw/nginx.pid;
thread_pool llmproxy threads=4;    # as configs/nginx.conf
error_log $dir/gw/error.log error;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
    access_log off;
    keepalive_requests 1000000;
    llmproxy_zone llmproxy:64m;
    llmproxy_master_key_file $dir/gw/master_key;
    llmproxy_state_path $dir/gw/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $db;
    llmproxy_database_poll 500ms;
    llmproxy_usage_records ${BENCH_USAGE_RECORDS:-on};
    server {
        listen 127.0.0.1:$gw_port;
        location / { llmproxy; }
        location /llmproxy/admin/ { llmproxy_admin; }
    }
}
CONF

# For the streams pass, a gateway and a plain nginx of two workers each: a
# stream holds two descriptors (client, provider) and the hard limit here
# is 20,000 per process, so one worker cannot hold 10,000 streams.
# reuseport spreads the connections evenly over the workers.
cat > "$dir/plains/nginx.conf" <<CONF
worker_processes 2;
pid $dir/plains/nginx.pid;
error_log $dir/plains/error.log error;
worker_rlimit_nofile 19500;
events { worker_connections 19000; }
http {
    access_log off;
    upstream slow { server 127.0.0.1:$slow_port; keepalive 64; }
    server {
        listen 127.0.0.1:$plains_port reuseport backlog=16384;
        location / {
            proxy_pass http://slow;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF

cat > "$dir/gws/nginx.conf" <<CONF
load_module $top/build/ngx_http_llmproxy_module.so;
worker_processes 2;
pid $dir/gws/nginx.pid;
thread_pool llmproxy threads=4;    # as configs/nginx.conf
error_log $dir/gws/error.log error;
worker_rlimit_nofile 19500;
events { worker_connections 19000; }
http {
    access_log off;
    llmproxy_zone llmproxy:64m;
    llmproxy_master_key_file $dir/gw/master_key;
    llmproxy_state_path $dir/gws/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $db;
    llmproxy_database_poll 500ms;
    server {
        listen 127.0.0.1:$gws_port reuseport backlog=16384;
        location / { llmproxy; }
    }
}
CONF

cat > "$dir/config.json" <<CONF
{
  "providers": {
    "mock": {"api_base": "http://127.0.0.1:$mock_port",
             "interfaces": ["openai"],
             "models": {"bench-model": {"model": "mock-model", "weight": 3,
                                        "input_cost_per_million": 1,
                                        "output_cost_per_million": 2}}},
    "mock2": {"api_base": "http://localhost:$mock_port",
              "interfaces": ["openai"],
              "models": {"bench-model": {"model": "mock-model", "weight": 1,
                                         "input_cost_per_million": 1,
                                         "output_cost_per_million": 2}}},
    "slow": {"api_base": "http://127.0.0.1:$slow_port",
             "interfaces": ["openai"],
             "models": {"slow-model": {"model": "mock-slow"}}}
  },
  "aliases": {"bench-alias": "bench-model"},
  "settings": {"num_retries": 1, "request_timeout_seconds": 30}
}
CONF

for p in mock plain gw; do
    if [ $p = mock ]; then cpu=$load_cpu; else cpu=$sut_cpu; fi
    env ${BENCH_ENV_GW:+$([ $p = gw ] && echo "$BENCH_ENV_GW")} $cpu \
        "$nginx" -p "$dir/$p" -c "$dir/$p/nginx.conf" -e "$dir/$p/error.log"
done
sleep 0.5

export LLMPROXY_GATEWAY_URL=http://127.0.0.1:$gw_port
export LLMPROXY_MASTER_KEY=$master_key
"$top/build/llmproxyctl" sync -c "$dir/config.json" --force >/dev/null

# 100,000 virtual keys, and one of ours for the virtual-key pass
psql -q "$db" -c "INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
    SELECT encode(sha256(('sk-bulk-' || i)::bytea), 'hex'), 'sk-bulk',
           'bulk-' || i FROM generate_series(1, 100000) i"
vkey=$("$top/build/llmproxyctl" key create --alias bench \
       --models bench-alias 2>/dev/null)
# what autovacuum would do about those rows in the middle of a pass
psql -q "$db" -c "VACUUM ANALYZE llmproxy_keys" -c "CHECKPOINT"

# how long a new key and a revoked key take to reach the gateway
key_status() {
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
        -d '{"model":"bench-alias","messages":[]}' \
        "http://127.0.0.1:$gw_port/v1/chat/completions"
}
wait_status() {     # key status: ms until the gateway answers that
    local t0 i
    t0=$(ms_now)
    for i in $(seq 200); do
        [ "$(key_status "$1")" = "$2" ] && { echo $(( $(ms_now) - t0 )); return; }
        sleep 0.05
    done
    echo "timeout"
}
key_create_ms=$(wait_status "$vkey" 200)
tmpkey=$("$top/build/llmproxyctl" key create --alias bench-tmp 2>/dev/null)
key_new_ms=$(wait_status "$tmpkey" 200)
"$top/build/llmproxyctl" key revoke bench-tmp >/dev/null
key_revoke_ms=$(wait_status "$tmpkey" 401)
for i in $(seq 100); do
    curl -s "http://127.0.0.1:$gw_port/health/readiness" \
        | grep -q '"keys":10000[2-9]' && break
    sleep 0.2
done

# request bodies
small=$bench_json_body
node -e '
const big = {model: "bench-model", messages: [{role: "user",
  content: "y".repeat(256 * 1024 - 80)}]};
process.stdout.write(JSON.stringify(big))' > "$dir/big.json"

lua() {   # $1 body file, $2 extra header line (optional)
    cat <<LUA
local f = io.open("$1", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $master_key"
${2:-}
LUA
}

printf '%s' "$small" > "$dir/small.json"
lua "$dir/small.json" > "$dir/json.lua"
printf '%s' "${small/bench-model/bench-alias}" > "$dir/vkey.json"
lua "$dir/vkey.json" > "$dir/vkey.lua"
sed -i "s/Bearer $master_key/Bearer $vkey/" "$dir/vkey.lua"
# sse8: a streamed request ("stream": true), as SDKs send them
printf '%s' "$bench_sse_body" > "$dir/sse.json"
lua "$dir/sse.json" 'wrk.headers["Accept"] = "text/event-stream"' \
    > "$dir/sse.lua"
lua "$dir/big.json" > "$dir/big.lua"

cpu_ticks() {   # user+system ticks of a master and its workers
    local pids
    pids="$(head -1 "$1") $(pgrep -P "$(head -1 "$1")" | tr '\n' ' ')"
    for p in $pids; do
        awk '{print $14 + $15}' "/proc/$p/stat"
    done | awk '{s += $1} END {print s}'
}

mem() {         # the first worker's memory: rss pss private anon file shm
    local w
    w=$(pgrep -P "$(cat "$1")" | head -1)
    awk '/^Rss:/ {r = $2} /^Pss:/ {p = $2}
         /^Private_(Clean|Dirty):/ {v += $2}
         END {printf "%d %d %d ", r, p, v}' "/proc/$w/smaps_rollup"
    awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} /^RssShmem:/ {s = $2}
         END {print a, f, s}' "/proc/$w/status"
}


declare -A R

# A pass runs in rounds, plain and gateway taking turns (plain first in odd
# rounds, the gateway first in even ones), so that what the other engineers
# on the machine do weighs on both alike.  req/s and CPU/req are over all
# rounds, p50 and p99 the median of the rounds'.
run_pass() {    # name conns script
    local name=$1 conns=$2 script=$3 who port pidf t0 t1 o reqs perf_pid
    local round order
    for who in plain gw; do
        if [ $who = plain ]; then port=$plain_port; else port=$gw_port; fi
        # warm up connections and caches
        $load_cpu wrk -t1 -c"$conns" -d1s -s "$script" \
            "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1 || true
        R[$name,$who,reqs]=0; R[$name,$who,ticks]=0; R[$name,$who,time]=0
        R[$name,$who,dbticks]=0
        R[$name,$who,p50s]=; R[$name,$who,p99s]=; R[$name,$who,errors]=
    done
    for round in $(seq "$rounds"); do
        order="plain gw"; [ $((round % 2)) = 0 ] && order="gw plain"
        for who in $order; do
            if [ $who = plain ]; then port=$plain_port; else port=$gw_port; fi
            pidf="$dir/$who/nginx.pid"
            perf_pid=
            if [ -n "${BENCH_PERF:-}" ] && [ $who = gw ]; then
                mkdir -p "$BENCH_PERF"
                perf record -q -g -o "$BENCH_PERF/$name.$round.perf.data" \
                    -p "$(pgrep -P "$(cat "$pidf")" | head -1)" \
                    >/dev/null 2>&1 &
                perf_pid=$!
            fi
            t0=$(cpu_ticks "$pidf"); d0=$(cpu_ticks "$dir/pg/postmaster.pid")
            o=$($load_cpu wrk -t1 -c"$conns" -d"${round_secs}s" --latency \
                -s "$script" \
                "http://127.0.0.1:$port/v1/chat/completions" 2>&1)
            t1=$(cpu_ticks "$pidf"); d1=$(cpu_ticks "$dir/pg/postmaster.pid")
            if [ -n "$perf_pid" ]; then
                kill -INT "$perf_pid"; wait "$perf_pid" || true
            fi
            reqs=$(echo "$o" | awk '/requests in/ {print $1 + 0}')
            R[$name,$who,reqs]=$(( R[$name,$who,reqs] + ${reqs:-0} ))
            R[$name,$who,ticks]=$(( R[$name,$who,ticks] + t1 - t0 ))
            R[$name,$who,dbticks]=$(( R[$name,$who,dbticks] + d1 - d0 ))
            R[$name,$who,time]=$(awk -v t="${R[$name,$who,time]}" -v o="$o" \
                'BEGIN { n = split(o, l, "\n")
                         for (i = 1; i <= n; i++)
                             if (l[i] ~ /requests in/) {
                                 split(l[i], w, " "); d = w[4]
                                 sub(/,$/, "", d)
                                 v = d + 0
                                 if (d ~ /ms$/) v /= 1000
                                 else if (d ~ /m$/) v *= 60
                             }
                         print t + v }')
            R[$name,$who,p50s]+=" $(to_us "$(echo "$o" | awk '$1 == "50%" {print $2}')")"
            R[$name,$who,p99s]+=" $(to_us "$(echo "$o" | awk '$1 == "99%" {print $2}')")"
            R[$name,$who,errors]+=$(echo "$o" | awk '/Non-2xx|Socket errors/ {e = e $0 "; "} END {print e}')
        done
    done
    if [ -n "${BENCH_DB_DETAIL:-}" ]; then
        for p in $(pgrep -P "$(head -1 "$dir/pg/postmaster.pid")"); do
            echo "db $p $(awk '{print $14 + $15}' /proc/$p/stat) $(tr '\0' ' ' < /proc/$p/cmdline)"
        done >&2
    fi
    for who in plain gw; do
        R[$name,$who,rps]=$(awk -v n="${R[$name,$who,reqs]}" \
            -v t="${R[$name,$who,time]}" \
            'BEGIN { if (t > 0) printf "%.0f", n / t; else print 0 }')
        R[$name,$who,p50]=$(median ${R[$name,$who,p50s]})
        R[$name,$who,p99]=$(median ${R[$name,$who,p99s]})
        R[$name,$who,cpu]=$(awk -v a="${R[$name,$who,ticks]}" \
            -v n="${R[$name,$who,reqs]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
                if (n > 0) printf "%.1f", a / hz * 1e6 / n; else print 0 }')
        R[$name,$who,dbcpu]=$(awk -v a="${R[$name,$who,dbticks]}" \
            -v n="${R[$name,$who,reqs]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
                if (n > 0) printf "%.1f", a / hz * 1e6 / n; else print 0 }')
    done
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1}
        END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

workers_kb() {  # resident memory of all workers of a master, summed
    local p
    for p in $(pgrep -P "$(cat "$1")"); do
        awk '/VmRSS/ {print $2}' "/proc/$p/status"
    done | awk '{s += $1} END {print s + 0}'
}

run_streams() { # the streams10k pass, against plains and gws
    local who port pidf t0 t1 o peak sampler rss0
    printf '%s' '{"model":"slow-model","stream":true,"messages":[{"role":"user","content":"Say hi"}]}' \
        > "$dir/slow.json"
    for who in plain gw; do
        pidf="$dir/${who}s/nginx.pid"
        if [ $who = plain ]; then port=$plains_port; else port=$gws_port; fi
        "$nginx" -p "$dir/${who}s" -c "$dir/${who}s/nginx.conf" \
            -e "$dir/${who}s/error.log"
        for i in $(seq 150); do      # the gateway: config and keys loaded
            if [ $who = plain ]; then
                [ -f "$pidf" ] && break
            elif [ "$(curl -s -o /dev/null -w '%{http_code}' \
                      "http://127.0.0.1:$port/health/readiness")" = 200 ]; then
                break
            fi
            sleep 0.2
        done
        sleep 0.5
        rss0=$(workers_kb "$pidf")
        echo "$rss0" > "$dir/$who.peak"
        ( peak=0
          while :; do
              r=$(workers_kb "$pidf"); [ "$r" -gt "$peak" ] && peak=$r
              echo "$peak" > "$dir/$who.peak"; sleep 0.25
          done ) &
        sampler=$!
        t0=$(cpu_ticks "$pidf")
        o=$(node "$top/bench/streams.js" \
            "http://127.0.0.1:$port/v1/chat/completions" "$streams" \
            "$master_key" "$dir/slow.json")
        t1=$(cpu_ticks "$pidf")
        kill "$sampler"; wait "$sampler" 2>/dev/null || true
        S[$who,json]=$o
        S[$who,rss0]=$rss0
        S[$who,peak]=$(cat "$dir/$who.peak")
        S[$who,cpu]=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" \
            'BEGIN {printf "%.2f", (b - a) / hz}')
        kill -QUIT "$(cat "$pidf")"
    done
}

jget() {        # a field of one line of JSON
    node -e 'const o = JSON.parse(process.argv[1]); console.log(o[process.argv[2]] ?? "")' "$1" "$2"
}

declare -A S

passes=${BENCH_PASSES:-json50 vkey50 json1 sse8 body256k streams10k usage}
read -r -a M_LOADED <<< "$(mem "$dir/gw/nginx.pid")"
for pass in $passes; do
    case $pass in
    json50)   run_pass json50 50 "$dir/json.lua" ;;
    vkey50)   run_pass vkey50 50 "$dir/vkey.lua" ;;
    json1)    run_pass json1 1 "$dir/json.lua" ;;
    sse8)     run_pass sse8 8 "$dir/sse.lua" ;;
    body256k) run_pass body256k 8 "$dir/big.lua" ;;
    streams10k|usage) ;;
    *)        echo "unknown pass $pass" >&2; exit 1 ;;
    esac
done
read -r -a M_PLAIN <<< "$(mem "$dir/plain/nginx.pid")"
read -r -a M_GW <<< "$(mem "$dir/gw/nginx.pid")"
wrk_passes=${passes/streams10k/}
wrk_passes=${wrk_passes/usage/}
case " $passes " in *" streams10k "*) run_streams ;; esac

memrow() {      # name rss pss private anon file shm: a table row
    local name=$1; shift
    printf '| %s |' "$name"; printf ' %s |' "$@"; echo
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

{
    echo "# llmproxy bench: $(date -u '+%Y-%m-%d %H:%M UTC'), ${secs}s per pass"
    echo
    echo "Same machine, same mock (nginx returning a 1 KB completion or an"
    echo "SSE stream); plain = nginx proxy_pass with upstream keepalive;"
    echo "gateway = llmproxy with the master key (vkey50: a virtual key).  One"
    echo "worker each; wrk one thread; each pass in $rounds round(s) of"
    echo "${round_secs}s, the two sides taking turns.  CPU = master + workers"
    echo "user+system time per request; DB CPU = PostgreSQL's (usage"
    echo "records, key polling) over the same rounds."
    if [ "$pin" = on ]; then
        echo "Pinned: the nginx under test on CPU 0; wrk, the mock and"
        echo "PostgreSQL on CPU 1-$((ncpu - 1))."
    else
        echo "Not pinned: the scheduler places every process."
    fi
    echo
    echo "| pass | who | req/s | p50 µs | p99 µs | CPU µs/req | DB CPU µs/req | errors |"
    echo "|---|---|---|---|---|---|---|---|"
    for pass in $wrk_passes; do
        for who in plain gw; do
            echo "| $pass | $who | ${R[$pass,$who,rps]} | ${R[$pass,$who,p50]} | ${R[$pass,$who,p99]} | ${R[$pass,$who,cpu]} | ${R[$pass,$who,dbcpu]} | ${R[$pass,$who,errors]:-none} |"
        done
    done
    echo
    echo "| ratio gateway/plain | req/s | CPU/req | p50 added µs (1 conn) |"
    echo "|---|---|---|---|"
    for pass in $wrk_passes; do
        added=$(awk -v a="${R[$pass,gw,p50]}" -v b="${R[$pass,plain,p50]}" 'BEGIN {printf "%.0f", a - b}')
        echo "| $pass | $(ratio "${R[$pass,gw,rps]}" "${R[$pass,plain,rps]}") | $(ratio "${R[$pass,gw,cpu]}" "${R[$pass,plain,cpu]}") | $added |"
    done
    echo
    echo "Memory of the worker in kB (RSS = private + shared; the shared"
    echo "zone's pages count once the worker touched them: the gateway's"
    echo "worker polls the database and writes the 100,000 keys there):"
    echo
    echo "| worker | RSS | Pss | private | anon | file | shared zone |"
    echo "|---|---|---|---|---|---|---|"
    memrow plain "${M_PLAIN[@]}"
    memrow "gateway, keys loaded" "${M_LOADED[@]}"
    memrow "gateway, after the passes" "${M_GW[@]}"
    echo
    if [ -n "${S[gw,json]:-}" ]; then
        echo "streams10k: $streams concurrent streamed completions (opened"
        echo "in steps of 250 every 25 ms) from a provider sending $slow_chunks"
        echo "chunks ${slow_interval} ms apart; two workers each (see run.sh);"
        echo "RSS = all workers, before and at the peak; CPU = master and"
        echo "workers over the pass."
        echo
        echo "| streams10k | streams | completed | errors | peak open | first chunk p50/p99/max ms | seconds | RSS before → peak kB | CPU s |"
        echo "|---|---|---|---|---|---|---|---|---|"
        for who in plain gw; do
            o=${S[$who,json]}
            k=$(jget "$o" kinds)
            echo "| $who | $(jget "$o" streams) | $(jget "$o" completed) | $(jget "$o" errors)${k:+ ($k)} | $(jget "$o" peak_open) | $(jget "$o" ttfb_p50)/$(jget "$o" ttfb_p99)/$(jget "$o" ttfb_max) | $(jget "$o" seconds) | ${S[$who,rss0]} → ${S[$who,peak]} | ${S[$who,cpu]} |"
        done
        echo
    fi
    echo "vkey50: a virtual key among 100,000, through an alias over two"
    echo "deployments weighted 3:1 (plain nginx: the same request as json50)."
    echo "A key created with llmproxyctl worked after ${key_new_ms} ms"
    echo "(the first one: ${key_create_ms} ms); a revoked one was refused after"
    echo "${key_revoke_ms} ms."
} > "$out.tmp"

mv "$out.tmp" "$out"
cat "$out"

# usage records under stress: their own gateway and PostgreSQL
if [[ " $passes " == *" usage "* ]]; then
    bash "$top/bench/usage.sh" | tee -a "$out"
fi

if [ -n "${S[gw,json]:-}" ] && [ "$(jget "${S[gw,json]}" errors)" != 0 ]; then
    echo "streams10k: the gateway failed streams"; exit 1
fi

for log in "$dir/gw/error.log" "$dir/gws/error.log"; do
    [ -f "$log" ] || continue
    if grep -q "\[alert\]\|\[emerg\]" "$log"; then
        echo "gateway error log has alerts:"; grep "\[alert\]\|\[emerg\]" "$log" | head
        exit 1
    fi
done

#!/usr/bin/env bash
# The dashboard over a year of records (issue 18), not part of make test:
#
#   bash bench/dashboard.sh        BENCH_RECORDS (1,000,000 over 365 days),
#                                  BENCH_WRITES (200,000), BENCH_LEAVE=1
#
# Prints a markdown section on stdout.  Passes:
# BENCH_PASSES="writer year" (default) picks passes; year includes page.
#   writer   what the daily totals cost the usage writer: BENCH_WRITES
#            records in binary COPY batches of 1,000, one transaction
#            each, with llmproxy_usage_daily's trigger disabled and
#            enabled: PostgreSQL's CPU per record, records/s; records of
#            1,000 keys (the worst case: one daily row per record and
#            batch) and of 10
#   year     BENCH_RECORDS records over 365 days (50 keys, 8 models, 24
#            deployments), stored as the gateways store them (schema 10:
#            in packs, by llmproxy_usage_pack_rows()); the endpoints'
#            latency (curl, 20 calls each) for the master key and a
#            virtual key, against the same aggregate over the raw
#            records; `llmproxyctl usage` over 7, 30 and 365 days
#   page     headless chromium (puppeteer-core): sign-in to charts drawn,
#            7 days and then 365, 5 times
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

passes=" ${BENCH_PASSES:-writer year} "
records=${BENCH_RECORDS:-1000000}
writes=${BENCH_WRITES:-200000}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# another build (its module, llmproxyctl and schema) to compare with
build=${BENCH_BUILD:-$top/build}

dir=$(mktemp -d /tmp/llmproxy-bench-dash.XXXXXX)
chmod 755 "$dir"
cleanup() {
    [ -f "$dir/gw/nginx.pid" ] && kill -QUIT "$(cat "$dir/gw/nginx.pid")" \
        2>/dev/null || true
    sleep 0.3
    bash "$top/scripts/pg.sh" stop "$dir/pg" >/dev/null 2>&1 || true
    [ -n "${BENCH_LEAVE:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

. "$top/bench/lib.sh"

pg_port=$(free_port); gw_port=$(free_port)
db=$(bash "$top/scripts/pg.sh" start "$dir/pg" "$pg_port")
export LLMPROXY_DATABASE_URL=$db
"$build/llmproxyctl" migrate >/dev/null

q() { psql -Atq "$db" -c "$1"; }

# the table of one row per record: llmproxy_usage before schema 10, then
# llmproxy_usage_rows (llmproxy_usage is a view over it and the packs)
if [ "$(q "SELECT to_regclass('llmproxy_usage_packs') IS NOT NULL")" = t ]
then
    packs=1; rows=llmproxy_usage_rows
else
    packs=0; rows=llmproxy_usage
fi

# -- writer: the trigger's cost per record ------------------------------------

declare -A W
[[ $passes == *" writer "* ]] &&
for nkeys in 1000 10; do
rm -rf "$dir/copy"; mkdir -p "$dir/copy"
node -e '
const crypto = require("crypto"), fs = require("fs");
const { spillFile } = require(process.argv[3] + "/t/lib/spill.js");
const n = +process.argv[1], dir = process.argv[2], keys = +process.argv[4];
const hashes = [];
for (let i = 1; i <= keys; i++)
  hashes.push(crypto.createHash("sha256").update("sk-usage-" + i)
              .digest("hex"));
let records = [], file = 0;
const flush = () => {
  fs.writeFileSync(`${dir}/${String(file++).padStart(5, "0")}.copy`,
    Buffer.concat([spillFile(records), Buffer.from([0xff, 0xff])]));
  records = [];
};
for (let i = 0; i < n; i++) {
  records.push({ id: crypto.randomUUID(), hash: hashes[i % keys],
    alias: `usage-${i % keys + 1}`, model: "bench-model",
    deployment: "mock/bench-model", prompt: 12, completion: 180, total: 192,
    cost: 0.000372, latency: 3 + i % 2000, ttfb: 2, attempts: 1 });
  if (records.length === 1000) flush();
}
if (records.length) flush();' "$writes" "$dir/copy" "$top" "$nkeys"
chmod -R a+r "$dir/copy"

# the backend's own CPU time (clock ticks), read by psql itself at the end
{
    echo "SELECT pg_backend_pid() AS pid \\gset"
    for f in "$dir"/copy/*.copy; do
        printf 'BEGIN;\n\\copy %s FROM %s (FORMAT binary)\n' "$rows" "$f"
        printf 'COMMIT;\n'
    done
    echo "\\setenv PGPID :pid"
    echo "\\! awk '{print \$14 + \$15}' /proc/\$PGPID/stat > $dir/ticks"
} > "$dir/copy.sql"

for mode in off on; do
    if [ $mode = off ]; then
        q "ALTER TABLE $rows DISABLE TRIGGER llmproxy_usage_daily_add"
    else
        q "ALTER TABLE $rows ENABLE TRIGGER llmproxy_usage_daily_add"
    fi
    q "CHECKPOINT"
    t0=$(ms_now)
    psql -q "$db" -v ON_ERROR_STOP=1 -f "$dir/copy.sql" >/dev/null
    t1=$(ms_now)
    W[$nkeys,$mode,us]=$(awk -v n="$writes" -v t="$(getconf CLK_TCK)" \
        '{printf "%.2f", $1 / t * 1e6 / n}' "$dir/ticks")
    W[$nkeys,$mode,rate]=$(awk -v ms=$((t1 - t0)) -v n="$writes" \
                           'BEGIN {printf "%.0f", n / ms * 1000}')
done
done
daily_rows=$(q "SELECT count(*) FROM llmproxy_usage_daily")
daily_ok=$(q "SELECT (SELECT sum(requests) FROM llmproxy_usage_daily)
                     = 2 * $writes")
q "TRUNCATE $rows, llmproxy_usage_daily"

declare -A E
if [[ $passes == *" year "* ]]; then   # to the page pass

# -- year: a year of records, the endpoints' latency --------------------------

q "INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
   SELECT encode(sha256(('sk-dash-' || i)::bytea), 'hex'), 'sk-dash',
          'team-' || i FROM generate_series(1, 49) i"

# one statement: the daily totals' statement trigger adds them up once
t0=$(ms_now)
q "INSERT INTO $rows
   SELECT gen_random_uuid(),
          now() - interval '365 days' * (1 - i::float8 / $records),
          CASE WHEN i % 50 = 0 THEN NULL
               ELSE encode(sha256(('sk-dash-' || i % 50)::bytea), 'hex') END,
          CASE WHEN i % 50 = 0 THEN NULL ELSE 'team-' || i % 50 END,
          'model-' || i % 8, 'prov-' || i % 3 || '/model-' || i % 8,
          'openai', 'chat/completions', i % 4 = 0,
          CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END,
          100 + i % 900, 50 + i % 400, 150 + i % 900 + i % 400,
          (i % 1000) / 100000.0, 50 + (i::bigint * 7919) % 5000, 20, 1, 0,
          CASE WHEN i % 97 = 0 THEN 'upstream_failed' END
   FROM generate_series(1, $records) i"
load_ms=$(( $(ms_now) - t0 ))
pack_ms=-
if [ $packs = 1 ]; then
    # then into packs of 16, as the gateways write them
    t0=$(ms_now)
    q "SELECT llmproxy_usage_pack_rows('infinity')" >/dev/null
    pack_ms=$(( $(ms_now) - t0 ))
    q "VACUUM ANALYZE llmproxy_usage_packs"
fi
q "VACUUM ANALYZE $rows"
q "VACUUM ANALYZE llmproxy_usage_daily"
stored=$(q "SELECT pg_size_pretty(coalesce(pg_total_relation_size(
                to_regclass('llmproxy_usage_packs')),
                pg_total_relation_size('$rows')))")
year_rows=$(q "SELECT count(*) FROM llmproxy_usage_daily")

mkdir -p "$dir/gw/state"
master_key="sk-bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$master_key" > "$dir/gw/master_key"
vkey=sk-dash-7

cat > "$dir/gw/nginx.conf" <<CONF
load_module $build/ngx_http_llmproxy_module.so;
worker_processes 2;
pid $dir/gw/nginx.pid;
error_log $dir/gw/error.log notice;
events { worker_connections 1024; }
thread_pool llmproxy threads=4;
http {
    access_log off;
    llmproxy_zone llmproxy:16m;
    llmproxy_master_key_file $dir/gw/master_key;
    llmproxy_state_path $dir/gw/state;
    llmproxy_thread_pool llmproxy;
    llmproxy_database $db;
    server {
        listen 127.0.0.1:$gw_port;
        location / { llmproxy; }
        location /llmproxy/ui/ {
            alias $top/build/ui/;
            types { text/html html; text/css css; application/javascript js; }
        }
        location /llmproxy/ui/api/ { llmproxy; }
    }
}
CONF
"$nginx" -p "$dir/gw" -c "$dir/gw/nginx.conf" -e "$dir/gw/error.log"

api="http://127.0.0.1:$gw_port/llmproxy/ui/api"
for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' \
         -H "Authorization: Bearer $vkey" "$api/live")" = 200 ] && break
    sleep 0.1
done

timed() {       # key url: median and max of 20 calls, ms
    local key=$1 url=$2
    for i in $(seq 20); do
        curl -s -o /dev/null -w '%{time_total}\n' \
            -H "Authorization: Bearer $key" "$url"
    done | sort -n | awk '{a[NR] = $1 * 1000} END {
        printf "%.1f ms (max %.1f)", a[int((NR + 1) / 2)], a[NR] }'
}

for days in 7 30 365; do
    E[master,$days]=$(timed "$master_key" "$api/summary?days=$days")
    E[vkey,$days]=$(timed "$vkey" "$api/summary?days=$days")
done
E[live]=$(timed "$master_key" "$api/live")
size365=$(curl -s -H "Authorization: Bearer $master_key" \
          "$api/summary?days=365" | wc -c)

raw_ms=$(psql -Atq "$db" <<'SQL' | awk '/Time:/ {print $2}' | tail -1
\timing on
SELECT model, deployment, count(*), sum(cost),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM llmproxy_usage
WHERE created_at > now() - interval '365 days'
GROUP BY 1, 2;
SQL
)

# llmproxyctl usage: whole days from the daily totals, the partial first
# day and today from the records; median and max of 5 runs, ms
ctl_timed() {
    for i in $(seq 5); do
        t0=$(date +%s%N)
        "$build/llmproxyctl" usage --since "$1" --by model >/dev/null
        echo $(( ($(date +%s%N) - t0) / 1000 ))
    done | sort -n | awk '{a[NR] = $1 / 1000} END {
        printf "%.1f ms (max %.1f)", a[3], a[5] }'
}
declare -A U
for days in 7 30 365; do
    U[$days]=$(ctl_timed "${days}d")
done

# -- page: headless chromium ---------------------------------------------------

page=$(node -e '
const puppeteer = require(process.argv[1] + "/node_modules/puppeteer-core");
(async () => {
  const b = await puppeteer.launch({ executablePath: "/usr/bin/chromium",
    headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--user-data-dir=" + process.argv[4]] });
  const first = [], year = [];
  for (let i = 0; i < 5; i++) {
    const p = await b.newPage();
    await p.setViewport({ width: 1280, height: 1000 });
    const t0 = Date.now();
    await p.goto(process.argv[2], { waitUntil: "load" });
    await p.type("#key", process.argv[3]);
    await p.click("#signin button[type=submit]");
    await p.waitForSelector("body[data-state=ready] #chart-model canvas");
    first.push(Date.now() - t0);
    const t1 = Date.now();
    await p.select("#period", "365");
    await p.waitForFunction(() => document.body.dataset.state === "ready"
      && document.getElementById("chart-model").dataset.series
      && JSON.parse(document.getElementById("chart-model").dataset.series)
         .length > 0 && window.llmproxyDashboard.charts["chart-model"]
         .data[0].length === 365);
    year.push(Date.now() - t1);
    await p.close();
  }
  await b.close();
  const med = (a) => a.sort((x, y) => x - y)[2];
  console.log(`${med(first)} ms (max ${first[4]}) | ${med(year)} ms`
              + ` (max ${year[4]})`);
})().catch((e) => { console.log("failed: " + e.message); });
' "$top" "http://127.0.0.1:$gw_port/llmproxy/ui/" "$master_key" \
  "$dir/chromium")

fi

set +u     # the passes not run leave blanks
cat <<MD

## Dashboard (bench/dashboard.sh)

Usage writer, $writes records in COPY batches of 1,000, twice per key
count (records of 1,000 keys: one daily row each per batch, the worst
case; of 10 keys):

| keys in each batch | daily totals trigger | PostgreSQL CPU per record | records/s (one writer) |
|---|---|---|---|
| 1,000 | disabled | ${W[1000,off,us]} µs | ${W[1000,off,rate]} |
| 1,000 | enabled | ${W[1000,on,us]} µs | ${W[1000,on,rate]} |
| 10 | disabled | ${W[10,off,us]} µs | ${W[10,off,rate]} |
| 10 | enabled | ${W[10,on,us]} µs | ${W[10,on,rate]} |

($daily_rows daily rows; totals match the records: $daily_ok)

A year of records: $records rows loaded in $load_ms ms (trigger included),
packed in $pack_ms ms, $year_rows daily rows, $stored of records (the
packs', with indexes; \`$build\`).  Median of 20 calls through nginx:

| endpoint | master key | virtual key |
|---|---|---|
| summary?days=7 | ${E[master,7]} | ${E[vkey,7]} |
| summary?days=30 | ${E[master,30]} | ${E[vkey,30]} |
| summary?days=365 | ${E[master,365]} | ${E[vkey,365]} |
| live | ${E[live]} | |

The 365-day answer is $size365 bytes.  The same aggregate over the raw
records (model and deployment, cost, p95) takes $raw_ms ms in psql.

\`llmproxyctl usage --by model\`, median of 5 runs: --since 7d
${U[7]}, 30d ${U[30]}, 365d ${U[365]}.

Page in headless chromium, median of 5: sign-in to charts drawn (7 days)
and switching to 365 days: $page.
MD

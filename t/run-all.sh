#!/usr/bin/env bash
# make test: the module's call graph against its floors (scripts/
# callgraph.sh), unit tests (plain and under ASan/UBSan), the fuzzers of
# the translation library, body scanner and config (10 s each), the bench
# script for a second per pass (so it cannot rot; it asserts no timing),
# integration tests, and some of them again with the module under ASan.  Ends with
# `N passed, N failed` alone on its last line; exit 0 only if all passed and
# at least one test ran.
set -u
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0

count() {   # adds the last "$2: N passed, N failed" line of $1 to the totals
    local line p f
    line=$(grep -E "^$2: [0-9]+ passed, [0-9]+ failed\$" "$1" | tail -1)
    if [ -z "$line" ]; then
        echo "not ok - $2 printed no count"
        total_fail=$((total_fail + 1))
        return
    fi
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | tail -1 | cut -d' ' -f1)
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | tail -1 | cut -d' ' -f1)
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

log=$(mktemp)

echo "== call graph: each file calls its own floor or lower ones"
if bash scripts/callgraph.sh > "$log" 2>&1; then
    tail -1 "$log"
    echo "callgraph: 1 passed, 0 failed" | tee -a "$log"
else
    grep -E '^not ok|^callgraph' "$log"
    echo "callgraph: 0 passed, 1 failed" | tee -a "$log"
fi
count "$log" callgraph

echo "== unit tests"
bash t/run-unit.sh build/unit/test_* 2>&1 | tee "$log"; count "$log" unit

echo "== unit tests under AddressSanitizer/UBSan"
ASAN_OPTIONS=detect_leaks=1 bash t/run-unit.sh build/unit-asan/test_* 2>&1 \
    | tee "$log"; count "$log" unit

echo "== fuzzing (${FUZZ_SECONDS:-10} s per target)"
bash t/run-fuzz.sh 2>&1 | tee "$log"; count "$log" fuzz

echo "== bench smoke (1 s per pass, no timing asserted)"
if BENCH_SECONDS=1 BENCH_OUT=$(mktemp -u /tmp/llmproxy-bench-XXXX.md) \
       bash bench/run.sh > "$log" 2>&1; then
    echo "bench: 1 passed, 0 failed" | tee -a "$log"
else
    tail -20 "$log"
    echo "bench: 0 passed, 1 failed" | tee -a "$log"
fi
count "$log" bench

echo "== integration tests"
bash t/run-integration.sh 2>&1 | tee "$log"; count "$log" integration

# The records writer and the stream path run in the module under ASan:
# the same tests, then one more that fails on any report it wrote.
echo "== the module under AddressSanitizer (records, streams, bodies)"
asan_log=$(mktemp -d /tmp/llmproxy-asan.XXXXXX)
chmod 777 "$asan_log"                         # the workers' user writes
NGINX_BIN=$PWD/scripts/nginx-asan.sh LLMPROXY_ASAN_LOG=$asan_log \
LLMPROXY_MODULE=$PWD/build/asan/ngx_http_llmproxy_module.so \
    bash t/run-integration.sh t/integration/11-usage.test.js \
        t/integration/13-body-integrity.test.js \
        t/integration/26-streams-timeouts.test.js \
        t/integration/31-usage-drain.test.js \
        t/integration/32-usage-packs.test.js 2>&1 | tee "$log"
count "$log" integration
if ls "$asan_log"/asan.* >/dev/null 2>&1; then
    head -60 "$asan_log"/asan.*
    echo "not ok - AddressSanitizer reported errors in the module"
    total_fail=$((total_fail + 1))
else
    echo "ok - no AddressSanitizer report"
    total_pass=$((total_pass + 1))
fi
rm -rf "$asan_log"

rm -f "$log"
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

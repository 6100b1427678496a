#!/usr/bin/env bash
# make test: unit tests (plain and under ASan/UBSan), the bench script for
# a second per pass (so it cannot rot; it asserts no timing), integration
# tests.  Ends with `N passed, N failed`; exit 0 only if all passed.
set -u
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0

count() {   # reads "...: N passed, N failed" from the last line of $1
    local line
    line=$(tail -1 "$1")
    total_pass=$((total_pass + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
    total_fail=$((total_fail + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
}

log=$(mktemp)

echo "== unit tests"
bash t/run-unit.sh build/unit/test_* | tee "$log"; count "$log"

echo "== unit tests under AddressSanitizer/UBSan"
ASAN_OPTIONS=detect_leaks=1 bash t/run-unit.sh build/unit-asan/test_* \
    | tee "$log"; count "$log"

echo "== bench smoke (1 s per pass, no timing asserted)"
if BENCH_SECONDS=1 BENCH_OUT=$(mktemp -u /tmp/llmproxy-bench-XXXX.md) \
       bash bench/run.sh > "$log" 2>&1; then
    echo "bench: 1 passed, 0 failed" | tee -a "$log"
else
    tail -20 "$log"
    echo "bench: 0 passed, 1 failed" | tee -a "$log"
fi
count "$log"

echo "== integration tests"
bash t/run-integration.sh | tee "$log"; count "$log"

rm -f "$log"
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]

#!/usr/bin/env bash
# Runs the integration tests (real nginx with the module, the real
# llmproxyctl, PostgreSQL where keys need it, the official SDKs against
# mock providers) and prints `integration: N passed, N failed` as its last
# line; exit 0 only if every test passed and at least one ran.
#
#   t/run-integration.sh [test files...]    default: t/integration/
#   TEST_LLMPROXY_LEAVE=1                    keep the gateways' temp dirs
set -u
cd "$(dirname "$0")/.."

for f in build/ngx_http_llmproxy_module.so build/llmproxyctl; do
    if [ ! -e "$f" ]; then
        echo "not ok - $f is missing (run make)"
        echo "integration: 0 passed, 1 failed"
        exit 1
    fi
done
if [ ! -d node_modules/openai ]; then
    npm ci --no-audit --no-fund >/dev/null 2>&1 || npm install --no-audit \
        --no-fund >/dev/null 2>&1
fi

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(t/integration/)

out=$(mktemp)
# one file at a time (each starts its own nginx); 120 s per test, and the
# whole run is cut off after 20 minutes so a hung gateway cannot hang CI
timeout -k 10 1200 node --test --test-reporter=tap --test-concurrency=1 \
    --test-timeout=120000 "${files[@]}" >"$out" 2>&1
rc=$?
grep -E '^(not )?ok ' "$out"
pass=$(awk '/^# pass / {print $3}' "$out" | tail -1)
fail=$(awk '/^# fail / {print $3}' "$out" | tail -1)
cancelled=$(awk '/^# cancelled / {print $3}' "$out" | tail -1)
pass=${pass:-0}
fail=$(( ${fail:-0} + ${cancelled:-0} ))
if [ -z "$(grep -E '^# pass ' "$out")" ] || { [ $rc -ne 0 ] && [ "$fail" -eq 0 ]; }; then
    # node itself died, or the run was cut off
    echo "--- the test run ended abnormally (exit $rc):"
    tail -40 "$out"
    fail=$((fail + 1))
fi
if [ "$fail" -ne 0 ]; then
    echo "--- failures:"
    grep -B2 -A30 '^ *not ok ' "$out" | grep -vE '^\s+at ' | head -300
fi
rm -f "$out"
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

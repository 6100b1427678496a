#!/usr/bin/env bash
# Runs the integration tests (real nginx, real PostgreSQL, official SDKs,
# mock providers) and prints `integration: N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
out=$(mktemp)
node --test --test-reporter=tap --test-concurrency=1 \
    --test-timeout=120000 t/integration/ 2>&1 | tee "$out" \
    | grep -E '^(not )?ok |^# (Subtest|pass|fail)' | grep -v '^# Subtest'
pass=$(awk '/^# pass / {print $3}' "$out" | tail -1)
fail=$(awk '/^# fail / {print $3}' "$out" | tail -1)
if [ "${fail:-1}" != 0 ]; then
    echo "--- failures:"
    grep -A25 '^ *not ok ' "$out" | head -150
fi
rm -f "$out"
echo "integration: ${pass:-0} passed, ${fail:-1} failed"
[ "${fail:-1}" = 0 ] && [ "${pass:-0}" -gt 0 ]

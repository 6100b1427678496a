#!/usr/bin/env bash
# Runs unit test binaries (TAP) and prints `unit: N passed, N failed`.
# A binary that crashes, exits non-zero or stops before its `1..N` plan
# counts as a failure.
set -u
pass=0; fail=0
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    p=$(grep -c '^ok ' <<<"$out")
    f=$(grep -c '^not ok ' <<<"$out")
    plan=$(grep -E '^1\.\.[0-9]+$' <<<"$out" | tail -1 | cut -c4-)
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1     # crashed, or a sanitizer stopped it
        echo "$out" | tail -20
    elif [ -z "$plan" ] || [ "$plan" -ne $((p + f)) ]; then
        f=$((f + 1))
        echo "not ok - plan ${plan:-missing}, $((p + f - 1)) tests ran"
    fi
    grep '^not ok ' <<<"$out"
    echo "$(basename "$(dirname "$bin")")/$(basename "$bin"): $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]

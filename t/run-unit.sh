#!/usr/bin/env bash
# Runs unit test binaries (TAP) and prints `unit: N passed, N failed`.
set -u
pass=0; fail=0
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    p=$(grep -c '^ok ' <<<"$out")
    f=$(grep -c '^not ok ' <<<"$out")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1     # crashed, or a sanitizer stopped it
        echo "$out" | tail -20
    fi
    grep '^not ok ' <<<"$out"
    echo "$(basename "$(dirname "$bin")")/$(basename "$bin"): $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]

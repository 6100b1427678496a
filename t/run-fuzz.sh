#!/usr/bin/env bash
# Builds the libFuzzer targets of t/fuzz/ with clang (ASan + UBSan), seeds
# each with the recorded payloads of t/unit/data/translate/ (prefixed with
# the bytes that pick the interfaces) and runs each for FUZZ_SECONDS
# (default 10).  Prints `fuzz: N passed, N failed`.
#
# fuzz_json_scan, the differential one (the request body scanner against
# cJSON), is seeded from t/fuzz/json_scan_seeds/ and the request payloads,
# with t/fuzz/json_scan.dict.  FUZZ_TARGETS="a b" runs only those targets
# (`make fuzz FUZZ_TARGETS=fuzz_json_scan FUZZ_SECONDS=600`).
#
# fuzz_config_compile (user configs through the compiler; the bytes after
# a NUL are config.local.json) is seeded from t/fuzz/config_seeds/ and
# configs/config.json; fuzz_config_validate (any document through the
# compiled-config validator the gateway runs) from those seeds compiled,
# with and without provider keys (t/fuzz/config_seed.c).  Both use
# t/fuzz/config.dict.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-10}
targets=${FUZZ_TARGETS:-"fuzz_translate_request fuzz_translate_response
                         fuzz_translate_stream fuzz_translate_responses
                         fuzz_json_scan fuzz_config_validate
                         fuzz_config_compile"}
out=build/fuzz
data=t/unit/data/translate
mkdir -p "$out"
pass=0; fail=0

cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "not ok - $cc not found (run scripts/deps.sh)"
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

srcs="common/llmp_translate_req.c common/llmp_translate_resp.c
      common/llmp_translate_stream.c common/llmp_translate_util.c
      common/llmp_translate_think.c common/llmp_translate_responses.c
      common/llmp_sse.c common/llmp_iface.c"

# the config compiler and its validator, with the shipped price list
csrcs="common/llmp_config.c common/llmp_prices.c common/llmp_pattern.c
       common/llmp_sha256.c common/llmp_crypt.c common/llmp_iface.c"
case " $(echo $targets) " in
    *" fuzz_config_"*)
        make -s build/llmp_prices_json.h || exit 1 ;;
esac
config_seeds="configs/config.json t/fuzz/config_seeds/*.json"

# seed: header byte(s) + file, for each pair the file's interface can start
seed() {    # seed DIR NAME HEADER_BYTES... -- FILE...
    local dir=$1 name=$2; shift 2
    local hdrs=() f h n=0
    while [ "$1" != "--" ]; do hdrs+=("$1"); shift; done; shift
    for f in "$@"; do
        for h in "${hdrs[@]}"; do
            n=$((n + 1))
            { printf "$h"; cat "$f"; } > "$dir/seed-$name-$n"
        done
    done
}

# header byte for from F (0..2) to T (0..2), flag bit 4
hdr() { printf '\\x%02x' $(( $1 | ($2 << 2) | ($3 << 4) )); }

for target in $targets; do
    bin=$out/$target
    case $target in
        fuzz_json_scan) tsrcs=common/llmp_json_scan.c; dict=json_scan.dict ;;
        fuzz_config_*) tsrcs="$csrcs -Ibuild -lm"; dict=config.dict ;;
        *) tsrcs=$srcs; dict=translate.dict ;;
    esac
    if ! $cc -g -O1 -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=undefined -Icommon -Wall \
            -o "$bin" "t/fuzz/$target.c" $tsrcs -lcjson -lcrypto \
            > "$out/$target.build.log" 2>&1; then
        cat "$out/$target.build.log"
        echo "not ok - $target does not build"
        fail=$((fail + 1))
        continue
    fi

    corpus=$out/corpus-$target
    rm -rf "$corpus" && mkdir -p "$corpus"
    if [ "$target" = fuzz_json_scan ]; then
        cp t/fuzz/json_scan_seeds/* "$data"/req_*.json "$corpus"/
    fi
    if [ "$target" = fuzz_config_compile ]; then
        cp $config_seeds "$corpus"/
    fi
    if [ "$target" = fuzz_config_validate ]; then
        if ! $cc -g -O1 -Icommon -Ibuild -Wall -o "$out/config_seed" \
                t/fuzz/config_seed.c $csrcs -lcjson -lcrypto -lm \
                > "$out/config_seed.build.log" 2>&1 \
            || ! "$out/config_seed" "$corpus" $config_seeds; then
            cat "$out/config_seed.build.log"
            echo "not ok - $target: its seeds do not compile"
            fail=$((fail + 1))
            continue
        fi
    fi
    if [ "$target" = fuzz_translate_responses ]; then
        # the request (0x01 anthropic, 0x02 gemini, 0x21 streamed), the
        # answers and streams of both providers (0x11, 0x12)
        seed "$corpus" req '\x01' '\x02' '\x21' -- "$data"/req_responses.json
        seed "$corpus" an '\x11' -- "$data"/resp_anthropic*.json \
            "$data"/stream_anthropic*.sse
        seed "$corpus" ge '\x12' -- "$data"/resp_gemini*.json \
            "$data"/stream_gemini*.sse
    fi
    for from in 0 1 2; do
        [ "$target" = fuzz_json_scan ] && break
        case $target in fuzz_config_*) break ;; esac
        [ "$target" = fuzz_translate_responses ] && break
        case $from in
            0) name=openai ;; 1) name=anthropic ;; 2) name=gemini ;;
        esac
        hs=()
        for to in 0 1 2; do
            case $target in
                *request) hs+=("$(hdr $from $to 1)") ;;
                *response) hs+=("$(hdr $from $to 0)\\x1d") ;;
                *stream) hs+=("$(hdr $from $to 1)\\x12\\x34\\x56\\x78") ;;
            esac
        done
        case $target in
            *request) files=("$data"/req_$name.json) ;;
            *response) files=("$data"/resp_$name*.json) ;;
            *stream) files=("$data"/stream_$name*.sse) ;;
        esac
        seed "$corpus" "$name" "${hs[@]}" -- "${files[@]}"
    done

    log=$out/$target.log
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -max_len=65536 -dict="t/fuzz/$dict" \
            -artifact_prefix="$out/$target-" -print_final_stats=1 \
            "$corpus" > "$log" 2>&1; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" \
               | grep -oE '[0-9]+$')
        echo "ok - $target: ${runs:-?} runs in ${secs}s, no crash"
        pass=$((pass + 1))
    else
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" \
            | head -20
        echo "not ok - $target failed (log: $log)"
        fail=$((fail + 1))
    fi
done

echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]

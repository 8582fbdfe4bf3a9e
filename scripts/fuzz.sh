#!/bin/sh
# Runs every libFuzzer target built by `make fuzz` for SECONDS each.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS NAME...
#
# Each target reads its committed seed corpus fuzz/corpus/<name>/ and writes
# the new inputs it finds to BUILD_DIR/corpus/<name>/ (never to the committed
# corpus); a crash leaves its input in BUILD_DIR/artifacts/. A target's
# -max_len is the FUZZ_MAX_LEN its source #defines. Prints per target the
# executions per second and the total; exits 1 when any target failed.
set -eu

build=$1
seconds=$2
shift 2

failed=""
for name in "$@"; do
    bin="$build/fuzzers/$name"
    seeds="fuzz/corpus/$name"
    out="$build/corpus/$name"
    log="$build/logs/$name.log"
    mkdir -p "$out" "$build/artifacts" "$build/logs"
    max_len=$(sed -n 's/^#define FUZZ_MAX_LEN \([0-9][0-9]*\).*/\1/p' "fuzz/$name.c")
    [ -n "$max_len" ] || max_len=4096
    set +e
    "$bin" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" -close_fd_mask=1 "$out" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=0
    [ -n "$secs" ] && [ "$secs" -gt 0 ] || secs=$seconds
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc) after $runs executions; log: $log" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
        failed="$failed $name"
    else
        printf 'fuzz: %-16s %8d execs/s %10d executions in %d s (max_len %d)\n' \
            "$name" $((runs / secs)) "$runs" "$secs" "$max_len"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed" >&2
    exit 1
fi

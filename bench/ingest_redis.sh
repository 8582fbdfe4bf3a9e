#!/usr/bin/env bash
# ingest_redis: does a Redis outage change ingest latency? bench/ingest_http (one shape:
# 32 connections, batches of 1,000 metrics over 100 shared series; a closed-loop run, then
# an open-loop run at INGEST_REDIS_RATE req/s) three times, each against a fresh hub:
#
#   no redis    the hub publishes nowhere
#   redis up    the hub publishes every event to a redis-server this script started
#   redis dies  the same, and the redis-server is SIGKILLed half-way through the closed-loop
#               run (it stays dead: the publisher's queue fills, events are dropped and
#               counted, the hub keeps dialling with backoff; the open-loop run is all outage)
#
# The hub's ingest events come every INGEST_REDIS_EVENTS_MS (default 10 ms: 100 events/s, far
# more than the 1/s of a real hub, so that the publisher is busy) into a queue of
# INGEST_REDIS_QUEUE (default 200: full 2 s into the outage). Prints each run's
# metrics/s, p50 and p99, and the hub's vigil_redis_* counters. Uses $VIGIL_BUILD/bench/
# ingest_http (default build/). Figures only, never pass/fail; skipped when redis-server is
# not installed. INGEST_REDIS_SECONDS: seconds per run (default 10); INGEST_REDIS_RATE: the
# open loop's req/s (default 100); INGEST_REDIS_ROUNDS: the three runs that many times,
# interleaved, then the medians of their open-loop figures (default 1).
set -euo pipefail

BUILD=${VIGIL_BUILD:-build}
SECS=${INGEST_REDIS_SECONDS:-10}
RATE=${INGEST_REDIS_RATE:-100}
EVENTS_MS=${INGEST_REDIS_EVENTS_MS:-10}
QUEUE=${INGEST_REDIS_QUEUE:-200}
ROUNDS=${INGEST_REDIS_ROUNDS:-1}
BENCH=$BUILD/bench/ingest_http
REDIS=/usr/bin/redis-server
if [ ! -x "$REDIS" ]; then
    echo "ingest_redis: skipped: $REDIS is not installed (Debian package redis-server)"
    exit 0
fi
if [ ! -x "$BENCH" ]; then
    echo "ingest_redis: $BENCH is missing; run 'make bench' or 'make $BENCH' first" >&2
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-ingest-redis.XXXXXX")
RPID=""
cleanup() {
    if [ -n "$RPID" ]; then kill -9 "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# A free loopback port: bind 0 and read what the kernel chose.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_redis() {
    PORT=$(free_port)
    "$REDIS" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        >"$TMP/redis.log" 2>&1 &
    RPID=$!
    for _ in $(seq 200); do
        if redis-cli -p "$PORT" ping >/dev/null 2>&1; then return; fi
        sleep 0.05
    done
    echo "ingest_redis: redis-server did not start" >&2
    exit 1
}

# run <label> [redis url]: the bench's lines of figures, and the redis counters; the
# open-loop line is kept in $TMP/<label>.runs for the summary
run() {
    local label=$1 url=${2:-}
    echo "== $label"
    env INGEST_HTTP_SERIES=100 INGEST_HTTP_RATE="$RATE" INGEST_HTTP_METRICS=1 \
        INGEST_HTTP_EVENTS_MS="$EVENTS_MS" INGEST_HTTP_REDIS_QUEUE="$QUEUE" \
        ${url:+INGEST_HTTP_REDIS=$url} \
        "$BENCH" "$SECS" --hub-only >"$TMP/out.txt" 2>&1 &
    local bpid=$!
    if [ "$label" = "redis dies" ]; then
        # after the warm-up (2 s), half-way through the closed-loop run: the open-loop
        # run is all outage
        sleep $((2 + SECS / 2))
        kill -9 "$RPID"
        wait "$RPID" 2>/dev/null || true
        RPID=""
        echo "   (redis-server killed $((2 + SECS / 2)) s after the start)"
    fi
    wait "$bpid"
    grep -E 'metrics/s' "$TMP/out.txt" | sed 's/^ */   /'
    grep -E 'from due time' "$TMP/out.txt" >>"$TMP/$label.runs"
    grep -E '^vigil_redis_(published_total|dropped_total\{reason="(queue_full|error)"\}|reconnects|connect_failures_total\{connection="publish"\})' \
        "$TMP/out.txt" | sed 's/^/   /' || true
}

# The median of column $1 of stdin.
median() {
    sort -n | awk '{v[NR]=$1} END {if (NR) print (NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
}

for round in $(seq "$ROUNDS"); do
    echo "#### round $round of $ROUNDS"
    run "no redis"
    start_redis
    run "redis up" "redis://127.0.0.1:$PORT"
    kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=""
    start_redis
    run "redis dies" "redis://127.0.0.1:$PORT"
done

echo
echo "summary: open loop at $RATE req/s ($((RATE * 1000)) metrics/s offered), medians of $ROUNDS runs"
for label in "no redis" "redis up" "redis dies"; do
    f="$TMP/$label.runs"
    mps=$(awk '{print $1}' "$f" | median)
    p50=$(sed 's/.*p50 \([0-9.]*\) ms.*/\1/' "$f" | median)
    p99=$(sed 's/.*p99 \([0-9.]*\) ms.*/\1/' "$f" | median)
    printf '  %-10s  %8.0f metrics/s  p50 %7.1f ms  p99 %7.1f ms   (each run: p99 %s)\n' \
        "$label" "$mps" "$p50" "$p99" "$(sed 's/.*p99 \([0-9.]*\) ms.*/\1/' "$f" | tr '\n' ' ')"
done

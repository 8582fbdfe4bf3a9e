#!/usr/bin/env bash
# agent_footprint: peak RSS (VmHWM) and average CPU of vigil-agent, collectd and
# a program that only loads libcurl, side by side in one run.
#
#   vigil-agent  cpu, memory, load, disk, net every 1s, shipping to a closed
#                local port, so every batch goes to a spool in a temp directory
#   collectd     Debian collectd-core: cpu, memory, load, df, interface, csv, 1s
#                (installed with apt-get when missing)
#   libcurl-only curl_global_init(), then sleep (compiled here with cc)
#
# Builds nothing of Vigil: it uses $VIGIL_BUILD/bin/vigil-agent (default build/).
# AGENT_FOOTPRINT_SECONDS shortens the 60 s run. Prints figures; never fails on them.
# Targets: agent CPU <= collectd's; agent peak RSS <= libcurl-only + 1.5 MiB.
set -euo pipefail

BUILD=${VIGIL_BUILD:-build}
SECS=${AGENT_FOOTPRINT_SECONDS:-60}
AGENT=$BUILD/bin/vigil-agent
if [ ! -x "$AGENT" ]; then
    echo "agent_footprint: $AGENT is missing; run 'make' first" >&2
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-footprint.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- collectd ------------------------------------------------------------------
COLLECTD=$(command -v collectd || true)
[ -z "$COLLECTD" ] && [ -x /usr/sbin/collectd ] && COLLECTD=/usr/sbin/collectd
if [ -z "$COLLECTD" ]; then
    echo "agent_footprint: installing collectd-core (for this benchmark only)" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -qq --no-install-recommends collectd-core >/dev/null 2>&1; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO apt-get install -y -qq --no-install-recommends collectd-core >/dev/null
    fi
    COLLECTD=/usr/sbin/collectd
fi
PLUGIN_DIR=/usr/lib/collectd
TYPES_DB=/usr/share/collectd/types.db

# ---- a local port nothing listens on ----------------------------------------------
PORT=""
for p in $(seq 47600 47700); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        PORT=$p
        break
    fi
done
[ -n "$PORT" ] || { echo "agent_footprint: no closed port found" >&2; exit 1; }

# ---- configurations ---------------------------------------------------------------------
mkdir -p "$TMP/spool" "$TMP/csv" "$TMP/collectd"
cat >"$TMP/agent.yaml" <<EOF
agent: {id: bench}
hub: {urls: ["http://127.0.0.1:$PORT"], token_env: ""}
interval: 1s
spool: {path: "$TMP/spool", max_size: 64MiB}
log_level: error
collectors:
  - {type: cpu}
  - {type: memory}
  - {type: load}
  - {type: disk}
  - {type: net}
EOF

cat >"$TMP/collectd.conf" <<EOF
Hostname "bench"
FQDNLookup false
Interval 1
BaseDir "$TMP/collectd"
PIDFile "$TMP/collectd/collectd.pid"
PluginDir "$PLUGIN_DIR"
TypesDB "$TYPES_DB"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin df
LoadPlugin interface
LoadPlugin csv
<Plugin csv>
  DataDir "$TMP/csv"
  StoreRates true
</Plugin>
EOF

cat >"$TMP/curlonly.c" <<'EOF'
#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 60);
    curl_global_cleanup();
    return 0;
}
EOF
cc -O2 -o "$TMP/curlonly" "$TMP/curlonly.c" $(pkg-config --cflags --libs libcurl)

# ---- run the three side by side ----------------------------------------------------------
now() { date +%s.%N; }
"$AGENT" --config "$TMP/agent.yaml" 2>"$TMP/agent.log" &
A_PID=$!; A_T0=$(now); PIDS+=("$A_PID")
"$COLLECTD" -f -C "$TMP/collectd.conf" >"$TMP/collectd.log" 2>&1 &
C_PID=$!; C_T0=$(now); PIDS+=("$C_PID")
"$TMP/curlonly" $((SECS + 30)) &
L_PID=$!; L_T0=$(now); PIDS+=("$L_PID")

sleep "$SECS"

TICKS=$(getconf CLK_TCK)
# prints "<VmHWM KiB> <cpu seconds> <elapsed seconds>" for a running pid
sample() {
    local pid=$1 t0=$2
    if [ ! -r "/proc/$pid/status" ]; then
        echo "- - -"
        return
    fi
    local hwm cpu t1
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    # utime and stime are fields 14 and 15, after the ")" that ends the command name
    cpu=$(sed 's/.*) //' "/proc/$pid/stat" | awk -v t="$TICKS" '{printf "%.3f", ($12 + $13) / t}')
    t1=$(now)
    echo "$hwm $cpu $(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')"
}
read -r A_HWM A_CPU A_EL <<<"$(sample "$A_PID" "$A_T0")"
read -r C_HWM C_CPU C_EL <<<"$(sample "$C_PID" "$C_T0")"
read -r L_HWM L_CPU L_EL <<<"$(sample "$L_PID" "$L_T0")"

SPOOL_KIB=$(du -sk "$TMP/spool" | awk '{print $1}')
CSV_FILES=$(find "$TMP/csv" -type f | wc -l)

pct() { [ "$1" = "-" ] && echo "-" || awk -v c="$1" -v e="$2" 'BEGIN {printf "%.3f", 100 * c / e}'; }
A_PCT=$(pct "$A_CPU" "$A_EL")
C_PCT=$(pct "$C_CPU" "$C_EL")
L_PCT=$(pct "$L_CPU" "$L_EL")

printf '%-14s %14s %12s\n' "program" "peak_rss_kib" "avg_cpu_%"
printf '%-14s %14s %12s\n' "vigil-agent" "$A_HWM" "$A_PCT"
printf '%-14s %14s %12s\n' "collectd" "$C_HWM" "$C_PCT"
printf '%-14s %14s %12s\n' "libcurl-only" "$L_HWM" "$L_PCT"
echo "run: ${SECS}s at a 1s interval; agent spool after the run: ${SPOOL_KIB} KiB; collectd csv files: ${CSV_FILES}"
if [ "$A_HWM" != "-" ] && [ "$C_HWM" != "-" ] && [ "$L_HWM" != "-" ]; then
    cpu_ok=$(awk -v a="$A_PCT" -v c="$C_PCT" 'BEGIN {print (a <= c) ? 1 : 0}')
    rss_ok=$(( A_HWM <= L_HWM + 1536 ))
    echo "target agent cpu <= collectd cpu:          $([ "$cpu_ok" = 1 ] && echo met || echo MISSED)"
    echo "target agent rss <= libcurl-only + 1.5MiB: $([ "$rss_ok" = 1 ] && echo met || echo MISSED)" \
        "(margin $(( L_HWM + 1536 - A_HWM )) KiB)"
fi
if ! kill -0 "$A_PID" 2>/dev/null; then
    echo "agent_footprint: vigil-agent exited early; its log:" >&2
    cat "$TMP/agent.log" >&2
fi

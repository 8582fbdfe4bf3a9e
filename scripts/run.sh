#!/usr/bin/env bash
# `make run`: the whole loop on this machine, from the shipped configs.
#
#   vigil-remediator (configs/remediator.yaml, 127.0.0.1:7601)
#   vigil-collector  (configs/collector.yaml,  127.0.0.1:7600)
#   vigil-agent      (configs/agent.yaml)
#   vigil-gitopsd    (configs/gitopsd.yaml,   127.0.0.1:7602)
#   the dashboard    http://127.0.0.1:7600/ (ui/dist, built by `make ui`, served by the hub)
#
# The agent watches vigil-demo-service through ./var/demo.pid; the hub's
# demo_down policy asks the remediator to (re)start it, so the loop starts it
# by itself. Kill it (kill -9 "$(cut -d' ' -f1 var/demo.pid)") and watch it
# come back. Logs go to ./var/*.log; Ctrl-C stops everything.
#
# GitOps: on first start a git repository of manifests is created in ./var/manifests (edit
# it, commit, and POST /v1/sync or wait for the poll). It holds a File, ./var/managed/motd,
# and a Service for the demo, both with selfHeal: true: edit ./var/managed/motd by hand and
# it is put back within seconds (gitopsd reports the drift, the hub asks the remediator's
# restore_file action).
#
# Secrets come from the environment. Any that is not set is generated for
# this run, passed to the daemons and written (mode 0600) to ./var/dev.env,
# so `. var/dev.env` lets curl use them; they are never printed.
# VIGIL_RUN_SECONDS=N stops after N seconds and fails unless the loop started
# the demo service (used by CI to keep this command honest).
set -euo pipefail

BUILD=${BUILD:-build}
BIN="$BUILD/bin"
cd "$(dirname "$0")/.."

for b in vigil-remediator vigil-collector vigil-agent vigil-gitopsd vigil-demo-service; do
    if [ ! -x "$BIN/$b" ]; then
        echo "run: $BIN/$b is missing; run 'make' first" >&2
        exit 1
    fi
done

mkdir -p var
umask 077
: >var/dev.env
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
for name in VIGIL_INGEST_TOKEN VIGIL_READ_TOKEN VIGIL_REMEDIATOR_SECRET \
    VIGIL_REMEDIATOR_HUB_TOKEN VIGIL_ADMIN_TOKEN; do
    if [ -z "${!name:-}" ]; then
        value=$(secret)
        export "$name=$value"
        echo "export $name=$value" >>var/dev.env
    fi
done
umask 022
# The ingest token is bound to this agent (security.tokens[].agents in
# configs/collector.yaml); the agent's id defaults to the host name.
export VIGIL_INGEST_AGENTS="${VIGIL_INGEST_AGENTS:-$HOSTNAME}"
# The demo service's pid from var/demo.pid ("PID STARTTIME"), when that
# process is alive and is vigil-demo-service; else nothing.
demo_pid() {
    local pid comm
    [ -s var/demo.pid ] || return 0
    read -r pid _ <var/demo.pid || true
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [ "$comm" = vigil-demo-serv ] && echo "$pid"
    return 0
}
# A demo left by a previous run (killed with SIGKILL) holds its port: stop
# it, and forget its pid so that the pid printed below is this run's.
old_demo=$(demo_pid)
if [ -n "$old_demo" ]; then
    kill -TERM "$old_demo" 2>/dev/null || true
fi
rm -f var/demo.pid
mkdir -p var/managed

# The manifests repository, created once (git through argv; no global git configuration needed).
if [ ! -d var/manifests/.git ]; then
    host=$(uname -n)
    mkdir -p var/manifests/common "var/manifests/hosts/$host"
    # (the program as restart_demo of remediator.yaml starts it, by its absolute path)
    cat >var/manifests/common/demo.yaml <<YAML
# The demo service, supervised by the remediator's restart_demo action (remediator.yaml): when
# it is not running, the hub's drift rule asks for that action.
apiVersion: vigil/v1
kind: Service
metadata:
  name: demo
spec:
  process:
    start: ["$PWD/build/bin/vigil-demo-service", "--port", "7680"]
    pidfile: ./var/demo.pid
  state: running
  action: restart_demo
  selfHeal: true
YAML
    cat >"var/manifests/hosts/$host/motd.yaml" <<'YAML'
# A managed file: edit ./var/managed/motd by hand and restore_file puts these bytes back.
apiVersion: vigil/v1
kind: File
metadata:
  name: motd
  labels: {demo: "true"}
spec:
  path: ./var/managed/motd
  content: "Welcome to Vigil. This file is managed by vigil-gitopsd from ./var/manifests.\n"
  mode: "0644"
  selfHeal: true
YAML
    git -C var/manifests -c init.defaultBranch=main init -q
    git -C var/manifests add -A
    git -C var/manifests -c user.name=vigil -c user.email=vigil@localhost \
        -c commit.gpgsign=false commit -q -m "vigil make run: initial manifests"
fi

pids=()
cleanup() {
    trap - INT TERM EXIT
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    demo=$(demo_pid)
    if [ -n "$demo" ]; then
        kill -CONT "$demo" 2>/dev/null || true # frozen by scripts/chaos
        kill -TERM "$demo" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$demo" 2>/dev/null || break
            sleep 0.05
        done
    fi
}
# Ctrl-C (or SIGTERM) is the normal way out: stop everything, exit 0. The
# Makefile runs this script as its own foreground job (set -m), so make does
# not see the Ctrl-C and ends with this script's status.
interrupted() {
    cleanup
    echo "vigil: stopped."
    exit 0
}
trap interrupted INT TERM
trap cleanup EXIT

wait_listening() { # name logfile
    for _ in $(seq 1 200); do
        if grep -q 'msg=listening' "$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "run: $1 did not start; its log:" >&2
    tail -n 20 "$2" >&2
    exit 1
}

: >var/remediator.log
: >var/collector.log
: >var/agent.log
: >var/gitopsd.log
"$BIN/vigil-remediator" --config configs/remediator.yaml >>var/remediator.log 2>&1 &
pids+=($!)
wait_listening vigil-remediator var/remediator.log
"$BIN/vigil-collector" --config configs/collector.yaml >>var/collector.log 2>&1 &
pids+=($!)
wait_listening vigil-collector var/collector.log
"$BIN/vigil-agent" --config configs/agent.yaml >>var/agent.log 2>&1 &
pids+=($!)
"$BIN/vigil-gitopsd" --config configs/gitopsd.yaml >>var/gitopsd.log 2>&1 &
pids+=($!)
wait_listening vigil-gitopsd var/gitopsd.log

echo "vigil: remediator http://127.0.0.1:7601, hub http://127.0.0.1:7600, agent running,"
echo "vigil: gitopsd http://127.0.0.1:7602 (manifests in ./var/manifests)"
if [ -f ui/dist/index.html ]; then
    echo "vigil: dashboard http://127.0.0.1:7600/ (it asks for a token: VIGIL_READ_TOKEN to look,"
    echo "vigil:   VIGIL_ADMIN_TOKEN to approve and release; generated ones are in ./var/dev.env)"
else
    echo "vigil: dashboard http://127.0.0.1:7600/ (not built: 'make ui' builds it; the page says so)"
fi
echo "vigil: logs in ./var/*.log; generated tokens in ./var/dev.env, e.g.:"
echo "vigil:   . var/dev.env; curl -H \"Authorization: Bearer \$VIGIL_READ_TOKEN\" http://127.0.0.1:7600/v1/decisions"

started=""
for _ in $(seq 1 300); do
    started=$(demo_pid)
    [ -n "$started" ] && break
    sleep 0.1
done
if [ -z "$started" ]; then
    echo "run: the loop did not start vigil-demo-service within 30 s; see ./var/*.log" >&2
    exit 1
fi
echo "vigil: the loop started vigil-demo-service (pid $started)."
echo "vigil: try: kill -9 $started   then watch var/demo.pid get a new pid."
echo "vigil: try: echo hacked > var/managed/motd   then watch it come back. Ctrl-C stops."
echo "vigil: or: scripts/chaos   (kills, freezes, edits; prints what healed each and how fast)"

if [ -n "${VIGIL_RUN_SECONDS:-}" ]; then
    sleep "$VIGIL_RUN_SECONDS"
    # the GitOps loop must have put the managed file in place by now
    for _ in $(seq 1 200); do
        grep -q "managed by vigil-gitopsd" var/managed/motd 2>/dev/null && exit 0
        sleep 0.1
    done
    echo "run: vigil-gitopsd did not restore ./var/managed/motd; see ./var/gitopsd.log" >&2
    exit 1
fi
set +e
wait -n "${pids[@]}"
status=$?
# (a trapped signal ends the wait too; interrupted() has exited by then)
echo "run: a daemon exited (status $status); see ./var/*.log" >&2
exit 1

#!/usr/bin/env bash
# Issue 16's "CPU per RPC with many connections held, against 16", as instructions (callgrind):
# stable on a shared machine, and what an O(connections) cost per call or per loop turn would
# show in. Cache misses from a large working set do not show here; c100k_bench.py's timed
# run measures those. Usage: BUILD=build perf/c100k_callgrind.sh [HELD ACTIVE RATE SECONDS]
#
# Our bench-server under callgrind; hold-client opens HELD connections (one EmptyCall each),
# waits, then ACTIVE of them make RATE calls/s in all for SECONDS; the counters are dumped
# just before the active phase and after it has drained, so the second dump holds the calls
# plus whatever the held connections cost meanwhile. The same with 16 connections, all active.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

HELD=${1:-10000}
ACTIVE=${2:-1000}
RATE=${3:-500}
SECS=${4:-8}
HOLD="$BUILD/perf/hold-client"
[ -x "$HOLD" ] || die "$HOLD is not built (make BUILD=$BUILD $HOLD)"
command -v callgrind_control > /dev/null || die "valgrind not installed"

dump_total() {  # as perf/callgrind.sh: dump now, print the dump's instruction count
  local pid=$1 before after f
  before=$(find "$OUT_DIR" -name "callgrind.out.$pid.*" | wc -l)
  callgrind_control -d "$pid" > /dev/null 2>&1
  for _ in $(seq 1 300); do
    after=$(find "$OUT_DIR" -name "callgrind.out.$pid.*" | wc -l)
    [ "$after" -gt "$before" ] && break
    sleep 0.2
  done
  f="$OUT_DIR/callgrind.out.$pid.$after"
  sleep 0.5
  awk '/^(summary|totals):/ {print $2; exit}' "$f"
}

wait_line() {  # wait_line FILE PATTERN SECONDS: the last line matching, once there
  for _ in $(seq 1 $(( $3 * 5 ))); do
    if grep -q "$2" "$1"; then grep "$2" "$1" | tail -1; return 0; fi
    sleep 0.2
  done
  die "no '$2' in $1 after $3 s: $(tail -2 "$1")"
}

field() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }

measure() {  # measure NAME CONNS ACTIVE
  local name=$1 conns=$2 active=$3
  rm -f "$OUT_DIR"/callgrind.out.*
  start_server "$OUT_DIR/c100k-cg-$name.log" 1800 \
    valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT_DIR/callgrind.out.%p" $BUILD/bin/bench-server --port 0
  local ctl="$OUT_DIR/c100k-ctl-$name" out="$OUT_DIR/c100k-client-$name.out"
  rm -f "$ctl" && mkfifo "$ctl"
  "$HOLD" --port "$SERVER_PORT" --conns "$conns" --inflight 64 --timeout 300 < "$ctl" > "$out" 2>&1 &
  STARTED_PIDS+=("$!")
  exec 3> "$ctl"
  local ramp; ramp=$(wait_line "$out" "^hold-client ramp" 1200)
  [ "$(field "$ramp" ready)" = "$conns" ] || die "$name: $ramp"
  sleep 3  # the idle trim (0.5-1 s after a session goes quiet)
  dump_total "$SERVER_PID" > /dev/null  # each dump counts from the previous one
  echo "active $active $RATE" >&3
  sleep "$SECS"
  echo "idle" >&3
  local done_line; done_line=$(wait_line "$out" "^hold-client active-done" 60)
  sleep 2  # the last calls finish
  local ir; ir=$(dump_total "$SERVER_PID")
  # Kept for callgrind_annotate: the window's dump is the newest.
  cp "$(ls -t "$OUT_DIR"/callgrind.out.* | head -1)" "$OUT_DIR/c100k-$name.callgrind"
  echo "quit" >&3
  exec 3>&-
  stop_server
  local calls; calls=$(field "$done_line" calls_ok)
  [ "$(field "$done_line" calls_failed)" = 0 ] || echo "  $name: failures: $done_line"
  printf '%-10s %6d connections, %5d active: %9d calls, %12d Ir: %8d instructions per RPC\n' \
    "$name" "$conns" "$active" "$calls" "$ir" "$(( ir / calls ))"
  eval "PER_RPC_$name=$(( ir / calls ))"
}

echo "# instructions per EmptyCall with connections held (callgrind), $RATE calls/s for $SECS s"
echo "# command: BUILD=$BUILD perf/c100k_callgrind.sh $HELD $ACTIVE $RATE $SECS"
measure held "$HELD" "$ACTIVE"
measure sixteen 16 16
awk -v a="$PER_RPC_held" -v b="$PER_RPC_sixteen" \
  'BEGIN { printf "ratio held / 16 connections: %.3f (target <= 1)\n", a / b }'

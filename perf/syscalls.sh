#!/usr/bin/env bash
# io_uring_enter calls (and all system calls) per unary empty RPC under load, for our server
# and, when it is built, gRPC C++'s async server: counted by `perf stat` on the syscall
# tracepoints of the server process over a fixed number of calls.
# Usage: BUILD=build perf/syscalls.sh [SMALL LARGE [CONNS STREAMS]]   (default 16 x 10)
#
# SMALL then LARGE calls on fresh h2load connections, each bracketed by its own perf stat:
# connection set-up and tear-down cancel in (S_large - S_small) / (LARGE - SMALL). Server on
# CPU 0 and h2load on CPU 1 (taskset) as in the benchmark. Unlike instruction counts these
# depend on timing (how many calls arrive per loop turn): run it on a quiet machine.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

SMALL=${1:-20000}
LARGE=${2:-100000}
CONNS=${3:-16}
STREAMS=${4:-10}
command -v perf > /dev/null || die "perf not installed (Debian linux-perf)"
command -v h2load > /dev/null || die "h2load not installed (Debian nghttp2-client)"
SERVER_CPU="" ; H2LOAD_TASKSET=""
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU="taskset -c 0"; H2LOAD_TASKSET="taskset -c 1"; fi
EVENTS="syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter"

# counted_run PORT METHOD N: prints "<io_uring_enter> <all syscalls>" of the server over N calls.
counted_run() {
  local stat="$OUT_DIR/syscalls.stat"
  rm -f "$stat"
  perf stat -x, -o "$stat" -e "$EVENTS" -p "$SERVER_PID" > /dev/null 2>&1 &
  local perf_pid=$!
  STARTED_PIDS+=("$perf_pid")
  sleep 1  # perf attaches to every thread of the server
  h2load_calls "$1" "$2" "$3" "$CONNS" "$STREAMS"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  awk -F, '/io_uring_enter/ {u=$1} /raw_syscalls:sys_enter/ {a=$1} END {print u+0, a+0}' "$stat"
}

measure() {  # measure NAME METHOD CMD...
  local name=$1 method=$2; shift 2
  # shellcheck disable=SC2086
  start_server "$OUT_DIR/syscalls-$name.log" 600 $SERVER_CPU "$@"
  check_call "$SERVER_PORT" "$method"
  h2load_calls "$SERVER_PORT" "$method" 5000 "$CONNS" "$STREAMS"   # warm-up
  local u1 a1 u2 a2
  read -r u1 a1 < <(counted_run "$SERVER_PORT" "$method" "$SMALL")
  read -r u2 a2 < <(counted_run "$SERVER_PORT" "$method" "$LARGE")
  stop_server
  awk -v n="$name" -v u1="$u1" -v a1="$a1" -v u2="$u2" -v a2="$a2" -v s="$SMALL" -v l="$LARGE" 'BEGIN {
    printf "%-16s io_uring_enter %d / %d calls, %d / %d calls: %.4f per RPC; all syscalls: %.4f per RPC\n",
           n, u1, s, u2, l, (u2 - u1) / (l - s), (a2 - a1) / (l - s) }'
  echo "  server: $SERVER_CPU $*"
  echo "  count:  perf stat -e $EVENTS -p SERVER_PID   (around each load run)"
  # (counted_run runs in a subshell: H2LOAD_CMD is the warm-up's here)
  echo "  load:   $H2LOAD_TASKSET ${H2LOAD_CMD//-n 5000/-n {$SMALL,$LARGE\}}"
}

pick_our_server
echo "# system calls per unary empty RPC under load, ${CONNS} connection(s) x ${STREAMS} stream(s)"
echo "# command: BUILD=$BUILD perf/syscalls.sh $SMALL $LARGE $CONNS $STREAMS"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
# shellcheck disable=SC2086
measure uringrpc "$OUR_METHOD" $OUR_SERVER
if [ -x "$GRPC_CPP_SERVER_BIN" ]; then
  measure grpc_cpp "$GRPC_CPP_METHOD" "$GRPC_CPP_SERVER_BIN" --port 0
else
  echo "grpc_cpp         not measured: $GRPC_CPP_SERVER_BIN is not built (make BUILD=$BUILD bench-servers)"
fi
echo "target (uringrpc): <= 0.05 io_uring_enter per RPC at 16 x 10"

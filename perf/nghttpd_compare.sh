#!/usr/bin/env bash
# Our gRPC server against nghttpd (nghttp2's own HTTP/2 server, Debian nghttp2-server) serving
# a 5-byte file over h2c: both answer one request with HEADERS, 5 bytes of DATA and the end of
# the stream (ours adds the gRPC trailers), through the same libnghttp2. So the figure says what
# the whole server costs per request around nghttp2's own work.
# Usage: BUILD=build perf/nghttpd_compare.sh [callgrind|cpu|both] [SMALL LARGE] [CONNS STREAMS]
#
# callgrind: instructions per request as perf/callgrind.sh counts them (a warm-up, SMALL and
#   LARGE requests on fresh h2load connections, a dump after each; (I_large - I_small) /
#   (LARGE - SMALL)), for `bench-server --shards 1` (EmptyCall) and `nghttpd --no-tls -n 1`
#   (GET of a 5-byte file). Stable under load: no lock needed.
# cpu: each server pinned to CPU 0, h2load to CPU 1, LARGE requests; the server's utime+stime
#   (/proc/PID/stat) over the run divided by the requests. Timed: run it under
#   `flock -x /tmp/machine.lock` on a shared machine.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

MODE=${1:-both}
SMALL=${2:-2000}
LARGE=${3:-10000}
CONNS=${4:-16}
STREAMS=${5:-10}
command -v nghttpd > /dev/null || die "nghttpd not installed (Debian nghttp2-server)"
command -v h2load > /dev/null || die "h2load not installed (Debian nghttp2-client)"
pick_our_server

DOCS="$OUT_DIR/nghttpd-docs"
mkdir -p "$DOCS"
printf 'hello' > "$DOCS/f5"  # 5 bytes, the size of an empty gRPC message with its prefix

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nghttpd prints nothing when it is ready: wait for its port to accept.
start_nghttpd() {  # start_nghttpd LOG PREFIX... ; sets SERVER_PID SERVER_PORT
  local log=$1; shift
  SERVER_PORT=$(free_port)
  "$@" nghttpd --no-tls -n 1 -a 127.0.0.1 -d "$DOCS" "$SERVER_PORT" > "$log" 2>&1 &
  SERVER_PID=$!
  STARTED_PIDS+=("$SERVER_PID")
  local pid=$SERVER_PID
  ( for _ in $(seq 1 1800); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
    kill -KILL "$pid" 2>/dev/null ) > /dev/null 2>&1 &
  for _ in $(seq 1 600); do
    (exec 3<> "/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "nghttpd exited"; }
    sleep 0.2
  done
  die "nghttpd did not accept within 120 s"
}

get_requests() {  # get_requests PORT N: N GETs of the file; fails unless all succeed
  local out
  H2LOAD_CMD="h2load -n $2 -c $CONNS -m $STREAMS http://127.0.0.1:$1/f5"
  out=$(timeout 600 ${H2LOAD_TASKSET:-} h2load -n "$2" -c "$CONNS" -m "$STREAMS" "http://127.0.0.1:$1/f5" 2>&1)
  echo "$out" | grep -q "requests: $2 total, $2 started, $2 done, $2 succeeded" || {
    echo "$out" >&2; die "h2load did not complete $2 requests"; }
  echo "$out" | grep -q "status codes: $2 2xx" || { echo "$out" >&2; die "not every request got 2xx"; }
}

dump_total() {  # as in callgrind.sh: dump the counters of $1 now; print the dump's instructions
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

VG=(valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT_DIR/callgrind.out.%p")

callgrind_nghttpd() {
  rm -f "$OUT_DIR"/callgrind.out.*
  start_nghttpd "$OUT_DIR/nghttpd-callgrind.log" "${VG[@]}"
  get_requests "$SERVER_PORT" 200
  dump_total "$SERVER_PID" > /dev/null
  get_requests "$SERVER_PORT" "$SMALL"
  local a; a=$(dump_total "$SERVER_PID")
  get_requests "$SERVER_PORT" "$LARGE"
  local b; b=$(dump_total "$SERVER_PID")
  stop_server
  NGHTTPD_IR=$(( (b - a) / (LARGE - SMALL) ))
  echo "nghttpd   callgrind: $NGHTTPD_IR instructions per request"
  echo "  server: ${VG[*]} nghttpd --no-tls -n 1 -a 127.0.0.1 -d DOCS PORT  (DOCS/f5: 5 bytes)"
  echo "  load:   ${H2LOAD_CMD//-n $LARGE/-n {$SMALL,$LARGE\}}"
}

callgrind_ours() {
  rm -f "$OUT_DIR"/callgrind.out.*
  # shellcheck disable=SC2086
  start_server "$OUT_DIR/ours-callgrind.log" 1800 "${VG[@]}" $OUR_SERVER
  check_call "$SERVER_PORT" "$OUR_METHOD"
  h2load_calls "$SERVER_PORT" "$OUR_METHOD" 200 "$CONNS" "$STREAMS"
  dump_total "$SERVER_PID" > /dev/null
  h2load_calls "$SERVER_PORT" "$OUR_METHOD" "$SMALL" "$CONNS" "$STREAMS"
  local a; a=$(dump_total "$SERVER_PID")
  h2load_calls "$SERVER_PORT" "$OUR_METHOD" "$LARGE" "$CONNS" "$STREAMS"
  local b; b=$(dump_total "$SERVER_PID")
  stop_server
  OURS_IR=$(( (b - a) / (LARGE - SMALL) ))
  echo "uringrpc  callgrind: $OURS_IR instructions per RPC"
  echo "  server: ${VG[*]} $OUR_SERVER"
  echo "  load:   ${H2LOAD_CMD//-n $LARGE/-n {$SMALL,$LARGE\}}"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, clock ticks

cpu_run() {  # cpu_run NAME: the server is running; LARGE requests, CPU per request
  local name=$1 t0 t1 hz
  hz=$(getconf CLK_TCK)
  get_requests_or_calls 2000  # warm-up
  t0=$(cpu_ticks "$SERVER_PID")
  get_requests_or_calls "$LARGE"
  t1=$(cpu_ticks "$SERVER_PID")
  awk -v n="$name" -v d=$((t1 - t0)) -v hz="$hz" -v r="$LARGE" \
    'BEGIN { printf "%-9s cpu: %.2f us per request (%d ticks of 1/%d s over %d requests)\n", n, d / hz * 1e6 / r, d, hz, r }'
  echo "  load:   taskset -c 1 $H2LOAD_CMD"
}

cpu_both() {
  H2LOAD_TASKSET="taskset -c 1"
  start_nghttpd "$OUT_DIR/nghttpd-cpu.log" taskset -c 0
  get_requests_or_calls() { get_requests "$SERVER_PORT" "$1"; }
  cpu_run nghttpd
  echo "  server: taskset -c 0 nghttpd --no-tls -n 1 -a 127.0.0.1 -d DOCS PORT"
  stop_server
  # shellcheck disable=SC2086
  start_server "$OUT_DIR/ours-cpu.log" 600 taskset -c 0 $OUR_SERVER
  check_call "$SERVER_PORT" "$OUR_METHOD"
  get_requests_or_calls() { h2load_calls "$SERVER_PORT" "$OUR_METHOD" "$1" "$CONNS" "$STREAMS"; }
  cpu_run uringrpc
  echo "  server: taskset -c 0 $OUR_SERVER"
  stop_server
}

echo "# uringrpc ($OUR_METHOD) against nghttpd (GET of a 5-byte file), ${CONNS} x ${STREAMS}"
echo "# command: BUILD=$BUILD perf/nghttpd_compare.sh $MODE $SMALL $LARGE $CONNS $STREAMS"
if [ "$MODE" = callgrind ] || [ "$MODE" = both ]; then
  callgrind_nghttpd
  callgrind_ours
  awk -v a="$OURS_IR" -v b="$NGHTTPD_IR" 'BEGIN { printf "instructions ratio uringrpc / nghttpd: %.2f\n", a / b }'
fi
if [ "$MODE" = cpu ] || [ "$MODE" = both ]; then
  cpu_both
fi

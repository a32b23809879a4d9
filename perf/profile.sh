#!/usr/bin/env bash
# CPU profile of a uringrpc server as a flame graph: `perf record -g` on software cpu-clock
# events (hardware counters are not available everywhere, e.g. in VMs), rendered by
# speedscope (npm, installed on first use under $BUILD/perf-node) and, for the busiest shard
# thread, screenshotted to a PNG by headless chromium. Usage:
#   BUILD=build perf/profile.sh                   start bench-server (or example-server) on CPU 0
#                                                 and load it with h2load (16 x 10 unary empty
#                                                 calls) from CPU 1 while recording
#   perf/profile.sh --pid PID                     record a running server; you drive the load
# Options: --seconds N (default 10), --out DIR (default $BUILD/profile), --load CONNSxSTREAMS,
#          --fp (perf record -g: frame-pointer unwinding, cheaper; stacks through libc,
#          libstdc++ and nghttp2, built without frame pointers, come out cut or misattributed:
#          so DWARF unwinding is the default), --no-png (skip chromium). Outputs: perf.data, perf.script (open it in speedscope:
#          `$BUILD/perf-node/node_modules/.bin/speedscope DIR/perf.script`), flamegraph.png.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

SPEEDSCOPE_VERSION=1.25.0
PID="" ; SECONDS_TO_RECORD=10 ; OUT="$BUILD/profile" ; LOAD=16x10 ; CALLGRAPH=(--call-graph dwarf,16384) ; PNG=1
while [ $# -gt 0 ]; do
  case $1 in
    --pid) PID=$2; shift 2 ;;
    --seconds) SECONDS_TO_RECORD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --fp) CALLGRAPH=(-g); shift ;;
    --no-png) PNG=0; shift ;;
    *) sed -n '4,16p' "$0" >&2; exit 2 ;;
  esac
done
command -v perf > /dev/null || die "perf not installed (Debian linux-perf)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CONNS=${LOAD%x*} ; STREAMS=${LOAD#*x}

if [ -z "$PID" ]; then
  command -v h2load > /dev/null || die "h2load not installed (Debian nghttp2-client)"
  pick_our_server
  SERVER_CPU="" ; LOAD_CPU=""
  if [ "$(nproc)" -ge 2 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; fi
  # shellcheck disable=SC2086
  start_server "$OUT/server.log" $((SECONDS_TO_RECORD + 120)) $SERVER_CPU $OUR_SERVER
  PID=$SERVER_PID
  check_call "$SERVER_PORT" "$OUR_METHOD"
  # Load for longer than the recording, so every sample is under load.
  LOAD_CMD="$LOAD_CPU h2load -D $((SECONDS_TO_RECORD + 4)) -c $CONNS -m $STREAMS -H 'content-type: application/grpc' -H 'te: trailers' -d $REQUEST_FILE http://127.0.0.1:$SERVER_PORT$OUR_METHOD"
  # shellcheck disable=SC2086
  timeout $((SECONDS_TO_RECORD + 60)) $LOAD_CPU h2load -D $((SECONDS_TO_RECORD + 4)) -c "$CONNS" -m "$STREAMS" \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$REQUEST_FILE" \
    "http://127.0.0.1:$SERVER_PORT$OUR_METHOD" > "$OUT/h2load.txt" 2>&1 &
  LOAD_PID=$!
  STARTED_PIDS+=("$LOAD_PID")
  sleep 2  # past connection set-up
  TITLE="$(basename "${OUR_SERVER%% *}") unary ${OUR_METHOD##*/}, ${CONNS}x${STREAMS} h2load"
else
  kill -0 "$PID" 2>/dev/null || die "no process $PID"
  LOAD_CMD="(driven by you)"
  TITLE="$(cat "/proc/$PID/comm") pid $PID"
fi

RECORD_CMD="perf record -F 999 -e cpu-clock ${CALLGRAPH[*]} -p $PID -o $OUT/perf.data -- sleep $SECONDS_TO_RECORD"
perf record -F 999 -e cpu-clock "${CALLGRAPH[@]}" -p "$PID" -o "$OUT/perf.data" -- sleep "$SECONDS_TO_RECORD" \
  > "$OUT/perf-record.log" 2>&1 || { cat "$OUT/perf-record.log" >&2; die "perf record failed"; }
if [ -n "${LOAD_PID:-}" ]; then
  wait "$LOAD_PID" || true
  grep -E '^finished in|^requests:' "$OUT/h2load.txt" || true
  stop_server
fi
perf script -i "$OUT/perf.data" > "$OUT/perf.script" 2> /dev/null
SAMPLES=$(grep -c 'cpu-clock' "$OUT/perf.script" || true)

# The busiest thread (a shard, under load) gets the PNG: speedscope shows one thread at a time.
# Sample header lines read "COMM TID [CPU] TIME: PERIOD cpu-clock:" (a comm has no spaces here).
read -r BUSY_COMM BUSY_TID BUSY_SAMPLES < <(awk '/^[^ \t].* cpu-clock:/ { n[$1 " " $2]++ }
  END { for (k in n) print k, n[k] }' "$OUT/perf.script" | sort -k3 -n -r | head -1 || true)
# speedscope weighs a sample by the time to the next one; a thread that is not busy all the
# time would have its idle gaps added to whatever ran before them. Respacing the samples
# evenly makes every sample count once, as a sampled profile means.
perf script -i "$OUT/perf.data" --tid "$BUSY_TID" 2> /dev/null \
  | awk '/^[^ \t].* cpu-clock:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
           $i = sprintf("%.6f:", 1 + n++ * 0.001); break } } { print }' \
  > "$OUT/busiest-thread.perf.script"

echo "# CPU profile: $SAMPLES cpu-clock samples at 999 Hz over ${SECONDS_TO_RECORD} s;" \
     "busiest thread $BUSY_COMM (tid $BUSY_TID, $BUSY_SAMPLES samples)"
echo "# command: BUILD=$BUILD perf/profile.sh $*"
echo "  record: $RECORD_CMD"
echo "  load:   $LOAD_CMD"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "  top functions (self time, whole process):"
{ perf report -i "$OUT/perf.data" --no-children --sort dso,symbol -g none --stdio 2> /dev/null \
  | grep -E '^ +[0-9]' | head -15 | sed -e 's/  */ /g' -e 's/^/    /' -e 's/[ -]*$//'; } || true

# speedscope: a maintained flame-graph viewer that reads `perf script` output itself.
NODE_DIR="$BUILD/perf-node"
if [ ! -d "$NODE_DIR/node_modules/speedscope/dist/release" ]; then
  command -v npm > /dev/null || die "npm not installed (Debian npm)"
  mkdir -p "$NODE_DIR"
  timeout 300 npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "speedscope@$SPEEDSCOPE_VERSION" \
    || die "npm install speedscope@$SPEEDSCOPE_VERSION failed"
fi
NODE_DIR=$(cd "$NODE_DIR" && pwd)
echo "  interactive: $NODE_DIR/node_modules/.bin/speedscope $OUT/perf.script"

[ "$PNG" = 1 ] || exit 0
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || die "no chromium for the PNG (apt-get install chromium), or pass --no-png"
# speedscope fetches the profile over HTTP: serve its page and the profile on loopback.
rm -rf "$OUT/www" && mkdir -p "$OUT/www"
cp -r "$NODE_DIR/node_modules/speedscope/dist/release" "$OUT/www/speedscope"
cp "$OUT/busiest-thread.perf.script" "$OUT/www/profile.txt"
HTTP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 120 /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$OUT/www" "$HTTP_PORT" > /dev/null 2>&1 &
STARTED_PIDS+=("$!")
sleep 1
TITLE_URI=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' \
  "$TITLE, thread $BUSY_COMM, $(date -u +%Y-%m-%d)")
# WebGL through SwiftShader (software): headless machines have no GPU. view=left-heavy is
# speedscope's aggregated flame graph (callers on top, identical stacks merged, widest first).
timeout 120 "$CHROMIUM" --headless=new --no-sandbox --hide-scrollbars --use-angle=swiftshader \
  --enable-unsafe-swiftshader --window-size=1800,1100 --virtual-time-budget=20000 \
  --user-data-dir="$OUT/chromium-profile" --screenshot="$OUT/flamegraph.png" \
  "http://127.0.0.1:$HTTP_PORT/speedscope/index.html#profileURL=/profile.txt&title=$TITLE_URI&view=left-heavy" \
  > "$OUT/chromium.log" 2>&1 || { tail -5 "$OUT/chromium.log" >&2; die "chromium screenshot failed"; }
echo "  flame graph: $OUT/flamegraph.png (speedscope $SPEEDSCOPE_VERSION, left-heavy view, headless chromium)"

# Helpers shared by perf/callgrind.sh, perf/syscalls.sh, perf/allocs.sh and perf/profile.sh
# (sourced, not run): pick the server under test, start it and wait for its port, check one
# real gRPC call, drive unary calls with h2load, and stop everything the script started.

BUILD=${BUILD:-build}
PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$PERF_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$BUILD/perf-out}
mkdir -p "$OUT_DIR"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Our server: bench-server (grpc.testing.TestService/EmptyCall) once it is built, otherwise
# the example server's SayHello. Both take 5 zero bytes (an empty message) as a request.
# With bench-server, CALL_METHOD=UnaryCall CALL_BODY=FILE (a length-prefixed request, e.g.
# from `perf/bench.py --write-bodies DIR`) measures another TestService call, on both servers;
# OUR_SERVER_FLAGS adds flags (e.g. --api raw).
pick_our_server() {
  if [ -x "$BUILD/bin/bench-server" ]; then
    OUR_SERVER="$BUILD/bin/bench-server --port 0 --shards 1 ${OUR_SERVER_FLAGS:-}"
    OUR_METHOD=/grpc.testing.TestService/${CALL_METHOD:-EmptyCall}
    GRPC_CPP_METHOD=$OUR_METHOD
    if [ -n "${CALL_BODY:-}" ]; then cp "$CALL_BODY" "$REQUEST_FILE"; fi
  elif [ -x "$BUILD/bin/example-server" ]; then
    OUR_SERVER="$BUILD/bin/example-server --port 0 --shards 1"
    OUR_METHOD=/helloworld.Greeter/SayHello
  else
    die "neither $BUILD/bin/bench-server nor $BUILD/bin/example-server is built (make BUILD=$BUILD)"
  fi
}
# gRPC C++'s async server (perf/anchors), when built.
GRPC_CPP_SERVER_BIN="$BUILD/perf/grpc-cpp-server"
GRPC_CPP_METHOD=/grpc.testing.TestService/EmptyCall

REQUEST_FILE="$OUT_DIR/empty-call.req"
printf '\0\0\0\0\0' > "$REQUEST_FILE"  # gRPC message prefix (uncompressed, length 0), no body

STARTED_PIDS=()
cleanup() {
  local p
  for p in "${STARTED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
  done
  STARTED_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server LOG MAX_SECONDS CMD...: runs CMD in the background (it must print
# "listening on PORT"), sets SERVER_PID and SERVER_PORT. A watchdog kills it after
# MAX_SECONDS whatever happens, so nothing outlives a stuck run.
start_server() {
  local log=$1 max=$2; shift 2
  "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  STARTED_PIDS+=("$SERVER_PID")
  local pid=$SERVER_PID
  ( for _ in $(seq 1 "$max"); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
    kill -KILL "$pid" 2>/dev/null ) > /dev/null 2>&1 &
  SERVER_PORT=""
  local i
  for i in $(seq 1 600); do
    SERVER_PORT=$(sed -n 's/^listening on \([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$SERVER_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "server exited: $*"; }
    [ $((i % 10)) -eq 0 ] && poke_server "$SERVER_PID"
    sleep 0.2
  done
  die "server did not print 'listening on PORT' within 120 s: $*"
}

# Valgrind (3.19) keeps its global lock while a thread waits in io_uring_enter, so an idle
# shard thread stops every other thread of a server under callgrind (liburing issue 657):
# the main thread cannot print its port, nor stop the server. A connection that opens and
# closes at once wakes the shard. The listening port is found with ss, since it may not
# have been printed yet.
poke_server() {
  local port
  port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$1," 'index($0, p) {sub(/.*:/, "", $4); print $4; exit}' || true)
  [ -n "$port" ] || return 0
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null || true
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    [ $((i % 5)) -eq 0 ] && poke_server "$SERVER_PID"
    sleep 0.2
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# check_call PORT METHOD: one real gRPC call (Debian's grpcio) must end with status OK.
check_call() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || die "check call to $2 on port $1 failed"
import sys, grpc
port, method = sys.argv[1], sys.argv[2]
with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
    call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
    reply, c = call.with_call(b"", timeout=120)
    assert c.code() == grpc.StatusCode.OK, c.code()
PY
}

# h2load_calls PORT METHOD N CONNS STREAMS: N unary calls; fails unless all N succeed.
# Sets H2LOAD_CMD to the exact command line.
h2load_calls() {
  local port=$1 method=$2 n=$3 c=$4 m=$5
  H2LOAD_CMD="h2load -n $n -c $c -m $m -H 'content-type: application/grpc' -H 'te: trailers' -d $REQUEST_FILE http://127.0.0.1:$port$method"
  local out
  out=$(timeout 600 ${H2LOAD_TASKSET:-} h2load -n "$n" -c "$c" -m "$m" -H 'content-type: application/grpc' \
        -H 'te: trailers' -d "$REQUEST_FILE" "http://127.0.0.1:$port$method" 2>&1)
  echo "$out" | grep -q "requests: $n total, $n started, $n done, $n succeeded" || {
    echo "$out" >&2; die "h2load did not complete $n calls"; }
}

#!/usr/bin/env bash
# Instructions per unary empty RPC, counted by valgrind's callgrind (user-space instructions,
# independent of the machine's speed and noise), for our server and, when it is built, gRPC
# C++'s async server. Usage: BUILD=build perf/callgrind.sh [SMALL LARGE [CONNS STREAMS]]
#
# One server process per server under callgrind: a warm-up run, then SMALL calls and LARGE
# calls, each on fresh h2load connections, each followed by a callgrind dump (a dump holds
# the instructions since the previous one). Connection set-up and tear-down are the same in
# both runs and start-up is before both, so (I_large - I_small) / (LARGE - SMALL) is the
# steady-state cost of one call. Names are not compressed, so that callgrind_annotate can
# read any one dump alone; perf/tools/callgrind_split.py splits a run's per-call figure by
# layer (OUT_DIR/callgrind.out.PID SMALL LARGE). Default load is 1 connection x 1 stream (one call in flight:
# no batching, the least timing-dependent shape); pass CONNS STREAMS for another shape.
# CALL_METHOD / CALL_BODY / OUR_SERVER_FLAGS choose another call or server flags (tools/common.sh);
# OURS_ONLY=1 skips gRPC C++. E.g. the generated service against the raw path on unary-1k:
#   /usr/bin/python3 perf/bench.py --write-bodies /tmp/b
#   for api in generated raw; do CALL_METHOD=UnaryCall CALL_BODY=/tmp/b/unary-1k.body \
#     OUR_SERVER_FLAGS="--api $api" OURS_ONLY=1 BUILD=build perf/callgrind.sh 2000 10000 16 10; done
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

SMALL=${1:-1000}
LARGE=${2:-5000}
CONNS=${3:-1}
STREAMS=${4:-1}
command -v valgrind > /dev/null && command -v callgrind_control > /dev/null || die "valgrind not installed"
command -v h2load > /dev/null || die "h2load not installed (Debian nghttp2-client)"

dump_total() {  # dump the counters of $1 now; print the instructions of that dump
  local pid=$1 before after f
  before=$(find "$OUT_DIR" -name "callgrind.out.$pid.*" | wc -l)
  callgrind_control -d "$pid" > /dev/null 2>&1
  for _ in $(seq 1 300); do
    after=$(find "$OUT_DIR" -name "callgrind.out.$pid.*" | wc -l)
    [ "$after" -gt "$before" ] && break
    sleep 0.2
  done
  f="$OUT_DIR/callgrind.out.$pid.$after"  # callgrind numbers its dumps 1, 2, ...
  sleep 0.5  # let callgrind finish writing the file it just created
  awk '/^(summary|totals):/ {print $2; exit}' "$f"
}

measure() {  # measure NAME METHOD CMD...
  local name=$1 method=$2; shift 2
  rm -f "$OUT_DIR"/callgrind.out.*
  start_server "$OUT_DIR/callgrind-$name.log" 1800 \
    valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT_DIR/callgrind.out.%p" "$@"
  check_call "$SERVER_PORT" "$method"
  h2load_calls "$SERVER_PORT" "$method" 200 "$CONNS" "$STREAMS"   # warm-up
  dump_total "$SERVER_PID" > /dev/null
  h2load_calls "$SERVER_PORT" "$method" "$SMALL" "$CONNS" "$STREAMS"
  local i_small; i_small=$(dump_total "$SERVER_PID")
  h2load_calls "$SERVER_PORT" "$method" "$LARGE" "$CONNS" "$STREAMS"
  local i_large; i_large=$(dump_total "$SERVER_PID")
  stop_server
  local per_rpc=$(( (i_large - i_small) / (LARGE - SMALL) ))
  printf '%-16s %12s Ir for %6d calls, %12s Ir for %6d calls: %8d instructions per RPC\n' \
    "$name" "$i_small" "$SMALL" "$i_large" "$LARGE" "$per_rpc"
  echo "  server: valgrind --tool=callgrind --compress-strings=no $*"
  echo "  load:   ${H2LOAD_CMD//-n $LARGE/-n {$SMALL,$LARGE\}}"
  eval "PER_RPC_$name=$per_rpc"
}

pick_our_server
echo "# instructions per unary RPC $OUR_METHOD (callgrind), ${CONNS} connection(s) x ${STREAMS} stream(s)"
echo "# command: ${CALL_METHOD:+CALL_METHOD=$CALL_METHOD }${CALL_BODY:+CALL_BODY=$CALL_BODY }${OUR_SERVER_FLAGS:+OUR_SERVER_FLAGS=\"$OUR_SERVER_FLAGS\" }${OURS_ONLY:+OURS_ONLY=1 }BUILD=$BUILD perf/callgrind.sh $SMALL $LARGE $CONNS $STREAMS"
# shellcheck disable=SC2086
measure uringrpc "$OUR_METHOD" $OUR_SERVER
if [ -n "${OURS_ONLY:-}" ]; then
  echo "grpc_cpp         not measured: OURS_ONLY is set"
elif [ -x "$GRPC_CPP_SERVER_BIN" ]; then
  measure grpc_cpp "$GRPC_CPP_METHOD" "$GRPC_CPP_SERVER_BIN" --port 0
  awk -v a="$PER_RPC_uringrpc" -v b="$PER_RPC_grpc_cpp" \
    'BEGIN { printf "ratio uringrpc / gRPC C++: %.3f (target <= 0.2)\n", a / b }'
else
  echo "grpc_cpp         not measured: $GRPC_CPP_SERVER_BIN is not built (make BUILD=$BUILD bench-servers)"
fi

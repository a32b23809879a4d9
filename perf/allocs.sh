#!/usr/bin/env bash
# Heap allocations per unary empty RPC in steady state, for our server and, when it is built,
# gRPC C++'s async server: counted by an LD_PRELOAD shim of our own (perf/tools/alloc_count.c)
# that the script reads while the server runs. Usage: BUILD=build perf/allocs.sh [SMALL LARGE [CONNS STREAMS]]
#
# After a warm-up, SMALL calls then LARGE calls, each on fresh h2load connections: their
# connection set-up and tear-down are the same, so (A_large - A_small) / (LARGE - SMALL) is
# what one call allocates once the server is warm. Counts are calls into malloc, calloc,
# realloc and the aligned allocators (operator new included); frees are printed alongside.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"

SMALL=${1:-20000}
LARGE=${2:-100000}
CONNS=${3:-16}
STREAMS=${4:-10}
command -v h2load > /dev/null || die "h2load not installed (Debian nghttp2-client)"
SHIM="$BUILD/perf/alloc_count.so"
mkdir -p "$(dirname "$SHIM")"
if [ ! -f "$SHIM" ] || [ "$PERF_DIR/tools/alloc_count.c" -nt "$SHIM" ]; then
  cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$SHIM" "$PERF_DIR/tools/alloc_count.c"
fi
SHIM=$(cd "$(dirname "$SHIM")" && pwd)/$(basename "$SHIM")

read_counts() { od -A n -t u8 -N 16 "$1" | awk '{print $1, $2}'; }

measure() {  # measure NAME METHOD CMD...
  local name=$1 method=$2; shift 2
  local file="$OUT_DIR/alloc-counts.$name"
  rm -f "$file"
  start_server "$OUT_DIR/allocs-$name.log" 600 env ALLOC_COUNT_FILE="$file" LD_PRELOAD="$SHIM" "$@"
  check_call "$SERVER_PORT" "$method"
  h2load_calls "$SERVER_PORT" "$method" 5000 "$CONNS" "$STREAMS"   # warm-up
  local a0 f0 a1 f1 a2 f2
  read -r a0 f0 < <(read_counts "$file")
  h2load_calls "$SERVER_PORT" "$method" "$SMALL" "$CONNS" "$STREAMS"
  read -r a1 f1 < <(read_counts "$file")
  h2load_calls "$SERVER_PORT" "$method" "$LARGE" "$CONNS" "$STREAMS"
  read -r a2 f2 < <(read_counts "$file")
  stop_server
  local ds=$((a1 - a0)) dl=$((a2 - a1)) fs=$((f1 - f0)) fl=$((f2 - f1))
  awk -v n="$name" -v ds="$ds" -v dl="$dl" -v fs="$fs" -v fl="$fl" -v s="$SMALL" -v l="$LARGE" 'BEGIN {
    printf "%-16s %9d allocs for %6d calls, %9d for %6d calls: %.2f allocations (%.2f frees) per RPC\n",
           n, ds, s, dl, l, (dl - ds) / (l - s), (fl - fs) / (l - s) }'
  echo "  server: ALLOC_COUNT_FILE=$file LD_PRELOAD=$SHIM $*"
  echo "  load:   ${H2LOAD_CMD//-n $LARGE/-n {$SMALL,$LARGE\}}"
}

pick_our_server
echo "# heap allocations per unary empty RPC, steady state, ${CONNS} connection(s) x ${STREAMS} stream(s)"
echo "# command: BUILD=$BUILD perf/allocs.sh $SMALL $LARGE $CONNS $STREAMS"
# shellcheck disable=SC2086
measure uringrpc "$OUR_METHOD" $OUR_SERVER
if [ -x "$GRPC_CPP_SERVER_BIN" ]; then
  measure grpc_cpp "$GRPC_CPP_METHOD" "$GRPC_CPP_SERVER_BIN" --port 0
else
  echo "grpc_cpp         not measured: $GRPC_CPP_SERVER_BIN is not built (make BUILD=$BUILD bench-servers)"
fi
echo "target (uringrpc): <= 1 allocation per RPC"

#!/usr/bin/env bash
# ThreadSanitizer run of the tests where threads meet (`make tsan`, by hand: not in CI's
# 30 minutes): shard threads against the test thread, two shards (the seed tests run with
# the default, one shard per CPU), Server::stop from outside and inside a handler, the
# offload pool, and the wake primitives (uringrpc/wake.h: posts, Event, Promise/Future,
# Channel, from_callback completed from other threads; the backend-call and fan-out examples).
# Any TSan report fails the run (the runtime exits 66). A test that fails without a report
# is run once more, alone: under TSan everything is 5-15x slower, and the e2e tests' client
# deadlines (2-10 s) can expire on a loaded 2-core machine; a second failure fails the run.
set -u
build=${BUILD:-build-tsan}
# tests/tsan.supp names only the uninstrumented gRPC client library's frames.
export TSAN_OPTIONS="suppressions=$(pwd)/tests/tsan.supp:exitcode=66:halt_on_error=0:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
failed=0
start=$(date +%s)
run() {
  local bin=$1 filter=$2 out rc
  echo "== $bin --gtest_filter=$filter"
  out=$(mktemp)
  BUILD="$build" timeout 900 "$bin" --gtest_brief=1 --gtest_filter="$filter" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 66 ] && ! grep -q "WARNING: ThreadSanitizer" "$out"; then
    local again
    again=$(grep -o '^\[  FAILED  \] [A-Za-z0-9_./]*' "$out" | awk '{print $4}' | sort -u | paste -sd: -)
    if [ -n "$again" ]; then
      echo "== again, without a TSan report the first time: $again"
      BUILD="$build" timeout 900 "$bin" --gtest_brief=1 --gtest_filter="$again" && rc=0
    fi
  fi
  rm -f "$out"
  [ "$rc" -eq 0 ] || { echo "$bin failed (exit $rc)" >&2; failed=$((failed + 1)); }
}
run "$build/tests/unit-tests" 'RpcCalls*:FreshRpcCalls*:StalledRpcCalls*:BufferRing*:Listener*:Wake*'
run "$build/tests/e2e-tests" 'Concurrency.*:HandlerRuntime.*:ServerLifecycle.*:Cancellation.*:*MaxConnections*'
run "$build/tests/seed-tests" '*'
run "$build/tests/wake-tests" '*'
echo "tsan: $failed failed binaries in $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ]

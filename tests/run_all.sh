#!/usr/bin/env bash
# Runs every test binary of the build and prints one closing line "N passed, M failed".
# A binary that crashes or exits non-zero without reporting counts as one failure.
set -u
build=${BUILD:-build}
passed=0; failed=0
# Leaks inside third-party test peers (the gRPC client's resolver) are not ours to fix.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mkdir -p "$build/test-results"
for bin in "$build"/tests/*-tests; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  xml="$build/test-results/$name.xml"
  rm -f "$xml"
  echo "== $name"
  BUILD="$build" timeout 900 "$bin" --gtest_output="xml:$xml"
  rc=$?
  if [ -f "$xml" ]; then
    t=$(grep -o -m1 'tests="[0-9]*"' "$xml" | grep -o '[0-9]*')
    f=$(grep -o -m1 'failures="[0-9]*"' "$xml" | grep -o '[0-9]*')
    e=$(grep -o -m1 'errors="[0-9]*"' "$xml" | grep -o '[0-9]*')
    d=$(grep -o -m1 'disabled="[0-9]*"' "$xml" | grep -o '[0-9]*')
    bad=$((f + e))
    passed=$((passed + t - bad - d)); failed=$((failed + bad))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
      echo "$name exited $rc after reporting no failure" >&2; failed=$((failed + 1))
    fi
  else
    echo "$name exited $rc without a report" >&2; failed=$((failed + 1))
  fi
done
for t in tests/abuse/*_test.py tests/e2e/*_test.py; do
  [ -f "$t" ] || continue
  echo "== $t"
  if BUILD="$build" timeout 600 /usr/bin/python3 "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Runs every test binary of the build and every Python test file, and prints one closing line
# "N passed, M failed, K skipped" counting single cases: gtest cases from each binary's XML
# report, Python cases from the file's last "RESULT passed=N failed=M skipped=K" line
# (tests/common/test_report.py). A binary or file that crashes or exits non-zero without
# reporting, or exits non-zero after reporting no failure, counts as one failure.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
passed=0; failed=0; skipped=0
# Leaks inside third-party test peers (the gRPC client's resolver) are not ours to fix.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mkdir -p "$build/test-results"

# Under ASan+UBSan (SANITIZED=1, from `make test SANITIZE=1`) these are left out, each counted
# as one skip: they check the compiler's verdicts, the man pages and the install tree, run no
# code of ours that the plain run does not, and cost minutes of CI's 30.
not_under_sanitizers="compile-fail-tests tests/man/man_pages_test.py tests/install/install_test.py"
left_out() {
  [ "${SANITIZED:-0}" = 1 ] || return 1
  case " $not_under_sanitizers " in
    *" $1 "*) echo "== $1: not run under sanitizers (see tests/run_all.sh)"; skipped=$((skipped + 1)); return 0 ;;
  esac
  return 1
}

# add NAME RC P F S: adds one reported run; a non-zero exit with no failure reported is one.
add() {
  passed=$((passed + $3)); failed=$((failed + $4)); skipped=$((skipped + $5))
  if [ "$2" -ne 0 ] && [ "$4" -eq 0 ]; then
    echo "$1 exited $2 after reporting no failure" >&2; failed=$((failed + 1))
  fi
}

for bin in "$build"/tests/*-tests; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  left_out "$name" && continue
  xml="$build/test-results/$name.xml"
  rm -f "$xml"
  echo "== $name"
  start=$SECONDS
  BUILD="$build" timeout 900 "$bin" --gtest_output="xml:$xml"
  rc=$?
  echo "-- $name took $((SECONDS - start)) s"
  if [ -f "$xml" ] && counts=$(/usr/bin/python3 "$here/common/gtest_counts.py" "$xml"); then
    # shellcheck disable=SC2086  # three numbers
    add "$name" "$rc" $counts
  else
    echo "$name exited $rc without a report" >&2; failed=$((failed + 1))
  fi
done

# Every tests/<suite>/*_test.py: abuse, e2e, install, man, and any suite added later.
for t in tests/*/*_test.py; do
  [ -f "$t" ] || continue
  left_out "$t" && continue
  out="$build/test-results/$(basename "$t" .py).out"
  echo "== $t"
  start=$SECONDS
  BUILD="$build" PYTHONUNBUFFERED=1 timeout 600 /usr/bin/python3 "$t" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  echo "-- $t took $((SECONDS - start)) s"
  line=$(grep -E '^RESULT passed=[0-9]+ failed=[0-9]+ skipped=[0-9]+$' "$out" | tail -n 1)
  if [ -n "$line" ]; then
    set -- $(echo "$line" | grep -o '[0-9]\+')
    add "$t" "$rc" "$1" "$2" "$3"
  else
    echo "$t exited $rc without a RESULT line" >&2; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

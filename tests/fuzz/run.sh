#!/usr/bin/env bash
# Runs the libFuzzer targets for `make fuzz`: each target first replays its crash
# reproducers (tests/fuzz/regressions/<target>/), then fuzzes for FUZZ_SECONDS on a
# scratch copy of its seed corpus under the build dir, so the repository's corpus stays as
# committed; tests/fuzz/<target>.dict, if there, is its dictionary.
# Usage: run.sh <build dir> <seconds> <target>...
set -u
build=$1; seconds=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
failed=()
for t in "$@"; do
  bin="$build/bin/$t"
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  regressions=("$here/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $t: replaying ${#regressions[@]} regression input(s)"
    # Given files rather than directories, libFuzzer runs each once and stops at a crash.
    if ! "$bin" "${regressions[@]}" >"$log.regressions" 2>&1; then
      echo "$t: a regression input fails again; see $log.regressions" >&2
      grep -E -A 30 '^==[0-9]+==ERROR|runtime error|property failed|deadly signal|ERROR: libFuzzer' \
        "$log.regressions" | head -n 60 >&2
      failed+=("$t(regression)")
      continue
    fi
  fi
  # cp -n: inputs found by earlier runs stay; the seeds are (re)added.
  if [ -d "$here/corpus/$t" ]; then cp -n "$here/corpus/$t"/* "$corpus/" 2>/dev/null || true; fi
  dict=()
  if [ -f "$here/$t.dict" ]; then dict=(-dict="$here/$t.dict"); fi
  echo "== $t: fuzzing for ${seconds}s (corpus $corpus, log $log)"
  if "$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; then
    # The last status line: executions, coverage (cov: edges, ft: features), corpus size.
    grep -E '^#[0-9]+' "$log" | tail -n 1
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$log" | tr '\n' ' '; echo
  else
    echo "$t: FAILED; crash input and report in $artifacts/ and $log" >&2
    grep -E -A 30 '^==[0-9]+==ERROR|runtime error|property failed|deadly signal|ERROR: libFuzzer' "$log" | head -n 60 >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: $# target(s) ran ${seconds}s each without a finding"

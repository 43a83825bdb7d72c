#!/usr/bin/env bash
# The README's test command: set up, build, run every test, and end with one
# line "N passed, M failed[, K skipped]". GPU tests (suite gpu) report
# themselves skipped on machines without a GPU. Then the sanitizer and fuzzing
# stages (scripts/sanitize.sh asan, tsan, fuzz; each in its own build folder)
# print their own counts, which the last line adds up; PLEXUS_SANITIZE=0 skips
# them. So does the plugin template stage (scripts/template-check.sh: the
# template built against a meson install of the build); PLEXUS_TEMPLATE=0
# skips it. Exits non-zero when a test failed or when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

build_dir="${PLEXUS_BUILD_DIR:-build}"
testlog="$build_dir/meson-logs/testlog.json"

# A broken set-up or build still ends with the summary line CI reads.
if ! bash scripts/setup.sh || ! bash scripts/build.sh; then
  echo "test: set-up or build failed (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi

rm -f "$testlog"  # so a stale log is never counted
meson test -C "$build_dir" --print-errorlogs --num-processes 2 </dev/null 2>&1
meson_rc=$?

summary=$(python3 scripts/test_counts.py "$testlog")
read -r passed _ failed _ <<<"${summary//,/}"
if [ "$failed" -eq 0 ] && [ "$passed" -eq 0 ] && [ "$meson_rc" -ne 0 ]; then
  summary="0 passed, 1 failed"  # meson test itself failed before running anything
fi

# Each stage ends with its own summary line; they are echoed, labelled, and
# summed with the main one, so the last line counts every test that ran.
stage_lines=("main: $summary")
if [ "${PLEXUS_TEMPLATE:-1}" != 0 ]; then
  stage_log=$(mktemp)
  bash scripts/template-check.sh </dev/null 2>&1 | tee "$stage_log"
  stage_lines+=("template: $(tail -n 1 "$stage_log")")  # checked with the others below
  rm -f "$stage_log"
fi
if [ "${PLEXUS_SANITIZE:-1}" != 0 ]; then
  stage_log=$(mktemp)
  for stage in asan tsan fuzz; do
    # Fuzzing here is a smoke run (10 s a target); longer runs: scripts/sanitize.sh fuzz.
    PLEXUS_FUZZ_SECONDS="${PLEXUS_FUZZ_SECONDS:-10}" bash scripts/sanitize.sh "$stage" </dev/null 2>&1 | tee "$stage_log"
    line=$(tail -n 1 "$stage_log")
    [[ "$line" =~ ^[0-9]+\ passed,\ [0-9]+\ failed(,\ [0-9]+\ skipped)?$ ]] || line="0 passed, 1 failed"
    stage_lines+=("$stage: $line")
  done
  rm -f "$stage_log"
fi
total_passed=0 total_failed=0 total_skipped=0
for entry in "${stage_lines[@]}"; do
  [[ "${entry#*: }" =~ ^[0-9]+\ passed,\ [0-9]+\ failed(,\ [0-9]+\ skipped)?$ ]] || entry="${entry%%:*}: 0 passed, 1 failed"
  echo "test: $entry"
  read -r p _ f _ k _ <<<"${entry#*: }"
  p=${p//,/} f=${f//,/}
  total_passed=$((total_passed + p)) total_failed=$((total_failed + f)) total_skipped=$((total_skipped + ${k:-0}))
done
summary="$total_passed passed, $total_failed failed"
[ "$total_skipped" -gt 0 ] && summary+=", $total_skipped skipped"
echo "$summary"
[ "$total_failed" -eq 0 ] && [ "$total_passed" -gt 0 ]

#!/usr/bin/env bash
# The README's test command: set up, build, run every test, and end with one
# line "N passed, M failed[, K skipped]". GPU tests (suite gpu) report
# themselves skipped on machines without a GPU. Exits non-zero when a test
# failed or when no test ran.
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

summary=$(python3 - "$testlog" <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
kind = {"OK": "passed", "EXPECTEDFAIL": "passed", "SKIP": "skipped",
        "FAIL": "failed", "TIMEOUT": "failed", "ERROR": "failed", "UNEXPECTEDPASS": "failed"}
try:
    with open(sys.argv[1]) as log:
        for line in log:
            if line.strip():
                counts[kind.get(json.loads(line).get("result"), "failed")] += 1
except FileNotFoundError:
    pass
line = f"{counts['passed']} passed, {counts['failed']} failed"
if counts["skipped"]:
    line += f", {counts['skipped']} skipped"
print(line)
PY
)
read -r passed _ failed _ <<<"${summary//,/}"
if [ "$failed" -eq 0 ] && [ "$passed" -eq 0 ] && [ "$meson_rc" -ne 0 ]; then
  summary="0 passed, 1 failed"  # meson test itself failed before running anything
  failed=1
fi
echo "$summary"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

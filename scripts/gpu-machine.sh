#!/usr/bin/env bash
# One call on the lent GPU machine (device tool): configure and build with
# that machine's Meson, run the test suite, record plexus-info, and run the
# shm-native benchmark and conformance kit at the rank counts this machine's
# cores allow. Everything lands under $OUT for docs/performance.md.
set -uo pipefail
export NCCL_NVLS_ENABLE=0
out=${OUT:-/tmp/plexus-gpu-out}
mkdir -p "$out"
build=build-gpu
ranks=${PLEXUS_GPU_RANKS:-"8 16"}

{
  date -u; uname -r; nproc; meson --version; ninja --version
  nvidia-smi -L 2>&1; nvcc --version 2>&1 | tail -1; command -v mpirun || echo "no mpirun"
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

if ! meson setup "$build" > "$out/setup.log" 2>&1; then tail -30 "$out/setup.log"; exit 1; fi
grep -A12 "Dependencies" "$out/setup.log"
if ! ninja -C "$build" > "$out/build.log" 2>&1; then grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; fi
meson test -C "$build" --num-processes 8 --print-errorlogs > "$out/test.log" 2>&1
grep -E "^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|SKIP)" "$out/test.log"
grep -E "^(Ok|Fail|Skipped|Timeout):" "$out/test.log"

"$build/tools/plexus-info/plexus-info" --json > "$out/info.json" 2>&1
peer=""
[ -x "$build/tools/plexus-bench/plexus-bench-mpi" ] && command -v mpirun >/dev/null && peer=",mpi"
for n in $ranks; do
  "$build/tools/plexus-bench/plexus-bench" --backends "shm-native$peer" --ranks "$n" -b 8 -e 32M -f 4 \
    --csv "$out/bench-shm-$n.csv" > "$out/bench-shm-$n.txt" 2>&1
  echo "bench $n ranks: exit $?"; grep -v "^plexus-bench:" "$out/bench-shm-$n.txt" | cut -c1-120 | tail -14
done
"$build/tools/plexus-bench/plexus-bench" --backends shm-native --op queue --ranks 5 -b 8 -e 64K -f 8 \
  --csv "$out/bench-queue-5.csv" > "$out/bench-queue-5.txt" 2>&1
echo "queue bench 1 writer, 4 readers: exit $?"; grep -v "^plexus-bench:" "$out/bench-queue-5.txt" | tail -8
conf="$build/tools/plexus-conformance/plexus-conformance"
if [ -x "$conf" ]; then
  "$conf" --backend shm-native --ranks 8 --json "$out/conformance-8.json" > "$out/conformance-8.txt" 2>&1
  echo "conformance 8 ranks: exit $?"; tail -3 "$out/conformance-8.txt"
fi

#!/usr/bin/env bash
# The README's main command: set up, build, then run a 4-rank all-reduce
# benchmark on the default backend (PLEXUS_BACKEND, default auto).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh

build_dir="${PLEXUS_BUILD_DIR:-build}"
# The default backend (PLEXUS_BACKEND, else auto: shm-native on a machine
# without GPUs), 4 rank processes, every size checked against a reference.
exec "$build_dir/tools/plexus-bench/plexus-bench" --ranks 4 -b 8 -e 32M -f 4

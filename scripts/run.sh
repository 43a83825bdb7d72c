#!/usr/bin/env bash
# The README's main command: set up, build, then run a 4-rank all-reduce
# benchmark on the default backend (PLEXUS_BACKEND, default auto).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh

build_dir="${PLEXUS_BUILD_DIR:-build}"
bench="$build_dir/tools/plexus-bench/plexus-bench"
if [ -x "$bench" ]; then
  exec "$bench" --ranks 4 -b 8 -e 32M -f 4
fi

"$build_dir/tools/plexus-info/plexus-info"
echo
echo "run: the benchmark tool (plexus-bench) is not built yet; above is what plexus-info sees."

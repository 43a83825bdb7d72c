#!/usr/bin/env bash
# Configures (or reconfigures) and builds plexus in $PLEXUS_BUILD_DIR
# (default: build/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${PLEXUS_BUILD_DIR:-build}"
if [ -f "$build_dir/build.ninja" ]; then
  echo "build: meson setup --reconfigure $build_dir"
  meson setup --reconfigure "$build_dir" </dev/null
else
  echo "build: meson setup $build_dir"
  meson setup "$build_dir" </dev/null
fi
ninja -C "$build_dir" </dev/null

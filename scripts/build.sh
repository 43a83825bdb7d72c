#!/usr/bin/env bash
# Configures (or reconfigures) and builds plexus in $PLEXUS_BUILD_DIR
# (default: build/ in the repository). $PLEXUS_MESON_ARGS adds options to
# meson setup (split on spaces), e.g. "-Dcuda-sass=false" (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${PLEXUS_BUILD_DIR:-build}"
read -r -a meson_args <<<"${PLEXUS_MESON_ARGS:-}"
if [ -f "$build_dir/build.ninja" ]; then
  echo "build: meson setup --reconfigure $build_dir ${meson_args[*]}"
  meson setup --reconfigure "$build_dir" "${meson_args[@]}" </dev/null
else
  echo "build: meson setup $build_dir ${meson_args[*]}"
  meson setup "$build_dir" "${meson_args[@]}" </dev/null
fi
ninja -C "$build_dir" </dev/null

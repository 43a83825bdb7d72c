#!/usr/bin/env bash
# The third-party plugin template (examples/third-party-plugin) as its
# author would build it: against an installed plexus, never the source tree.
#   1. meson install of $PLEXUS_BUILD_DIR (default build/) into a scratch
#      --destdir tree;
#   2. that tree's plexus.pc, its prefix pointed at the tree, as the only
#      pkg-config search path, and its include path inside the tree;
#   3. the template configured and built out of tree, with no include path
#      into this clone;
#   4. the plugin loaded by absolute path through PLEXUS_BACKEND
#      (the installed plexus-info's load report chooses it);
#   5. the installed plexus-conformance run against it with
#      $PLEXUS_TEMPLATE_RANKS ranks (default 2).
# Each step counts as one test; ends with "N passed, M failed" like the
# other stages of scripts/test.sh (PLEXUS_TEMPLATE=0 skips it there).
# Needs a finished build of the main project (scripts/build.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

repo=$PWD
build_dir="${PLEXUS_BUILD_DIR:-build}"
ranks="${PLEXUS_TEMPLATE_RANKS:-2}"
scratch=$(mktemp -d /tmp/plexus-template-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0
start=$SECONDS

last=$SECONDS
step() {  # step NAME OK(0/1) [DETAIL]: one test's verdict, with its time
  local took="($((SECONDS - last)) s)"
  last=$SECONDS
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "template: PASS $1 $took"
  else
    failed=$((failed + 1)); echo "template: FAIL $1 $took${3:+: $3}"
  fi
}

finish() {  # the stage's summary line; exit status 1 when a step failed
  echo "template: took $((SECONDS - start)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}

if [ ! -f "$build_dir/build.ninja" ]; then
  step "install" 1 "no build in $build_dir (run scripts/build.sh first)"
  finish
fi

# 1. The install, as a packager makes it.
root="$scratch/root"
meson install -C "$build_dir" --destdir "$root" --quiet </dev/null >"$scratch/install.log" 2>&1
step "meson install --destdir" $? "$(tail -n 3 "$scratch/install.log")"
pc=$(find "$root" -name plexus.pc -path '*/pkgconfig/*' 2>/dev/null | head -n 1)
if [ -z "$pc" ]; then
  step "plexus.pc installed" 1 "no pkgconfig/plexus.pc under the destdir"
  finish
fi

# 2. plexus.pc says prefix=/usr/local (where the files will go); in the
# scratch tree the same layout sits under $root. PKG_CONFIG_LIBDIR (not
# _PATH) so that a plexus installed on this machine cannot answer instead.
prefix=$(sed -n 's/^prefix=//p' "$pc")
mkdir -p "$scratch/pkgconfig"
sed "s|^prefix=.*|prefix=$root$prefix|" "$pc" >"$scratch/pkgconfig/plexus.pc"
export PKG_CONFIG_LIBDIR="$scratch/pkgconfig" PKG_CONFIG_PATH=""
cflags=$(pkg-config --cflags plexus 2>&1)
libdir=$(pkg-config --variable=libdir plexus 2>/dev/null)
[[ "$cflags" == *"-I$root"* && -f "$root$prefix/include/plexus/plugin.h" && -d "$libdir" ]]
step "pkg-config plexus inside the install" $? "cflags '$cflags', libdir '$libdir'"

# 3. Out of tree, as a third party would: its own meson project.
tbuild="$scratch/template-build"
if meson setup "$tbuild" examples/third-party-plugin </dev/null >"$scratch/setup.log" 2>&1 &&
   ninja -C "$tbuild" </dev/null >"$scratch/build.log" 2>&1; then
  # The headers the compiler read (ninja's record of them) must come from
  # the install, never from this clone's abi/.
  deps=$(ninja -C "$tbuild" -t deps 2>/dev/null)
  grep -q "^ *$root.*/plexus/plugin\.h$" <<<"$deps" && ! grep -q "$repo/abi/" <<<"$deps"
  step "template builds against the installed headers" $? "plugin.h was not read from $root"
else
  step "template builds against the installed headers" 1 "$(tail -n 20 "$scratch"/setup.log "$scratch"/build.log)"
  finish
fi
plugin=$(find "$tbuild" -maxdepth 1 -name 'libplexus-*.so' | head -n 1)

# 4. PLEXUS_BACKEND by absolute path, through the installed loader.
bindir=$(dirname "$(find "$root" -name plexus-info -type f | head -n 1)")
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
report=$(PLEXUS_BACKEND="$plugin" "$bindir/plexus-info" 2>&1)
grep -q "^  \* .* $plugin .*: chosen" <<<"$report"
step "PLEXUS_BACKEND=$plugin" $? "$(grep -A4 'load report' <<<"$report")"

# 5. The contract, by the installed kit.
"$bindir/plexus-conformance" --backend "$plugin" --ranks "$ranks" --json "$scratch/conformance.json" \
  </dev/null >"$scratch/conformance.log" 2>&1
rc=$?
grep -E '^(FAIL|NOTE)' "$scratch/conformance.log"
kit=$(tail -n 1 "$scratch/conformance.log")
echo "template: plexus-conformance, $ranks ranks: $kit"
[ "$rc" -eq 0 ] && [[ "$kit" =~ ^[0-9]+\ passed,\ 0\ failed$ ]]
step "plexus-conformance --ranks $ranks" $? "exit status $rc"
finish

#!/usr/bin/env bash
# Sanitizer and fuzzing stages (docs/reliability.md), each in its own build
# folder so the main build stays as it is:
#   scripts/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer (gcc), build-asan/
#   scripts/sanitize.sh tsan   ThreadSanitizer (gcc), build-tsan/
#   scripts/sanitize.sh fuzz   the libFuzzer targets of tests/fuzz (clang), build-fuzz/,
#                              each for $PLEXUS_FUZZ_SECONDS (default 20) seconds
# asan and tsan run the loader, core and shm-native tests (plus the header
# checks); the CUDA plugins, the tools (MPI) and the examples are left out.
# Ends with "N passed, M failed[, K skipped]" for this stage's tests; exits
# non-zero when one failed. fuzz without clang is one skipped test.
# $PLEXUS_SANITIZE_DIR overrides the build folder.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

stage="${1:-}"
case "$stage" in
  asan) sanitizer="address,undefined" ;;
  tsan) sanitizer="thread" ;;
  fuzz) sanitizer="address,undefined" ;;
  *) echo "usage: scripts/sanitize.sh asan|tsan|fuzz" >&2; exit 2 ;;
esac
build_dir="${PLEXUS_SANITIZE_DIR:-build-$stage}"
jobs="${PLEXUS_BUILD_JOBS:-2}"

summarize() {  # the summary line of this stage's testlog; exit status 1 on a failure
  python3 scripts/test_counts.py "$build_dir"/meson-logs/testlog*.json
}

# Reports go to the test log; every error is fatal so that none is lost in
# a passing test's output. die_after_fork=0: the shm-native tests fork
# ranks from a process that already runs threads, and each child only runs
# the code under test. The fuzz runs set their own (tests/fuzz/meson.build).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0}"

# Third-party noise, the only one: hwloc's PCI component keeps libpciaccess's
# state in that library's globals and unloads the library with the
# topology, after which LeakSanitizer reports those blocks as leaked from an
# "unknown module" (which no suppression can name). Keeping libpciaccess
# loaded keeps them reachable; the ASan runtime stays first, as it must.
# Only the tests get it (through a wrapper), not meson itself.
wrapper=()
if [ "$stage" = asan ]; then
  pciaccess=$(/sbin/ldconfig -p 2>/dev/null | awk '/libpciaccess\.so\.0 /{print $NF; exit}')
  asan_runtime=$(${CC:-cc} -print-file-name=libasan.so)
  if [ -n "$pciaccess" ] && [ -f "$asan_runtime" ]; then
    wrapper=(--wrapper "env LD_PRELOAD='$asan_runtime $pciaccess'")
  fi
fi

# -O1 and line tables only (-g1): the reports keep their file:line stacks,
# and the build takes about half the time of debugoptimized's -O2 -g (the
# sanitizer builds were most of CI's time on a 2-core machine).
compile_flags="-g1"
setup_args=(-Db_sanitize="$sanitizer" -Dbuildtype=plain -Doptimization=1 -Dcuda=disabled -Dnccl=disabled
            -Dtools=disabled -Dexamples=disabled)
if [ "$stage" = fuzz ]; then
  if ! command -v clang++ >/dev/null 2>&1; then
    echo "sanitize: fuzz needs clang (apt-get install clang libclang-rt-14-dev); skipped"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
  fi
  export CC=clang CXX=clang++
  # fuzzer-no-link: the loader and the plugins report coverage too.
  compile_flags+=" -fsanitize=fuzzer-no-link"
  setup_args+=(-Dfuzz=enabled -Dfuzz-seconds="${PLEXUS_FUZZ_SECONDS:-20}" -Dtests=disabled -Db_lundef=false)
fi
setup_args+=(-Dc_args="$compile_flags" -Dcpp_args="$compile_flags")

start=$SECONDS
if [ -f "$build_dir/build.ninja" ]; then
  meson setup --reconfigure "$build_dir" "${setup_args[@]}" </dev/null >/dev/null
else
  meson setup "$build_dir" "${setup_args[@]}" </dev/null
fi
if [ $? -ne 0 ] || ! ninja -C "$build_dir" -j "$jobs" </dev/null; then
  echo "sanitize: $stage set-up or build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
built=$SECONDS

# The tests under the sanitizer: loader (the ctypes test is left out: a
# Python host cannot load an ASan library without preloading the runtime),
# core and shm-native, and the public headers; under ASan also the soak,
# whose forked ranks ask LeakSanitizer themselves (they leave by _exit).
if [ "$stage" = fuzz ]; then
  selection=(--suite fuzz)
else
  pattern='^(abi\.|core\.|loader\.|plugins\.shm-native)'
  [ "$stage" = asan ] && pattern='^(abi\.|core\.|loader\.|plugins\.shm-native|soak\.)'
  # With more than one suite meson lists "plexus:suite / name": keep the name.
  mapfile -t selection < <(meson test -C "$build_dir" --list 2>/dev/null | sed 's|^.* / ||' |
    grep -E "$pattern" | grep -vx 'loader.ctypes')
  if [ ${#selection[@]} -eq 0 ]; then  # meson test with no names would run everything
    echo "sanitize: $stage found no test to run"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
rm -f "$build_dir"/meson-logs/testlog*.json  # a stale log is never counted
meson test -C "$build_dir" --no-rebuild --print-errorlogs --num-processes "$jobs" "${wrapper[@]}" \
  "${selection[@]}" \
  </dev/null 2>&1
echo "sanitize: $stage took $((built - start)) s to build, $((SECONDS - built)) s to test"
summarize

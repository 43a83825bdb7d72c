#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian 12 machine. A machine that
# has everything already is left alone (no apt at all), so this is cheap to
# run before every build. CUDA and NCCL are optional and never installed here.
set -euo pipefail

# openmpi: the peer column of plexus-bench for host memory (Open MPI's
# MPI_Allreduce); python3-matplotlib for `plexus-bench --plot` is left out.
# clang with libclang-rt-14-dev (a recommends, which --no-install-recommends
# skips; it holds libFuzzer and clang's sanitizer runtimes): the fuzz stage
# of scripts/sanitize.sh. gcc's ASan/UBSan/TSan runtimes come with g++.
packages=(meson ninja-build pkg-config g++ libfmt-dev doctest-dev libhwloc-dev libnuma-dev python3
          openmpi-bin libopenmpi-dev clang libclang-rt-14-dev
          python3-numpy)  # python3-numpy: the Python package's example and tests

if ! command -v dpkg >/dev/null 2>&1; then
  echo "setup: no dpkg (not Debian); install by hand: ${packages[*]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: build dependencies present"
  exit 0
fi

# root runs apt directly (containers, CI); anyone else goes through sudo.
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
  as_root=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update </dev/null
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null

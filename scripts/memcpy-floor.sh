#!/usr/bin/env bash
# The memory floor of a host-memory all-reduce on this machine: N processes
# at once, each copying MiB mebibytes between two buffers of its own, 10
# times per run, best of 5 runs; prints each process's time per copy. A
# shm-native all-reduce of S bytes on 2 ranks moves 4 S per rank (half
# the input into the slot, the own half reduced into slot and output, the
# peer's half out: 2 S read, 2 S written), as much as a 2 S copy, so "2
# processes, 2 S MiB" is what that all-reduce cannot beat here.
#   bash scripts/memcpy-floor.sh MIB [PROCESSES]   (default 2 processes)
set -eu
mib=${1:?usage: memcpy-floor.sh MIB [PROCESSES]}
procs=${2:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/floor.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  const size_t n = (size_t)atoi(argv[1]) << 20;
  const int procs = atoi(argv[2]);
  for (int p = 0; p < procs; ++p) {
    if (fork() != 0) continue;
    char *a = malloc(n), *b = malloc(n);
    memset(a, 1, n), memset(b, 2, n);
    double best = 1e9;
    for (int run = 0; run < 5; ++run) {
      const double t0 = now();
      for (int i = 0; i < 10; ++i) { memcpy(b, a, n); __asm__ volatile("" : : "r"(b) : "memory"); a[i]++; }
      const double t = (now() - t0) / 10;
      best = t < best ? t : best;
    }
    printf("process %d: %zu MiB copied in %.1f us (%.1f GB/s)\n", p, n >> 20, best * 1e6, n / best / 1e9);
    return 0;
  }
  while (wait(NULL) > 0) {}
  return 0;
}
C
cc -O2 -o "$dir/floor" "$dir/floor.c"
"$dir/floor" "$mib" "$procs"

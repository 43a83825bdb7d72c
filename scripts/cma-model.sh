#!/usr/bin/env bash
# A stand-alone model of two ways a host-memory all-reduce (float32 sum) can
# move ordinary (private) buffers between processes, timed side by side on
# the same forked ranks:
#   slots  each rank copies its input into shared memory, reduces its share
#          of every rank's copy, publishes it there, and copies the others'
#          shares out (shm-native's two-shot, without its pipelining or
#          helper threads): about 3 S read and 2 S written per rank
#   cma    no copy-in: each rank reads its share of every peer's private
#          input with process_vm_readv (Linux cross-memory attach) in pieces
#          of CHUNK_KIB into a scratch buffer and reduces it, then reads every
#          peer's reduced share straight into its output the same way
#          (Open MPI's single copy): about 2 S read and 1 S written per rank,
#          but each kernel copy pins the peer's pages first
# Prints the median over ITERS of the slowest rank's time per all-reduce,
# and checks sampled elements against the expected sums.
#   bash scripts/cma-model.sh RANKS SIZE_KIB CHUNK_KIB [ITERS]   (default 30 iterations)
set -eu
ranks=${1:?usage: cma-model.sh RANKS SIZE_KIB CHUNK_KIB [ITERS]}
size_kib=${2:?usage: cma-model.sh RANKS SIZE_KIB CHUNK_KIB [ITERS]}
chunk_kib=${3:?usage: cma-model.sh RANKS SIZE_KIB CHUNK_KIB [ITERS]}
iters=${4:-30}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/model.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { max_ranks = 64, max_iters = 400 };
typedef struct {
  _Atomic long arrived, generation;
  pid_t pid[max_ranks];
  float *input[max_ranks], *output[max_ranks];
  double seconds[max_ranks];
  _Atomic int failed;
} Shared;
static Shared *shared;
static int nranks;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void barrier(void) {  // every rank has a core: spin
  const long generation = atomic_load(&shared->generation);
  if (atomic_fetch_add(&shared->arrived, 1) == nranks - 1) {
    atomic_store(&shared->arrived, 0);
    atomic_fetch_add(&shared->generation, 1);
  } else {
    while (atomic_load(&shared->generation) == generation) __builtin_ia32_pause();
  }
}

static void add(float *restrict sum, const float *restrict x, size_t n) { for (size_t i = 0; i < n; ++i) sum[i] += x[i]; }

static void read_peer(int peer, void *dst, const void *src, size_t bytes) {
  struct iovec local = {dst, bytes}, remote = {(void *)src, bytes};
  const ssize_t got = process_vm_readv(shared->pid[peer], &local, 1, &remote, 1, 0);
  if (got == (ssize_t)bytes) return;
  fprintf(stderr, "process_vm_readv from rank %d: %zd of %zu bytes (%s)\n", peer, got, bytes, strerror(errno));
  atomic_store(&shared->failed, 1);
  exit(1);
}

// slots: nranks input copies of n floats each, then one reduced share per rank.
static void through_slots(int rank, const float *in, float *out, float *copies, float *results, size_t n) {
  const size_t share = n / nranks;
  memcpy(copies + rank * n, in, n * sizeof(float));
  barrier();
  float *mine = out + rank * share;
  memcpy(mine, copies + rank * share, share * sizeof(float));
  for (int r = 1; r < nranks; ++r) add(mine, copies + (size_t)r * n + rank * share, share);
  memcpy(results + rank * share, mine, share * sizeof(float));
  barrier();
  for (int r = 0; r < nranks; ++r)
    if (r != rank) memcpy(out + r * share, results + r * share, share * sizeof(float));
  barrier();
}

static void through_cma(int rank, const float *in, float *out, float *scratch, size_t chunk, size_t n) {
  const size_t share = n / nranks;
  barrier();
  for (size_t at = 0; at < share; at += chunk) {
    const size_t len = share - at < chunk ? share - at : chunk;
    float *sum = out + rank * share + at;
    for (int r = 0; r < nranks; ++r) {
      const float *part = in + rank * share + at;
      if (r != rank) read_peer(r, scratch, shared->input[r] + rank * share + at, len * sizeof(float)), part = scratch;
      if (r == 0) memcpy(sum, part, len * sizeof(float)); else add(sum, part, len);
    }
  }
  barrier();  // every share reduced: read them straight into out
  for (int r = 0; r < nranks; ++r)
    if (r != rank) read_peer(r, out + r * share, shared->output[r] + r * share, share * sizeof(float));
  barrier();  // nobody reads this rank's buffers any more
}

static int by_value(const void *a, const void *b) { const double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static void check(int rank, const char *mode, const float *out, size_t n) {
  for (size_t i = 0; i < n; i += 997) {
    float want = 0;
    for (int r = 0; r < nranks; ++r) want += (float)((i * 7 + r * 13) % 64);
    if (out[i] != want) { fprintf(stderr, "rank %d, %s: element %zu is %g, not %g\n", rank, mode, i, out[i], want); atomic_store(&shared->failed, 1); return; }
  }
}

static void run_rank(int rank, size_t n, size_t chunk, int iters, float *copies, float *results) {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // siblings may read us under Yama's ptrace_scope 1
  float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float)), *scratch = malloc(chunk * sizeof(float));
  for (size_t i = 0; i < n; ++i) in[i] = (float)((i * 7 + rank * 13) % 64);
  memset(scratch, 0, chunk * sizeof(float));
  shared->pid[rank] = getpid(), shared->input[rank] = in, shared->output[rank] = out;
  for (int mode = 0; mode < 2; ++mode) {
    double seconds[max_iters];
    memset(out, 0xff, n * sizeof(float));  // poisoned: NaN
    barrier();
    for (int i = 0; i < iters; ++i) {
      barrier();
      const double start = now();
      if (mode == 0) through_slots(rank, in, out, copies, results, n); else through_cma(rank, in, out, scratch, chunk, n);
      seconds[i] = now() - start;
    }
    check(rank, mode ? "cma" : "slots", out, n);
    qsort(seconds, iters, sizeof seconds[0], by_value);
    shared->seconds[rank] = seconds[iters / 2];
    barrier();
    double slowest = 0;
    for (int r = 0; r < nranks; ++r) slowest = shared->seconds[r] > slowest ? shared->seconds[r] : slowest;
    if (rank == 0) printf("ranks %d size %zu KiB chunk %zu KiB %s: median %.1f us (slowest rank)\n", nranks,
                          n * sizeof(float) >> 10, chunk * sizeof(float) >> 10, mode ? "cma  " : "slots", slowest * 1e6);
    fflush(stdout);
    barrier();
  }
}

int main(int argc, char **argv) {
  nranks = atoi(argv[1]);
  const size_t n = ((size_t)atol(argv[2]) << 10) / sizeof(float), chunk = ((size_t)atol(argv[3]) << 10) / sizeof(float);
  const int iters = atoi(argv[4]);
  if (nranks < 2 || nranks > max_ranks || iters < 1 || iters > max_iters || chunk == 0 || n % nranks) return fprintf(stderr, "bad arguments\n"), 2;
  const int shared_flags = MAP_SHARED | MAP_ANONYMOUS;
  shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, shared_flags, -1, 0);
  float *copies = mmap(NULL, n * sizeof(float) * nranks, PROT_READ | PROT_WRITE, shared_flags, -1, 0);
  float *results = mmap(NULL, n * sizeof(float), PROT_READ | PROT_WRITE, shared_flags, -1, 0);
  for (int rank = 0; rank < nranks; ++rank)
    if (fork() == 0) run_rank(rank, n, chunk, iters, copies, results), exit(0);
  int status, failed = 0;
  while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  return failed || atomic_load(&shared->failed);
}
C
cc -O3 -march=native -o "$dir/model" "$dir/model.c"
"$dir/model" "$ranks" "$size_kib" "$chunk_kib" "$iters"

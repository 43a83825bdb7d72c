// What plexus-bench-launch's probes share: error reporting, the clock and
// the median of repeated runs.
#pragma once

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

#include "kernels/probe.hpp"

namespace plexus::bench_launch {

using Clock = std::chrono::steady_clock;

// False, with a line on stderr naming `what`, when err is not cudaSuccess.
inline bool ok(cudaError_t err, const char *what) {
  if (err == cudaSuccess) return true;
  std::fprintf(stderr, "plexus-bench-launch: %s: %s\n", what, cudaGetErrorString(err));
  return false;
}

inline double us_since(Clock::time_point start, int per) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / per;
}

// A well-mixed 64-bit value of x (splitmix64's finalizer): benchmark data
// that no link or engine can compress.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// float to bfloat16 bits, rounded to nearest even (finite values), as the
// kernels' __float22bfloat162_rn.
inline uint16_t to_bf16(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  return static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

// Element i of stream `seed`: a bfloat16 random in [-1, 1) with every
// mantissa bit in use, as real data.
inline uint16_t random_bf16(uint64_t seed, uint64_t i) {
  const uint64_t r = mix64((seed << 40) ^ i);
  return to_bf16(static_cast<float>(r >> 40) / float(1 << 23) - 1.0f);
}

// Device d (current) may access the first n GPUs' memory.
inline bool enable_peers(int d, int n) {
  for (int q = 0; q < n; ++q) {
    const cudaError_t peer = q == d ? cudaSuccess : cudaDeviceEnablePeerAccess(q, 0);
    if (peer != cudaErrorPeerAccessAlreadyEnabled && !ok(peer, "cudaDeviceEnablePeerAccess")) return false;
  }
  (void)cudaGetLastError();
  return true;
}

// The median of `samples` runs of `once`.
inline double median_of(int samples, const std::function<double()> &once) {
  std::vector<double> v;
  for (int i = 0; i < samples; ++i) v.push_back(once());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// An empty kernel's launch: its grid, and whether it goes with programmatic
// dependent launch.
struct Shape {
  unsigned blocks, threads;
  bool dependent;
  const char *name() const { return dependent ? "pdl" : "plain"; }
};

inline bool enqueue(const Shape &s, int n, cudaStream_t stream) {
  for (int i = 0; i < n; ++i)
    if (!ok(kernels::probe::launch_empty(s.blocks, s.threads, s.dependent, stream), "launching the empty kernel"))
      return false;
  return true;
}

// Host time to enqueue n kernels (median of 9 runs, each waited for).
inline double enqueue_us(const Shape &s, int n, cudaStream_t stream) {
  return median_of(9, [&] {
    const auto start = Clock::now();
    enqueue(s, n, stream);
    const double us = us_since(start, n);
    ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    return us;
  });
}

// One result: printed, and a CSV row when csv is open.
inline void row(std::FILE *csv, const char *what, const Shape &s, double us) {
  fmt::print("{:<22} {:>4} x {:<4} {:<6} {:8.3f} us\n", what, s.blocks, s.threads, s.name(), us);
  if (csv) std::fprintf(csv, "%s,%u,%u,%s,%.4f\n", what, s.blocks, s.threads, s.name(), us);
}

}  // namespace plexus::bench_launch

// What plexus-bench-launch's probes share: error reporting, the clock and
// the median of repeated runs.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

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

}  // namespace plexus::bench_launch

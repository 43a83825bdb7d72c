// What plexus-bench-launch's probes share: error reporting, the clock and
// the median of repeated runs.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
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

}  // namespace plexus::bench_launch

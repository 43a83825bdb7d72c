// 16-byte vectors of any element type, the unit every kernel family moves
// and reduces: whole loads and stores where aligned, element by element at
// the edges (zeros past the end).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace plexus::kernels::device {

template <class S>
union Vec {
  uint4 v;
  S e[16 / sizeof(S)];
};

// Vector i of an n-element array: one 16-byte load when aligned and whole,
// else element by element with zeros past the end. `fresh` reads past L1
// (memory a peer wrote during this kernel).
template <class S>
__device__ __forceinline__ uint4 load_vec(const S *p, uint64_t i, uint64_t n, bool fresh = false) {
  constexpr uint64_t V = 16 / sizeof(S);
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0 && (i + 1) * V <= n) {
    const auto *v = reinterpret_cast<const uint4 *>(p) + i;
    return fresh ? __ldcv(v) : *v;
  }
  // Unrolled, so the element loads are in flight together.
  Vec<S> x;
  x.v = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (uint64_t j = 0; j < V; ++j)
    if (i * V + j < n) x.e[j] = fresh ? *reinterpret_cast<const volatile S *>(p + i * V + j) : p[i * V + j];
  return x.v;
}

template <class S>
__device__ __forceinline__ void store_vec(S *p, uint64_t i, uint64_t n, uint4 v) {
  constexpr uint64_t V = 16 / sizeof(S);
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0 && (i + 1) * V <= n) {
    reinterpret_cast<uint4 *>(p)[i] = v;
    return;
  }
  Vec<S> x;
  x.v = v;
#pragma unroll
  for (uint64_t j = 0; j < V; ++j)
    if (i * V + j < n) p[i * V + j] = x.e[j];
}

}  // namespace plexus::kernels::device

// Probe kernels (probe.hpp): an empty kernel, with and without programmatic
// dependent launch, a two-GPU ping-pong of flags over peer access, copies
// over NVLink and a bfloat16 sum.
#include "kernels/probe.hpp"

#include <cuda_bf16.h>

#include "kernels/launch.cuh"

namespace plexus::kernels::probe {
namespace {

__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void let_next_grid_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

__global__ void empty_kernel() {
  let_next_grid_start();
  wait_for_previous_grid();
}

__device__ __forceinline__ uint64_t ld_acquire_sys(const volatile uint64_t *p) {
  uint64_t v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void st_release_sys(volatile uint64_t *p, uint64_t v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// Values grow by one per message, so a rerun only needs the flags zeroed.
__global__ void ping_kernel(volatile uint64_t *mine, volatile uint64_t *theirs, int rounds, bool serves) {
  for (uint64_t i = 1; i <= static_cast<uint64_t>(rounds); ++i) {
    if (!serves) st_release_sys(theirs, i);
    while (ld_acquire_sys(mine) < i) {
    }
    if (serves) st_release_sys(theirs, i);
  }
}

struct CopyPairs {
  const uint4 *src[kMaxCopyPairs];
  uint4 *dst[kMaxCopyPairs];
  int count;
};

// Block b copies its share of every pair in turn, four 16-byte loads in
// flight per thread before their stores.
__global__ void __launch_bounds__(512) copy_kernel(CopyPairs t, uint64_t vecs) {
  const uint64_t per = (vecs + gridDim.x - 1) / gridDim.x, begin = min(vecs, per * blockIdx.x);
  const uint64_t end = min(vecs, begin + per), step = blockDim.x;
  for (int k = 0; k < t.count; ++k)
    for (uint64_t i = begin + threadIdx.x; i < end; i += 4 * step) {
      uint4 v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (i + j * step < end) v[j] = t.src[k][i + j * step];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (i + j * step < end) t.dst[k][i + j * step] = v[j];
    }
}

struct SumSources {
  const uint4 *src[kMaxCopyPairs];
  int count;
};

// Eight bfloat16 per 16-byte vector, summed in float32 in source order and
// rounded once.
__global__ void __launch_bounds__(512) sum_bf16_kernel(SumSources s, uint4 *dst, uint64_t vecs) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < vecs; i += uint64_t{gridDim.x} * blockDim.x) {
    float2 acc[4] = {};
    for (int k = 0; k < s.count; ++k) {
      const uint4 v = s.src[k][i];
      const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 f = __bfloat1622float2(h[j]);
        acc[j].x += f.x, acc[j].y += f.y;
      }
    }
    uint4 out;
    __nv_bfloat162 *o = reinterpret_cast<__nv_bfloat162 *>(&out);
#pragma unroll
    for (int j = 0; j < 4; ++j) o[j] = __float22bfloat162_rn(acc[j]);
    dst[i] = out;
  }
}

}  // namespace

cudaError_t launch_copies(const void *const *srcs, void *const *dsts, int count, uint64_t bytes, unsigned blocks,
                          cudaStream_t stream) {
  if (count < 1 || count > kMaxCopyPairs || blocks < 1) return cudaErrorInvalidValue;
  CopyPairs t{};
  for (int k = 0; k < count; ++k) t.src[k] = static_cast<const uint4 *>(srcs[k]), t.dst[k] = static_cast<uint4 *>(dsts[k]);
  t.count = count;
  copy_kernel<<<blocks, 512, 0, stream>>>(t, bytes / 16);
  return cudaGetLastError();
}

cudaError_t launch_sum_bf16(const void *const *srcs, int count, void *dst, uint64_t bytes, unsigned blocks,
                            cudaStream_t stream) {
  if (count < 1 || count > kMaxCopyPairs || blocks < 1) return cudaErrorInvalidValue;
  SumSources s{};
  for (int k = 0; k < count; ++k) s.src[k] = static_cast<const uint4 *>(srcs[k]);
  s.count = count;
  sum_bf16_kernel<<<blocks, 512, 0, stream>>>(s, static_cast<uint4 *>(dst), bytes / 16);
  return cudaGetLastError();
}

cudaError_t launch_empty(unsigned blocks, unsigned threads, bool dependent, cudaStream_t stream) {
  if (!dependent) {
    empty_kernel<<<blocks, threads, 0, stream>>>();
    return cudaGetLastError();
  }
  return device::launch_kernel(empty_kernel, blocks, threads, true, stream);
}

cudaError_t launch_ping(volatile uint64_t *mine, volatile uint64_t *theirs, int rounds, bool serves,
                        cudaStream_t stream) {
  ping_kernel<<<1, 1, 0, stream>>>(mine, theirs, rounds, serves);
  return cudaGetLastError();
}

}  // namespace plexus::kernels::probe

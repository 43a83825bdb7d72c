// The conversions of widen.hpp: eight elements per thread (one 16-byte
// half-type vector, two float vectors) where both sides are aligned, one at
// a time at the edges and on unaligned buffers; and the rank-ordered
// reduction of all-gathered half-type inputs (small messages).
#include <algorithm>

#include "kernels/module_anchor.cuh"
#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"
#include "kernels/widen.hpp"
#include "kernels/wire_io.cuh"

namespace plexus::kernels {
namespace device {
namespace {

constexpr int kThreads = 256;
constexpr uint64_t kPerThread = 8;  // 8 half types: one uint4 in, two float4 out
constexpr unsigned kMaxBlocks = 4096;

bool aligned16(const void *a, const void *b) {
  return ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & 15) == 0;
}

// Grid-stride over groups of kPerThread elements: whole(t) for group t when
// the buffers allow vectors and the group lies inside n, else one(i) for
// each of its elements.
template <class Whole, class One>
__device__ __forceinline__ void each_group(uint64_t n, bool vectors, Whole whole, One one) {
  const uint64_t stride = uint64_t{gridDim.x} * blockDim.x;
  for (uint64_t t = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; t * kPerThread < n; t += stride) {
    const uint64_t first = t * kPerThread;
    if (vectors && first + kPerThread <= n) whole(t);
    else
      for (uint64_t i = first; i < n && i < first + kPerThread; ++i) one(i);
  }
}

template <class E>
__global__ void widen_kernel(const uint16_t *src, float *dst, uint64_t n, bool vectors) {
  const auto whole = [=](uint64_t t) {
    auto *out = reinterpret_cast<uint4 *>(dst);
    widen_pair<E>(reinterpret_cast<const uint4 *>(src)[t], &out[2 * t], &out[2 * t + 1]);
  };
  each_group(n, vectors, whole, [=](uint64_t i) { dst[i] = E::load(src[i]); });
}

template <class E>
__global__ void narrow_kernel(const float *src, uint16_t *dst, uint64_t n, bool vectors) {
  const auto whole = [=](uint64_t t) {
    const auto *in = reinterpret_cast<const uint4 *>(src);
    reinterpret_cast<uint4 *>(dst)[t] = narrow_pair<E>(in[2 * t], in[2 * t + 1]);
  };
  each_group(n, vectors, whole, [=](uint64_t i) { dst[i] = E::store(src[i]); });
}

template <class E, int Op>
__global__ void reduce_gathered_kernel(const uint16_t *g, uint64_t stride, int nranks, uint16_t *out, uint64_t n) {
  const uint64_t step = uint64_t{gridDim.x} * blockDim.x;
  for (uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += step) {
    float acc = E::load(g[i]);
    for (int q = 1; q < nranks; ++q) acc = combine<Op>(acc, E::load(g[q * stride + i]));
    out[i] = E::store(finish<Op>(acc, nranks));
  }
}

struct GatheredLaunch {
  const uint16_t *g;
  uint64_t stride;
  int nranks;
  uint16_t *out;
  uint64_t n;
  cudaStream_t stream;
  unsigned blocks;
  template <class E, int Op>
  cudaError_t run() const {
    reduce_gathered_kernel<E, Op><<<blocks, kThreads, 0, stream>>>(g, stride, nranks, out, n);
    return cudaGetLastError();
  }
};

unsigned blocks_for(uint64_t n) {
  const uint64_t threads = (n + kPerThread - 1) / kPerThread;
  const uint64_t blocks = (threads + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? (blocks > 0 ? blocks : 1) : kMaxBlocks);
}

}  // namespace
}  // namespace device

cudaError_t launch_widen(const void *src, float *dst, uint64_t n, plx_dtype dtype, cudaStream_t stream) {
  using namespace device;
  const auto *in = static_cast<const uint16_t *>(src);
  const bool vectors = aligned16(src, dst);
  if (dtype == PLX_FLOAT16) widen_kernel<HalfElem><<<blocks_for(n), kThreads, 0, stream>>>(in, dst, n, vectors);
  else if (dtype == PLX_BFLOAT16) widen_kernel<BFloat16Elem><<<blocks_for(n), kThreads, 0, stream>>>(in, dst, n, vectors);
  else return cudaErrorInvalidValue;
  return cudaGetLastError();
}

cudaError_t launch_narrow(const float *src, void *dst, uint64_t n, plx_dtype dtype, cudaStream_t stream) {
  using namespace device;
  auto *out = static_cast<uint16_t *>(dst);
  const bool vectors = aligned16(src, dst);
  if (dtype == PLX_FLOAT16) narrow_kernel<HalfElem><<<blocks_for(n), kThreads, 0, stream>>>(src, out, n, vectors);
  else if (dtype == PLX_BFLOAT16) narrow_kernel<BFloat16Elem><<<blocks_for(n), kThreads, 0, stream>>>(src, out, n, vectors);
  else return cudaErrorInvalidValue;
  return cudaGetLastError();
}

cudaError_t launch_reduce_gathered(const void *gathered, uint64_t stride, int32_t nranks, void *out, uint64_t n,
                                   plx_dtype dtype, int32_t op, cudaStream_t stream) {
  using namespace device;
  if (n == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(std::min<uint64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
  const GatheredLaunch l{static_cast<const uint16_t *>(gathered), stride, nranks, static_cast<uint16_t *>(out), n, stream, blocks};
  if (dtype == PLX_FLOAT16) return with_op<HalfElem>(op, l);
  if (dtype == PLX_BFLOAT16) return with_op<BFloat16Elem>(op, l);
  return cudaErrorInvalidValue;
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(widen)

// float16/bfloat16 <-> float32 conversion on the device, stream-ordered:
// how the nccl plugin makes a half-type reduction accumulate in float32
// (PLX-P-8) when NCCL itself would round the partial sums at every hop.
// Plain C++ header; the kernels are in widen.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "plexus/types.h"

namespace plexus::kernels {

// dst[i] = float(src[i]) for i < n; `dtype` is PLX_FLOAT16 or PLX_BFLOAT16
// (anything else: cudaErrorInvalidValue). Any alignment.
cudaError_t launch_widen(const void *src, float *dst, uint64_t n, plx_dtype dtype, cudaStream_t stream);

// dst[i] = src[i] rounded to nearest even in `dtype`, NaN canonical (as the
// other kernels and core/cpu_reduce round). Any alignment.
cudaError_t launch_narrow(const float *src, void *dst, uint64_t n, plx_dtype dtype, cudaStream_t stream);

// out[i] = the `op` of gathered[q * stride + i] over q = 0 .. nranks-1, in
// that order, accumulated in float32 and rounded once (the numerics of
// core/cpu_reduce): a small half-type reduction after an all-gather of the
// inputs, so every rank gets the same bits. dtype PLX_FLOAT16 or
// PLX_BFLOAT16, op PLX_SUM .. PLX_AVG; else cudaErrorInvalidValue.
cudaError_t launch_reduce_gathered(const void *gathered, uint64_t stride, int32_t nranks, void *out, uint64_t n,
                                   plx_dtype dtype, int32_t op, cudaStream_t stream);

}  // namespace plexus::kernels

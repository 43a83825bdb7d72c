// A float32 reduction whose lines carry a half type (opts->wire_dtype) in
// the one-shot kernels' own launch: the input is rounded to E's half type as
// it is loaded and the result widened as it is stored, with the numerics of
// narrowing, the half-type reduction and widening done apart (widen.cu):
// every contribution and the result rounded once, to nearest even.
#pragma once

#include <cstdint>

#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"

namespace plexus::kernels::device {

// Eight floats (two vectors) as one vector of E's half type.
template <class E>
__device__ __forceinline__ uint4 narrow_pair(uint4 lo, uint4 hi) {
  Vec<float> a, b;
  a.v = lo, b.v = hi;
  Vec<typename E::S> out;
#pragma unroll
  for (int j = 0; j < 4; ++j) out.e[j] = E::store(a.e[j]), out.e[4 + j] = E::store(b.e[j]);
  return out.v;
}

// One vector of E's half type as eight floats (exact).
template <class E>
__device__ __forceinline__ void widen_pair(uint4 v, uint4 *lo, uint4 *hi) {
  Vec<typename E::S> in;
  in.v = v;
  Vec<float> a, b;
#pragma unroll
  for (int j = 0; j < 4; ++j) a.e[j] = E::load(in.e[j]), b.e[j] = E::load(in.e[4 + j]);
  *lo = a.v, *hi = b.v;
}

// Vector i (16 bytes of E's type) of the caller's input: its own elements,
// or (Wire) eight float32 rounded to E's half type; zeros past `total`.
template <class E, bool Wire>
__device__ __forceinline__ uint4 load_input(const void *in, uint64_t i, uint64_t total) {
  if constexpr (!Wire) {
    return load_vec(static_cast<const typename E::S *>(in), i, total);
  } else {
    const auto *f = static_cast<const float *>(in);
    return narrow_pair<E>(load_vec(f, 2 * i, total), load_vec(f, 2 * i + 1, total));
  }
}

// Vector i of the result into the caller's output, widened for Wire.
template <class E, bool Wire>
__device__ __forceinline__ void store_result(void *out, uint64_t i, uint64_t total, uint4 v) {
  if constexpr (!Wire) {
    store_vec(static_cast<typename E::S *>(out), i, total, v);
  } else {
    uint4 lo, hi;
    widen_pair<E>(v, &lo, &hi);
    store_vec(static_cast<float *>(out), 2 * i, total, lo);
    store_vec(static_cast<float *>(out), 2 * i + 1, total, hi);
  }
}

// Calls f.template run<Elem, Op>() for a half type (a wire dtype);
// cudaErrorInvalidValue for any other.
template <class F>
cudaError_t with_half_types(int32_t dtype, int32_t op, const F &f) {
  if (dtype == PLX_FLOAT16) return with_op<HalfElem>(op, f);
  if (dtype == PLX_BFLOAT16) return with_op<BFloat16Elem>(op, f);
  return cudaErrorInvalidValue;
}

}  // namespace plexus::kernels::device

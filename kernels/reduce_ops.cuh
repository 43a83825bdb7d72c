// Element types and reduction operators on the device, with exactly the
// numerics of core/cpu_reduce.hpp (so a host reference made with
// core::reduce_into matches bit for bit): integers wrap and AVG truncates
// (in 64 bits); float16/bfloat16 accumulate in float32 and round once (to
// nearest even); MIN/MAX give NaN when any input is NaN and order -0.0
// below +0.0; every NaN result is stored as the type's canonical quiet NaN.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/vectors.cuh"
#include "plexus/types.h"

namespace plexus::kernels::device {

template <class T>
struct IntElem {
  using S = T;
  using A = T;
  static __device__ __forceinline__ A load(S v) { return v; }
  static __device__ __forceinline__ S store(A a) { return a; }
};

template <class F>
struct FloatElem {
  using S = F;
  using A = F;
  static __device__ __forceinline__ A load(S v) { return v; }
  static __device__ __forceinline__ S store(A a) {
    if (a == a) return a;
    if constexpr (sizeof(F) == 4) return __uint_as_float(0x7FC00000u);
    else return __longlong_as_double(0x7FF8000000000000ll);
  }
};

struct HalfElem {
  using S = uint16_t;
  using A = float;
  static __device__ __forceinline__ A load(S v) { return __half2float(__ushort_as_half(v)); }
  static __device__ __forceinline__ S store(A a) {
    return a == a ? __half_as_ushort(__float2half_rn(a)) : uint16_t{0x7E00};
  }
};

struct BFloat16Elem {
  using S = uint16_t;
  using A = float;
  static __device__ __forceinline__ A load(S v) { return __uint_as_float(uint32_t{v} << 16); }
  // Round to nearest even on the bits, as the CPU path does (overflow
  // rounds to infinity); NaN is canonical.
  static __device__ __forceinline__ S store(A a) {
    if (a != a) return uint16_t{0x7FC0};
    const uint32_t bits = __float_as_uint(a);
    return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
};

template <class A>
__device__ __forceinline__ A add(A a, A b) {
  if constexpr (std::is_integral_v<A>) return A(std::make_unsigned_t<A>(a) + std::make_unsigned_t<A>(b));
  else return a + b;
}

template <class A>
__device__ __forceinline__ A mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return A(std::make_unsigned_t<A>(a) * std::make_unsigned_t<A>(b));
  else return a * b;
}

template <class A>
__device__ __forceinline__ A nan_of() {
  if constexpr (sizeof(A) == 4) return __uint_as_float(0x7FC00000u);
  else return __longlong_as_double(0x7FF8000000000000ll);
}

template <class A>
__device__ __forceinline__ A min_of(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    if (a != a || b != b) return nan_of<A>();
    if (a == b) {
      if constexpr (sizeof(A) == 4) return __uint_as_float(__float_as_uint(a) | __float_as_uint(b));
      else return __longlong_as_double(__double_as_longlong(a) | __double_as_longlong(b));
    }
  }
  return b < a ? b : a;
}

template <class A>
__device__ __forceinline__ A max_of(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    if (a != a || b != b) return nan_of<A>();
    if (a == b) {
      if constexpr (sizeof(A) == 4) return __uint_as_float(__float_as_uint(a) & __float_as_uint(b));
      else return __longlong_as_double(__double_as_longlong(a) & __double_as_longlong(b));
    }
  }
  return b > a ? b : a;
}

template <int Op, class A>
__device__ __forceinline__ A combine(A a, A b) {
  if constexpr (Op == PLX_SUM || Op == PLX_AVG) return add(a, b);
  else if constexpr (Op == PLX_PROD) return mul(a, b);
  else if constexpr (Op == PLX_MIN) return min_of(a, b);
  else return max_of(a, b);
}

template <int Op, class A>
__device__ __forceinline__ A finish(A sum, int n) {
  if constexpr (Op != PLX_AVG) return sum;
  else if constexpr (std::is_floating_point_v<A>) return sum / A(n);
  else if constexpr (std::is_signed_v<A>) return A(int64_t(sum) / n);
  else return A(uint64_t(sum) / uint64_t(n));
}

// One vector's reduction: inputs added in rank order, so every rank that
// reduces the same inputs gets the same bits.
template <class E, int Op>
struct VecReduce {
  using S = typename E::S;
  static constexpr int V = 16 / sizeof(S);
  typename E::A acc[V];

  __device__ __forceinline__ void add(uint4 v, bool first) {
    Vec<S> x;
    x.v = v;
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = first ? E::load(x.e[j]) : combine<Op>(acc[j], E::load(x.e[j]));
  }
  __device__ __forceinline__ uint4 result(int nranks) const {
    Vec<S> x;
#pragma unroll
    for (int j = 0; j < V; ++j) x.e[j] = E::store(finish<Op>(acc[j], nranks));
    return x.v;
  }
};

// Calls f.template run<Elem, Op>() for a runtime dtype and op;
// cudaErrorInvalidValue for values outside the tables.
template <class E, class F>
cudaError_t with_op(int32_t op, const F &f) {
  switch (op) {
    case PLX_SUM: return f.template run<E, PLX_SUM>();
    case PLX_PROD: return f.template run<E, PLX_PROD>();
    case PLX_MIN: return f.template run<E, PLX_MIN>();
    case PLX_MAX: return f.template run<E, PLX_MAX>();
    case PLX_AVG: return f.template run<E, PLX_AVG>();
    default: return cudaErrorInvalidValue;
  }
}

template <class F>
cudaError_t with_types(int32_t dtype, int32_t op, const F &f) {
  switch (dtype) {
    case PLX_INT8: return with_op<IntElem<int8_t>>(op, f);
    case PLX_UINT8: return with_op<IntElem<uint8_t>>(op, f);
    case PLX_INT32: return with_op<IntElem<int32_t>>(op, f);
    case PLX_UINT32: return with_op<IntElem<uint32_t>>(op, f);
    case PLX_INT64: return with_op<IntElem<int64_t>>(op, f);
    case PLX_UINT64: return with_op<IntElem<uint64_t>>(op, f);
    case PLX_FLOAT16: return with_op<HalfElem>(op, f);
    case PLX_BFLOAT16: return with_op<BFloat16Elem>(op, f);
    case PLX_FLOAT32: return with_op<FloatElem<float>>(op, f);
    case PLX_FLOAT64: return with_op<FloatElem<double>>(op, f);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace plexus::kernels::device

// AVX-512 (F, BW, VL) reduction kernels; results match cpu_reduce.cpp's
// scalar kernels bit for bit. The structure is cpu_reduce_avx2.cpp's (target
// attributes on every function, same block loop) with 512-bit lanes and mask
// registers; it avoids AVX-512 DQ and BF16 (vcvtneps2bf16 flushes subnormals,
// the scalar rounding does not).
#include "core/cpu_reduce.hpp"

#if defined(__x86_64__)

// GCC 12.2 flags the self-initialisation inside _mm512_undefined_*() once it
// is inlined (GCC bug 105593, fixed in 12.3); the header is correct.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#define PLX_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

namespace plexus::core::detail {
namespace {

// ---- integer lanes: wrapping add/mul, min/max by signedness ----

// No 8-bit multiply: the low byte of a 16-bit product only depends on the
// low bytes, so multiply even and odd bytes as 16-bit lanes.
PLX_AVX512 __m512i mul_epi8(__m512i a, __m512i b) {
  const __m512i even = _mm512_mullo_epi16(a, b);
  const __m512i odd = _mm512_mullo_epi16(_mm512_srli_epi16(a, 8), _mm512_srli_epi16(b, 8));
  return _mm512_or_si512(_mm512_and_si512(even, _mm512_set1_epi16(0xFF)), _mm512_slli_epi16(odd, 8));
}

// vpmullq needs AVX-512 DQ: lo*lo + ((hi*lo + lo*hi) << 32), all mod 2^64.
PLX_AVX512 __m512i mul_epi64(__m512i a, __m512i b) {
  const __m512i cross = _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a, 32), b),
                                         _mm512_mul_epu32(a, _mm512_srli_epi64(b, 32)));
  return _mm512_add_epi64(_mm512_mul_epu32(a, b), _mm512_slli_epi64(cross, 32));
}

template <class S>
struct IntVec {
  using Store = S;
  using V = __m512i;
  static constexpr size_t width = 64 / sizeof(S);
  static constexpr bool is_8 = sizeof(S) == 1, is_32 = sizeof(S) == 4, is_signed = std::is_signed_v<S>;

  PLX_AVX512 static V load(const S *p) { return _mm512_loadu_si512(p); }
  PLX_AVX512 static void store(S *p, V v) { _mm512_storeu_si512(p, v); }
  PLX_AVX512 static V add(V a, V b) {
    return is_8 ? _mm512_add_epi8(a, b) : is_32 ? _mm512_add_epi32(a, b) : _mm512_add_epi64(a, b);
  }
  PLX_AVX512 static V mul(V a, V b) {
    return is_8 ? mul_epi8(a, b) : is_32 ? _mm512_mullo_epi32(a, b) : mul_epi64(a, b);
  }
  PLX_AVX512 static V min(V a, V b) {
    if constexpr (is_8) return is_signed ? _mm512_min_epi8(a, b) : _mm512_min_epu8(a, b);
    if constexpr (is_32) return is_signed ? _mm512_min_epi32(a, b) : _mm512_min_epu32(a, b);
    return is_signed ? _mm512_min_epi64(a, b) : _mm512_min_epu64(a, b);
  }
  PLX_AVX512 static V max(V a, V b) {
    if constexpr (is_8) return is_signed ? _mm512_max_epi8(a, b) : _mm512_max_epu8(a, b);
    if constexpr (is_32) return is_signed ? _mm512_max_epi32(a, b) : _mm512_max_epu32(a, b);
    return is_signed ? _mm512_max_epi64(a, b) : _mm512_max_epu64(a, b);
  }
  // No vector integer division; AVG is rare enough to divide lane by lane.
  PLX_AVX512 static V div(V v, int n) {
    S lanes[width];
    store(lanes, v);
    for (S &x : lanes) x = is_signed ? S(int64_t(x) / n) : S(uint64_t(x) / uint64_t(n));
    return load(lanes);
  }
};

// ---- float lanes (float32, and float16/bfloat16 widened to float32) ----

// Bitwise OR/AND of floats without AVX-512 DQ.
PLX_AVX512 __m512 or_ps(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
PLX_AVX512 __m512 and_ps(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
PLX_AVX512 __m512d or_pd(__m512d a, __m512d b) {
  return _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(a), _mm512_castpd_si512(b)));
}
PLX_AVX512 __m512d and_pd(__m512d a, __m512d b) {
  return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), _mm512_castpd_si512(b)));
}

// The scalar rules: NaN if either is NaN (all-ones, canonical once stored);
// on equal values OR (min) / AND (max) of the bits orders -0.0 below +0.0.
struct F32Ops {
  using V = __m512;
  static constexpr size_t width = 16;
  PLX_AVX512 static V add(V a, V b) { return _mm512_add_ps(a, b); }
  PLX_AVX512 static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  PLX_AVX512 static V div(V v, int n) { return _mm512_div_ps(v, _mm512_set1_ps(float(n))); }
  PLX_AVX512 static V min(V a, V b) {
    const V m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), _mm512_min_ps(a, b), or_ps(a, b));
    return nan_where(m, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), -1);
  }
  PLX_AVX512 static V max(V a, V b) {
    const V m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), _mm512_max_ps(a, b), and_ps(a, b));
    return nan_where(m, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), -1);
  }
  PLX_AVX512 static V canonical(V v) {
    return nan_where(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), 0x7FC00000);
  }
  PLX_AVX512 static V nan_where(V v, __mmask16 lanes, int nan_bits) {
    return _mm512_mask_mov_ps(v, lanes, _mm512_castsi512_ps(_mm512_set1_epi32(nan_bits)));
  }
};

struct Float32Vec : F32Ops {
  using Store = float;
  PLX_AVX512 static V load(const float *p) { return _mm512_loadu_ps(p); }
  PLX_AVX512 static void store(float *p, V v) { _mm512_storeu_ps(p, canonical(v)); }
};

struct Float16Vec : F32Ops {
  using Store = uint16_t;
  PLX_AVX512 static V load(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  PLX_AVX512 static void store(uint16_t *p, V v) {
    const __m256i half = _mm512_cvtps_ph(canonical(v), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), half);
  }
};

// bfloat16 is the top half of a float32; rounding adds 0x7FFF plus the kept
// lsb (ties to even) as the scalar path does, then narrows the lanes.
struct BFloat16Vec : F32Ops {
  using Store = uint16_t;
  PLX_AVX512 static V load(const uint16_t *p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  PLX_AVX512 static void store(uint16_t *p, V v) {
    const __m512i bits = _mm512_castps_si512(canonical(v));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF));
    const __m512i top = _mm512_srli_epi32(_mm512_add_epi32(bits, bias), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), _mm512_cvtepi32_epi16(top));
  }
};

struct Float64Vec {
  using Store = double;
  using V = __m512d;
  static constexpr size_t width = 8;
  PLX_AVX512 static V load(const double *p) { return _mm512_loadu_pd(p); }
  PLX_AVX512 static void store(double *p, V v) { _mm512_storeu_pd(p, canonical(v)); }
  PLX_AVX512 static V add(V a, V b) { return _mm512_add_pd(a, b); }
  PLX_AVX512 static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  PLX_AVX512 static V div(V v, int n) { return _mm512_div_pd(v, _mm512_set1_pd(double(n))); }
  PLX_AVX512 static V min(V a, V b) {
    const V m = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ), _mm512_min_pd(a, b), or_pd(a, b));
    return nan_where(m, _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q), -1);
  }
  PLX_AVX512 static V max(V a, V b) {
    const V m = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ), _mm512_max_pd(a, b), and_pd(a, b));
    return nan_where(m, _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q), -1);
  }
  PLX_AVX512 static V canonical(V v) {
    return nan_where(v, _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q), 0x7FF8000000000000);
  }
  PLX_AVX512 static V nan_where(V v, __mmask8 lanes, int64_t nan_bits) {
    return _mm512_mask_mov_pd(v, lanes, _mm512_castsi512_pd(_mm512_set1_epi64(nan_bits)));
  }
};

// ---- the kernel: blocks of unroll vectors, all sources per block ----

constexpr int unroll = 4;

template <class P, plx_reduce_op Op>
PLX_AVX512 typename P::V combine(typename P::V a, typename P::V b) {
  if constexpr (Op == PLX_SUM || Op == PLX_AVG) return P::add(a, b);
  else if constexpr (Op == PLX_PROD) return P::mul(a, b);
  else if constexpr (Op == PLX_MIN) return P::min(a, b);
  else return P::max(a, b);
}

// AVG: one division of the sum at the end, as in the scalar kernels.
template <class P, plx_reduce_op Op>
PLX_AVX512 typename P::V finish(typename P::V acc, int nsrc) {
  if constexpr (Op == PLX_AVG) return P::div(acc, nsrc);
  else return acc;
}

template <class P>
const typename P::Store *source(const ReduceCall &c, int s, size_t i) {
  return static_cast<const typename P::Store *>(c.srcs[s]) + i;
}

// Reads the block from every source before writing it, so dst may be a source.
template <class P, plx_reduce_op Op, int U>
PLX_AVX512 void reduce_vectors(const ReduceCall &c, size_t i) {
  typename P::V acc[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) acc[u] = P::load(source<P>(c, 0, i) + u * P::width);
  for (int s = 1; s < c.nsrc; ++s)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[u] = combine<P, Op>(acc[u], P::load(source<P>(c, s, i) + u * P::width));
  auto *dst = static_cast<typename P::Store *>(c.dst) + i;
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) P::store(dst + u * P::width, finish<P, Op>(acc[u], c.nsrc));
}

// The last n < width elements go through a zero-padded vector, so the tail
// is computed by the same instructions as the rest.
template <class P, plx_reduce_op Op>
PLX_AVX512 void reduce_tail(const ReduceCall &c, size_t i, size_t n) {
  typename P::Store lanes[P::width] = {};
  std::memcpy(lanes, source<P>(c, 0, i), n * sizeof(lanes[0]));
  typename P::V acc = P::load(lanes);
  for (int s = 1; s < c.nsrc; ++s) {
    std::memcpy(lanes, source<P>(c, s, i), n * sizeof(lanes[0]));
    acc = combine<P, Op>(acc, P::load(lanes));
  }
  P::store(lanes, finish<P, Op>(acc, c.nsrc));
  std::memcpy(static_cast<typename P::Store *>(c.dst) + i, lanes, n * sizeof(lanes[0]));
}

template <class P, plx_reduce_op Op>
PLX_AVX512 void reduce_typed(const ReduceCall &c) {
  size_t i = 0;
  for (; i + unroll * P::width <= c.count; i += unroll * P::width) reduce_vectors<P, Op, unroll>(c, i);
  for (; i + P::width <= c.count; i += P::width) reduce_vectors<P, Op, 1>(c, i);
  if (i < c.count) reduce_tail<P, Op>(c, i, c.count - i);
}

template <class P>
PLX_AVX512 void reduce_by_op(const ReduceCall &c) {
  switch (c.op) {
    case PLX_SUM: return reduce_typed<P, PLX_SUM>(c);
    case PLX_PROD: return reduce_typed<P, PLX_PROD>(c);
    case PLX_MIN: return reduce_typed<P, PLX_MIN>(c);
    case PLX_MAX: return reduce_typed<P, PLX_MAX>(c);
    default: return reduce_typed<P, PLX_AVG>(c);
  }
}

}  // namespace

bool reduce_avx512(const ReduceCall &c) {
  switch (c.dtype) {
    case PLX_INT8: reduce_by_op<IntVec<int8_t>>(c); break;
    case PLX_UINT8: reduce_by_op<IntVec<uint8_t>>(c); break;
    case PLX_INT32: reduce_by_op<IntVec<int32_t>>(c); break;
    case PLX_UINT32: reduce_by_op<IntVec<uint32_t>>(c); break;
    case PLX_INT64: reduce_by_op<IntVec<int64_t>>(c); break;
    case PLX_UINT64: reduce_by_op<IntVec<uint64_t>>(c); break;
    case PLX_FLOAT16: reduce_by_op<Float16Vec>(c); break;
    case PLX_BFLOAT16: reduce_by_op<BFloat16Vec>(c); break;
    case PLX_FLOAT32: reduce_by_op<Float32Vec>(c); break;
    default: reduce_by_op<Float64Vec>(c); break;
  }
  return true;
}

}  // namespace plexus::core::detail

#else

namespace plexus::core::detail {
bool reduce_avx512(const ReduceCall &) { return false; }
}  // namespace plexus::core::detail

#endif

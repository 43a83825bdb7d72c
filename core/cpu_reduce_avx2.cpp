// AVX2 (+FMA, F16C) reduction kernels; results match cpu_reduce.cpp's scalar
// kernels bit for bit. Every function carries a target attribute instead of
// the file being built with -mavx2: then nothing else compiled here (inline
// code from headers) can carry AVX2 instructions into code that runs on
// CPUs without it, and the build needs no per-file flags.
#include "core/cpu_reduce.hpp"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#define PLX_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace plexus::core::detail {
namespace {

// ---- integer lanes: wrapping add/mul, min/max by signedness ----

// No 8-bit multiply: the low byte of a 16-bit product only depends on the
// low bytes, so multiply even and odd bytes as 16-bit lanes.
PLX_AVX2 __m256i mul_epi8(__m256i a, __m256i b) {
  const __m256i even = _mm256_mullo_epi16(a, b);
  const __m256i odd = _mm256_mullo_epi16(_mm256_srli_epi16(a, 8), _mm256_srli_epi16(b, 8));
  return _mm256_or_si256(_mm256_and_si256(even, _mm256_set1_epi16(0xFF)), _mm256_slli_epi16(odd, 8));
}

// No 64-bit multiply: lo*lo + ((hi*lo + lo*hi) << 32), all mod 2^64.
PLX_AVX2 __m256i mul_epi64(__m256i a, __m256i b) {
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                                         _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
  return _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64(cross, 32));
}

// a > b per 64-bit lane; unsigned compares with the sign bits flipped.
template <class S>
PLX_AVX2 __m256i greater_epi64(__m256i a, __m256i b) {
  if constexpr (std::is_signed_v<S>) return _mm256_cmpgt_epi64(a, b);
  const __m256i flip = _mm256_set1_epi64x(INT64_MIN);
  return _mm256_cmpgt_epi64(_mm256_xor_si256(a, flip), _mm256_xor_si256(b, flip));
}

template <class S>
struct IntVec {
  using Store = S;
  using V = __m256i;
  static constexpr size_t width = 32 / sizeof(S);
  static constexpr bool is_8 = sizeof(S) == 1, is_32 = sizeof(S) == 4, is_signed = std::is_signed_v<S>;

  PLX_AVX2 static V load(const S *p) { return _mm256_loadu_si256(reinterpret_cast<const V *>(p)); }
  PLX_AVX2 static void store(S *p, V v) { _mm256_storeu_si256(reinterpret_cast<V *>(p), v); }
  PLX_AVX2 static V add(V a, V b) {
    return is_8 ? _mm256_add_epi8(a, b) : is_32 ? _mm256_add_epi32(a, b) : _mm256_add_epi64(a, b);
  }
  PLX_AVX2 static V mul(V a, V b) {
    return is_8 ? mul_epi8(a, b) : is_32 ? _mm256_mullo_epi32(a, b) : mul_epi64(a, b);
  }
  PLX_AVX2 static V min(V a, V b) {
    if constexpr (is_8) return is_signed ? _mm256_min_epi8(a, b) : _mm256_min_epu8(a, b);
    if constexpr (is_32) return is_signed ? _mm256_min_epi32(a, b) : _mm256_min_epu32(a, b);
    return _mm256_blendv_epi8(a, b, greater_epi64<S>(a, b));
  }
  PLX_AVX2 static V max(V a, V b) {
    if constexpr (is_8) return is_signed ? _mm256_max_epi8(a, b) : _mm256_max_epu8(a, b);
    if constexpr (is_32) return is_signed ? _mm256_max_epi32(a, b) : _mm256_max_epu32(a, b);
    return _mm256_blendv_epi8(b, a, greater_epi64<S>(a, b));
  }
  // No vector integer division; AVG is rare enough to divide lane by lane.
  PLX_AVX2 static V div(V v, int n) {
    S lanes[width];
    store(lanes, v);
    for (S &x : lanes) x = is_signed ? S(int64_t(x) / n) : S(uint64_t(x) / uint64_t(n));
    return load(lanes);
  }
};

// ---- float lanes (float32, and float16/bfloat16 widened to float32) ----

// The scalar rules: NaN if either is NaN (all-ones, canonical once stored);
// on equal values OR (min) / AND (max) of the bits orders -0.0 below +0.0.
struct F32Ops {
  using V = __m256;
  static constexpr size_t width = 8;
  PLX_AVX2 static V add(V a, V b) { return _mm256_add_ps(a, b); }
  PLX_AVX2 static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  PLX_AVX2 static V div(V v, int n) { return _mm256_div_ps(v, _mm256_set1_ps(float(n))); }
  PLX_AVX2 static V min(V a, V b) {
    const V m = _mm256_blendv_ps(_mm256_min_ps(a, b), _mm256_or_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_or_ps(m, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  PLX_AVX2 static V max(V a, V b) {
    const V m = _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_and_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_or_ps(m, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  PLX_AVX2 static V canonical(V v) {
    const V nan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000));
    return _mm256_blendv_ps(v, nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
};

struct Float32Vec : F32Ops {
  using Store = float;
  PLX_AVX2 static V load(const float *p) { return _mm256_loadu_ps(p); }
  PLX_AVX2 static void store(float *p, V v) { _mm256_storeu_ps(p, canonical(v)); }
};

struct Float16Vec : F32Ops {
  using Store = uint16_t;
  PLX_AVX2 static V load(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  }
  PLX_AVX2 static void store(uint16_t *p, V v) {
    const __m128i half = _mm256_cvtps_ph(canonical(v), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), half);
  }
};

// bfloat16 is the top half of a float32; rounding adds 0x7FFF plus the kept
// lsb (ties to even) as the scalar path does, then packs the halves.
struct BFloat16Vec : F32Ops {
  using Store = uint16_t;
  PLX_AVX2 static V load(const uint16_t *p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  PLX_AVX2 static void store(uint16_t *p, V v) {
    const __m256i bits = _mm256_castps_si256(canonical(v));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
    const __m256i top = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(top, top), 0xD8);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), _mm256_castsi256_si128(packed));
  }
};

struct Float64Vec {
  using Store = double;
  using V = __m256d;
  static constexpr size_t width = 4;
  PLX_AVX2 static V load(const double *p) { return _mm256_loadu_pd(p); }
  PLX_AVX2 static void store(double *p, V v) { _mm256_storeu_pd(p, canonical(v)); }
  PLX_AVX2 static V add(V a, V b) { return _mm256_add_pd(a, b); }
  PLX_AVX2 static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  PLX_AVX2 static V div(V v, int n) { return _mm256_div_pd(v, _mm256_set1_pd(double(n))); }
  PLX_AVX2 static V min(V a, V b) {
    const V m = _mm256_blendv_pd(_mm256_min_pd(a, b), _mm256_or_pd(a, b), _mm256_cmp_pd(a, b, _CMP_EQ_OQ));
    return _mm256_or_pd(m, _mm256_cmp_pd(a, b, _CMP_UNORD_Q));
  }
  PLX_AVX2 static V max(V a, V b) {
    const V m = _mm256_blendv_pd(_mm256_max_pd(a, b), _mm256_and_pd(a, b), _mm256_cmp_pd(a, b, _CMP_EQ_OQ));
    return _mm256_or_pd(m, _mm256_cmp_pd(a, b, _CMP_UNORD_Q));
  }
  PLX_AVX2 static V canonical(V v) {
    const V nan = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FF8000000000000));
    return _mm256_blendv_pd(v, nan, _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  }
};

#define PLX_KERNEL_TARGET PLX_AVX2
#include "core/cpu_reduce_kernel.inc"
#undef PLX_KERNEL_TARGET

// Whole vectors of float32 to the half type H (stores round as the
// reductions do, NaN canonical) and back (loads are exact; a NaN keeps its
// payload, made quiet, as half_to_float does); the caller converts the tail.
template <class H>
PLX_AVX2 size_t narrow_vectors(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) H::store(dst + i, Float32Vec::load(src + i));
  return i;
}

template <class H>
PLX_AVX2 size_t widen_vectors(const uint16_t *src, float *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, H::load(src + i));
  return i;
}

}  // namespace

bool reduce_avx2(const ReduceCall &c) { return reduce_dispatch(c); }

size_t narrow_avx2(const float *src, uint16_t *dst, size_t n, plx_dtype wire) {
  return wire == PLX_FLOAT16 ? narrow_vectors<Float16Vec>(src, dst, n) : narrow_vectors<BFloat16Vec>(src, dst, n);
}

size_t widen_avx2(const uint16_t *src, float *dst, size_t n, plx_dtype wire) {
  return wire == PLX_FLOAT16 ? widen_vectors<Float16Vec>(src, dst, n) : widen_vectors<BFloat16Vec>(src, dst, n);
}

}  // namespace plexus::core::detail

#else

namespace plexus::core::detail {
bool reduce_avx2(const ReduceCall &) { return false; }
size_t narrow_avx2(const float *, uint16_t *, size_t, plx_dtype) { return 0; }
size_t widen_avx2(const uint16_t *, float *, size_t, plx_dtype) { return 0; }
}  // namespace plexus::core::detail

#endif

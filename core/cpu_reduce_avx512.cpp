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

#define PLX_KERNEL_TARGET PLX_AVX512
#include "core/cpu_reduce_kernel.inc"
#undef PLX_KERNEL_TARGET

}  // namespace

bool reduce_avx512(const ReduceCall &c) { return reduce_dispatch(c); }

}  // namespace plexus::core::detail

#else

namespace plexus::core::detail {
bool reduce_avx512(const ReduceCall &) { return false; }
}  // namespace plexus::core::detail

#endif

// CPU reductions: ISA detection, argument checks, dispatch, and the scalar
// kernels. The scalar kernels define the results; the SIMD files must match
// them bit for bit (tests/core/test_cpu_reduce.cpp compares every path).
#include "core/cpu_reduce.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

// ---- conversions (round to nearest even, NaN already canonical or kept) ----

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  if (exponent == 0x1F)  // inf, or NaN made quiet as vcvtph2ps does
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13) | (mantissa ? 0x400000u : 0));
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24 is exact in float
    const float magnitude = float(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Float magnitudes below 2^-14 (bits x) to a half subnormal (or the smallest
// normal, when rounding carries into the exponent field, which encodes it).
uint16_t tiny_float_to_half(uint32_t x) {
  const uint32_t exponent = x >> 23;
  if (exponent < 101) return 0;  // below 2^-26: rounds to zero
  const uint32_t mantissa = (x & 0x7FFFFFu) | 0x800000u, shift = 126 - exponent;
  const uint32_t kept = mantissa >> shift, rest = mantissa & ((1u << shift) - 1);
  const uint32_t half_way = 1u << (shift - 1);
  const bool up = rest > half_way || (rest == half_way && (kept & 1));
  return uint16_t(kept + up);
}

uint16_t float_to_half(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t x = bits & 0x7FFFFFFFu;
  if (x > 0x7F800000u) return 0x7E00;             // NaN: canonical
  if (x >= 0x477FF000u) return sign | 0x7C00;     // >= 65520 rounds to inf
  if (x < 0x38800000u) return sign | tiny_float_to_half(x);
  const uint32_t rebiased = x - (112u << 23);     // exponent bias 127 -> 15
  return uint16_t(sign | ((rebiased + 0xFFFu + ((rebiased >> 13) & 1)) >> 13));
}

float bfloat16_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// Carries into the exponent round to inf correctly; NaN must come canonical
// (0x7FC00000 -> 0x7FC0), a low-payload NaN would otherwise round to inf.
uint16_t float_to_bfloat16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
}

template <class F>
F canonical(F v) {
  if (v == v) return v;
  if constexpr (sizeof(F) == 4) return std::bit_cast<F>(0x7FC00000u);
  else return std::bit_cast<F>(uint64_t{0x7FF8000000000000u});
}

// ---- element types: storage -> accumulator -> storage ----

template <class S>
struct IntType {
  using Store = S;
  using Acc = S;
  static Acc load(S v) { return v; }
  static S store(Acc a) { return a; }
};

template <class F>
struct FloatType {
  using Store = F;
  using Acc = F;
  static Acc load(F v) { return v; }
  static F store(Acc a) { return canonical(a); }
};

struct Float16Type {
  using Store = uint16_t;
  using Acc = float;
  static Acc load(uint16_t v) { return half_to_float(v); }
  static uint16_t store(Acc a) { return float_to_half(canonical(a)); }
};

struct BFloat16Type {
  using Store = uint16_t;
  using Acc = float;
  static Acc load(uint16_t v) { return bfloat16_to_float(v); }
  static uint16_t store(Acc a) { return float_to_bfloat16(canonical(a)); }
};

// ---- operators on accumulators ----

template <class A>
using Bits = std::conditional_t<sizeof(A) == 4, uint32_t, uint64_t>;

// Integers wrap: the arithmetic happens on the unsigned type (uint8 promotes
// to int, where neither 255 + 255 nor 255 * 255 can overflow).
template <class A>
A add(A a, A b) {
  if constexpr (std::is_integral_v<A>) return A(std::make_unsigned_t<A>(a) + std::make_unsigned_t<A>(b));
  else return a + b;
}

template <class A>
A mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return A(std::make_unsigned_t<A>(a) * std::make_unsigned_t<A>(b));
  else return a * b;
}

// Floats: NaN wins (stores canonicalize it); for equal values, OR-ing the
// bits makes min(-0.0, +0.0) = -0.0 whatever the order, as the SIMD paths do.
template <class A>
A min_of(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    if (a != a || b != b) return std::numeric_limits<A>::quiet_NaN();
    if (a == b) return std::bit_cast<A>(Bits<A>(std::bit_cast<Bits<A>>(a) | std::bit_cast<Bits<A>>(b)));
  }
  return b < a ? b : a;
}

// As min_of; AND-ing the bits makes max(-0.0, +0.0) = +0.0.
template <class A>
A max_of(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    if (a != a || b != b) return std::numeric_limits<A>::quiet_NaN();
    if (a == b) return std::bit_cast<A>(Bits<A>(std::bit_cast<Bits<A>>(a) & std::bit_cast<Bits<A>>(b)));
  }
  return b > a ? b : a;
}

template <plx_reduce_op Op, class A>
A combine(A a, A b) {
  if constexpr (Op == PLX_SUM || Op == PLX_AVG) return add(a, b);
  else if constexpr (Op == PLX_PROD) return mul(a, b);
  else if constexpr (Op == PLX_MIN) return min_of(a, b);
  else return max_of(a, b);
}

// AVG: one division at the end; integers truncate toward zero (done in 64
// bits so that nsrc never wraps in a narrow type).
template <plx_reduce_op Op, class A>
A finish(A sum, int nsrc) {
  if constexpr (Op != PLX_AVG) return sum;
  else if constexpr (std::is_floating_point_v<A>) return sum / A(nsrc);
  else if constexpr (std::is_signed_v<A>) return A(int64_t(sum) / nsrc);
  else return A(uint64_t(sum) / uint64_t(nsrc));
}

// ---- the scalar kernel: blocks of elements, all sources per block ----

constexpr size_t scalar_block = 128;

template <class T, plx_reduce_op Op>
void reduce_block(const detail::ReduceCall &c, size_t base, size_t n) {
  using S = typename T::Store;
  typename T::Acc acc[scalar_block];
  const S *first = static_cast<const S *>(c.srcs[0]) + base;
  for (size_t i = 0; i < n; ++i) acc[i] = T::load(first[i]);
  for (int s = 1; s < c.nsrc; ++s) {
    const S *src = static_cast<const S *>(c.srcs[s]) + base;
    for (size_t i = 0; i < n; ++i) acc[i] = combine<Op>(acc[i], T::load(src[i]));
  }
  S *dst = static_cast<S *>(c.dst) + base;
  for (size_t i = 0; i < n; ++i) dst[i] = T::store(finish<Op>(acc[i], c.nsrc));
  if (c.copy) std::memcpy(static_cast<S *>(c.copy) + base, dst, n * sizeof(S));
}

template <class T, plx_reduce_op Op>
void reduce_typed(const detail::ReduceCall &c) {
  for (size_t base = 0; base < c.count; base += scalar_block)
    reduce_block<T, Op>(c, base, std::min(scalar_block, c.count - base));
}

template <class T>
void reduce_by_op(const detail::ReduceCall &c) {
  switch (c.op) {
    case PLX_SUM: return reduce_typed<T, PLX_SUM>(c);
    case PLX_PROD: return reduce_typed<T, PLX_PROD>(c);
    case PLX_MIN: return reduce_typed<T, PLX_MIN>(c);
    case PLX_MAX: return reduce_typed<T, PLX_MAX>(c);
    default: return reduce_typed<T, PLX_AVG>(c);
  }
}

// ---- ISA detection ----

#if defined(__x86_64__) || defined(__i386__)
// CPUID leaf 1: clang before 16 does not know "f16c" for __builtin_cpu_supports.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}
#endif

CpuIsa probe_cpu_isa() {
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's checks include the OS saving the AVX / AVX-512 register state.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return CpuIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    return CpuIsa::avx2;
#endif
  return CpuIsa::scalar;
}

plx_status check_call(plx_dtype dtype, plx_reduce_op op, int nsrc, CpuIsa isa) {
  if (dtype < PLX_INT8 || dtype > PLX_FLOAT64)
    return fail(PLX_ERR_INVALID_ARGUMENT, "reduce: unknown dtype {}", dtype);
  if (op < PLX_SUM || op > PLX_AVG)
    return fail(PLX_ERR_INVALID_ARGUMENT, "reduce: unknown reduction op {}", op);
  if (nsrc < 1) return fail(PLX_ERR_INVALID_ARGUMENT, "reduce: {} sources (need at least 1)", nsrc);
  if (isa > detect_cpu_isa())
    return fail(PLX_ERR_UNSUPPORTED, "reduce: this CPU cannot run {} (it has {})", cpu_isa_name(isa),
                cpu_isa_name(detect_cpu_isa()));
  return PLX_OK;
}

plx_status check_pointers(void *dst, const void *const *srcs, int nsrc) {
  if (dst == nullptr || srcs == nullptr)
    return fail(PLX_ERR_INVALID_ARGUMENT, "reduce: null {} pointer", dst ? "sources" : "destination");
  for (int s = 0; s < nsrc; ++s)
    if (srcs[s] == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "reduce: source {} is null", s);
  return PLX_OK;
}

}  // namespace

namespace detail {

void reduce_scalar(const ReduceCall &c) {
  switch (c.dtype) {
    case PLX_INT8: return reduce_by_op<IntType<int8_t>>(c);
    case PLX_UINT8: return reduce_by_op<IntType<uint8_t>>(c);
    case PLX_INT32: return reduce_by_op<IntType<int32_t>>(c);
    case PLX_UINT32: return reduce_by_op<IntType<uint32_t>>(c);
    case PLX_INT64: return reduce_by_op<IntType<int64_t>>(c);
    case PLX_UINT64: return reduce_by_op<IntType<uint64_t>>(c);
    case PLX_FLOAT16: return reduce_by_op<Float16Type>(c);
    case PLX_BFLOAT16: return reduce_by_op<BFloat16Type>(c);
    case PLX_FLOAT32: return reduce_by_op<FloatType<float>>(c);
    default: return reduce_by_op<FloatType<double>>(c);
  }
}

}  // namespace detail

CpuIsa detect_cpu_isa() {
  static const CpuIsa detected = probe_cpu_isa();
  return detected;
}

CpuIsa clamp_cpu_isa(CpuIsa detected, const char *override_text) {
  if (override_text == nullptr) return detected;
  for (CpuIsa isa : {CpuIsa::scalar, CpuIsa::avx2, CpuIsa::avx512})
    if (std::strcmp(override_text, cpu_isa_name(isa)) == 0) return std::min(isa, detected);
  return detected;
}

CpuIsa active_cpu_isa() {
  static const CpuIsa active = [] {
    const char *text = std::getenv("PLEXUS_CPU_ISA");
    const CpuIsa isa = clamp_cpu_isa(detect_cpu_isa(), text);
    if (text != nullptr && std::strcmp(text, cpu_isa_name(isa)) != 0)
      log_warn("PLEXUS_CPU_ISA={} not usable here; using {}", text, cpu_isa_name(isa));
    return isa;
  }();
  return active;
}

const char *cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::avx512: return "avx512";
    default: return "scalar";
  }
}

plx_status reduce_into(plx_dtype dtype, plx_reduce_op op, void *dst, const void *const *srcs,
                       int nsrc, size_t count, CpuIsa isa) {
  return reduce_into_both(dtype, op, dst, nullptr, srcs, nsrc, count, isa);
}

plx_status reduce_into_both(plx_dtype dtype, plx_reduce_op op, void *dst, void *copy,
                            const void *const *srcs, int nsrc, size_t count, CpuIsa isa) {
  if (plx_status s = check_call(dtype, op, nsrc, isa)) return s;
  if (count == 0) return PLX_OK;
  if (plx_status s = check_pointers(dst, srcs, nsrc)) return s;
  const detail::ReduceCall call{dtype, op, dst, srcs, nsrc, count, copy};
  if (isa == CpuIsa::avx512 && detail::reduce_avx512(call)) return PLX_OK;
  if (isa == CpuIsa::avx2 && detail::reduce_avx2(call)) return PLX_OK;
  detail::reduce_scalar(call);
  return PLX_OK;
}

// AVX2 vectors where the CPU has them (the AVX-512 reductions add nothing
// that matters to a conversion), the scalar rounding for the rest.
plx_status narrow_floats(const float *src, void *dst, size_t n, plx_dtype wire, CpuIsa isa) {
  if (wire != PLX_BFLOAT16 && wire != PLX_FLOAT16)
    return fail(PLX_ERR_INVALID_ARGUMENT, "narrow_floats: wire dtype {} is not float16 or bfloat16", wire);
  auto *out = static_cast<uint16_t *>(dst);
  size_t i = isa >= CpuIsa::avx2 ? detail::narrow_avx2(src, out, n, wire) : 0;
  for (; i < n; ++i)
    out[i] = wire == PLX_BFLOAT16 ? float_to_bfloat16(canonical(src[i])) : float_to_half(canonical(src[i]));
  return PLX_OK;
}

plx_status widen_floats(const void *src, float *dst, size_t n, plx_dtype wire, CpuIsa isa) {
  if (wire != PLX_BFLOAT16 && wire != PLX_FLOAT16)
    return fail(PLX_ERR_INVALID_ARGUMENT, "widen_floats: wire dtype {} is not float16 or bfloat16", wire);
  const auto *in = static_cast<const uint16_t *>(src);
  size_t i = isa >= CpuIsa::avx2 ? detail::widen_avx2(in, dst, n, wire) : 0;
  for (; i < n; ++i) dst[i] = wire == PLX_BFLOAT16 ? bfloat16_to_float(in[i]) : half_to_float(in[i]);
  return PLX_OK;
}

}  // namespace plexus::core

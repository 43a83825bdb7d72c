// Elements of every plexus dtype as the reference sees them: floats widened
// to double, integers to a 128-bit integer, so the reference is computed in
// higher precision than any backend (exact for integers). The conversions
// are written here, not taken from core, so that the reference shares no
// code with the plugins it checks.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "plexus/plexus.h"

namespace plexus::conformance {

using Int = __int128;

// Storage of the two half types, so templates can tell them apart.
struct Half {
  uint16_t bits;
};
struct BFloat {
  uint16_t bits;
};

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// IEEE binary16, round to nearest even.
inline Half to_half(float f) {
  const uint32_t x = float_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return {static_cast<uint16_t>(sign | 0x7e00u)};
  if (ax >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};  // rounds past 65504
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal half; the scaling is exact
    const auto m = static_cast<uint32_t>(std::nearbyint(bits_float(ax) * 16777216.0f));
    return {static_cast<uint16_t>(sign | m)};
  }
  return {static_cast<uint16_t>(sign | ((ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13))};
}

inline float from_half(Half h) {
  const uint32_t sign = (h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1fu, m = h.bits & 0x3ffu;
  if (e == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(m), -24);
  if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
  return bits_float(sign | ((e + 112) << 23) | (m << 13));
}

inline BFloat to_bfloat(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40u)};
  return {static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

inline float from_bfloat(BFloat b) { return bits_float(static_cast<uint32_t>(b.bits) << 16); }

// widen(): an element as double (floats) or Int (integers); narrow<T>(): a
// double rounded to T (ties to even).
inline double widen(Half h) { return from_half(h); }
inline double widen(BFloat b) { return from_bfloat(b); }
inline double widen(float f) { return f; }
inline double widen(double d) { return d; }
template <typename T>
inline Int widen(T integer) {
  return integer;
}

template <typename T>
T narrow(double v);
template <>
inline Half narrow<Half>(double v) {
  return to_half(static_cast<float>(v));
}
template <>
inline BFloat narrow<BFloat>(double v) {
  return to_bfloat(static_cast<float>(v));
}
template <>
inline float narrow<float>(double v) {
  return static_cast<float>(v);
}
template <>
inline double narrow<double>(double v) {
  return v;
}

template <typename T>
constexpr bool is_float_type = std::is_same_v<T, Half> || std::is_same_v<T, BFloat> ||
                               std::is_same_v<T, float> || std::is_same_v<T, double>;

// Calls f(T{}) with T the storage type of dtype.
template <typename F>
decltype(auto) with_dtype(plx_dtype dtype, F &&f) {
  switch (dtype) {
    case PLX_INT8: return f(int8_t{});
    case PLX_UINT8: return f(uint8_t{});
    case PLX_INT32: return f(int32_t{});
    case PLX_UINT32: return f(uint32_t{});
    case PLX_INT64: return f(int64_t{});
    case PLX_UINT64: return f(uint64_t{});
    case PLX_FLOAT16: return f(Half{});
    case PLX_BFLOAT16: return f(BFloat{});
    case PLX_FLOAT32: return f(float{});
    default: return f(double{});
  }
}

bool is_float(plx_dtype dtype);
bool is_signed_int(plx_dtype dtype);
// The largest value of an integer dtype.
Int int_max(plx_dtype dtype);

// The terms of the tolerance of float results (see dtypes.cpp; the JSON
// report lists them).
double unit_roundoff(plx_dtype dtype);
double accumulator_roundoff(plx_dtype dtype);
double smallest_normal(plx_dtype dtype);

// "-170141183460469231731687303715884105728": fmt cannot print __int128.
const char *int_text(Int value, char (&buf)[48]);

}  // namespace plexus::conformance

#include "reduce.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace example_shm {
namespace {

struct Half {
  uint16_t bits;
};
struct BFloat {
  uint16_t bits;
};

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | mantissa << 13);  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | (exponent + 112) << 23 | mantissa << 13);
  const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal or zero: exact
  return sign ? -magnitude : magnitude;
}

// Round to nearest even, as the reference and every GPU do.
uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f), sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN stays NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // 65520 and up: infinity
  if (abs < 0x38800000u) {  // below 2^-14: a subnormal half; scaling by 2^24 is exact
    const auto units = static_cast<uint32_t>(std::nearbyint(std::bit_cast<float>(abs) * 16777216.0f));
    return static_cast<uint16_t>(sign | units);
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | (rounded - (112u << 23)) >> 13);
}

uint16_t float_to_bfloat(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(x >> 16 | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// How a stored type is computed: integers in 64 bits, float16 and
// bfloat16 in float, float and double as themselves.
template <typename T>
struct Num {
  using Acc = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  static Acc widen(T v) { return v; }
  static T narrow(Acc a) { return static_cast<T>(a); }
};
template <>
struct Num<float> {
  using Acc = float;
  static float widen(float v) { return v; }
  static float narrow(float a) { return a; }
};
template <>
struct Num<double> {
  using Acc = double;
  static double widen(double v) { return v; }
  static double narrow(double a) { return a; }
};
template <>
struct Num<Half> {
  using Acc = float;
  static float widen(Half v) { return half_to_float(v.bits); }
  static Half narrow(float a) { return Half{float_to_half(a)}; }
};
template <>
struct Num<BFloat> {
  using Acc = float;
  static float widen(BFloat v) { return std::bit_cast<float>(static_cast<uint32_t>(v.bits) << 16); }
  static BFloat narrow(float a) { return BFloat{float_to_bfloat(a)}; }
};

// Integer sums and products wrap (through unsigned: no undefined overflow).
template <typename A>
A wrap_add(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return a + b;
}
template <typename A>
A wrap_mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return a * b;
}
struct Sum {
  template <typename A> A operator()(A a, A b) const { return wrap_add(a, b); }
};
struct Prod {
  template <typename A> A operator()(A a, A b) const { return wrap_mul(a, b); }
};
struct Min {
  template <typename A> A operator()(A a, A b) const { return b < a ? b : a; }
};
struct Max {
  template <typename A> A operator()(A a, A b) const { return a < b ? b : a; }
};

// Through memcpy: the caller's buffers need not be aligned.
template <typename T>
T load(const void *base, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char *>(base) + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void store(void *base, size_t i, T v) {
  std::memcpy(static_cast<unsigned char *>(base) + i * sizeof(T), &v, sizeof(T));
}

constexpr size_t kBlock = 1024;  // elements reduced at once, rank by rank: the inner loop vectorises

template <typename T, typename Op>
void reduce_block(Op op, bool average, void *out, const void *const *in, int32_t n, size_t first, size_t count) {
  using N = Num<T>;
  typename N::Acc acc[kBlock];
  for (size_t i = 0; i < count; ++i) acc[i] = N::widen(load<T>(in[0], first + i));
  for (int32_t r = 1; r < n; ++r)
    for (size_t i = 0; i < count; ++i) acc[i] = op(acc[i], N::widen(load<T>(in[r], first + i)));
  for (size_t i = 0; i < count; ++i)
    store<T>(out, first + i, N::narrow(average ? acc[i] / static_cast<typename N::Acc>(n) : acc[i]));
}

template <typename T, typename Op>
void reduce_as(Op op, bool average, void *out, const void *const *in, int32_t n, size_t count) {
  for (size_t first = 0; first < count; first += kBlock)
    reduce_block<T>(op, average, out, in, n, first, std::min(kBlock, count - first));
}

template <typename T>
void reduce_typed(plx_reduce_op op, void *out, const void *const *in, int32_t n, size_t count) {
  switch (op) {
    case PLX_PROD: return reduce_as<T>(Prod{}, false, out, in, n, count);
    case PLX_MIN: return reduce_as<T>(Min{}, false, out, in, n, count);
    case PLX_MAX: return reduce_as<T>(Max{}, false, out, in, n, count);
    case PLX_AVG: return reduce_as<T>(Sum{}, true, out, in, n, count);
    default: return reduce_as<T>(Sum{}, false, out, in, n, count);
  }
}

}  // namespace

size_t dtype_size(plx_dtype dtype) {
  static const size_t sizes[PLX_DTYPE_COUNT] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
  return dtype >= 0 && dtype < PLX_DTYPE_COUNT ? sizes[dtype] : 0;
}

void reduce(plx_dtype dtype, plx_reduce_op op, void *out, const void *const *in, int32_t n, size_t count) {
  switch (dtype) {
    case PLX_INT8: return reduce_typed<int8_t>(op, out, in, n, count);
    case PLX_UINT8: return reduce_typed<uint8_t>(op, out, in, n, count);
    case PLX_INT32: return reduce_typed<int32_t>(op, out, in, n, count);
    case PLX_UINT32: return reduce_typed<uint32_t>(op, out, in, n, count);
    case PLX_INT64: return reduce_typed<int64_t>(op, out, in, n, count);
    case PLX_UINT64: return reduce_typed<uint64_t>(op, out, in, n, count);
    case PLX_FLOAT16: return reduce_typed<Half>(op, out, in, n, count);
    case PLX_BFLOAT16: return reduce_typed<BFloat>(op, out, in, n, count);
    case PLX_FLOAT32: return reduce_typed<float>(op, out, in, n, count);
    default: return reduce_typed<double>(op, out, in, n, count);
  }
}

}  // namespace example_shm

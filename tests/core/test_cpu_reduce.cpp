#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "core/dtype.hpp"
#include "core/status.hpp"

using namespace plexus::core;

namespace {

// ---- dtypes as bit formats ----

// exp_bits == 0: an integer type.
struct Dtype {
  plx_dtype id;
  const char *name;
  size_t size;
  bool is_signed;
  int exp_bits;
  int mant_bits;
};

constexpr Dtype dtypes[] = {
    {PLX_INT8, "int8", 1, true, 0, 0},          {PLX_UINT8, "uint8", 1, false, 0, 0},
    {PLX_INT32, "int32", 4, true, 0, 0},        {PLX_UINT32, "uint32", 4, false, 0, 0},
    {PLX_INT64, "int64", 8, true, 0, 0},        {PLX_UINT64, "uint64", 8, false, 0, 0},
    {PLX_FLOAT16, "float16", 2, true, 5, 10},   {PLX_BFLOAT16, "bfloat16", 2, true, 8, 7},
    {PLX_FLOAT32, "float32", 4, true, 8, 23},   {PLX_FLOAT64, "float64", 8, true, 11, 52},
};
constexpr plx_reduce_op ops[] = {PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX, PLX_AVG};
constexpr const char *op_names[] = {"sum", "prod", "min", "max", "avg"};
constexpr int source_counts[] = {1, 2, 3, 5, 8};
constexpr size_t counts[] = {0, 1, 7, 31, 64, 1000, 4099};
constexpr size_t guard = 64;  // poisoned bytes past the end catch tail overruns

bool is_float(const Dtype &d) { return d.exp_bits != 0; }
int bias(const Dtype &d) { return (1 << (d.exp_bits - 1)) - 1; }
uint64_t mant_mask(const Dtype &d) { return (uint64_t{1} << d.mant_bits) - 1; }
uint64_t exp_all_ones(const Dtype &d) { return ((uint64_t{1} << d.exp_bits) - 1) << d.mant_bits; }
uint64_t sign_bit(const Dtype &d) { return uint64_t{1} << (8 * d.size - 1); }
uint64_t canonical_nan(const Dtype &d) { return exp_all_ones(d) | (uint64_t{1} << (d.mant_bits - 1)); }

uint64_t read_bits(const Dtype &d, const void *p, size_t i) {
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const uint8_t *>(p) + i * d.size, d.size);
  return bits;
}

void write_bits(const Dtype &d, void *p, size_t i, uint64_t bits) {
  std::memcpy(static_cast<uint8_t *>(p) + i * d.size, &bits, d.size);
}

// ---- the reference: one element at a time, written from the spec ----

// Exact value of any float format's bits (float16/bfloat16 fit a float).
double decode(const Dtype &d, uint64_t bits) {
  const double sign = (bits & sign_bit(d)) ? -1.0 : 1.0;
  const uint64_t e = (bits >> d.mant_bits) & ((uint64_t{1} << d.exp_bits) - 1), m = bits & mant_mask(d);
  if (e == (uint64_t{1} << d.exp_bits) - 1) return m ? std::nan("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(double(m), 1 - bias(d) - d.mant_bits);
  return sign * std::ldexp(double(m | (uint64_t{1} << d.mant_bits)), int(e) - bias(d) - d.mant_bits);
}

// x rounded to nearest-even in a narrow float format, then encoded.
uint64_t round_and_encode(const Dtype &d, double x) {
  const uint64_t sign = std::signbit(x) ? sign_bit(d) : 0;
  const double a = std::fabs(x);
  if (std::isinf(a)) return sign | exp_all_ones(d);
  if (a == 0) return sign;
  const int e = std::max(std::ilogb(a), 1 - bias(d));
  const double quantum = std::ldexp(1.0, e - d.mant_bits);
  const double r = std::nearbyint(a / quantum) * quantum;  // ties to even (default mode)
  if (std::ilogb(r) > bias(d)) return sign | exp_all_ones(d);
  if (std::ilogb(r) < 1 - bias(d)) return sign | uint64_t(r / quantum);  // subnormal
  const uint64_t m = uint64_t(std::ldexp(r, d.mant_bits - std::ilogb(r))) & mant_mask(d);
  return sign | (uint64_t(std::ilogb(r) + bias(d)) << d.mant_bits) | m;
}

template <class A>
A ref_combine(plx_reduce_op op, A a, A b) {
  if (op == PLX_SUM || op == PLX_AVG) return a + b;
  if (op == PLX_PROD) return a * b;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<A>::quiet_NaN();
  if (a == b) return (op == PLX_MIN) == bool(std::signbit(a)) ? a : b;  // -0.0 < +0.0
  return (op == PLX_MIN) == (a < b) ? a : b;
}

// float16/bfloat16 accumulate in float, the rest in their own type.
template <class A>
uint64_t ref_float(const Dtype &d, plx_reduce_op op, const std::vector<const void *> &srcs, size_t i) {
  auto value = [&](int s) -> A {
    const uint64_t bits = read_bits(d, srcs[s], i);
    if (d.size == 2) return A(decode(d, bits));
    if constexpr (sizeof(A) == 4) return std::bit_cast<float>(uint32_t(bits));
    else return std::bit_cast<double>(bits);
  };
  A acc = value(0);
  for (size_t s = 1; s < srcs.size(); ++s) acc = ref_combine(op, acc, value(int(s)));
  if (op == PLX_AVG) acc = acc / A(srcs.size());
  if (std::isnan(acc)) return canonical_nan(d);
  if (d.size == 2) return round_and_encode(d, acc);
  if constexpr (sizeof(A) == 4) return std::bit_cast<uint32_t>(acc);
  else return std::bit_cast<uint64_t>(acc);
}

// Integers: wrap modulo 2^64, keep the low bits; compare as the real type.
uint64_t ref_int(const Dtype &d, plx_reduce_op op, const std::vector<const void *> &srcs, size_t i) {
  const int shift = 64 - 8 * int(d.size);
  auto as_signed = [&](uint64_t bits) { return int64_t(bits << shift) >> shift; };
  auto less = [&](uint64_t a, uint64_t b) { return d.is_signed ? as_signed(a) < as_signed(b) : a < b; };
  uint64_t acc = read_bits(d, srcs[0], i);
  for (size_t s = 1; s < srcs.size(); ++s) {
    const uint64_t v = read_bits(d, srcs[s], i);
    if (op == PLX_SUM || op == PLX_AVG) acc += v;
    if (op == PLX_PROD) acc *= v;
    if ((op == PLX_MIN && less(v, acc)) || (op == PLX_MAX && less(acc, v))) acc = v;
  }
  acc = shift == 0 ? acc : acc & ((uint64_t{1} << (64 - shift)) - 1);
  if (op != PLX_AVG) return acc;
  const auto n = int64_t(srcs.size());
  return d.is_signed ? uint64_t(as_signed(acc) / n) : acc / uint64_t(n);
}

std::vector<uint8_t> reference(const Dtype &d, plx_reduce_op op, const std::vector<const void *> &srcs,
                               size_t count) {
  std::vector<uint8_t> out(count * d.size);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t bits = !is_float(d) ? ref_int(d, op, srcs, i)
                          : d.size == 8 ? ref_float<double>(d, op, srcs, i)
                                        : ref_float<float>(d, op, srcs, i);
    write_bits(d, out.data(), i, bits);
  }
  return out;
}

// ---- inputs ----

// Finite values of moderate size (products of 8 can still overflow float16),
// or with `specials` also zeros of both signs, infinities, quiet and
// signalling NaNs, subnormals, the largest finite and repeated values.
uint64_t random_float(const Dtype &d, std::mt19937_64 &rng, bool specials) {
  const uint64_t sign = (rng() & 1) ? sign_bit(d) : 0, m = rng() & mant_mask(d);
  const uint64_t quiet = uint64_t{1} << (d.mant_bits - 1);
  switch (specials ? rng() % 16 : 15) {
    case 0: case 1: return sign;
    case 2: return sign | exp_all_ones(d);
    case 3: return sign | exp_all_ones(d) | quiet | m;
    case 4: return sign | exp_all_ones(d) | ((m & (quiet - 1)) | 1);
    case 5: case 6: return sign | (m | 1);
    case 7: return sign | (exp_all_ones(d) - (uint64_t{1} << d.mant_bits)) | mant_mask(d);
    case 8: return sign | (uint64_t(bias(d)) << d.mant_bits);  // +-1.0
    default: return sign | (uint64_t(bias(d) + int(rng() % 7) - 3) << d.mant_bits) | m;
  }
}

struct Inputs {
  std::vector<std::vector<uint8_t>> data;
  std::vector<const void *> ptrs;
};

Inputs make_inputs(const Dtype &d, int nsrc, size_t count, uint64_t seed, bool specials) {
  std::mt19937_64 rng(seed);
  Inputs in;
  in.data.resize(size_t(nsrc));
  for (auto &buffer : in.data) {
    buffer.assign(count * d.size + guard, 0xA5);
    for (size_t i = 0; i < count; ++i)
      write_bits(d, buffer.data(), i, is_float(d) ? random_float(d, rng, specials) : rng());
    in.ptrs.push_back(buffer.data());
  }
  return in;
}

// ---- running and comparing ----

struct Case {
  const Dtype &d;
  plx_reduce_op op;
  size_t count;
  CpuIsa isa;
};

std::string describe(const Case &c, size_t nsrc, const char *what) {
  return std::string(what) + " " + cpu_isa_name(c.isa) + " " + c.d.name + " " + op_names[c.op] +
         " nsrc=" + std::to_string(nsrc) + " count=" + std::to_string(c.count);
}

// into < 0: a fresh dst poisoned with 0xA5; else in place, into that source.
std::vector<uint8_t> run(const Case &c, Inputs in, int into = -1) {
  std::vector<uint8_t> fresh(c.count * c.d.size + guard, 0xA5);
  std::vector<uint8_t> &dst = into < 0 ? fresh : in.data[size_t(into)];
  for (size_t s = 0; s < in.data.size(); ++s) in.ptrs[s] = in.data[s].data();
  const plx_status status =
      reduce_into(c.d.id, c.op, dst.data(), in.ptrs.data(), int(in.ptrs.size()), c.count, c.isa);
  REQUIRE(status == PLX_OK);
  return dst;
}

void check_same(const Case &c, size_t nsrc, const char *what, const std::vector<uint8_t> &got,
                const std::vector<uint8_t> &want) {
  const size_t bytes = c.count * c.d.size;
  for (size_t b = 0; b < bytes; ++b)
    if (got[b] != want[b]) {
      FAIL_CHECK(describe(c, nsrc, what) << ": element " << b / c.d.size << " differs");
      return;
    }
  for (size_t b = bytes; b < got.size(); ++b)
    if (got[b] != 0xA5) {
      FAIL_CHECK(describe(c, nsrc, what) << ": wrote past the end");
      return;
    }
}

// Calls fn(case, nsrc, inputs) for every dtype x op x nsrc x count.
template <class Fn>
void for_all_cases(CpuIsa isa, bool specials, Fn fn) {
  uint64_t seed = 1;
  for (const Dtype &d : dtypes) {
    if (specials && !is_float(d)) continue;
    for (plx_reduce_op op : ops)
      for (int nsrc : source_counts)
        for (size_t count : counts)
          fn(Case{d, op, count, isa}, make_inputs(d, nsrc, count, ++seed, specials));
  }
}

void check_scalar_against_reference(bool specials) {
  for_all_cases(CpuIsa::scalar, specials, [](const Case &c, const Inputs &in) {
    std::vector<uint8_t> want = reference(c.d, c.op, in.ptrs, c.count);
    want.resize(want.size() + guard, 0xA5);
    check_same(c, in.ptrs.size(), "scalar vs reference:", run(c, in), want);
  });
}

// Every result of `isa`, out of place and in place (into the first and the
// last source), equals the scalar path's out-of-place result.
void check_isa_against_scalar(CpuIsa isa) {
  if (isa > detect_cpu_isa()) {
    MESSAGE("skipped: this CPU has no " << std::string(cpu_isa_name(isa)) << " (best: "
                                        << std::string(cpu_isa_name(detect_cpu_isa())) << ")");
    return;
  }
  for (bool specials : {false, true})
    for_all_cases(isa, specials, [](const Case &c, const Inputs &in) {
      const std::vector<uint8_t> want = run(Case{c.d, c.op, c.count, CpuIsa::scalar}, in);
      const int last = int(in.data.size()) - 1;
      check_same(c, in.ptrs.size(), "vs scalar:", run(c, in), want);
      check_same(c, in.ptrs.size(), "in place (first) vs scalar:", run(c, in, 0), want);
      check_same(c, in.ptrs.size(), "in place (last) vs scalar:", run(c, in, last), want);
    });
}

template <class T>
std::vector<T> reduce_values(plx_dtype dtype, plx_reduce_op op, const std::vector<std::vector<T>> &srcs,
                             CpuIsa isa) {
  std::vector<const void *> ptrs;
  for (const auto &s : srcs) ptrs.push_back(s.data());
  std::vector<T> out(srcs[0].size());
  REQUIRE(reduce_into(dtype, op, out.data(), ptrs.data(), int(ptrs.size()), out.size(), isa) == PLX_OK);
  return out;
}

// reduce_into_both into a fresh dst and copy (into_copy < 0), or with the
// copy written over that source; returns {dst, copy}.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> run_both(const Case &c, Inputs in, int into_copy) {
  std::vector<uint8_t> dst(c.count * c.d.size + guard, 0xA5), fresh(dst.size(), 0xA5);
  std::vector<uint8_t> &copy = into_copy < 0 ? fresh : in.data[size_t(into_copy)];
  for (size_t s = 0; s < in.data.size(); ++s) in.ptrs[s] = in.data[s].data();
  REQUIRE(reduce_into_both(c.d.id, c.op, dst.data(), copy.data(), in.ptrs.data(), int(in.ptrs.size()), c.count,
                           c.isa) == PLX_OK);
  return {dst, copy};
}

std::vector<CpuIsa> available_isas() {
  std::vector<CpuIsa> isas{CpuIsa::scalar};
  if (detect_cpu_isa() >= CpuIsa::avx2) isas.push_back(CpuIsa::avx2);
  if (detect_cpu_isa() >= CpuIsa::avx512) isas.push_back(CpuIsa::avx512);
  return isas;
}

}  // namespace

TEST_CASE("Core.CpuReduce.scalar_matches_reference") { check_scalar_against_reference(false); }

TEST_CASE("Core.CpuReduce.scalar_matches_reference_special_values") { check_scalar_against_reference(true); }

TEST_CASE("Core.CpuReduce.avx2_matches_scalar") { check_isa_against_scalar(CpuIsa::avx2); }

TEST_CASE("Core.CpuReduce.avx512_matches_scalar") { check_isa_against_scalar(CpuIsa::avx512); }

// The second destination gets the same bits as dst, on every path, also
// when it is a source (in place, as shm-native's two-shot with send == recv).
TEST_CASE("Core.CpuReduce.second_destination_gets_the_same_bits") {
  for (CpuIsa isa : available_isas())
    for_all_cases(isa, false, [](const Case &c, const Inputs &in) {
      const std::vector<uint8_t> want = run(c, in);
      const auto [dst, copy] = run_both(c, in, -1);
      check_same(c, in.ptrs.size(), "both, dst:", dst, want);
      check_same(c, in.ptrs.size(), "both, copy:", copy, want);
      const auto [dst_in_place, copy_in_place] = run_both(c, in, 0);
      check_same(c, in.ptrs.size(), "both, copy into source 0:", copy_in_place, want);
      check_same(c, in.ptrs.size(), "both, dst with copy into source 0:", dst_in_place, want);
    });
}

// Hand-computed results: ties to even, overflow to inf, subnormals.
TEST_CASE("Core.CpuReduce.half_types_round_once_to_nearest_even") {
  for (CpuIsa isa : available_isas()) {
    INFO("isa: " << std::string(cpu_isa_name(isa)));
    // float16: 2048 + 1 -> 2048, 2050 + 1 -> 2052, 65504 + 16 -> inf, 65504 + 8 -> 65504, 2^-24 + 2^-24.
    const std::vector<std::vector<uint16_t>> half{{0x6800, 0x6801, 0x7BFF, 0x7BFF, 0x0001},
                                                  {0x3C00, 0x3C00, 0x4C00, 0x4800, 0x0001}};
    const std::vector<uint16_t> half_sums{0x6800, 0x6802, 0x7C00, 0x7BFF, 0x0002};
    CHECK(reduce_values(PLX_FLOAT16, PLX_SUM, half, isa) == half_sums);
    // bfloat16: 256 + 1 + 1 -> 258 (rounding each step would give 256), 258 + 1 + 1 -> 260,
    // 256 + 1 + 0 -> 256, 258 + 1 + 0 -> 260.
    const std::vector<std::vector<uint16_t>> bf{
        {0x4380, 0x4381, 0x4380, 0x4381}, {0x3F80, 0x3F80, 0x3F80, 0x3F80}, {0x3F80, 0x3F80, 0, 0}};
    const std::vector<uint16_t> bf_sums{0x4381, 0x4382, 0x4380, 0x4382};
    CHECK(reduce_values(PLX_BFLOAT16, PLX_SUM, bf, isa) == bf_sums);
  }
}

TEST_CASE("Core.CpuReduce.float_min_max_order_zeros_and_propagate_nan") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::vector<float>> srcs{{-0.0f, 0.0f, nan, 1.0f, -INFINITY},
                                             {0.0f, -0.0f, 1.0f, nan, 2.0f}};
  for (CpuIsa isa : available_isas()) {
    INFO("isa: " << std::string(cpu_isa_name(isa)));
    const std::vector<float> lo = reduce_values(PLX_FLOAT32, PLX_MIN, srcs, isa);
    const std::vector<float> hi = reduce_values(PLX_FLOAT32, PLX_MAX, srcs, isa);
    CHECK((std::signbit(lo[0]) && std::signbit(lo[1]) && !std::signbit(hi[0]) && !std::signbit(hi[1])));
    CHECK(std::bit_cast<uint32_t>(lo[2]) == 0x7FC00000u);
    CHECK(std::bit_cast<uint32_t>(hi[3]) == 0x7FC00000u);
    CHECK((lo[4] == -INFINITY && hi[4] == 2.0f));
  }
}

TEST_CASE("Core.CpuReduce.integer_avg_truncates_and_sums_wrap") {
  const std::vector<std::vector<int8_t>> srcs{{-7, 100, 127}, {0, 100, 1}};
  for (CpuIsa isa : available_isas()) {
    INFO("isa: " << std::string(cpu_isa_name(isa)));
    CHECK(reduce_values(PLX_INT8, PLX_AVG, srcs, isa) == std::vector<int8_t>{-3, -28, -64});
    CHECK(reduce_values(PLX_INT8, PLX_SUM, srcs, isa) == std::vector<int8_t>{-7, -56, -128});
    // More sources than the type holds: the count must not wrap either.
    std::vector<std::vector<int8_t>> many(130, std::vector<int8_t>{0});
    many[0][0] = -128;
    CHECK(reduce_values(PLX_INT8, PLX_AVG, many, isa) == std::vector<int8_t>{0});
    std::vector<std::vector<uint8_t>> many_unsigned(300, std::vector<uint8_t>{0});
    many_unsigned[0][0] = 255;
    CHECK(reduce_values(PLX_UINT8, PLX_AVG, many_unsigned, isa) == std::vector<uint8_t>{0});
  }
}

TEST_CASE("Core.CpuReduce.rejects_bad_arguments") {
  float a[4] = {}, out[4] = {};
  const void *srcs[2] = {a, a};
  const void *null_src[2] = {a, nullptr};
  CHECK(reduce_into(PLX_DTYPE_COUNT, PLX_SUM, out, srcs, 2, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error().find("dtype") != std::string::npos);
  CHECK(reduce_into(PLX_FLOAT32, PLX_REDUCE_OP_COUNT, out, srcs, 2, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(reduce_into(PLX_FLOAT32, -1, out, srcs, 2, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(reduce_into(PLX_FLOAT32, PLX_SUM, out, srcs, 0, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(reduce_into(PLX_FLOAT32, PLX_SUM, nullptr, srcs, 2, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(reduce_into(PLX_FLOAT32, PLX_SUM, out, null_src, 2, 4) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(reduce_into(PLX_FLOAT32, PLX_SUM, nullptr, nullptr, 2, 0) == PLX_OK);
  if (detect_cpu_isa() < CpuIsa::avx512)
    CHECK(reduce_into(PLX_FLOAT32, PLX_SUM, out, srcs, 2, 4, CpuIsa::avx512) == PLX_ERR_UNSUPPORTED);
}

TEST_CASE("Core.CpuReduce.isa_override_only_lowers") {
  CHECK(clamp_cpu_isa(CpuIsa::avx512, nullptr) == CpuIsa::avx512);
  CHECK(clamp_cpu_isa(CpuIsa::avx512, "avx2") == CpuIsa::avx2);
  CHECK(clamp_cpu_isa(CpuIsa::avx512, "scalar") == CpuIsa::scalar);
  CHECK(clamp_cpu_isa(CpuIsa::avx2, "avx512") == CpuIsa::avx2);
  CHECK(clamp_cpu_isa(CpuIsa::avx2, "sse9") == CpuIsa::avx2);
  CHECK(std::string(cpu_isa_name(CpuIsa::avx512)) == "avx512");
  CHECK(active_cpu_isa() <= detect_cpu_isa());
  MESSAGE("CPU ISA detected: " << std::string(cpu_isa_name(detect_cpu_isa()))
                               << ", active: " << std::string(cpu_isa_name(active_cpu_isa())));
}

TEST_CASE("Core.CpuReduce.identity_leaves_every_value_unchanged") {
  const float values[] = {0.0f, -0.0f, 1.5f, -3.25f, 1e30f, -1e-30f};
  for (plx_reduce_op op : {PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX}) {
    std::vector<float> identity(6, 123.0f), out(6);
    REQUIRE(plexus::core::fill_identity(PLX_FLOAT32, op, identity.data(), identity.size()) == PLX_OK);
    const void *srcs[] = {values, identity.data()};
    REQUIRE(plexus::core::reduce_into(PLX_FLOAT32, op, out.data(), srcs, 2, 6) == PLX_OK);
    CHECK(std::memcmp(out.data(), values, sizeof(values)) == 0);
  }
  std::vector<int8_t> ints(300, 5);
  REQUIRE(plexus::core::fill_identity(PLX_INT8, PLX_MAX, ints.data(), ints.size()) == PLX_OK);
  CHECK(std::all_of(ints.begin(), ints.end(), [](int8_t v) { return v == -128; }));
  CHECK(plexus::core::fill_identity(PLX_INT8, 9, ints.data(), 1) == PLX_ERR_INVALID_ARGUMENT);
}

// The 8-byte pattern the GPU plugins fill identity buffers with: any
// dtype's elements read from it are fill_identity's, bit for bit.
TEST_CASE("Core.CpuReduce.identity_pattern_holds_fill_identity_elements") {
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op) {
      uint64_t pattern = 0;
      REQUIRE(plexus::core::identity_pattern(dtype, op, &pattern));
      uint8_t filled[8] = {};
      REQUIRE(plexus::core::fill_identity(dtype, op, filled, 8 / plexus::core::kDtypeBytes[dtype]) == PLX_OK);
      INFO("dtype ", dtype, " op ", op);
      CHECK(std::memcmp(&pattern, filled, 8) == 0);
    }
  uint64_t pattern = 0;
  CHECK(plexus::core::identity_pattern(PLX_FLOAT32, PLX_SUM, &pattern));
  CHECK(pattern == 0x8000000080000000ull);  // -0.0f twice: x + -0.0 == x for x = +0.0 too
  CHECK(plexus::core::identity_pattern(PLX_BFLOAT16, PLX_MAX, &pattern));
  CHECK(pattern == 0xFF80FF80FF80FF80ull);
  CHECK_FALSE(plexus::core::identity_pattern(PLX_INT8, 9, &pattern));
  CHECK_FALSE(plexus::core::identity_pattern(77, PLX_SUM, &pattern));
}

// narrow_floats against the compiler's float16 conversion and, for
// bfloat16, against the definition (the nearest of the two neighbours, ties
// to the even one); widen_floats is exact. Random floats of every exponent,
// and the edges: zeros, infinities, NaN, float16's largest finite value and
// the first that rounds to inf, its subnormals, exact ties.
void check_conversions(CpuIsa isa) {
  std::mt19937 gen(20261129);
  std::vector<float> values = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65519.0f, 65520.0f, -70000.0f,
                               0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-14f, 0x1.ffcp-15f, 1.0f + 0x1p-11f,
                               1.0f + 0x1p-8f, 1.0f + 0x3p-8f, 3.0e38f, 1e-40f};
  for (int i = 0; i < 100000; ++i) {
    const uint32_t bits = gen();
    const float f = std::bit_cast<float>(bits);
    if (!std::isnan(f)) values.push_back(f);
  }
  std::vector<uint16_t> half(values.size()), bf(values.size());
  REQUIRE(plexus::core::narrow_floats(values.data(), half.data(), values.size(), PLX_FLOAT16, isa) == PLX_OK);
  REQUIRE(plexus::core::narrow_floats(values.data(), bf.data(), values.size(), PLX_BFLOAT16, isa) == PLX_OK);
  std::vector<float> back(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float x = values[i];
    INFO("value ", x);
    CHECK(half[i] == std::bit_cast<uint16_t>(static_cast<_Float16>(x)));
    const float lo = std::bit_cast<float>(uint32_t(std::bit_cast<uint32_t>(x) & 0xFFFF0000u));
    const float hi = std::nextafter(lo, std::copysign(INFINITY, x));
    const float hi16 = std::bit_cast<float>(uint32_t(std::bit_cast<uint32_t>(hi) + 0xFFFFu) & 0xFFFF0000u);
    const float got = std::bit_cast<float>(uint32_t(bf[i]) << 16);
    // Past the largest finite bfloat16 the upper neighbour is inf, at 2^128 for rounding.
    const double hi_at = std::isinf(hi16) && !std::isinf(x) ? std::copysign(0x1p128, x) : double(hi16);
    const double dlo = std::fabs(double(x) - lo), dhi = std::fabs(double(x) - hi_at);
    const bool lo_even = ((std::bit_cast<uint32_t>(lo) >> 16) & 1u) == 0;
    CHECK(got == (dlo < dhi || (dlo == dhi && lo_even) ? lo : hi16));
  }
  REQUIRE(plexus::core::widen_floats(half.data(), back.data(), half.size(), PLX_FLOAT16, isa) == PLX_OK);
  for (size_t i = 0; i < half.size(); ++i)
    CHECK(std::bit_cast<uint32_t>(back[i]) == std::bit_cast<uint32_t>(static_cast<float>(std::bit_cast<_Float16>(half[i]))));
  REQUIRE(plexus::core::widen_floats(bf.data(), back.data(), bf.size(), PLX_BFLOAT16, isa) == PLX_OK);
  for (size_t i = 0; i < bf.size(); ++i) CHECK(std::bit_cast<uint32_t>(back[i]) == uint32_t(bf[i]) << 16);
  // NaN: canonical once narrowed, whatever its sign and payload; widened, a
  // half NaN keeps its payload (made quiet), as vcvtph2ps does. Nine of
  // each, so the vectors see them as well as the tail.
  std::vector<float> nans(9, std::nanf(""));
  nans[3] = std::bit_cast<float>(0xFF812345u);
  std::vector<uint16_t> h(9);
  REQUIRE(plexus::core::narrow_floats(nans.data(), h.data(), 9, PLX_FLOAT16, isa) == PLX_OK);
  CHECK(h == std::vector<uint16_t>(9, 0x7E00));
  REQUIRE(plexus::core::narrow_floats(nans.data(), h.data(), 9, PLX_BFLOAT16, isa) == PLX_OK);
  CHECK(h == std::vector<uint16_t>(9, 0x7FC0));
  h.assign(9, 0x7C01), h[4] = 0xFE00, h[8] = 0x7D55;
  REQUIRE(plexus::core::widen_floats(h.data(), nans.data(), 9, PLX_FLOAT16, isa) == PLX_OK);
  CHECK(std::bit_cast<uint32_t>(nans[0]) == 0x7FC02000u);
  CHECK(std::bit_cast<uint32_t>(nans[4]) == 0xFFC00000u);
  CHECK(std::bit_cast<uint32_t>(nans[8]) == 0x7FEAA000u);
  CHECK(plexus::core::narrow_floats(nans.data(), h.data(), 1, PLX_FLOAT32, isa) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(plexus::core::widen_floats(h.data(), nans.data(), 1, PLX_INT8, isa) == PLX_ERR_INVALID_ARGUMENT);
}

TEST_CASE("Core.CpuReduce.narrow_and_widen_floats") {
  for (CpuIsa isa : {CpuIsa::scalar, std::min(CpuIsa::avx2, detect_cpu_isa())}) {
    INFO("isa ", cpu_isa_name(isa));
    check_conversions(isa);
  }
}

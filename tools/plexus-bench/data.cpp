#include "tools/plexus-bench/data.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace plexus::bench {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash(uint64_t seed, int32_t rank, uint64_t index) {
  return mix(seed + index * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(rank) * 0xD1B54A32D192ED03ull);
}

bool is_float(plx_dtype d) { return d >= PLX_FLOAT16; }
bool is_signed_int(plx_dtype d) { return d == PLX_INT8 || d == PLX_INT32 || d == PLX_INT64; }

// (1 + k / 2^m) * 2^e with e in {-1, 0}, as the dtype's bits; m = the
// dtype's mantissa bits, so the value is exact.
uint64_t float_bits(plx_dtype d, uint64_t h) {
  const uint64_t neg = h & 1, e = (h >> 1) & 1, k = h >> 2;
  switch (d) {
    case PLX_FLOAT16: return neg << 15 | (14 + e) << 10 | (k & 0x3FF);
    case PLX_BFLOAT16: return neg << 15 | (126 + e) << 7 | (k & 0x7F);
    case PLX_FLOAT32: return neg << 31 | (126 + e) << 23 | (k & 0x7FFFFF);
    default: return neg << 63 | (1022 + e) << 52 | (k & 0xFFFFFFFFFFFFFull);
  }
}

uint64_t width_mask(plx_dtype d) {
  const size_t w = dtype_bytes(d) * 8;
  return w == 64 ? ~0ull : (1ull << w) - 1;
}

uint64_t element_bits(plx_dtype d, uint64_t h) {
  if (is_float(d)) return float_bits(d, h);
  const int64_t v = 1 + static_cast<int64_t>((h >> 8) % 9);
  return static_cast<uint64_t>(is_signed_int(d) && (h & 1) ? -v : v) & width_mask(d);
}

double half_to_double(uint64_t b) {
  const int e = static_cast<int>((b >> 10) & 31), m = static_cast<int>(b & 0x3FF);
  const double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
  return (b >> 15) & 1 ? -v : v;
}

double to_double(plx_dtype d, uint64_t b) {
  switch (d) {
    case PLX_FLOAT16: return half_to_double(b);
    case PLX_BFLOAT16: return std::bit_cast<float>(static_cast<uint32_t>(b << 16));
    case PLX_FLOAT32: return std::bit_cast<float>(static_cast<uint32_t>(b));
    default: return std::bit_cast<double>(b);
  }
}

int64_t sign_extend(plx_dtype d, uint64_t b) {
  const int shift = 64 - static_cast<int>(dtype_bytes(d)) * 8;
  return is_signed_int(d) ? static_cast<int64_t>(b << shift) >> shift : static_cast<int64_t>(b);
}

uint64_t load(const void *buf, size_t es, uint64_t i) {
  uint64_t v = 0;
  std::memcpy(&v, static_cast<const uint8_t *>(buf) + i * es, es);  // little-endian hosts
  return v;
}

template <class S>
void fill_typed(plx_dtype d, uint64_t seed, int32_t rank, uint64_t first, uint64_t count, S *out) {
  for (uint64_t i = 0; i < count; ++i) out[i] = static_cast<S>(element_bits(d, hash(seed, rank, first + i)));
}

// Integers wrap in the dtype's width (plexus' and MPI's arithmetic alike);
// avg is the wrapped sum divided by n, truncating toward zero.
bool int_reduction_ok(plx_dtype d, plx_reduce_op op, int32_t n, uint64_t seed, uint64_t index, uint64_t got) {
  uint64_t acc = op == PLX_PROD ? 1 : 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (int32_t q = 0; q < n; ++q) {
    const uint64_t b = element_bits(d, hash(seed, q, index));
    acc = op == PLX_PROD ? acc * b : acc + b;
    lo = std::min(lo, sign_extend(d, b)), hi = std::max(hi, sign_extend(d, b));
  }
  const uint64_t mask = width_mask(d);
  uint64_t want = acc & mask;
  if (op == PLX_MIN || op == PLX_MAX) want = static_cast<uint64_t>(op == PLX_MIN ? lo : hi) & mask;
  if (op == PLX_AVG)
    want = is_signed_int(d) ? static_cast<uint64_t>(sign_extend(d, want) / n) & mask : want / static_cast<uint64_t>(n);
  return (got & mask) == want;
}

double unit_roundoff(plx_dtype d) {
  switch (d) {
    case PLX_FLOAT16: return 0x1p-11;
    case PLX_BFLOAT16: return 0x1p-8;
    case PLX_FLOAT32: return 0x1p-24;
    default: return 0x1p-53;
  }
}

// See the tolerance in data.hpp.
bool float_reduction_ok(plx_dtype d, plx_reduce_op op, int32_t n, uint64_t seed, uint64_t index, uint64_t got_bits,
                        double u) {
  double sum = 0, prod = 1, abs_sum = 0, lo = INFINITY, hi = -INFINITY;
  for (int32_t q = 0; q < n; ++q) {
    const double v = to_double(d, element_bits(d, hash(seed, q, index)));
    sum += v, prod *= v, abs_sum += std::fabs(v), lo = std::min(lo, v), hi = std::max(hi, v);
  }
  const double got = to_double(d, got_bits);
  if (op == PLX_MIN || op == PLX_MAX) return got == (op == PLX_MIN ? lo : hi);
  const double ref = op == PLX_PROD ? prod : op == PLX_AVG ? sum / n : sum;
  const double scale = op == PLX_PROD ? std::fabs(prod) : op == PLX_AVG ? abs_sum / n : abs_sum;
  return std::fabs(got - ref) <= u * (n * scale + std::fabs(ref));
}

// A wire dtype coarser than the data's rounds every value it carries.
bool reduction_ok(const Options &o, uint64_t seed, uint64_t index, uint64_t got) {
  const double u = std::max(unit_roundoff(o.dtype), o.wire >= 0 ? unit_roundoff(o.wire) : 0.0);
  return is_float(o.dtype) ? float_reduction_ok(o.dtype, o.redop, o.ranks, seed, index, got, u)
                           : int_reduction_ok(o.dtype, o.redop, o.ranks, seed, index, got);
}

// The bits element j of this rank's output must hold, for ops that move data.
uint64_t moved_bits(const Options &o, const SizePoint &p, uint64_t seed, uint64_t j) {
  if (o.coll == Coll::broadcast) return element_bits(o.dtype, hash(seed, 0, j));
  const uint64_t per = p.count / static_cast<uint64_t>(o.ranks);
  return element_bits(o.dtype, hash(seed, static_cast<int32_t>(j / per), j % per));
}

}  // namespace

uint64_t size_seed(uint64_t bytes) { return mix(bytes ^ 0x706C65787573ull); }

void fill_input(plx_dtype dtype, uint64_t seed, int32_t rank, uint64_t first, uint64_t count, void *buf) {
  switch (dtype_bytes(dtype)) {
    case 1: return fill_typed(dtype, seed, rank, first, count, static_cast<uint8_t *>(buf));
    case 2: return fill_typed(dtype, seed, rank, first, count, static_cast<uint16_t *>(buf));
    case 4: return fill_typed(dtype, seed, rank, first, count, static_cast<uint32_t *>(buf));
    default: return fill_typed(dtype, seed, rank, first, count, static_cast<uint64_t *>(buf));
  }
}

void poison(plx_dtype dtype, void *buf, uint64_t count) {
  std::memset(buf, is_float(dtype) ? 0xFF : 0xA5, count * dtype_bytes(dtype));
}

uint64_t count_wrong(const Options &o, const SizePoint &p, int32_t rank, uint64_t seed, const void *out) {
  if ((o.coll == Coll::reduce || o.coll == Coll::gather) && rank != 0) return 0;
  const uint64_t n = recv_count(o, p), es = dtype_bytes(o.dtype);
  const uint64_t offset = o.coll == Coll::reduce_scatter ? static_cast<uint64_t>(rank) * n : 0;
  uint64_t wrong = 0;
  for (uint64_t j = 0; j < n; ++j) {
    const uint64_t got = load(out, es, j);
    wrong += is_reduction(o.coll) ? !reduction_ok(o, seed, offset + j, got) : got != moved_bits(o, p, seed, j);
  }
  return wrong;
}

}  // namespace plexus::bench

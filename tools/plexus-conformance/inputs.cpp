#include "inputs.hpp"

#include <cstring>

namespace plexus::conformance {
namespace {

// The largest b with b^n <= max (bisection; b < 2^32 for n >= 2).
Int product_bound(Int max, int32_t n) {
  if (n <= 1) return max;
  auto fits = [&](Int base) {
    Int p = 1;
    for (int32_t k = 0; k < n; ++k)
      if ((p *= base) > max) return false;
    return true;
  };
  Int lo = 1, hi = Int{1} << 32;
  while (lo < hi) {
    const Int mid = (lo + hi + 1) / 2;
    if (fits(mid))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace

InputRule make_input_rule(plx_dtype dtype, plx_reduce_op op, int32_t nranks, uint64_t seed, int32_t absent,
                          int32_t wire) {
  InputRule rule{dtype, op, nranks, mix(seed), absent, wire};
  if (is_float(dtype)) {
    rule.float_low = op == PLX_PROD ? 0.875 : 1.0 / 64;
    rule.float_span = op == PLX_PROD ? 0.25 : 1.0 - 1.0 / 64;
    rule.sign_mask = op == PLX_PROD ? 0 : uint64_t{1} << 63;
    return rule;
  }
  const Int max = int_max(dtype);
  const Int bound = op == PLX_PROD ? product_bound(max, nranks) : max / nranks;
  // 1 + (h >> 1 >> shift) with h >> 1 < 2^63 spans 1 .. 2^(63 - shift).
  const auto bits = static_cast<uint32_t>(std::bit_width(static_cast<uint64_t>(bound < 1 ? 1 : bound)) - 1);
  rule.int_shift = 63 - bits;
  return rule;
}

void fill_input(const InputRule &rule, int32_t rank, uint64_t first, uint64_t count, void *dst) {
  const uint64_t key = rank_key(rule, rank);
  const InputRule local = rule;  // a copy dst cannot alias: its fields stay in registers
  with_dtype(rule.dtype, [&]<typename T>(T) {
    auto *out = static_cast<T *>(dst);
    for (uint64_t j = 0; j < count; ++j) out[j] = input_value<T>(local, key, first + j);
  });
}

uint64_t hash_bytes(const void *data, uint64_t bytes) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = 0xcbf29ce484222325ull ^ bytes;
  uint64_t j = 0;
  for (; j + 8 <= bytes; j += 8) {
    uint64_t word;
    std::memcpy(&word, p + j, 8);
    h = (h ^ word) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; j < bytes; ++j) h = (h ^ p[j]) * 0x100000001b3ull;
  return h;
}

}  // namespace plexus::conformance

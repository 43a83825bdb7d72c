// The inputs of a data case: element i of rank r's send buffer is a pure
// function of (case seed, r, i), so every rank computes any other rank's
// input, and with it the reference, without communicating.
//
// Values are never zero and are chosen so that no result leaves its type:
//  - floats: +-[1/64, 1) for SUM, AVG, MIN, MAX and data movement;
//    [7/8, 9/8] for PROD, so products of many ranks neither overflow nor
//    underflow;
//  - integers: magnitudes 1 .. 2^k for the largest 2^k <= max/nranks (SUM,
//    AVG, MIN, MAX) or <= floor(max^(1/nranks)) (PROD), with a random sign
//    for signed types. The contract does not say what overflow does, so no
//    case overflows and integer results are exact.
// The generator has no data-dependent branch: a random sign as a branch
// mispredicted half the time and cost more than the rest of an element,
// and the data session generates every rank's input at every check.
#pragma once

#include <bit>
#include <cstdint>

#include "dtypes.hpp"

namespace plexus::conformance {

struct InputRule {
  plx_dtype dtype;
  plx_reduce_op op;  // -1 for data movement
  int32_t nranks;
  uint64_t seed;
  int32_t absent;  // the rank that contributes nothing (PLX_COLL_FLAG_NO_CONTRIBUTION), or -1
  int32_t wire = -1;  // opts->wire_dtype of the call: its rounding widens the float tolerance
  // Derived by make_input_rule: float magnitudes are float_low + u *
  // float_span; sign_mask selects the hash bit that negates (0: none);
  // integer magnitudes are 1 + (hash >> 1 >> int_shift), 1 .. int_bound(rule).
  double float_low = 0, float_span = 0;
  uint64_t sign_mask = 0;
  uint32_t int_shift = 63;
};

// The largest integer magnitude of the rule (a power of two).
inline uint64_t int_bound(const InputRule &rule) { return uint64_t{1} << (63 - rule.int_shift); }

InputRule make_input_rule(plx_dtype dtype, plx_reduce_op op, int32_t nranks, uint64_t seed,
                          int32_t absent = -1, int32_t wire = -1);

// splitmix64's finaliser: a counter-based generator, so element i costs the
// same whatever was generated before it.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The stream of rank r's input.
inline uint64_t rank_key(const InputRule &rule, int32_t rank) {
  return mix(rule.seed ^ mix(static_cast<uint64_t>(rank) + 1));
}

// Element i of the input whose stream is `key`, as a T of rule.dtype. One
// multiply per element (test data needs no more), as this runs for every
// element of every rank's input in every check.
template <typename T>
inline T input_value(const InputRule &rule, uint64_t key, uint64_t i) {
  uint64_t h = key + i * 0x9e3779b97f4a7c15ull;
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  if constexpr (is_float_type<T>) {
    // 52 hash bits as the mantissa of a double in [1, 2), less 1: u in [0, 1).
    const double u = std::bit_cast<double>((h >> 12) | 0x3ff0000000000000ull) - 1.0;
    const double magnitude = rule.float_low + u * rule.float_span;
    return narrow<T>(std::bit_cast<double>(std::bit_cast<uint64_t>(magnitude) ^ ((h << 63) & rule.sign_mask)));
  } else {
    const auto magnitude = static_cast<T>(1 + ((h >> 1) >> rule.int_shift));
    if constexpr (!std::is_signed_v<T>) return magnitude;
    const auto negative = static_cast<T>(h & 1);  // two's complement: (m ^ -1) + 1 = -m
    return static_cast<T>((magnitude ^ static_cast<T>(-negative)) + negative);
  }
}

// Writes rank r's input elements [first, first + count) to dst[0 .. count).
void fill_input(const InputRule &rule, int32_t rank, uint64_t first, uint64_t count, void *dst);

// A 64-bit hash of a buffer, for the bit-identical check across ranks.
uint64_t hash_bytes(const void *data, uint64_t bytes);

}  // namespace plexus::conformance

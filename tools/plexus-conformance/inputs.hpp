// The inputs of a data case: element i of rank r's send buffer is a pure
// function of (case seed, r, i), so every rank computes any other rank's
// input, and with it the reference, without communicating.
//
// Values are never zero and are chosen so that no result leaves its type:
//  - floats: +-[1/64, 1) for SUM, AVG, MIN, MAX and data movement;
//    [7/8, 9/8] for PROD, so products of many ranks neither overflow nor
//    underflow;
//  - integers: magnitudes 1 .. max/nranks (SUM, AVG, MIN, MAX), or
//    1 .. floor(max^(1/nranks)) for PROD, with a random sign for signed
//    types. The contract does not say what overflow does, so no case
//    overflows and integer results are exact.
#pragma once

#include <cstdint>

#include "dtypes.hpp"

namespace plexus::conformance {

struct InputRule {
  plx_dtype dtype;
  plx_reduce_op op;  // -1 for data movement
  int32_t nranks;
  uint64_t seed;
  uint64_t int_bound;  // integer magnitudes are 1 .. int_bound
  int32_t absent;  // the rank that contributes nothing (PLX_COLL_FLAG_NO_CONTRIBUTION), or -1
  int32_t wire = -1;  // opts->wire_dtype of the call: its rounding widens the float tolerance
};

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
    const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // [0, 1)
    if (rule.op == PLX_PROD) return narrow<T>(0.875 + 0.25 * u);
    const double magnitude = 1.0 / 64 + u * (1.0 - 1.0 / 64);
    return narrow<T>((h & 1) ? -magnitude : magnitude);
  } else {
    // 1 + floor(h * bound / 2^64): uniform enough, and no division.
    const auto magnitude = static_cast<T>(
        1 + static_cast<uint64_t>((static_cast<unsigned __int128>(h >> 1) * rule.int_bound) >> 63));
    return (std::is_signed_v<T> && (h & 1)) ? static_cast<T>(-magnitude) : magnitude;
  }
}

// Writes rank r's input elements [first, first + count) to dst[0 .. count).
void fill_input(const InputRule &rule, int32_t rank, uint64_t first, uint64_t count, void *dst);

// A 64-bit hash of a buffer, for the bit-identical check across ranks.
uint64_t hash_bytes(const void *data, uint64_t bytes);

}  // namespace plexus::conformance

// Input data, poison and the correctness check. A rank's input is a hash of
// (seed, rank, index), so every rank can compute every other rank's input
// and check its own output against a host reference without any exchange.
//
// Inputs are never zero: floats are +-[0.5, 2) with as many random mantissa
// bits as the dtype holds (exact in every dtype, so no input rounding),
// integers +-[1, 9] (unsigned [1, 9]). Outputs are poisoned before the
// checked run (NaN for floats, 0xA5 bytes for integers), so an element a
// backend never writes is caught (except where a wrapped 8-bit product
// happens to equal the poison, 1 in 256).
//
// Tolerance. Integers and every data movement (broadcast, gathers) must be
// exact, as must min and max. Float sum, avg and prod are compared with a
// reference computed in double: |out - ref| <= u * (n * S + |ref|), S the
// sum of |inputs| (their product for prod; divided by n for avg), n the
// ranks and u the output type's unit roundoff (2^-24 float32, 2^-53
// float64, 2^-11 float16, 2^-8 bfloat16). That admits any order of the
// n - 1 combining steps and rounding to the output type after every step
// (a ring that sends half types on the wire), and still catches a missing,
// doubled or misplaced contribution, which is off by at least 0.5. With
// --wire u is the coarser of the data's and the wire dtype's.
#pragma once

#include <cstdint>

#include "tools/plexus-bench/options.hpp"

namespace plexus::bench {

// The seed of the data at one size: fresh data per size.
uint64_t size_seed(uint64_t bytes);

// Writes rank `rank`'s `count` input elements, starting at element `first`
// of its whole input, to buf.
void fill_input(plx_dtype dtype, uint64_t seed, int32_t rank, uint64_t first, uint64_t count, void *buf);

void poison(plx_dtype dtype, void *buf, uint64_t count);

// Elements of this rank's output (recv_count of them) that are wrong after
// one collective of the run's op on inputs made by fill_input with `seed`.
// 0 on ranks that receive nothing (reduce and gather off root 0).
uint64_t count_wrong(const Options &o, const SizePoint &p, int32_t rank, uint64_t seed, const void *out);

}  // namespace plexus::bench

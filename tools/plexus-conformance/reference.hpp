// The reference: every output element checked against what the inputs
// (inputs.hpp) say it must be, computed here in higher precision.
#pragma once

#include <string>
#include <vector>

#include "inputs.hpp"

namespace plexus::conformance {

// What a comparison found: how many elements are wrong and the first one.
struct Mismatch {
  uint64_t count = 0;
  std::string first;  // "element 17 got 1.5 want 2.5 (tolerance 0.001)"
  bool ok() const { return count == 0; }
  std::string describe() const;
};

// got[j], j < count, against the reduction over every rank (but
// rule.absent) of input element base + j (rule.op; AVG divides the sum by
// nranks, truncating for integers). Floats within the tolerance of
// dtypes.cpp; integers exact.
Mismatch check_reduction(const InputRule &rule, const void *got, uint64_t base, uint64_t count);

// A run of `count` elements of rank `rank`'s input from element `first`.
struct Segment {
  int32_t rank;
  uint64_t first;
  uint64_t count;
};

// got against the segments laid end to end, bit for bit (data movement,
// and inputs that must stay untouched).
// through_wire: the copies travelled as rule.wire (PLX-P-24), so each is
// the input rounded to it.
Mismatch check_copies(const InputRule &rule, const void *got, const std::vector<Segment> &segments,
                      bool through_wire = false);

}  // namespace plexus::conformance

// The conformance kit's reference (reference.hpp) for results that travel
// on a narrower wire (PLX-P-24): copies through a half-type wire are the
// inputs rounded to it, and a float64 sum through a float32 wire must be
// made of float32 values; the same results sent unrounded are caught.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "tools/plexus-conformance/reference.hpp"

namespace pc = plexus::conformance;

namespace {

constexpr uint64_t kCount = 3000;  // more than one of the reference's blocks

// Rank `rank`'s float32 input, and the same rounded to bfloat16 (to
// nearest even, kept as float32).
std::vector<float> input_of(const pc::InputRule &rule, int32_t rank, bool to_bfloat16) {
  std::vector<float> v(kCount);
  pc::fill_input(rule, rank, 0, kCount, v.data());
  if (to_bfloat16)
    for (float &x : v) x = static_cast<float>(pc::widen(pc::narrow<pc::BFloat>(x)));
  return v;
}

}  // namespace

TEST_CASE("tools.conformance.reference.copies_through_a_wire_are_the_rounded_inputs") {
  const pc::InputRule rule = pc::make_input_rule(PLX_FLOAT32, -1, 2, 11, -1, PLX_BFLOAT16);
  const std::vector<pc::Segment> rank1{{1, 0, kCount}};
  const std::vector<float> rounded = input_of(rule, 1, true), sent_as_is = input_of(rule, 1, false);
  CHECK(pc::check_copies(rule, rounded.data(), rank1, true).ok());
  CHECK_FALSE(pc::check_copies(rule, sent_as_is.data(), rank1, true).ok());  // the wire ignored
  CHECK(pc::check_copies(rule, sent_as_is.data(), rank1).ok());              // an input left alone
  CHECK_FALSE(pc::check_copies(rule, rounded.data(), rank1).ok());
}

TEST_CASE("tools.conformance.reference.a_float64_sum_through_float32_is_made_of_float32_values") {
  const int32_t nranks = 3;
  const pc::InputRule rule = pc::make_input_rule(PLX_FLOAT64, PLX_SUM, nranks, 12, -1, PLX_FLOAT32);
  std::vector<double> exact(kCount, 0.0), in(kCount);
  for (int32_t r = 0; r < nranks; ++r) {
    pc::fill_input(rule, r, 0, kCount, in.data());
    for (uint64_t j = 0; j < kCount; ++j) exact[j] += in[j];
  }
  std::vector<double> on_wire(exact);
  for (double &x : on_wire) x = static_cast<float>(x);
  CHECK(pc::check_reduction(rule, on_wire.data(), 0, kCount).ok());
  const pc::Mismatch ignored = pc::check_reduction(rule, exact.data(), 0, kCount);
  CHECK_FALSE(ignored.ok());
  CHECK(ignored.describe().find("not a float32 value") != std::string::npos);
}

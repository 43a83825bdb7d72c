// The conformance kit's inputs (inputs.hpp): never zero, inside the ranges
// that keep every reduction of nranks of them inside its type, both signs
// where signs are allowed, a stream per rank, and fill_input the same
// elements as input_value from any first element.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tools/plexus-conformance/inputs.hpp"

namespace pc = plexus::conformance;

namespace {

constexpr uint64_t kElements = 4096;
constexpr int32_t kRankCounts[] = {1, 2, 3, 4, 8, 16};
constexpr plx_reduce_op kOps[] = {-1, PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX, PLX_AVG};

// The limit the inputs must respect: nranks of them summed (or
// multiplied, for PROD) stay within the type's largest value.
pc::Int magnitude_limit(plx_dtype dtype, plx_reduce_op op, int32_t nranks) {
  const pc::Int max = pc::int_max(dtype);
  if (op != PLX_PROD) return max / nranks;
  auto fits = [&](pc::Int b) {
    pc::Int p = 1;
    for (int32_t k = 0; k < nranks; ++k)
      if ((p *= b) > max) return false;
    return true;
  };
  // The n-th root in double, then corrected by a step or two either way.
  auto base = static_cast<pc::Int>(std::floor(std::pow(static_cast<double>(max), 1.0 / nranks)));
  while (base > 1 && !fits(base)) --base;
  while (fits(base + 1)) ++base;
  return base;
}

struct Seen {
  bool negative = false, positive = false;
};

template <typename T>
void check_float_stream(const pc::InputRule &rule, int32_t rank, Seen *seen) {
  const uint64_t key = pc::rank_key(rule, rank);
  const bool prod = rule.op == PLX_PROD;
  for (uint64_t i = 0; i < kElements; ++i) {
    const double v = pc::widen(pc::input_value<T>(rule, key, i));
    CAPTURE(i);
    REQUIRE(std::isfinite(v));
    REQUIRE(std::fabs(v) >= (prod ? 0.875 : 1.0 / 64));
    REQUIRE(std::fabs(v) <= (prod ? 1.125 : 1.0));
    (v < 0 ? seen->negative : seen->positive) = true;
  }
}

template <typename T>
void check_int_stream(const pc::InputRule &rule, int32_t rank, pc::Int limit, Seen *seen) {
  const uint64_t key = pc::rank_key(rule, rank);
  for (uint64_t i = 0; i < kElements; ++i) {
    const pc::Int v = pc::widen(pc::input_value<T>(rule, key, i));
    const pc::Int magnitude = v < 0 ? -v : v;
    CAPTURE(i);
    REQUIRE(magnitude >= 1);
    REQUIRE(magnitude <= static_cast<pc::Int>(pc::int_bound(rule)));
    REQUIRE(magnitude <= limit);
    (v < 0 ? seen->negative : seen->positive) = true;
  }
}

}  // namespace

TEST_CASE("Conformance.Inputs.never_zero_and_inside_the_ranges_of_every_dtype_op_and_rank_count") {
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (const plx_reduce_op op : kOps)
      for (const int32_t nranks : kRankCounts) {
        CAPTURE(dtype);
        CAPTURE(op);
        CAPTURE(nranks);
        const pc::InputRule rule = pc::make_input_rule(dtype, op, nranks, 7);
        Seen seen;
        pc::with_dtype(dtype, [&]<typename T>(T) {
          for (int32_t r = 0; r < nranks; ++r) {
            if constexpr (pc::is_float_type<T>)
              check_float_stream<T>(rule, r, &seen);
            else
              check_int_stream<T>(rule, r, magnitude_limit(dtype, op, nranks), &seen);
          }
        });
        CHECK(seen.positive);
        const bool signs = pc::is_float(dtype) ? op != PLX_PROD : pc::is_signed_int(dtype);
        CHECK(seen.negative == signs);
      }
}

TEST_CASE("Conformance.Inputs.integer_bound_is_the_largest_power_of_two_under_the_limit") {
  for (plx_dtype dtype : {PLX_INT8, PLX_UINT8, PLX_INT32, PLX_UINT32, PLX_INT64, PLX_UINT64})
    for (const plx_reduce_op op : {PLX_SUM, PLX_PROD})
      for (const int32_t nranks : kRankCounts) {
        CAPTURE(dtype);
        CAPTURE(op);
        CAPTURE(nranks);
        const pc::Int limit = magnitude_limit(dtype, op, nranks);
        const pc::Int bound = pc::int_bound(pc::make_input_rule(dtype, op, nranks, 1));
        CHECK(bound <= (limit < 1 ? 1 : limit));
        CHECK((limit < 2 || 2 * bound > limit));
        CHECK((bound & (bound - 1)) == 0);
      }
}

TEST_CASE("Conformance.Inputs.fill_input_writes_input_value_from_any_first_element") {
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype) {
    CAPTURE(dtype);
    const pc::InputRule rule = pc::make_input_rule(dtype, PLX_SUM, 4, 99);
    pc::with_dtype(dtype, [&]<typename T>(T) {
      std::vector<T> whole(kElements), tail(kElements - 1000);
      pc::fill_input(rule, 2, 0, kElements, whole.data());
      pc::fill_input(rule, 2, 1000, tail.size(), tail.data());
      const uint64_t key = pc::rank_key(rule, 2);
      for (uint64_t i = 0; i < kElements; ++i) {
        CAPTURE(i);
        REQUIRE(pc::widen(whole[i]) == pc::widen(pc::input_value<T>(rule, key, i)));
        if (i >= 1000) REQUIRE(pc::widen(tail[i - 1000]) == pc::widen(whole[i]));
      }
    });
  }
}

TEST_CASE("Conformance.Inputs.ranks_and_seeds_give_different_streams") {
  const pc::InputRule a = pc::make_input_rule(PLX_FLOAT32, PLX_SUM, 4, 1);
  const pc::InputRule b = pc::make_input_rule(PLX_FLOAT32, PLX_SUM, 4, 2);
  uint64_t same_rank = 0, same_seed = 0;
  for (uint64_t i = 0; i < kElements; ++i) {
    const float x = pc::input_value<float>(a, pc::rank_key(a, 0), i);
    same_rank += x == pc::input_value<float>(a, pc::rank_key(a, 1), i);
    same_seed += x == pc::input_value<float>(b, pc::rank_key(b, 0), i);
  }
  CHECK(same_rank < kElements / 100);
  CHECK(same_seed < kElements / 100);
}

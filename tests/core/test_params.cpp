#include <doctest/doctest.h>

#include "core/params.hpp"

using namespace plexus::core;

TEST_CASE("Core.Params.sizes_take_suffixes") {
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("64K") == 65536u);
  CHECK(parse_size("1m") == 1048576u);
  CHECK(parse_size("3G") == 3ull << 30);
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("K"));
  CHECK_FALSE(parse_size("12X"));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("99999999999999999999G"));
}

TEST_CASE("Core.Params.ints_bools_doubles") {
  CHECK(parse_int("-12") == -12);
  CHECK_FALSE(parse_int("12a"));
  CHECK(parse_bool("yes") == true);
  CHECK(parse_bool("off") == false);
  CHECK_FALSE(parse_bool("maybe"));
  CHECK(parse_double("0.3") == doctest::Approx(0.3));
  CHECK_FALSE(parse_double("0.3x"));
}

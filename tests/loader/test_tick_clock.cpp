// The clock behind plx_op_stats.time_ns (loader/tick_clock.hpp): ticks
// over a span of steady_clock time convert to that span, whichever source
// the machine gives (the TSC or steady_clock itself).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "loader/tick_clock.hpp"

namespace pl = plexus::loader;

namespace {

uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

}  // namespace

TEST_CASE("Loader.TickClock.ticks_convert_to_the_time_they_span") {
  for (const int ms : {1, 20}) {
    CAPTURE(ms);
    const uint64_t ticks0 = pl::ticks_now(), ns0 = steady_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    const uint64_t ticks1 = pl::ticks_now(), ns1 = steady_ns();
    const double span = static_cast<double>(ns1 - ns0);
    const double converted = static_cast<double>(pl::ticks_to_ns(ticks1 - ticks0));
    CHECK(converted > span * 0.98 - 2000);  // the two clocks are read a few ns apart
    CHECK(converted < span * 1.02 + 2000);
  }
}

TEST_CASE("Loader.TickClock.no_ticks_are_no_time") {
  CHECK(pl::ticks_to_ns(0) == 0);
  const uint64_t t = pl::ticks_now();
  CHECK(pl::ticks_now() >= t);
}

#include "loader/tick_clock.hpp"

#include <chrono>
#include <fstream>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define PLEXUS_HAVE_TSC 1
#else
#define PLEXUS_HAVE_TSC 0
#endif

namespace plexus::loader {
namespace {

using Clock = std::chrono::steady_clock;

// The shortest span the tick rate is measured over: the clock reads at its
// two ends are tens of ns apart at worst, a few parts in 10^5 of it.
constexpr std::chrono::milliseconds min_rate_span{2};

uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      Clock::now().time_since_epoch()).count());
}

// Linux keeps time by the TSC only where it found it invariant and in step
// across CPUs; it reports that clocksource by name.
bool kernel_keeps_time_by_tsc() {
  std::ifstream in("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string name;
  return PLEXUS_HAVE_TSC && (in >> name) && name == "tsc";
}

uint64_t read_tsc() {
#if PLEXUS_HAVE_TSC
  return __rdtsc();
#else
  return 0;
#endif
}

// Chosen once per process, at the first tick; tsc0 and ns0 start the span
// over which the tick rate is measured.
struct TickSource {
  bool tsc = kernel_keeps_time_by_tsc();
  uint64_t tsc0 = read_tsc();
  uint64_t ns0 = steady_ns();
};

const TickSource &source() {
  static const TickSource s;
  return s;
}

}  // namespace

uint64_t ticks_now() {
  const TickSource &s = source();
  return s.tsc ? read_tsc() : steady_ns();
}

uint64_t ticks_to_ns(uint64_t ticks) {
  const TickSource &s = source();
  if (!s.tsc) return ticks;
  const uint64_t min_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(min_rate_span).count();
  uint64_t ns = steady_ns();
  while (ns - s.ns0 < min_ns) ns = steady_ns();
  const double ns_per_tick = static_cast<double>(ns - s.ns0) / static_cast<double>(read_tsc() - s.tsc0);
  return static_cast<uint64_t>(static_cast<double>(ticks) * ns_per_tick + 0.5);
}

}  // namespace plexus::loader

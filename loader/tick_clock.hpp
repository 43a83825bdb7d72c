// The clock behind plx_op_stats.time_ns. Every collective reads it twice,
// so it is on every call's path: two steady_clock reads cost about 65 ns on
// the 2-core dev VM, where a 2-rank 8-byte shm-native all-reduce takes
// about 180 ns. Where the kernel keeps time by the time-stamp counter
// itself (clocksource "tsc": invariant and in step across cores), a call
// reads the counter (about 11 ns) and the ticks become nanoseconds only
// when the statistics are read, at a rate measured against steady_clock
// since the first tick. Elsewhere (another clocksource, not x86) a tick is
// a steady_clock nanosecond.
#pragma once

#include <cstdint>

namespace plexus::loader {

// Now, in ticks; only differences mean anything.
uint64_t ticks_now();

// A tick count in nanoseconds. Within 2 ms of the first tick it waits until
// 2 ms have passed, so that the rate is measured over at least that long.
uint64_t ticks_to_ns(uint64_t ticks);

}  // namespace plexus::loader

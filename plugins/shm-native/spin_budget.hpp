// How waits spend their time: how many polls before yielding, whether
// polling pays at all, and how often to look at a peer's liveness.
// Header-only and free of the rest of the plugin, so tests compile it.
#pragma once

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace plexus::shm_native {

// A wait polls up to polls() times before it yields. The budget adapts to
// how waits end: a peer that came while we polled doubles it (up to the
// configured SPIN), one that did not halves it (down to min_polls). Polling
// only pays while the awaited peer runs on another core; when it does not
// (other processes' compiles beside us, two ranks on one core) every poll
// delays it, and a fixed SPIN of 2000 made each 2-rank step cost ~50 us
// under such load (measured: 154 us at 8 B, against 3.8 us yielding at once).
class SpinBudget {
 public:
  static constexpr int32_t min_polls = 8;
  explicit SpinBudget(int32_t max_polls) : max_(max_polls), polls_(max_polls) {}
  int32_t polls() const { return polls_; }
  int32_t max_polls() const { return max_; }
  void came_while_polling() { polls_ = std::min(max_, std::max(polls_ * 2, min_polls)); }
  void came_after_polling() { polls_ = std::min(max_, std::max(polls_ / 2, min_polls)); }
  // A wait that allowed `spins` polls ended after `looks` failed looks. A
  // peer there at the first look says nothing about polling (it may have
  // run while we were descheduled), so it leaves the budget as it is.
  void waited(int64_t looks, int32_t spins) {
    if (looks > spins) came_after_polling();
    else if (looks > 0) came_while_polling();
  }

 private:
  int32_t max_;
  int32_t polls_;
};

// Whether the ranks of one host cannot each have a CPU of their own: fewer
// distinct CPUs in the union of their affinity masks than ranks. Ranks
// pinned one to a core are not oversubscribed; ranks bound to one shared
// core, or more ranks than the CPUs they may run on, are.
inline bool outnumber_cpus(const std::vector<cpu_set_t> &masks) {
  cpu_set_t all;
  CPU_ZERO(&all);
  for (const cpu_set_t &m : masks) CPU_OR(&all, &all, &m);
  return static_cast<size_t>(CPU_COUNT(&all)) < masks.size();
}

// When a wait should look whether a peer's process still runs: that reads
// /proc (~20 us), so at most once a period, the first time one period into
// the wait. Looking at every wait's first slow-path turn cost each 4-rank
// all-reduce on 2 cores 17 us (21 against 4 us at 8 B) and each 1 KiB queue
// message to 4 readers 8 us.
class LivenessClock {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration period = std::chrono::milliseconds(10);
  bool due(Clock::time_point now = Clock::now()) {
    if (!started_) {
      started_ = true;
      next_ = now + period;
      return false;
    }
    if (now < next_) return false;
    next_ = now + period;
    return true;
  }

 private:
  Clock::time_point next_{};
  bool started_ = false;
};

// Whether a yielding wait may go to sleep: only once it has been awake
// `after` since its first look here. A sleeping rank costs the rank that
// wakes it a syscall and itself the wake-up's latency, which on the GPU
// machine's VM (32 cores) outlasted 200 yields: waits that slept made peers'
// waits long enough to sleep too, and whole sizes ran at 0.3-2 ms an
// all-reduce (16 ranks, 1 KiB: 608 us against 3.9 us; 1 MiB: 0.68-1.3 ms
// against 0.41-0.56 ms never sleeping). Zero: at once (ranks that outnumber
// their CPUs, where a sleeping rank hands its core to the rank it awaits).
class SleepGate {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SleepGate(std::chrono::microseconds after) : after_(after) {}
  bool open(Clock::time_point now = Clock::now()) {
    if (after_.count() <= 0) return true;
    if (!started_) {
      started_ = true;
      since_ = now;
    }
    return now - since_ >= after_;
  }

 private:
  std::chrono::microseconds after_;
  Clock::time_point since_{};
  bool started_ = false;
};

}  // namespace plexus::shm_native

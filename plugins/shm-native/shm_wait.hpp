// Waiting on peers' counters in shared memory: spin briefly, then yield,
// then sleep on a futex, so that many ranks on few cores still progress.
// Every wait watches the communicator's deadline, the failure word every
// rank can post (abort, timeout, lost peer) and the liveness of the rank it
// waits for, so nothing waits forever (PLX-P-9, PLX-P-10, PLX-P-11).
#pragma once

#include <chrono>
#include <sched.h>

#include <cstdint>

#include "plugins/shm-native/shm_comm.hpp"

namespace plexus::shm_native {

// The end of a wait. It starts at the first look (expired()), not at
// construction: a collective whose peers are ready never reads the clock,
// and the few microseconds of spinning before the first look do not matter
// against timeouts of seconds.
class Deadline {
 public:
  explicit Deadline(int32_t timeout_ms) : timeout_ms_(timeout_ms) {}
  bool expired() const;
  int32_t timeout_ms() const { return timeout_ms_; }

 private:
  int32_t timeout_ms_;  // negative: forever
  mutable std::chrono::steady_clock::time_point end_{};
  mutable bool started_ = false;
};

using CounterField = Counter RankControl::*;

// Names a collective in messages ("all_reduce #17"); formatted only when
// something fails, so the hot path pays nothing for it.
struct OpLabel {
  const char *coll;
  uint64_t seq;
};

// Counters wrap; ranks are never more than a few steps apart.
inline bool reached(uint32_t value, uint32_t target) {
  return static_cast<int32_t>(value - target) >= 0;
}

// Stores `value` into a counter and wakes any rank sleeping on it.
void publish_counter(Counter &counter, uint32_t value);
inline void publish(Comm &comm, CounterField field, uint32_t value) {
  publish_counter(comm.control(comm.rank()).*field, value);
}

// The waiting loop every wait uses: polls `counter` until ready(value) holds,
// `spins` times, then yields `yields` times, then sleeps on the counter's
// futex in short naps; check() runs on the slow path and ends the wait with
// its status when that is not PLX_OK. *looks (when given) gets how many
// looks at the counter failed before ready held.
template <typename Ready, typename Check>
plx_status wait_on(Counter &counter, int32_t spins, int32_t yields, Ready ready, Check check,
                   int64_t *looks = nullptr);
template <typename Ready, typename Check>
plx_status wait_on(Counter &counter, const Params &p, Ready ready, Check check) {
  return wait_on(counter, p.spin_iterations, p.yield_iterations, ready, check);
}

// Waits until rank r's counter has reached `target` (wrap-safe), polling
// as the communicator's spin budget says; `polled` true: the caller already
// polled (and told the budget), so this wait goes straight to yielding.
plx_status wait_rank(Comm &comm, int32_t r, CounterField field, uint32_t target,
                     const Deadline &deadline, const OpLabel &what, bool polled = false);

// Waits for every rank but this one.
plx_status wait_all(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                    const OpLabel &what);

void cpu_relax();
void futex_nap(Counter &counter, uint32_t seen);

// Polls `word` at most `spins` times until it reaches target; how many
// looks failed before it did, or -1. Only a fast path: the caller falls back
// to a wait that checks for failures, the deadline and the peer's death.
inline int32_t spin_until(const std::atomic<uint32_t> &word, uint32_t target, int32_t spins) {
  for (int32_t i = 0; i < spins; ++i) {
    if (reached(word.load(std::memory_order_acquire), target)) return i;
    cpu_relax();
  }
  return reached(word.load(std::memory_order_acquire), target) ? spins : -1;
}

template <typename Ready, typename Check>
plx_status wait_on(Counter &counter, int32_t spins, int32_t yields, Ready ready, Check check, int64_t *looks) {
  for (int64_t i = 0;; ++i) {
    if (ready(counter.value.load(std::memory_order_acquire))) {
      if (looks) *looks = i;
      return PLX_OK;
    }
    if (i < spins) {
      cpu_relax();
      if ((i & 1023) != 1023) continue;
    }
    if (plx_status s = check()) return s;
    if (i < spins + yields) {
      sched_yield();
      continue;
    }
    counter.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = counter.value.load(std::memory_order_seq_cst);
    if (!ready(seen)) futex_nap(counter, seen);
    counter.sleepers.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace plexus::shm_native

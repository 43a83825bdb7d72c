// Waiting on peers' counters in shared memory: spin briefly, then yield,
// then sleep on a futex, so that many ranks on few cores still progress.
// Every wait watches the communicator's deadline, the failure word every
// rank can post (abort, timeout, lost peer) and the liveness of the rank it
// waits for, so nothing waits forever (PLX-P-9, PLX-P-10, PLX-P-11).
#pragma once

#include <chrono>
#include <sched.h>

#include <cstdint>
#include <functional>

#include "plugins/shm-native/shm_comm.hpp"
#include "plugins/shm-native/spin_budget.hpp"

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
// `spins` times, then yields at least p.yield_iterations times and until it
// has been awake p.sleep_after_us (SleepGate), then sleeps on the counter's
// futex in short naps; check() runs on the slow path and ends the wait with
// its status when that is not PLX_OK. *looks (when given) gets how many
// looks at the counter failed before ready held.
template <typename Ready, typename Check>
plx_status wait_on(Counter &counter, int32_t spins, const Params &p, Ready ready, Check check,
                   int64_t *looks = nullptr);
template <typename Ready, typename Check>
plx_status wait_on(Counter &counter, const Params &p, Ready ready, Check check) {
  return wait_on(counter, p.spin_iterations, p, ready, check);
}

// Waits until rank r's counter has reached `target` (wrap-safe), polling
// as the communicator's spin budget says; `polled` true: the caller already
// polled (and told the budget), so this wait goes straight to yielding.
plx_status wait_rank(Comm &comm, int32_t r, CounterField field, uint32_t target,
                     const Deadline &deadline, const OpLabel &what, bool polled = false);

// Waits until `word`, written by rank r, equals `target` (an LL line's
// sequence number): polls as the spin budget says, then yields as wait_on
// does, then naps 50 us at a time, checking for a posted failure, r's death and
// the deadline; no futex (the word has no sleepers count to wake it by).
// A timeout names late_rank() where given: when r is itself waiting for
// another rank, the rank that never arrived.
plx_status wait_word(Comm &comm, int32_t r, const std::atomic<uint64_t> &word, uint64_t target,
                     const Deadline &deadline, const OpLabel &what,
                     const std::function<int32_t()> &late_rank = {});

// Waits for every rank but this one (on_each_arrival with nothing to do).
plx_status wait_all(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                    const OpLabel &what);

// Calls arrived(r) for every rank r but this one once r's counter has
// reached `target`, in the order the peers get there, and returns the first
// status other than PLX_OK that arrived() or a wait returns. Each poll reads
// every pending peer's counter in one pass, with no early exit, so that the
// loads of a pass are in flight together: a peer that moved costs one miss,
// paid at once for all that moved, where waiting for one peer after the
// other paid a miss per peer in turn (15 of them a sync at 16 ranks). After
// the spin budget's polls the rest are awaited one by one on the slow path
// (yield, futex, liveness, deadline), from rank+1 on; a failure another
// rank posted (abort) ends the polls every 1024 idle ones, as in wait_on.
template <typename Arrived>
plx_status on_each_arrival(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                           const OpLabel &what, Arrived arrived);

// A poll's pause: frees the core's pipeline (and an SMT sibling) between
// looks. Inline, as every poll loop calls it.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
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
plx_status wait_on(Counter &counter, int32_t spins, const Params &p, Ready ready, Check check, int64_t *looks) {
  SleepGate awake(std::chrono::microseconds(p.sleep_after_us));
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
    if (i < spins + p.yield_iterations || !awake.open()) {
      sched_yield();
      continue;
    }
    counter.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = counter.value.load(std::memory_order_seq_cst);
    if (!ready(seen)) futex_nap(counter, seen);
    counter.sleepers.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Peers from rank+1 on (wrapping) that have not arrived yet.
class PendingPeers {
 public:
  explicit PendingPeers(const Comm &comm);
  // Calls arrived(r) for each pending r for which ready(r) holds and drops
  // it; how many arrived in this pass, or -1 with *failure set.
  template <typename Ready, typename Arrived>
  int32_t poll(Ready &ready, Arrived &arrived, plx_status *failure);
  int32_t size() const { return size_; }
  int32_t operator[](int32_t i) const { return ranks_[i]; }

 private:
  int32_t ranks_[core::Rendezvous::kMaxRanks];  // [0, size_): still pending
  int32_t size_ = 0;
};

template <typename Ready, typename Arrived>
int32_t PendingPeers::poll(Ready &ready, Arrived &arrived, plx_status *failure) {
  int32_t kept = 0;
  for (int32_t i = 0; i < size_; ++i) {
    const int32_t r = ranks_[i];
    if (!ready(r)) {
      ranks_[kept++] = r;
      continue;
    }
    if ((*failure = arrived(r)) != PLX_OK) return -1;
  }
  const int32_t came = size_ - kept;
  size_ = kept;
  return came;
}

template <typename Arrived>
plx_status on_each_arrival(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                           const OpLabel &what, Arrived arrived) {
  auto ready = [&comm, field, target](int32_t r) {
    return reached((comm.control(r).*field).value.load(std::memory_order_acquire), target);
  };
  PendingPeers pending(comm);
  SpinBudget &budget = comm.spin_budget();
  const int32_t spins = budget.polls();
  plx_status failure = PLX_OK;
  int32_t idle_polls = 0;
  while (pending.size() > 0 && idle_polls <= spins) {
    const int32_t came = pending.poll(ready, arrived, &failure);
    if (came < 0) return failure;
    if (came != 0 || ++idle_polls > spins) continue;
    cpu_relax();
    if ((idle_polls & 1023) == 0)
      if (plx_status s = comm.posted_failure()) return s;
  }
  budget.waited(idle_polls, spins);
  for (int32_t i = 0; i < pending.size(); ++i) {
    if (plx_status s = wait_rank(comm, pending[i], field, target, deadline, what, true)) return s;
    if (plx_status s = arrived(pending[i])) return s;
  }
  return PLX_OK;
}

}  // namespace plexus::shm_native

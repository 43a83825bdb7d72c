#include "plugins/shm-native/shm_wait.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>
#include <functional>

#include "core/status.hpp"

namespace plexus::shm_native {
namespace {

using Clock = std::chrono::steady_clock;

// Shared (not private) futex: the word lives in a segment other processes map.
void futex_wake(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// The slow path's checks: a failure posted by anyone, the peer's death, the
// deadline (naming late_rank() where given: the rank r itself waits for).
plx_status check_progress(Comm &comm, int32_t r, const Deadline &deadline, const OpLabel &what,
                          LivenessClock *liveness, const std::function<bool()> &arrived,
                          const std::function<int32_t()> &late_rank = {}) {
  if (plx_status s = comm.posted_failure()) return s;
  // A peer may publish its last step, or a failure (abort), and leave
  // between our look at its counter and this check: gone but arrived is
  // not lost, and gone after posting a failure reports that failure.
  if (liveness->due() && !comm.rendezvous().peer_alive(r) && !arrived()) {
    if (plx_status s = comm.posted_failure()) return s;
    return comm.fail_all(PLX_ERR_PEER_LOST, fmt::format("shm-native: rank {} died; rank {} noticed "
                         "while waiting in {} #{}", r, comm.rank(), what.coll, what.seq));
  }
  if (deadline.expired())
    return comm.fail_all(PLX_ERR_TIMEOUT, fmt::format("shm-native: rank {} waited {} ms in {} #{} "
                         "for rank {}, which never arrived", comm.rank(), deadline.timeout_ms(),
                         what.coll, what.seq, late_rank ? late_rank() : r));
  return PLX_OK;
}

}  // namespace

bool Deadline::expired() const {
  if (timeout_ms_ < 0) return false;
  const Clock::time_point now = Clock::now();
  if (!started_) {
    started_ = true;
    end_ = now + std::chrono::milliseconds(timeout_ms_);
  }
  return now >= end_;
}

// Naps are short so that the slow-path checks (deadline, liveness, abort)
// run every 2 ms even if no wake-up comes.
void futex_nap(Counter &counter, uint32_t seen) {
  const timespec ts{0, 2'000'000};
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(&counter.value), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void publish_counter(Counter &counter, uint32_t value) {
  // Pairs with the waiter's increment of sleepers before its last look at
  // value: both sides are sequentially consistent, so one sees the other and
  // no wake-up is lost. An exchange (a locked instruction on x86) keeps the
  // load after the store as a store and mfence do; the fence was 11% of the
  // samples of a 2-rank 8-byte all-reduce on the 2-core dev machine (AMD).
  counter.value.exchange(value, std::memory_order_seq_cst);
  if (counter.sleepers.load(std::memory_order_seq_cst) != 0) futex_wake(&counter.value);
}

plx_status wait_rank(Comm &comm, int32_t r, CounterField field, uint32_t target,
                     const Deadline &deadline, const OpLabel &what, bool polled) {
  LivenessClock liveness;
  SpinBudget &budget = comm.spin_budget();
  const int32_t spins = polled ? 0 : budget.polls();
  int64_t looks = 0;
  const plx_status s = wait_on(
      comm.control(r).*field, spins, comm.params(),
      [target](uint32_t v) { return reached(v, target); },
      [&] {
        return check_progress(comm, r, deadline, what, &liveness, [&] {
          return reached((comm.control(r).*field).value.load(std::memory_order_acquire), target);
        });
      },
      &looks);
  if (!polled) budget.waited(looks, spins);
  return s;
}

plx_status wait_word(Comm &comm, int32_t r, const std::atomic<uint64_t> &word, uint64_t target,
                     const Deadline &deadline, const OpLabel &what, const std::function<int32_t()> &late_rank) {
  const auto arrived = [&word, target] { return word.load(std::memory_order_acquire) == target; };
  if (arrived()) return PLX_OK;
  SpinBudget &budget = comm.spin_budget();
  const int32_t spins = budget.polls();
  for (int32_t i = 1; i <= spins; ++i) {
    cpu_relax();
    if (arrived()) {
      budget.waited(i, spins);
      return PLX_OK;
    }
  }
  budget.waited(spins + 1, spins);
  LivenessClock liveness;
  SleepGate awake(std::chrono::microseconds(comm.params().sleep_after_us));
  for (int32_t yields = 0; !arrived(); ++yields) {
    if (plx_status s = check_progress(comm, r, deadline, what, &liveness, arrived, late_rank)) return s;
    if (yields < comm.params().yield_iterations || !awake.open()) sched_yield();
    else usleep(50);  // a long wait: a nap instead of a sleep on a futex it does not have
  }
  return PLX_OK;
}

PendingPeers::PendingPeers(const Comm &comm) {
  for (int32_t i = 1; i < comm.nranks(); ++i) ranks_[size_++] = (comm.rank() + i) % comm.nranks();
}

plx_status wait_all(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                    const OpLabel &what) {
  return on_each_arrival(comm, field, target, deadline, what, [](int32_t) { return PLX_OK; });
}

}  // namespace plexus::shm_native

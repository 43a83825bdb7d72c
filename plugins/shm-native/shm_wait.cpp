#include "plugins/shm-native/shm_wait.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

#include "core/status.hpp"

namespace plexus::shm_native {
namespace {

using Clock = std::chrono::steady_clock;

// Counters wrap; ranks are never more than a few steps apart.
bool reached(uint32_t value, uint32_t target) { return static_cast<int32_t>(value - target) >= 0; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Shared (not private) futex: the word lives in a segment other processes map.
void futex_wait(std::atomic<uint32_t> *word, uint32_t seen, long sleep_ns) {
  const timespec ts{0, sleep_ns};
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// The slow path's checks: a failure posted by anyone, the peer's death, the
// deadline. Liveness reads /proc, so it runs at most every few ms.
plx_status check_progress(Comm &comm, int32_t r, const Deadline &deadline, const OpLabel &what,
                          Clock::time_point *next_liveness) {
  if (plx_status s = comm.posted_failure()) return s;
  const Clock::time_point now = Clock::now();
  if (now >= *next_liveness) {
    *next_liveness = now + std::chrono::milliseconds(10);
    if (!comm.rendezvous().peer_alive(r))
      return comm.fail_all(PLX_ERR_PEER_LOST, fmt::format("shm-native: rank {} died; rank {} noticed "
                           "while waiting in {} #{}", r, comm.rank(), what.coll, what.seq));
  }
  if (deadline.expired())
    return comm.fail_all(PLX_ERR_TIMEOUT, fmt::format("shm-native: rank {} waited {} ms in {} #{} "
                         "for rank {}, which never arrived", comm.rank(), deadline.timeout_ms(),
                         what.coll, what.seq, r));
  return PLX_OK;
}

}  // namespace

Deadline::Deadline(int32_t timeout_ms)
    : timeout_ms_(timeout_ms), end_(Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms)) {}

bool Deadline::expired() const { return timeout_ms_ >= 0 && Clock::now() >= end_; }

void publish(Comm &comm, CounterField field, uint32_t value) {
  Counter &counter = comm.control(comm.rank()).*field;
  counter.value.store(value, std::memory_order_release);
  // Pairs with the waiter's increment of sleepers before its last look at
  // value: one of the two sides sees the other, so no wake-up is lost.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (counter.sleepers.load(std::memory_order_relaxed) != 0) futex_wake(&counter.value);
}

plx_status wait_rank(Comm &comm, int32_t r, CounterField field, uint32_t target,
                     const Deadline &deadline, const OpLabel &what) {
  Counter &counter = comm.control(r).*field;
  const Params &p = comm.params();
  Clock::time_point next_liveness = Clock::now();
  for (int64_t i = 0;; ++i) {
    if (reached(counter.value.load(std::memory_order_acquire), target)) return PLX_OK;
    if (i < p.spin_iterations) {
      cpu_relax();
      if ((i & 1023) == 1023)
        if (plx_status s = comm.posted_failure()) return s;
      continue;
    }
    if (plx_status s = check_progress(comm, r, deadline, what, &next_liveness)) return s;
    if (i < p.spin_iterations + p.yield_iterations) {
      sched_yield();
      continue;
    }
    counter.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = counter.value.load(std::memory_order_seq_cst);
    if (!reached(seen, target)) futex_wait(&counter.value, seen, 2'000'000);
    counter.sleepers.fetch_sub(1, std::memory_order_relaxed);
  }
}

plx_status wait_all(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                    const OpLabel &what) {
  for (int32_t r = 0; r < comm.nranks(); ++r) {
    if (r == comm.rank()) continue;
    if (plx_status s = wait_rank(comm, r, field, target, deadline, what)) return s;
  }
  return PLX_OK;
}

}  // namespace plexus::shm_native

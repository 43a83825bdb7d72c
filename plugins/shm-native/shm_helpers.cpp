#include "plugins/shm-native/shm_helpers.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>

namespace plexus::shm_native {
namespace {

void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Private futexes: the words live in this process only.
void futex_wait(std::atomic<uint32_t> *word, uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

Span part_of(Span whole, int32_t parts, int32_t p, size_t align) {
  const size_t per_part = (whole.length + parts - 1) / parts;
  const size_t per = (per_part + align - 1) / align * align;
  const size_t begin = std::min(whole.length, per * static_cast<size_t>(p));
  return {whole.first + begin, std::min(whole.length, begin + per) - begin};
}

HelperThreads::~HelperThreads() {
  if (threads_.empty()) return;
  if (getpid() != owner_pid_) {  // a fork's child: the threads are not here to stop or join
    new std::vector<std::thread>(std::move(threads_));  // leaked: destroying them would terminate
    return;
  }
  stopping_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  futex_wake_all(&generation_);
  for (std::thread &t : threads_) t.join();
}

void HelperThreads::run_erased(Call call, void *task) {
  if (threads_.empty() && helpers_ > 0) {  // started on first use: small messages never need them
    owner_pid_ = getpid();
    for (int32_t h = 1; h <= helpers_; ++h) threads_.emplace_back([this, h] { serve(h); });
  }
  if (helpers_ == 0 || getpid() != owner_pid_) {  // no helpers, or none in this forked child
    for (int32_t p = 0; p <= helpers_; ++p) call(task, p);
    return;
  }
  call_.store(call, std::memory_order_relaxed);
  task_.store(task, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  const uint32_t job = generation_.load(std::memory_order_relaxed) + 1;
  // Pairs with a helper's increment of sleepers_ before its last look at
  // generation_: both sides are sequentially consistent, so one sees the
  // other and no wake-up is lost (an exchange, as publish_counter, rather
  // than a store and a fence).
  generation_.exchange(job, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) futex_wake_all(&generation_);
  run_part(0);
  for (int32_t p = 1; p < parts(); ++p)  // parts no helper took yet
    if (claimed_[static_cast<size_t>(p)].job.load(std::memory_order_relaxed) != job && claim(job, p)) run_part(p);
  wait_until_finished();
}

bool HelperThreads::claim(uint32_t job, int32_t part) {
  uint32_t previous = job - 1;
  return claimed_[static_cast<size_t>(part)].job.compare_exchange_strong(previous, job, std::memory_order_acq_rel,
                                                                         std::memory_order_relaxed);
}

void HelperThreads::run_part(int32_t part) {
  call_.load(std::memory_order_relaxed)(task_.load(std::memory_order_relaxed), part);
  finished_.fetch_add(1, std::memory_order_release);
}

// Waits for the parts helpers claimed and still run: a short wait, as a
// part is as long as the caller's; yielding after a while lets a helper
// that lost its CPU get it back.
void HelperThreads::wait_until_finished() {
  for (uint32_t spin = 0; finished_.load(std::memory_order_acquire) != parts(); ++spin) {
    if (spin < 4096) relax();
    else sched_yield();
  }
}

void HelperThreads::serve(int32_t part) {
  uint32_t seen = 0;
  while (wait_for_work(&seen))
    if (claim(seen, part)) run_part(part);
}

// Polls for a new job for poll_us_, then sleeps until one comes; false
// when the threads are stopping.
bool HelperThreads::wait_for_work(uint32_t *seen) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::microseconds(poll_us_);
  for (uint32_t spin = 1; generation_.load(std::memory_order_acquire) == *seen; ++spin) {
    if ((spin & 255) != 0 || Clock::now() < until) {
      relax();
      continue;
    }
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (generation_.load(std::memory_order_seq_cst) == *seen) futex_wait(&generation_, *seen);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
  *seen = generation_.load(std::memory_order_acquire);
  return !stopping_.load(std::memory_order_relaxed);
}

}  // namespace plexus::shm_native

#include "plugins/pinned-host/pinned_helper.hpp"

#include <sched.h>
#include <time.h>

#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "core/cpu_reduce.hpp"
#include "core/dtype.hpp"
#include "core/status.hpp"

namespace plexus::pinned_host {
namespace {

constexpr uint64_t kSpins = 4000;   // polls before yielding: a step's data is microseconds away
constexpr uint64_t kYields = 200;   // then yields, then naps of kNapNs
constexpr long kNapNs = 20000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint64_t load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

const char *coll_text(int32_t coll) { return coll == PLX_COLL_REDUCE ? "reduce" : "all_reduce"; }

}  // namespace

CpuHelper::CpuHelper(Setup setup) : setup_(std::move(setup)) { thread_ = std::thread([this] { main(); }); }

CpuHelper::~CpuHelper() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

bool CpuHelper::stopping() const {
  return stop_.load(std::memory_order_acquire) || load_acquire(reinterpret_cast<const uint64_t *>(setup_.seg + kp::kAbortOffset)) != 0;
}

// Spins, then yields, then naps; gives up when stopping, or after
// timeout_ms (negative: never).
template <class Ready>
CpuHelper::Wait CpuHelper::wait(Ready ready, int32_t timeout_ms) const {
  std::chrono::steady_clock::time_point end{};
  for (uint64_t i = 0;; ++i) {
    if (ready()) return Wait::ready;
    if (i < kSpins) {
      cpu_relax();
      continue;
    }
    if (stopping()) return Wait::stopped;
    const auto now = std::chrono::steady_clock::now();
    if (i == kSpins) end = now + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
    if (timeout_ms >= 0 && now > end) return Wait::timed_out;
    if (i < kSpins + kYields) {
      sched_yield();
    } else {
      const timespec nap{0, kNapNs};
      nanosleep(&nap, nullptr);
    }
  }
}

// Jobs in order; a job is taken (jobs_done) as soon as it is copied, so the
// kernels may reuse its slot while the steps run.
void CpuHelper::main() {
  for (uint64_t j = 0;; ++j) {
    const uint64_t *seq = flag(setup_.rank, kp::job_offset(setup_.layout, j));
    if (wait([&] { return load_acquire(seq) >= j + 1; }, -1) != Wait::ready) return;
    const kp::CpuJob job = *reinterpret_cast<const kp::CpuJob *>(seq);
    __atomic_store_n(flag(setup_.rank, kp::jobs_done_offset(setup_.layout)), j + 1, __ATOMIC_RELEASE);
    if (!run_job(job)) return;
    finished_.store(j + 1, std::memory_order_release);
  }
}

bool CpuHelper::run_job(const kp::CpuJob &job) {
  if (job.wire < 0 || job.wire >= PLX_DTYPE_COUNT) {
    setup_.fail(PLX_ERR_INTERNAL, fmt::format("pinned-host: rank {}'s CPU helper got a job of dtype {}",
                                              setup_.rank, job.wire));
    return false;
  }
  for (uint64_t i = 0; i < job.steps; ++i)
    if (!run_step(job, i)) return false;
  return true;
}

bool CpuHelper::run_step(const kp::CpuJob &job, uint64_t i) {
  const uint64_t n = job.base + i, first = i * job.step;
  const uint32_t s = static_cast<uint32_t>(n % setup_.layout.stages);
  if (!wait_staged(n, s, job.coll)) return false;
  if (!reduce_part(job, s, kp::min_u(job.step, job.count - first))) return false;
  __atomic_store_n(flag(setup_.rank, kp::reduced_offset(setup_.layout, s)), n + 1, __ATOMIC_RELEASE);
  return true;
}

// Every rank's kernel has staged step n (its own rank included).
bool CpuHelper::wait_staged(uint64_t n, uint32_t s, int32_t coll) {
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    const uint64_t *posted = flag(q, kp::posted_offset(s));
    const Wait w = wait([&] { return (load_acquire(posted) & ~kp::kSkip) >= n + 1; }, setup_.timeout_ms);
    if (w == Wait::ready) continue;
    if (w == Wait::timed_out)
      setup_.fail(PLX_ERR_TIMEOUT, fmt::format("pinned-host: rank {}'s CPU helper: {} (step {}) waited more than "
                                               "{} ms for rank {}'s data: it did not join the collective, died, or "
                                               "is stuck (the communicator's timeout)", setup_.rank, coll_text(coll),
                                               n, setup_.timeout_ms, q));
    return false;
  }
  return true;
}

// Part `rank` of the step, in the wire dtype, into this rank's stage (which
// is also one of the sources: reduce_into allows that).
bool CpuHelper::reduce_part(const kp::CpuJob &job, uint32_t s, uint64_t len) {
  const uint64_t ws = core::kDtypeBytes[job.wire];
  const kp::Range r = kp::part_of(len, kp::part_elems(len, setup_.nranks, ws), setup_.rank);
  if (r.end == r.begin) return true;
  std::vector<const void *> srcs(setup_.nranks);
  for (int32_t q = 0; q < setup_.nranks; ++q) srcs[q] = stage(q, s) + r.begin * ws;
  const plx_status st = core::reduce_into(job.wire, job.op, stage(setup_.rank, s) + r.begin * ws, srcs.data(),
                                          setup_.nranks, r.end - r.begin);
  if (st == PLX_OK) return true;
  setup_.fail(st, fmt::format("pinned-host: rank {}'s CPU helper could not reduce: {}", setup_.rank,
                              core::last_message()));
  return false;
}

}  // namespace plexus::pinned_host

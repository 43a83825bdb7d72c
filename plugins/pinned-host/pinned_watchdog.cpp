// The watchdog: one thread per communicator, every WATCHDOG_POLL_MS. The
// kernels time out by themselves (a device-side deadline), record it in
// their rank's ErrorRecord in the segment and set the abort word, which
// stops every rank's kernels; the watchdog turns the record into the sticky
// PLX_ERR_TIMEOUT and posts it, adopts a failure another rank posted, and
// every 50 ms checks that the peers' processes live (PLX_ERR_PEER_LOST long
// before a timeout would notice). It makes no CUDA call, so it never
// disturbs a graph capture.
#include <chrono>

#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/pinned-host/pinned_comm.hpp"

namespace plexus::pinned_host {
namespace {

constexpr int64_t kPeerCheckNs = 50'000'000;

}  // namespace

void Comm::watchdog_main() {
  std::unique_lock lock(watchdog_mutex_);
  while (!watchdog_stop_) {
    watchdog_wake_.wait_for(lock, std::chrono::milliseconds(params_.watchdog_poll_ms));
    if (watchdog_stop_ || failure_.load() != PLX_OK) continue;
    lock.unlock();
    watch_device_error();
    if (failure_.load() == PLX_OK) watch_posted();
    if (failure_.load() == PLX_OK) watch_peers();
    lock.lock();
  }
}

// This rank's kernels' timeout record; once the abort word is set, a peer's
// too: a kernel that timed out stops every rank's kernels before its own
// host posts the failure, so a peer's stream can finish (its kernels gave
// up) while nothing is posted yet, and that call must not look successful.
// (4 H200, session 23: plx_comm_async_status said PLX_OK there.)
void Comm::watch_device_error() {
  if (adopt_device_error(setup_.rank) || __atomic_load_n(abort_word(), __ATOMIC_ACQUIRE) == 0) return;
  for (int32_t r = 0; r < setup_.nranks; ++r)
    if (r != setup_.rank && adopt_device_error(r)) return;
}

bool Comm::adopt_device_error(int32_t rank) {
  const kp::ErrorRecord *e = error_record(rank);
  if (__atomic_load_n(&e->error, __ATOMIC_ACQUIRE) == kp::kErrorNone) return false;
  const int32_t waited = __atomic_load_n(&e->waited_rank, __ATOMIC_RELAXED);
  const int32_t coll = __atomic_load_n(&e->coll, __ATOMIC_RELAXED);
  const uint64_t tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
  const std::string whose = rank == setup_.rank ? std::string() : fmt::format(" rank {}'s", rank);
  set_failure(PLX_ERR_TIMEOUT, fmt::format(
      "{}:{} {} (step or epoch {}) waited more than {} ms for rank {}: it did not join the collective, died, "
      "or is stuck (the communicator's timeout)", who(), whose, coll_name(coll), tag, setup_.timeout_ms, waited));
  return true;
}

void Comm::poll_failures() {
  if (failure_.load() == PLX_OK) watch_device_error();
  if (failure_.load() == PLX_OK) watch_posted();
}

void Comm::watch_posted() {
  std::string message;
  if (const plx_status posted = posted_failure(&message); posted != PLX_OK) set_failure(posted, message);
}

void Comm::watch_peers() {
  const int64_t now = now_ns();
  if (now < next_peer_check_ns_) return;
  next_peer_check_ns_ = now + kPeerCheckNs;
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    // In this order: a rank that leaves, then exits, is never lost.
    if (rendezvous_->peer_alive(q) || rendezvous_->peer_left(q)) continue;
    set_failure(PLX_ERR_PEER_LOST, fmt::format("{}: rank {} (pid {}) exited without leaving the communicator "
                                               "(killed or crashed)", who(), q, pids_[q]));
    return;
  }
}

plx_status Comm::posted_failure(std::string *message) const {
  std::string text;
  const plx_status status = rendezvous_->failure(&text);
  if (status == PLX_OK) return PLX_OK;
  const auto poster = static_cast<int32_t>(__atomic_load_n(posted_word_, __ATOMIC_ACQUIRE) >> 32);
  *message = fmt::format("{}: rank {} failed the communicator: {}", who(), poster, text);
  return status;
}

void Comm::stop_watchdog() {
  if (!watchdog_.joinable()) return;
  {
    std::lock_guard lock(watchdog_mutex_);
    watchdog_stop_ = true;
  }
  watchdog_wake_.notify_all();
  watchdog_.join();
}

}  // namespace plexus::pinned_host

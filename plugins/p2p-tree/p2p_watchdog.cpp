// The watchdog: one thread per communicator, every WATCHDOG_POLL_MS. The
// kernels time out by themselves (a device-side deadline) and record it in
// host-mapped memory; the watchdog turns that record into the sticky
// PLX_ERR_TIMEOUT and posts it, adopts a failure another rank posted (and
// stops this rank's kernels), and every 50 ms checks that the peers'
// processes live (PLX_ERR_PEER_LOST long before the timeout would notice).
// It also maps the peers' registered buffers and closes the ones they
// deregistered (p2p_registry.hpp): CUDA calls, so the thread runs in the
// relaxed capture mode and never invalidates another thread's capture.
#include <cuda_runtime_api.h>

#include <chrono>

#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_comm.hpp"

namespace plexus::p2p_tree {
namespace {

constexpr int64_t kPeerCheckNs = 50'000'000;

}  // namespace

void Comm::watchdog_main() {
  cudaStreamCaptureMode relaxed = cudaStreamCaptureModeRelaxed;
  (void)cudaThreadExchangeStreamCaptureMode(&relaxed);
  std::unique_lock lock(watchdog_mutex_);
  while (!watchdog_stop_) {
    watchdog_wake_.wait_for(lock, std::chrono::milliseconds(params_.watchdog_poll_ms));
    if (watchdog_stop_ || failure_.load() != PLX_OK) continue;
    lock.unlock();
    watch_device_error();
    if (failure_.load() == PLX_OK) watch_posted();
    if (failure_.load() == PLX_OK) watch_peers();
    if (failure_.load() == PLX_OK) registry_.poll_peers(), registry_.poll_own();
    lock.lock();
  }
}

void Comm::poll_failures() {
  if (failure_.load() == PLX_OK) watch_device_error();
  if (failure_.load() == PLX_OK) watch_posted();
}

void Comm::watch_device_error() {
  const kernels::Control *c = control_host_;
  if (__atomic_load_n(&c->error, __ATOMIC_ACQUIRE) == kernels::kErrorNone) return;
  const int32_t waited = __atomic_load_n(&c->waited_rank, __ATOMIC_RELAXED);
  const int32_t coll = __atomic_load_n(&c->coll, __ATOMIC_RELAXED);
  const uint64_t epoch = __atomic_load_n(&c->epoch, __ATOMIC_RELAXED);
  if (__atomic_load_n(&c->error, __ATOMIC_RELAXED) == kernels::kErrorRegistry) {
    set_failure(PLX_ERR_INTERNAL, fmt::format(
        "p2p-tree: rank {} of {} (device {}): {} (kernel epoch {}): rank {} posted a registered output this "
        "rank has not mapped (a registry protocol error)", setup_.rank, setup_.nranks, setup_.device,
        coll_name(coll), epoch, waited));
    return;
  }
  set_failure(PLX_ERR_TIMEOUT, fmt::format(
      "p2p-tree: rank {} of {} (device {}): {} (kernel epoch {}) waited more than {} ms for rank {}: "
      "it did not join the collective, died, or is stuck (the communicator's timeout)",
      setup_.rank, setup_.nranks, setup_.device, coll_name(coll), epoch, setup_.timeout_ms, waited));
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
    set_failure(PLX_ERR_PEER_LOST, fmt::format(
        "p2p-tree: rank {} of {} (device {}): rank {} (pid {}) exited without leaving the "
        "communicator (killed or crashed)", setup_.rank, setup_.nranks, setup_.device, q, pids_[q]));
    return;
  }
}

plx_status Comm::posted_failure(std::string *message) const {
  std::string text;
  const plx_status status = rendezvous_->failure(&text);
  if (status == PLX_OK) return PLX_OK;
  const auto poster = static_cast<int32_t>(__atomic_load_n(posted_word_, __ATOMIC_ACQUIRE) >> 32);
  *message = fmt::format("p2p-tree: rank {} of {} (device {}): rank {} failed the communicator: {}",
                         setup_.rank, setup_.nranks, setup_.device, poster, text);
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

}  // namespace plexus::p2p_tree

// The watchdog: NCCL has no timeouts, so a collective that one rank never
// joins would spin on the GPU forever. One thread per communicator polls
// every WATCHDOG_POLL_MS: the oldest pending progress event (older than
// timeout_ms: abort, sticky PLX_ERR_TIMEOUT) and ncclCommGetAsyncError (a
// failure: abort, sticky PLX_ERR_PEER_LOST or NCCL's own code). Aborting
// the ncclComm_t is what makes the stuck kernels return. It also reads the
// host's failure domain: a failure another local rank posted (the same
// status here), and every 50 ms whether the local ranks' processes live.
#include <chrono>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/status.hpp"
#include "plexus/plexus.h"
#include "plugins/nccl/nccl_comm.hpp"

namespace plexus::nccl {
using core::coll_name;

void Comm::watchdog_main() {
  // A host thread that captures a CUDA graph in the global mode forbids
  // "unsafe" calls (cudaEventQuery among them) on every other thread that
  // is in the global mode too; this thread opts out, so a capture on the
  // user's thread neither fails nor is invalidated by the watchdog.
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  (void)cudaSetDevice(setup_.device);
  last_completion_ns_ = now_ns();
  std::unique_lock lock(watchdog_mutex_);
  while (!watchdog_stop_) {
    watchdog_wake_.wait_for(lock, std::chrono::milliseconds(params_.watchdog_poll_ms));
    // This rank's own failure: a posted one is still to be adopted.
    if (watchdog_stop_ || failure_.load() != PLX_OK) continue;
    lock.unlock();
    watch_domain(now_ns());
    if (failure_.load() == PLX_OK) watch_async_error();
    if (failure_.load() == PLX_OK) watch_events(now_ns());
    lock.lock();
  }
}

// Only while no user call is inside NCCL (see Gate): a user call waiting
// out ncclInProgress polls the same state itself.
void Comm::watch_async_error() {
  if (!gate_.try_exclusive(0)) return;
  ncclResult_t state = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(nccl_, &state);
  gate_.release_exclusive();
  if (r != ncclSuccess) state = r;
  if (state == ncclSuccess || state == ncclInProgress) return;
  // NCCL's error may be the echo of a local rank's death: name that instead.
  if (lost_local_peer()) return;
  const plx_status s = fail_nccl(state, nccl_, fmt::format("rank {} of {}: an operation in flight "
                                 "(ncclCommGetAsyncError)", setup_.rank, setup_.nranks),
                                 NcclPhase::running);
  fail_and_abort(s, core::last_message(), 0);
}

// Retires completed events in order; the oldest pending one is late when
// the stream has made no progress past it for timeout_ms: measured from
// when it was recorded or when the event before it completed, whichever
// is later, so work queued behind a long kernel is not blamed for it.
void Comm::watch_events(int64_t now) {
  uint64_t done = completed_.load(std::memory_order_relaxed);
  const uint64_t recorded = recorded_.load(std::memory_order_acquire);
  for (; done < recorded; ++done) {
    ProgressSlot &slot = slots_[done % kSlots];
    const cudaError_t err = cudaEventQuery(slot.event);
    if (err == cudaSuccess) {
      last_completion_ns_ = now;
      continue;
    }
    if (err != cudaErrorNotReady) {
      core::fail_cuda(err, fmt::format("nccl: rank {}: the stream of {} #{}", setup_.rank,
                                       coll_name(slot.coll.load()), slot.call.load()));
      fail_and_abort(PLX_ERR_DEVICE, core::last_message(), 0);
      break;
    }
    const int64_t since = std::max(slot.recorded_ns.load(std::memory_order_relaxed), last_completion_ns_);
    if (now - since > int64_t{setup_.timeout_ms} * 1000000) {
      const std::string message = fmt::format(
          "nccl: rank {} of {} (device {}): {} #{} made no progress for {} ms (the communicator's "
          "timeout): a peer rank did not join it, died, or is stuck; the NCCL communicator was aborted",
          setup_.rank, setup_.nranks, setup_.device, coll_name(slot.coll.load()), slot.call.load(),
          setup_.timeout_ms);
      fail_and_abort(PLX_ERR_TIMEOUT, message, 0);
    }
    break;
  }
  completed_.store(done, std::memory_order_release);
}

}  // namespace plexus::nccl

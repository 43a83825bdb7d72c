#include "plugins/nccl/nccl_comm.hpp"

#include <chrono>

#include "core/cuda_status.hpp"
#include "core/kernel_loading.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "kernels/modules.hpp"
#include "plugins/nccl/nccl_status.hpp"

namespace plexus::nccl {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

// Deadline in ns for a timeout in ms; -1 (wait forever) gives INT64_MAX.
int64_t deadline_after(int32_t timeout_ms) {
  return timeout_ms < 0 ? INT64_MAX : now_ns() + int64_t{timeout_ms} * 1000000;
}

// Polling back-off: spin briefly (lazy connects take microseconds to
// seconds), then sleep up to 1 ms so a long init does not burn a core.
void back_off(int round) {
  if (round < 64) std::this_thread::yield();
  else std::this_thread::sleep_for(std::chrono::microseconds(round < 1000 ? 100 : 1000));
}

}  // namespace

Comm::Comm(ncclComm_t nccl, const CommSetup &setup, const Params &params)
    : setup_(setup), params_(params), nccl_(nccl), control_(nccl), identity_buffers_(setup.device),
      user_pool_("nccl", setup.device, params.defrag_threshold), widen_pool_(setup.device) {
  tracking_ = setup.timeout_ms >= 0;
}

plx_status Comm::create(ncclComm_t nccl, const CommSetup &setup, const Params &params,
                        std::unique_ptr<Comm> *out) {
  std::unique_ptr<Comm> comm(new Comm(nccl, setup, params));
  core::ScopedDevice device(setup.device);
  if (device.status() != PLX_OK) return device.status();
  if (plx_status s = comm->wait_ready(nccl, setup.init_timeout_ms,
                                      setup.rank < 0 ? "ncclCommSplit" : "ncclCommInitRankConfig"))
    return s;  // ~Comm aborts the half-made ncclComm_t
  if (setup.rank < 0) {  // a split: NCCL knows the new rank and size
    (void)ncclCommUserRank(nccl, &comm->setup_.rank);
    (void)ncclCommCount(nccl, &comm->setup_.nranks);
  }
  if (plx_status s = comm->prepare()) return s;
  if (plx_status s = comm->join_domain()) return s;
  if (params.blocking_twin)
    if (plx_status s = comm->split_blocking_twin()) {
      comm->domain_->post_failure(s, core::last_message());
      return s;
    }
  if (params.warmup)
    if (plx_status s = comm->warm_up()) {
      // The host's other ranks stop waiting for this one at once.
      comm->domain_->post_failure(s, core::last_message());
      return s;
    }
  comm->ready_ = true;
  comm->watchdog_ = std::thread([c = comm.get()] { c->watchdog_main(); });
  *out = std::move(comm);
  return PLX_OK;
}

// The conversion kernels (loaded now, none at its first launch:
// core/kernel_loading.hpp says why), the internal stream, the scratch
// buffer and the progress events. Stream-ordered allocation: freeing it
// later does not synchronise the device (cudaFree would, and could wait on
// another communicator's hang).
plx_status Comm::prepare() {
#if PLEXUS_NCCL_WIDEN
  if (plx_status s = core::load_kernels(kernels::widen_modules(), fmt::format("nccl: rank {}", setup_.rank))) return s;
#endif
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&internal_stream_, cudaStreamNonBlocking));
  PLX_CUDA_CHECK(cudaMallocAsync(&scratch_, kScratchBytes, internal_stream_));
  PLX_CUDA_CHECK(cudaMemsetAsync(scratch_, 0, kScratchBytes, internal_stream_));
  for (ProgressSlot &slot : slots_)
    PLX_CUDA_CHECK(cudaEventCreateWithFlags(&slot.event, cudaEventDisableTiming));
  return wait_stream(setup_.init_timeout_ms, "preparing the scratch buffer");
}

// NCCL connects ranks lazily, on a communicator's first collective; that
// has taken 20 s inside a first forward pass. One small all-reduce here
// moves the cost into plx_comm_init, where a timeout is expected.
plx_status Comm::warm_up() {
  if (plx_status s = setup_call(ncclAllReduce(scratch_, scratch_, kScratchBytes / sizeof(float),
                                              ncclFloat32, ncclSum, nccl_, internal_stream_),
                                "the warm-up all-reduce (ncclAllReduce)"))
    return s;
  return wait_stream(setup_.init_timeout_ms, "the warm-up all-reduce");
}

plx_status Comm::setup_call(ncclResult_t result, const char *what) {
  if (result == ncclInProgress) return wait_ready(nccl_, setup_.init_timeout_ms, what);
  if (result != ncclSuccess) return fail_nccl(result, nccl_, what, NcclPhase::setup);
  return PLX_OK;
}

// Waits for the internal stream without blocking in CUDA, so a peer that
// never joins the warm-up gives a timeout, not a hang.
plx_status Comm::wait_stream(int32_t timeout_ms, const char *what) {
  const int64_t deadline = deadline_after(timeout_ms);
  for (int round = 0;; ++round) {
    const cudaError_t err = cudaStreamQuery(internal_stream_);
    if (err == cudaSuccess) return PLX_OK;
    if (err != cudaErrorNotReady) return core::fail_cuda(err, fmt::format("nccl: {}", what));
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(nccl_, &state) == ncclSuccess && state != ncclSuccess && state != ncclInProgress)
      return fail_nccl(state, nccl_, what, NcclPhase::setup);
    if (failure() != PLX_OK) return report_failure();  // another rank of this host gave up
    if (now_ns() > deadline)
      return core::fail(PLX_ERR_TIMEOUT, "nccl: rank {} of {} (device {}): {} did not complete within "
                        "{} ms: some rank of the communicator did not take part (PLEXUS_INIT_TIMEOUT_MS)",
                        setup_.rank, setup_.nranks, setup_.device, what, timeout_ms);
    back_off(round);
  }
}

plx_status Comm::wait_ready(ncclComm_t comm, int32_t timeout_ms, const char *what) {
  const int64_t deadline = deadline_after(timeout_ms);
  for (int round = 0;; ++round) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) return fail_nccl(r, comm, "ncclCommGetAsyncError", NcclPhase::running);
    if (state == ncclSuccess) return PLX_OK;
    if (state != ncclInProgress)
      return fail_nccl(state, comm, what, phase());
    if (failure() != PLX_OK) return report_failure();
    if (now_ns() > deadline)
      return core::fail(PLX_ERR_TIMEOUT, "nccl: rank {} of {} (device {}): {} did not finish within {} ms; "
                        "not every rank of the {} joined, or one cannot reach the others (NCCL_SOCKET_IFNAME)",
                        setup_.rank, setup_.nranks, setup_.device, what, timeout_ms, setup_.nranks);
    back_off(round);
  }
}

plx_status Comm::after_nccl(ncclResult_t result, const char *what) {
  plx_status s = PLX_OK;
  if (result == ncclInProgress) {
    // A nonblocking comm returns this while NCCL connects lazily (a first
    // collective of some algorithm, a new send/recv peer).
    s = wait_ready(nccl_, setup_.timeout_ms, what);
  } else {
    s = fail_nccl(result, nccl_, what, NcclPhase::running);
  }
  if (s == PLX_OK) return PLX_OK;
  // A connection that timed out or a peer that went away leaves the comm
  // unusable: fail it for good. Argument errors leave it intact.
  if (core::is_sticky(s) || s == PLX_ERR_REMOTE || s == PLX_ERR_INTERNAL || s == PLX_ERR_DEVICE)
    return fail_and_abort(s, core::last_message(), user_holds());
  return s;
}

plx_status Comm::async_state() {
  if (failure() != PLX_OK) return failure();
  ncclResult_t state = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(nccl_, &state);
  if (r != ncclSuccess) state = r;
  if (state == ncclInProgress) return PLX_IN_PROGRESS;
  if (state != ncclSuccess) {
    const plx_status s = fail_nccl(state, nccl_, "a collective (ncclCommGetAsyncError)", NcclPhase::running);
    return fail_and_abort(s, core::last_message(), user_holds());
  }
  // Tracked work that has not completed yet (the newest progress event).
  const uint64_t recorded = recorded_.load(std::memory_order_acquire);
  if (recorded == 0) return PLX_OK;
  const cudaError_t err = cudaEventQuery(slots_[(recorded - 1) % kSlots].event);
  if (err == cudaErrorNotReady) return PLX_IN_PROGRESS;
  if (err != cudaSuccess) (void)cudaGetLastError();
  return PLX_OK;
}

plx_status Comm::report_failure() {
  // Posted by another rank and not yet adopted by the watchdog: its words.
  if (failure_.load(std::memory_order_acquire) == PLX_OK && domain_ != nullptr) {
    std::string message;
    if (const plx_status posted = posted_failure(&message); posted != PLX_OK)
      return core::fail_message(posted, message);
  }
  std::lock_guard lock(failure_mutex_);
  return core::fail_message(failure_.load(), failure_message_);
}

plx_status Comm::set_failure(plx_status status, const std::string &message) {
  std::lock_guard lock(failure_mutex_);
  if (failure_.load() != PLX_OK) return core::fail_message(status, message);
  std::string cause = message;
  if (domain_ != nullptr) {
    // The first post of the host's ranks wins. When another rank's came
    // first it is the cause (NCCL errors here may be its abort echoing), so
    // every rank of the host reports the same status.
    domain_->post_failure(status, message);
    std::string posted_message;
    const plx_status posted = posted_failure(&posted_message);
    const auto poster = static_cast<int32_t>(__atomic_load_n(posted_word_, __ATOMIC_ACQUIRE) >> 32);
    if (posted != PLX_OK && poster != domain_->rank()) {
      status = posted;
      cause = std::move(posted_message);
    }
  }
  failure_message_ = cause;
  failure_.store(status, std::memory_order_seq_cst);
  core::log_error("{}", cause);
  return core::fail_message(status, cause);
}

plx_status Comm::fail_and_abort(plx_status status, const std::string &message, uint32_t own_holds) {
  const plx_status s = set_failure(status, message);
  abort_nccl(own_holds);
  return s;
}

// The failure is published before the gate is taken, so a user call either
// sees it and stays out of NCCL, or is inside and leaves soon (its polling
// loops check the failure). A call stuck in CUDA (a launch queue full of
// hung kernels) would hold the gate forever: after a grace period the
// abort goes ahead, since ncclCommAbort is what makes those kernels return.
void Comm::abort_nccl(uint32_t own_holds) {
  std::lock_guard lock(abort_mutex_);
  if (nccl_released_ || nccl_ == nullptr) return;
  const int64_t grace_end = now_ns() + 2'000'000'000;
  bool exclusive = false;
  while (!(exclusive = gate_.try_exclusive(own_holds)) && now_ns() < grace_end)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  if (!exclusive) core::log_warn("nccl: aborting rank {} while a call is still inside NCCL", setup_.rank);
  core::ScopedDevice device(setup_.device);
  (void)ncclCommAbort(nccl_);
  if (control_ != nccl_) (void)ncclCommAbort(control_);
  nccl_released_ = true;
  // Calls that enter from now on see the failure before they reach NCCL.
  if (exclusive) gate_.release_exclusive();
}

// Finalize (which waits for this rank's work and the peers' traffic) and
// destroy when healthy, bounded by the timeout; abort otherwise.
void Comm::release_nccl() {
  std::lock_guard lock(abort_mutex_);
  if (nccl_released_ || nccl_ == nullptr) return;
  nccl_released_ = true;
  core::ScopedDevice device(setup_.device);
  const bool healthy = ready_ && failure() == PLX_OK;
  // The twin first: its work is what the peers may still be finishing.
  if (control_ != nccl_ && !(healthy && finalize_and_destroy(nccl_))) (void)ncclCommAbort(nccl_);
  if (!(healthy && finalize_and_destroy(control_))) (void)ncclCommAbort(control_);
}

// A blocking twin finalizes at once (the streams are idle when a healthy
// communicator is destroyed); the nonblocking one is polled, bounded.
bool Comm::finalize_and_destroy(ncclComm_t comm) {
  const int32_t bound = setup_.timeout_ms >= 0 ? setup_.timeout_ms
                        : setup_.init_timeout_ms >= 0 ? setup_.init_timeout_ms : 60000;
  ncclResult_t r = ncclCommFinalize(comm);
  if (r == ncclInProgress || r == ncclSuccess)
    r = wait_ready(comm, bound, "ncclCommFinalize") == PLX_OK ? ncclSuccess : ncclInternalError;
  if (r == ncclSuccess && ncclCommDestroy(comm) == ncclSuccess) return true;
  core::log_warn("nccl: rank {}: finalizing the communicator failed ({}); aborting it", setup_.rank,
                 core::last_message());
  return false;
}

// NCCL runs every group of a nonblocking communicator on a thread made for
// it (ncclGroupEnd: pthread_create, then ncclInProgress): on an H100 pair
// that made each eager all-reduce cost 100-200 us against 10 us raw. The
// nonblocking communicator stays for what must be bounded (init, split,
// finalize); once every rank is in, a blocking twin is split off it and
// carries the collectives. The split runs as the nonblocking parent's job,
// so it is bounded by the init timeout like the init itself.
plx_status Comm::split_blocking_twin() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 1;
  ncclComm_t twin = nullptr;
  if (plx_status s = split_control(0, setup_.rank, &config, setup_.init_timeout_ms,
                                   "the blocking twin (ncclCommSplit)", &twin))
    return s;
  if (twin == nullptr) return core::fail(PLX_ERR_INTERNAL, "nccl: ncclCommSplit made no blocking twin");
  nccl_ = twin;
  return PLX_OK;
}

// ncclCommSplit off the nonblocking control communicator. NCCL writes the
// child's handle from its own thread when the split job completes (it stays
// NULL until then), so the slot lives on the heap: a split given up after
// the timeout leaks 8 bytes instead of letting that thread write into a
// dead stack frame. *out stays NULL for NCCL_SPLIT_NOCOLOR.
plx_status Comm::split_control(int color, int key, ncclConfig_t *config, int32_t timeout_ms,
                               const char *what, ncclComm_t *out) {
  *out = nullptr;
  auto *slot = new ncclComm_t(nullptr);
  const ncclResult_t r = ncclCommSplit(control_, color, key, slot, config);
  plx_status s = PLX_OK;
  if (r == ncclInProgress || r == ncclSuccess) {
    // Polling the parent completes the split job (ncclCommGetAsyncError
    // joins it), also when the call itself said ncclSuccess.
    s = wait_ready(control_, timeout_ms, what);
    if (s != PLX_OK && ready_) s = fail_and_abort(s, core::last_message(), user_holds());
  } else {
    s = ready_ ? after_nccl(r, what) : fail_nccl(r, control_, what, NcclPhase::setup);
  }
  if (s != PLX_OK) return s;  // the slot is left to NCCL's thread
  ncclComm_t child = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  for (int ms = 0; child == nullptr && color != NCCL_SPLIT_NOCOLOR && ms < 5000; ++ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the job's last store
    child = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  }
  if (child == nullptr && color != NCCL_SPLIT_NOCOLOR)
    return core::fail(PLX_ERR_INTERNAL, "nccl: {} finished without a communicator for color {}", what, color);
  delete slot;
  *out = child;
  return PLX_OK;
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

Comm::~Comm() {
  stop_watchdog();
  release_nccl();
  core::ScopedDevice device(setup_.device);
  for (ProgressSlot &slot : slots_)
    if (slot.event) (void)cudaEventDestroy(slot.event);
  if (scratch_) (void)cudaFreeAsync(scratch_, internal_stream_);
  if (internal_stream_) (void)cudaStreamDestroy(internal_stream_);
  (void)cudaGetLastError();
  user_pool_.reset();
  // Leaving marks this rank as gone cleanly, not lost, for the others.
  posted_word_ = nullptr;
  domain_.reset();
}

// After each tracked collective: an event on the user's stream, unless the
// stream is being captured (an event recorded there would belong to the
// graph, and replays are not watched) or every slot is still pending.
void Comm::record_progress(void *stream, int32_t coll) {
  const uint64_t recorded = recorded_.load(std::memory_order_relaxed);
  if (recorded - completed_.load(std::memory_order_acquire) >= kSlots) return;
  auto *s = static_cast<cudaStream_t>(stream);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    (void)cudaGetLastError();
    return;
  }
  ProgressSlot &slot = slots_[recorded % kSlots];
  // The legacy default stream is the current device's: record on ours.
  const cudaError_t err = s == nullptr ? record_on_default(slot.event) : cudaEventRecord(slot.event, s);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  slot.recorded_ns.store(now_ns(), std::memory_order_relaxed);
  slot.call.store(call_seq_, std::memory_order_relaxed);
  slot.coll.store(coll, std::memory_order_relaxed);
  recorded_.store(recorded + 1, std::memory_order_release);
  untracked_ = 0;
}

cudaError_t Comm::record_on_default(cudaEvent_t event) {
  core::ScopedDevice device(setup_.device);
  return cudaEventRecord(event, nullptr);
}

}  // namespace plexus::nccl

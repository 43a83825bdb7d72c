// An nccl communicator: one nonblocking ncclComm_t on one device, a small
// device scratch buffer (warm-up, barrier), the ring of progress events the
// watchdog watches, the failure state every call checks first, and the
// lazily created device pool.
//
// Concurrency. The communicator is used by one thread at a time (the
// "user"); the watchdog thread and plx_comm_abort (any thread) may fail it.
// ncclCommAbort frees the ncclComm_t, so nothing may be inside NCCL on that
// comm when it runs: every user call holds the gate (one atomic add), and
// the aborter first publishes the failure, then takes the gate exclusively
// (see Gate). The watchdog also takes it for ncclCommGetAsyncError, which
// is not safe against a concurrent call on the same comm (it may complete
// a pending nonblocking group job).
//
// Failure domain. NCCL does not tell the other ranks when one aborts or
// times out; the ranks of each host also share a core::Rendezvous where the
// first failure of any of them is posted (nccl_domain.cpp). Every call sees
// a posted failure with one more load, the watchdog adopts it (aborting
// this rank's ncclComm_t) and watches that the host's ranks are alive.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/comm_device_pool.hpp"
#include "core/identity_buffers.hpp"
#include "core/scratch_pool.hpp"
#include "core/rendezvous.hpp"
#include "plexus/plugin.h"
#include "plugins/nccl/nccl_domain.hpp"
#include "plugins/nccl/nccl_status.hpp"

namespace plexus::nccl {

struct Params {
  bool warmup = true;
  bool blocking_twin = true;
  int32_t watchdog_poll_ms = 5;
  int32_t event_every = 1;
  double defrag_threshold = 0.30;
  int32_t widen_half = 1;                        // WIDEN_HALF (nccl_widen.cpp): 0 never, 1 beyond 2 ranks, 2 always
  uint64_t widen_gather_max_bytes = 64 * 1024;   // WIDEN_GATHER_MAX_BYTES
};

// A converted reduction's last step (nccl_widen.cpp), after NCCL: a half-type
// reduction accumulated in float32 reduces the all-gathered inputs in rank
// order, or rounds the float32 result, into the caller's buffer; a float32
// reduction sent as a half type widens the result into it; then the pool
// block is freed. A group keeps these until its end, when NCCL has launched.
enum class Finish {
  narrow,           // the float32 result rounded into the caller's half-type buffer
  reduce_gathered,  // the gathered half-type inputs reduced in rank order into it
  widen,            // the half-type result (a float32 call's wire dtype) into the caller's float32 buffer
};
struct PendingFinish {
  void *block = nullptr;         // from the comm's widen pool
  const void *result = nullptr;  // inside block: the result, or rank 0's gathered input
  void *out = nullptr;           // null: nothing to write (a reduce's non-root)
  uint64_t count = 0;
  uint64_t stride = 0;           // gathered: elements between ranks' inputs
  Finish finish = Finish::narrow;
  int32_t op = PLX_SUM;
  int32_t nranks = 1;
  plx_dtype dtype = PLX_BFLOAT16;  // the half type: the caller's, or the wire's
  cudaStream_t stream = nullptr;
};

// What a communicator is made with, besides the ncclComm_t.
struct CommSetup {
  int32_t rank = 0;
  int32_t nranks = 1;
  int device = 0;
  int32_t timeout_ms = 60000;
  int32_t init_timeout_ms = 60000;
  std::string name;
  DomainKey domain{};  // names the failure domain's rendezvous (per host)
};

// The user side counts itself in; the exclusive side (watchdog poll,
// abort) sets a bit that only succeeds while no user call is inside.
class Gate {
 public:
  static constexpr uint32_t exclusive_bit = 1u << 31;
  void enter() {
    uint32_t prev = state_.fetch_add(1, std::memory_order_seq_cst);
    while (prev & exclusive_bit) [[unlikely]] {
      state_.fetch_sub(1, std::memory_order_seq_cst);
      while (state_.load(std::memory_order_acquire) & exclusive_bit) std::this_thread::yield();
      prev = state_.fetch_add(1, std::memory_order_seq_cst);
    }
  }
  void leave() { state_.fetch_sub(1, std::memory_order_release); }
  // Succeeds when only the caller's own `own_holds` user holds are inside.
  bool try_exclusive(uint32_t own_holds) {
    uint32_t expected = own_holds;
    return state_.compare_exchange_strong(expected, own_holds | exclusive_bit, std::memory_order_seq_cst);
  }
  void release_exclusive() { state_.fetch_and(~exclusive_bit, std::memory_order_release); }

 private:
  std::atomic<uint32_t> state_{0};
};

// A user call's hold on the gate for its scope.
class GateHold {
 public:
  explicit GateHold(Gate &gate) : gate_(gate) { gate_.enter(); }
  ~GateHold() { gate_.leave(); }
  GateHold(const GateHold &) = delete;
  GateHold &operator=(const GateHold &) = delete;

 private:
  Gate &gate_;
};

// One progress point: an event recorded on a user stream after a
// collective, with when and after which call it was recorded.
struct ProgressSlot {
  cudaEvent_t event = nullptr;
  std::atomic<int64_t> recorded_ns{0};
  std::atomic<uint64_t> call{0};
  std::atomic<int32_t> coll{0};
};

// Device pointers this communicator has already classified, so the memory
// kind check costs a few compares for buffers that come back (they do:
// inference reuses its buffers).
class PointerCache {
 public:
  bool contains(const void *p) const {
    for (const void *q : entries_)
      if (q == p) return true;
    return false;
  }
  void add(const void *p) { entries_[next_++ % kEntries] = p; }

 private:
  static constexpr unsigned kEntries = 16;
  const void *entries_[kEntries] = {};
  unsigned next_ = 0;
};

class Comm {
 public:
  static constexpr uint32_t kSlots = 128;
  static constexpr size_t kScratchBytes = 1024;

  // Takes `nccl` (possibly still initialising): waits until it is ready
  // (bounded by init_timeout_ms), warms it up, starts the watchdog. On
  // failure the ncclComm_t is aborted and *out stays empty.
  static plx_status create(ncclComm_t nccl, const CommSetup &setup, const Params &params,
                           std::unique_ptr<Comm> *out);
  ~Comm();  // comm_destroy: finalize when healthy, else abort; never hangs

  int32_t rank() const { return setup_.rank; }
  int32_t nranks() const { return setup_.nranks; }
  int device() const { return setup_.device; }
  const CommSetup &setup() const { return setup_; }
  const Params &params() const { return params_; }
  // The communicator collectives run on: the blocking twin once ready.
  ncclComm_t nccl() const { return nccl_; }
  // Splits the nonblocking control communicator (every rank of this one
  // calls it), bounded by timeout_ms; *out stays NULL for NCCL_SPLIT_NOCOLOR.
  plx_status split_control(int color, int key, ncclConfig_t *config, int32_t timeout_ms, const char *what,
                           ncclComm_t *out);
  Gate &gate() { return gate_; }
  void *scratch() const { return scratch_; }
  // What this rank sends when it contributes nothing (nccl_coll.cpp).
  core::IdentityBuffers &identity_buffers() { return identity_buffers_; }

  // The sticky failure, this rank's own or one a rank of this host posted
  // (PLX_OK while healthy): two loads on the hot path. The posted word is
  // read relaxed: report_failure() reads it again with acquire.
  plx_status failure() const {
    const plx_status local = failure_.load(std::memory_order_acquire);
    if (local != PLX_OK || posted_word_ == nullptr) return local;
    const uint64_t posted = __atomic_load_n(posted_word_, __ATOMIC_RELAXED);
    return static_cast<plx_status>(static_cast<uint32_t>(posted));  // 0: PLX_OK
  }
  // Reports the sticky failure as this thread's error and returns it.
  plx_status report_failure();
  // Records the first failure (later ones are dropped), posts it to the
  // host's other ranks, and returns status.
  plx_status set_failure(plx_status status, const std::string &message);
  // Fails the communicator and aborts the ncclComm_t (any thread; a user
  // call passes the gate holds it has: user_holds()).
  plx_status fail_and_abort(plx_status status, const std::string &message, uint32_t own_holds);
  // The holds of a user call: its own, plus the open group's.
  uint32_t user_holds() const { return 1u + static_cast<uint32_t>(group_depth); }

  // An NCCL call on a live comm returned `result` (not ncclSuccess):
  // waits out ncclInProgress, else maps the error (sticky for peer loss).
  plx_status after_nccl(ncclResult_t result, const char *what);
  // Polls ncclCommGetAsyncError on `comm` until it leaves ncclInProgress
  // or the deadline (-1 ms: none) passes. The caller holds the gate.
  plx_status wait_ready(ncclComm_t comm, int32_t timeout_ms, const char *what);
  // The state for plx_comm_async_status (the caller holds the gate).
  plx_status async_state();

  // Progress tracking, called by the user after each enqueued collective.
  void track(void *stream, int32_t coll) {
    ++call_seq_;
    if (!tracking_) return;
    ++untracked_;
    if (untracked_ < static_cast<uint32_t>(params_.event_every) &&
        recorded_.load(std::memory_order_relaxed) != completed_.load(std::memory_order_relaxed))
      return;
    record_progress(stream, coll);
  }

  PointerCache &pointer_cache() { return pointer_cache_; }
  // Group state (plx_group_start/end) of the user thread. An open group
  // holds the gate: an abort waits for it (NCCL's group state would
  // otherwise keep calls on a freed comm).
  int group_depth = 0;
  // plx_comm_split calls on this communicator: with the color, it names the
  // child's failure domain alike on every rank (user thread only).
  uint64_t split_seq = 0;
  void *group_stream = nullptr;
  int32_t group_coll = -1;
  bool group_failed = false;

  // Calls per collective kind (written by the user thread only).
  std::atomic<uint64_t> calls[PLX_COLL_KIND_COUNT] = {};
  void count_call(int32_t coll) {
    calls[coll].store(calls[coll].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The pool behind plx_mem_alloc (PLX_MEM_DEVICE), made on first use.
  core::CommDevicePool &user_pool() { return user_pool_; }
  // The pool of converted reductions' blocks (nccl_widen.cpp).
  core::ScratchPool &widen_pool() { return widen_pool_; }
  // Finishing steps of the open group's widened reductions (user thread only).
  std::vector<PendingFinish> pending_finishes;

 private:
  Comm(ncclComm_t nccl, const CommSetup &setup, const Params &params);
  plx_status prepare();
  plx_status warm_up();
  // An NCCL call of init/split on the internal stream, waited out if in progress.
  plx_status setup_call(ncclResult_t result, const char *what);
  plx_status wait_stream(int32_t timeout_ms, const char *what);
  void record_progress(void *stream, int32_t coll);
  cudaError_t record_on_default(cudaEvent_t event);
  NcclPhase phase() const { return ready_ ? NcclPhase::running : NcclPhase::setup; }
  void abort_nccl(uint32_t own_holds);
  void release_nccl();
  bool finalize_and_destroy(ncclComm_t comm);
  plx_status split_blocking_twin();
  void stop_watchdog();
  // nccl_failure_domain.cpp
  plx_status join_domain();
  plx_status gather_host_ranks(std::vector<HostRank> *all);
  plx_status all_gather_host_ranks(HostRank *device, const HostRank &mine, std::vector<HostRank> *all);
  plx_status posted_failure(std::string *message) const;
  void watch_domain(int64_t now_ns);
  // Fails the comm with PLX_ERR_PEER_LOST when a local rank died (watchdog).
  bool lost_local_peer();
  // nccl_watchdog.cpp
  void watchdog_main();
  void watch_events(int64_t now_ns);
  void watch_async_error();

  CommSetup setup_;
  Params params_;
  bool ready_ = false;  // set once create() has finished
  ncclComm_t nccl_ = nullptr;     // collectives: the blocking twin once made
  ncclComm_t control_ = nullptr;  // nonblocking: init, splits, bounded finalize
  Gate gate_;
  std::atomic<plx_status> failure_{PLX_OK};
  std::mutex failure_mutex_;
  std::string failure_message_;
  // The host's failure domain (null until create() has joined it), its
  // shared failure word, and the communicator ranks of its local ranks.
  std::unique_ptr<core::Rendezvous> domain_;
  const uint64_t *posted_word_ = nullptr;
  std::vector<int32_t> local_ranks_;
  std::vector<uint64_t> local_pids_;
  int64_t next_peer_check_ns_ = 0;  // watchdog only
  std::mutex abort_mutex_;
  bool nccl_released_ = false;  // under abort_mutex_

  cudaStream_t internal_stream_ = nullptr;
  void *scratch_ = nullptr;
  core::IdentityBuffers identity_buffers_;
  PointerCache pointer_cache_;

  // Progress events: the user records slots [completed_, recorded_), the
  // watchdog retires them in order.
  bool tracking_ = false;
  uint32_t untracked_ = 0;
  uint64_t call_seq_ = 0;
  ProgressSlot slots_[kSlots];
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> completed_{0};
  int64_t last_completion_ns_ = 0;  // watchdog only

  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;

  core::CommDevicePool user_pool_;
  core::ScratchPool widen_pool_;
};

int64_t now_ns();

}  // namespace plexus::nccl

// A pinned-host communicator: one rank per GPU, processes or threads of one
// host, GPUs that need no peer access.
//
// Rank 0 creates one shared host segment (kernels/pinned.hpp has its
// layout); its name reaches the others through the init rendezvous; every
// rank maps it, registers it with CUDA (portable, mapped; a range that is
// already registered is fine) and hands its kernels the device alias from
// cudaHostGetDevicePointer. Once every rank has mapped it the name is
// removed, so nothing is left in /dev/shm whatever happens next. Each rank
// also keeps its step and epoch counters in device memory (State), so
// launches (and graph replays) number their steps on the device.
//
// Failure. The init rendezvous stays joined for the communicator's life: it
// is the failure domain, as in p2p-tree and nccl. A failure (a kernel's
// timeout record, abort, a dead peer, a launch error) is recorded once here,
// posted in the rendezvous, and written to the segment's abort word, which
// every rank's kernels poll: they all stop at once. The watchdog adopts
// failures other ranks posted. Every call checks the local and the posted
// status first (two loads).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/comm_device_pool.hpp"
#include "core/names.hpp"
#include "core/rendezvous.hpp"
#include "core/shm_segment.hpp"
#include "kernels/pinned.hpp"
#include "plexus/plugin.h"
#include "plugins/pinned-host/pinned_helper.hpp"
#include "plugins/pinned-host/pinned_params.hpp"

namespace plexus::pinned_host {

// The unique id payload: a header this plugin checks and the rendezvous.
struct IdPayload {
  uint32_t magic;
  uint16_t version;
  uint16_t reserved0;
  core::RendezvousId rendezvous;
};
constexpr uint32_t id_magic = 0x50485058u;  // "XPHP"
constexpr uint16_t id_version = 1;
static_assert(std::is_trivially_copyable_v<IdPayload>);
static_assert(sizeof(IdPayload) <= PLX_UNIQUE_ID_PAYLOAD_BYTES, "the id fits the plugin's payload");

struct CommSetup {
  int32_t rank = 0;
  int32_t nranks = 1;
  int device = 0;
  int32_t timeout_ms = 60000;
  int32_t init_timeout_ms = 60000;
  std::string name;
};

// What each rank tells the others at init: who it is, the parameters every
// rank must share (they decide the layout and every launch's steps), and
// (rank 0) the segment's name.
struct PeerCard {
  uint64_t pid;
  int32_t device;
  uint32_t stages;
  uint64_t stage_bytes;
  uint64_t ll_max_bytes;
  uint64_t oneshot_max_bytes;
  uint64_t cpu_min_bytes;
  uint64_t copy_min_bytes;
  uint64_t copy_chunk_bytes;
  int32_t copy_stages;
  int32_t reserved1;
  int32_t forced_algo;
  int32_t wire;
  int32_t max_blocks;
  int32_t reserved0;
  char pci_bus_id[32];
  char segment[128];
};
static_assert(std::is_trivially_copyable_v<PeerCard>);
static_assert(sizeof(PeerCard) <= core::Rendezvous::kMaxAllgatherBytes);

// Device pointers this communicator has already checked (as p2p-tree):
// inference reuses its buffers, so a hit is a few compares.
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

// The copy-engine path's resources (when copy_path_runs): a second stream
// for the uploads, the events that fork it from and join it to the
// caller's stream, device scratch for the peers' chunks (rank q's at
// scratch + q * chunk bytes), and the next chunk's number, counted on the
// host: copy-engine calls are never captured in a graph.
struct CopyEngines {
  cudaStream_t stream = nullptr;
  cudaEvent_t fork = nullptr;
  cudaEvent_t join = nullptr;
  char *scratch = nullptr;
  uint64_t next = 0;
};

class Comm {
 public:
  // Joins the rendezvous, makes or opens and registers the segment, starts
  // the watchdog. Bounded by init_timeout_ms.
  static plx_status create(const core::RendezvousId &id, const CommSetup &setup, const Params &params,
                           std::unique_ptr<Comm> *out);
  // Waits for this device's work (bounded by the kernels' own timeouts),
  // stops the CPU helper and the watchdog, then unregisters and unmaps;
  // never waits for the peers.
  ~Comm();
  Comm(const Comm &) = delete;
  Comm &operator=(const Comm &) = delete;

  int32_t rank() const { return setup_.rank; }
  int32_t nranks() const { return setup_.nranks; }
  int device() const { return setup_.device; }
  const Params &params() const { return params_; }
  const kp::Channel &channel() const { return channel_; }
  const kp::Layout &layout() const { return channel_.layout; }

  // The sticky failure, this rank's or one a peer posted; PLX_OK while healthy.
  plx_status failure() const {
    const plx_status local = failure_.load(std::memory_order_acquire);
    if (local != PLX_OK || posted_word_ == nullptr) return local;
    return static_cast<plx_status>(static_cast<uint32_t>(__atomic_load_n(posted_word_, __ATOMIC_RELAXED)));
  }
  plx_status report_failure();
  // What the watchdog would find now (a kernel's timeout record, a posted
  // failure), so plx_comm_async_status right after a stream finished tells
  // the truth without waiting for the next poll.
  void poll_failures();
  // Records the first failure, stops every rank's kernels (the segment's
  // abort word), posts it; returns the status reported (a peer's earlier
  // post wins, so every rank reports the same code).
  plx_status set_failure(plx_status status, const std::string &message);

  PointerCache &pointer_cache() { return pointer_cache_; }
  void count_call(int32_t coll, int32_t algo);
  void stats(int32_t coll, plx_op_stats *out) const;
  core::CommDevicePool &user_pool() { return user_pool_; }
  CopyEngines &copy_engines() { return ce_; }
  // Rank r's copy slot `slot`, at its host address (for cudaMemcpyAsync).
  char *copy_slot(int32_t r, uint32_t slot) const {
    return static_cast<char *>(segment_.data()) + kp::kHeaderBytes + r * channel_.rank_bytes +
           kp::ce_offset(channel_.layout) + slot * channel_.layout.ce_bytes;
  }

 private:
  Comm(const CommSetup &setup, const Params &params);
  std::string who() const;
  plx_status make_state();
  plx_status make_segment();
  plx_status open_segment(const char *name);
  plx_status check_header() const;
  plx_status register_segment();
  plx_status exchange_cards(std::vector<PeerCard> *cards);
  plx_status check_cards(const std::vector<PeerCard> &cards) const;
  plx_status join_segment(std::vector<PeerCard> *cards);
  void start_helper();
  plx_status make_copy_engines();
  void drain();
  void release();
  uint64_t *abort_word() const;
  const kp::ErrorRecord *error_record(int32_t rank) const;
  // pinned_watchdog.cpp
  void watchdog_main();
  void watch_device_error();
  bool adopt_device_error(int32_t rank);
  void watch_posted();
  void watch_peers();
  void stop_watchdog();
  plx_status posted_failure(std::string *message) const;

  CommSetup setup_;
  Params params_;
  kp::Channel channel_{};

  std::unique_ptr<core::Rendezvous> rendezvous_;
  const uint64_t *posted_word_ = nullptr;
  std::vector<uint64_t> pids_;
  std::atomic<plx_status> failure_{PLX_OK};
  std::mutex failure_mutex_;
  std::string failure_message_;

  core::ShmSegment segment_;
  bool registered_ = false;  // this object registered the segment (and unregisters it)
  kp::State *state_ = nullptr;
  std::unique_ptr<CpuHelper> helper_;  // when cpu_helper_runs(params_)
  CopyEngines ce_;                     // when copy_path_runs(params_)

  PointerCache pointer_cache_;
  std::atomic<uint64_t> algo_calls_[PLX_COLL_KIND_COUNT][PLX_OP_STATS_ALGO_SLOTS] = {};
  std::atomic<int32_t> last_algo_[PLX_COLL_KIND_COUNT] = {};

  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;
  int64_t next_peer_check_ns_ = 0;

  core::CommDevicePool user_pool_;
};

int64_t now_ns();
using core::coll_name;

}  // namespace plexus::pinned_host

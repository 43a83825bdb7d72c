// A shm-native communicator: every rank owns one shared segment holding its
// control words and two data slots, and maps every peer's. A collective is a
// sequence of steps; in step s each rank writes into its slot s % 2,
// publishes `arrive = s + 1`, waits until every peer has done the same and
// then reads what it needs from the peers' slots s % 2. Publishing step s+1
// happens only after a rank has finished reading step s, and a rank waits
// for all peers' step s+1 before it writes slot s % 2 again at step s+2, so
// two slots are enough and no trailing barrier is needed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rendezvous.hpp"
#include "core/shm_segment.hpp"
#include "plexus/plugin.h"
#include "plugins/shm-native/shm_pool.hpp"

namespace plexus::shm_native {

struct Params {
  uint64_t slot_bytes = 1 << 20;     // one data slot; two per rank
  uint64_t oneshot_max_bytes = 64 << 10;
  int32_t spin_iterations = 2000;    // polls before yielding
  int32_t yield_iterations = 200;    // yields before sleeping on the futex
  double defrag_threshold = 0.30;    // the loader's PLEXUS_DEFRAG_THRESHOLD
  bool read_in_place = true;         // peers read pool send buffers in place
};

// One rank's control words, each on its own 128-byte line so that ranks
// polling one word do not steal the line another rank is writing.
struct alignas(128) Counter {
  std::atomic<uint32_t> value{0};
  std::atomic<uint32_t> sleepers{0};  // ranks in FUTEX_WAIT on value
};

struct RankControl {
  Counter arrive;  // steps whose input this rank has published
  Counter done;    // steps whose reduce-scatter share this rank has finished
  alignas(128) std::atomic<uint32_t> numa_node{0xffffffffu};
  // Set at init when this rank could open every peer's /proc/<pid>/fd.
  std::atomic<uint32_t> maps_peers{0};
  // Step s's input, when it is a pool block read in place instead of a
  // copy in the slot: entry s % 2, double-buffered like the slots.
  alignas(128) BlockRef input[2];
};

class Comm {
 public:
  static plx_status create(const core::RendezvousId &id, int32_t nranks, int32_t rank,
                           const plx_comm_config &config, const Params &params,
                           std::unique_ptr<Comm> *out);
  ~Comm();

  int32_t rank() const { return rank_; }
  int32_t nranks() const { return nranks_; }
  const Params &params() const { return params_; }
  int32_t timeout_ms() const { return timeout_ms_; }
  core::Rendezvous &rendezvous() { return *rendezvous_; }

  RankControl &control(int32_t r) { return *static_cast<RankControl *>(peers_[r].data()); }
  // Peer r's data slot used by step `step`.
  uint8_t *slot(int32_t r, uint32_t step) {
    return static_cast<uint8_t *>(peers_[r].data()) + slot_offset + (step & 1u) * params_.slot_bytes;
  }

  // The next step number; every rank takes the same sequence.
  uint32_t next_step() { return step_++; }

  ShmPool &pool() { return *pool_; }
  PeerMaps &peer_maps() { return *peer_maps_; }
  // Whether every rank can map every peer's pool segments (decided at init).
  bool reads_in_place() const { return reads_in_place_; }
  uint64_t collectives() const { return collectives_; }
  void count_collective() { ++collectives_; }

  // Marks the communicator failed for every rank and returns status.
  plx_status fail_all(plx_status status, const std::string &message);
  // A failure posted by any rank (abort, timeout, lost peer), or PLX_OK.
  plx_status posted_failure();

  // Statistics of the algorithms chosen, per collective kind.
  std::atomic<uint64_t> algorithm_calls[PLX_COLL_KIND_COUNT][PLX_OP_STATS_ALGO_SLOTS] = {};
  std::atomic<int32_t> last_algorithm[PLX_COLL_KIND_COUNT] = {};

  static constexpr size_t slot_offset = 4096;  // control words live in the first page

 private:
  Comm(int32_t nranks, int32_t rank, const Params &params, int32_t timeout_ms);
  plx_status map_peers(int32_t init_timeout_ms);
  plx_status probe_peer_fds(const std::vector<int32_t> &pids, const std::vector<int32_t> &fds);

  int32_t rank_, nranks_;
  Params params_;
  int32_t timeout_ms_;
  uint32_t step_ = 0;
  uint64_t collectives_ = 0;
  std::unique_ptr<core::Rendezvous> rendezvous_;
  std::vector<core::ShmSegment> peers_;  // peers_[rank_] is our own segment
  // Destroyed before peers_: the pool and the peers' pool mappings go first.
  std::unique_ptr<ShmPool> pool_;
  std::unique_ptr<PeerMaps> peer_maps_;
  bool reads_in_place_ = false;
};

static_assert(sizeof(RankControl) <= Comm::slot_offset, "control words fit their page");

}  // namespace plexus::shm_native

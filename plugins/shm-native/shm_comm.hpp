// A shm-native communicator: every rank owns a control page and a segment of
// two data slots (shm_slots.hpp: how slots grow and where they are placed),
// and maps every peer's. A collective is a
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
#include "plugins/shm-native/shm_helpers.hpp"
#include "plugins/shm-native/shm_pool.hpp"
#include "plugins/shm-native/shm_slots.hpp"
#include "plugins/shm-native/spin_budget.hpp"

namespace plexus::shm_native {

// Params::rotate_min_bytes when it is left to the rank count.
inline constexpr uint64_t rotate_min_by_ranks = UINT64_MAX;
// Params::stream_min_bytes when it is left to the CPU (stream_copy.hpp).
inline constexpr uint64_t stream_min_by_cpu = UINT64_MAX;

// ROTATE_MIN_BYTES "auto": 8 KiB up to 4 ranks, 16 KiB beyond. On the 32-core
// GPU host (session 23, five alternating rounds) an 8 KiB all-reduce took
// 6.0-8.0 us without rotating against 7.5-10.1 rotating at 16 ranks, 4.8-6.0
// against 5.5-9.6 at 8 ranks (two-shot, 512 B and 1 KiB shares); from 16 KiB
// neither way won at 16 ranks and rotating won at 8 (32 KiB: 10.3 against
// 11.4-12.4 us). Up to 4 ranks 8 KiB stays (Params::rotate_min_bytes says why).
uint64_t rotate_min_bytes_for_ranks(uint64_t configured, int32_t nranks);

struct Params {
  uint64_t slot_bytes = 1 << 20;     // the largest data slot; two per rank
  uint64_t slot_min_bytes = 64 << 10;  // the first size of a slot
  uint64_t oneshot_max_bytes = 64 << 10;
  // Results of reductions whose messages, summed over the ranks, are this
  // large bypass the caches (Op::streams_result); stream_min_by_cpu (the
  // default, "auto"): auto_stream_min_bytes for this CPU, resolved when the
  // parameters are read.
  uint64_t stream_min_bytes = stream_min_by_cpu;
  int32_t spin_iterations = 2000;    // polls before yielding
  int32_t yield_iterations = 200;    // yields before sleeping on the futex
  int32_t sleep_after_us = 1000;     // and time awake before it (SleepGate); 0 when outnumbered
  double defrag_threshold = 0.30;    // the loader's PLEXUS_DEFRAG_THRESHOLD
  bool read_in_place = true;         // peers read pool send buffers in place
  int32_t threads = 0;               // threads per rank for large steps; 0: from the CPUs
  uint64_t threads_min_bytes = 64 << 10;  // the smallest step they split
  int32_t threads_poll_us = 200;     // how long idle helpers poll before sleeping
  uint64_t ll_max_bytes = 0;         // all-reduces up to this use the LL lines; 0: no lines
  // Steps that write at least this many bytes rotate through their slot: each
  // takes the region after the previous one's, so a region is written again
  // only after about 2 x slot bytes of other steps, when the peers' caches no
  // longer hold the copies they read. A store to a line that a peer's cache
  // still holds waits for that copy's invalidation: 2 ranks on the 2-core dev
  // machine copied 32 KiB into a slot last read one step before in 3.7 us,
  // into a region last read 2 MiB before in 0.9 us (all-reduce of 8 KiB: 1.05
  // against 1.40 us; of 2 and 4 KiB rotating cost more than it saved).
  // Reductions this large grow the slots to the cap at once, so that there is
  // room to rotate. rotate_min_by_ranks (the default, "auto"): see
  // rotate_min_bytes_for_ranks.
  uint64_t rotate_min_bytes = rotate_min_by_ranks;
};

// One rank's control words, each on its own 128-byte line so that ranks
// polling one word do not steal the line another rank is writing.
struct alignas(128) Counter {
  std::atomic<uint32_t> value{0};
  std::atomic<uint32_t> sleepers{0};  // ranks in FUTEX_WAIT on value
};

// A small one-shot input in the cache line that also announces it: a peer
// polling `step` gets the data with the same line transfer, where the slots
// cost a second one (entry step % 2, double-buffered like the slots).
struct alignas(64) InlineInput {
  std::atomic<uint32_t> step{0};  // s + 1 once data holds step s's input
  uint32_t pad = 0;
  alignas(8) uint8_t data[56];
};
inline constexpr size_t inline_input_bytes = sizeof(InlineInput::data);

struct RankControl {
  Counter arrive;  // steps whose input this rank has published
  Counter done;    // steps whose reduce-scatter share this rank has finished
  Counter mapped;  // the slot generation whose peer segments this rank has mapped
  alignas(128) std::atomic<uint32_t> numa_node{0xffffffffu};  // where this rank's slots are
  // Set at init when this rank could open every peer's /proc/<pid>/fd.
  std::atomic<uint32_t> maps_peers{0};
  // Step s's input, when it is a pool block read in place instead of a
  // copy in the slot: entry s % 2, double-buffered like the slots.
  alignas(128) BlockRef input[2];
  // This rank's slot segment of generation g is entry g % 2 (shm_slots.hpp);
  // written before the `arrive` that publishes the first step using it.
  alignas(128) SlotSegmentRef slot_segments[2];
  alignas(128) InlineInput inline_input[2];
};

// One line of the low-latency (LL) all-reduce (ll_reduce.cpp): 56 bytes of
// payload, then the sequence number of the collective that wrote them,
// stored after them with release. A peer that sees its sequence number
// sees the payload too (the line comes in one transfer, no separate flag
// to fetch and no `arrive` to wait for). The lines live in the control
// segment, which only LL writes: no stale payload of another algorithm can
// ever look like a sequence number.
struct alignas(64) LowLatencyLine {
  uint8_t data[56];
  std::atomic<uint64_t> seq{0};
};
inline constexpr size_t ll_payload_bytes = sizeof(LowLatencyLine::data);
inline constexpr size_t ll_max_lines = 600;  // 33600 bytes of payload: 32 KiB messages fit
// Lines of each (kind, parity) through which calls rotate, as the slots do
// (Params::rotate_min_bytes), so that a line a peer has just read is not
// rewritten at once (the store waits for that copy's invalidation): calls
// of up to 512 lines (28 KiB) take the lines after the previous call's.
// 256 KiB a rank in all. On the 2-core dev machine, 2 ranks, rotating or not measured
// the same (16 KiB: 2.2-3.1 against 2.3-7.1 us); not yet measured on more.
inline constexpr size_t ll_area_lines = 1024;
// A rank's LL lines: its input and its reduced share, each double-buffered
// by the parity of the LL sequence number.
struct LowLatencyArea {
  LowLatencyLine input[2][ll_area_lines];
  LowLatencyLine result[2][ll_area_lines];
};

struct SegmentAnnouncement;  // what ranks exchange at init (shm_comm.cpp)
struct SlotName;

class Comm {
 public:
  static plx_status create(const core::RendezvousId &id, int32_t nranks, int32_t rank,
                           const plx_comm_config &config, const Params &params,
                           std::shared_ptr<StagingReport> report, std::unique_ptr<Comm> *out);
  ~Comm();

  int32_t rank() const { return rank_; }
  int32_t nranks() const { return nranks_; }
  const Params &params() const { return params_; }
  // Params::rotate_min_bytes resolved for this communicator's rank count.
  uint64_t rotate_min_bytes() const { return rotate_min_bytes_; }
  // The polls of this communicator's collective waits (spin_budget.hpp).
  SpinBudget &spin_budget() { return spin_; }
  // Whether the ranks outnumber the CPUs they may run on (decided at init).
  bool oversubscribed() const { return oversubscribed_; }
  // The helper threads that split a large step with the caller
  // (shm_helpers.hpp), started on first use; nullptr when this rank runs
  // its steps alone (decide_threads).
  HelperThreads *helpers();
  int32_t timeout_ms() const { return timeout_ms_; }
  core::Rendezvous &rendezvous() { return *rendezvous_; }
  const std::shared_ptr<StagingReport> &staging_report() const { return report_; }

  RankControl &control(int32_t r) { return *static_cast<RankControl *>(controls_[r].data()); }
  // Peer r's data slot used by step `step`.
  uint8_t *slot(int32_t r, uint32_t step) { return slot_base_[r] + (step & 1u) * slot_bytes_ + region_[step & 1u]; }
  // Bytes of one slot now; every rank's slots have this size.
  uint64_t slot_bytes() const { return slot_bytes_; }

  // Makes the slots hold `bytes` (up to the cap) before a collective writes
  // them; every rank calls it with the same bytes at the same call, so all
  // grow together. One compare when no growth is needed.
  plx_status stage(uint64_t bytes) { return bytes > grow_above_ ? grow_slots(bytes) : PLX_OK; }
  // Whether the slots grew in this collective and peers are not remapped yet.
  bool growth_pending() const { return growth_pending_; }
  // After the first exchange in grown slots: drops this rank's old segment
  // and maps the peers' new ones.
  plx_status finish_growth(const char *coll, uint64_t seq);

  // The next step number; every rank takes the same sequence, so every rank
  // computes the same region for every rank's slot.
  // A step that writes at least rotate_min_bytes() into the slots takes the
  // region after the last one taken in slot step % 2 (wrapping at its end);
  // other steps write at the slot's start.
  uint32_t next_step(uint64_t bytes = 0);

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
  // The status of a failed open of rank r's descriptor (status s), posted
  // for all: a posted failure first, PEER_LOST when r is gone, else s.
  plx_status peer_open_failed(int32_t r, plx_status s, const std::string &what);

  // Statistics of the algorithms chosen, per collective kind.
  std::atomic<uint64_t> algorithm_calls[PLX_COLL_KIND_COUNT][PLX_OP_STATS_ALGO_SLOTS] = {};
  std::atomic<int32_t> last_algorithm[PLX_COLL_KIND_COUNT] = {};

  // Whether the control segments carry LL lines: only where LL_MAX_BYTES
  // is set (the same on every rank, checked at init), so that communicators
  // without LL do not pay 256 KiB a rank for them.
  bool has_ll_lines() const { return params_.ll_max_bytes != 0; }
  // The LL lines of rank r, after its control words (has_ll_lines()).
  LowLatencyArea &ll_area(int32_t r) {
    return *reinterpret_cast<LowLatencyArea *>(static_cast<uint8_t *>(controls_[r].data()) + control_page_bytes);
  }
  // The sequence number of the next LL all-reduce: the same on every rank.
  uint64_t next_ll_seq() { return ++ll_seq_; }
  // Where in its parity's lines LL all-reduce `seq` of `lines` lines starts:
  // after the previous one of that parity, wrapping at the end; every rank
  // computes the same for every rank.
  size_t ll_region(uint64_t seq, size_t lines) {
    size_t &cursor = ll_cursor_[seq & 1u];
    if (cursor + lines > ll_area_lines) cursor = 0;
    const size_t start = cursor;
    cursor += lines;
    return start;
  }
  // Where an LL all-reduce gathers the peers' lines of its share.
  std::vector<uint8_t> &ll_staging() { return ll_staging_; }
  // A float32 reduction sent as a half type: its input and result in the
  // wire dtype (shm_coll.cpp), kept at the largest size used.
  std::vector<uint16_t> &wire_input() { return wire_input_; }
  std::vector<uint16_t> &wire_result() { return wire_result_; }

  static constexpr size_t control_page_bytes = 4096;  // the control words' page
  // The control segment: the control words, then any LL lines.
  size_t control_bytes() const { return control_page_bytes + (has_ll_lines() ? sizeof(LowLatencyArea) : 0); }

 private:
  Comm(int32_t nranks, int32_t rank, const Params &params, int32_t timeout_ms,
       std::shared_ptr<StagingReport> report);
  plx_status map_peers(int32_t init_timeout_ms);
  plx_status create_own_segments(const char *control_name);
  plx_status check_same_params(const std::vector<SegmentAnnouncement> &all);
  void decide_spinning(const std::vector<SegmentAnnouncement> &all);
  void decide_threads(const std::vector<SegmentAnnouncement> &all);
  plx_status announce(int32_t init_timeout_ms, std::vector<SegmentAnnouncement> *all);
  plx_status open_announced(const std::vector<SegmentAnnouncement> &all, int32_t init_timeout_ms);
  plx_status map_peer_growable_slots();
  plx_status use_named_slots(int32_t init_timeout_ms);
  plx_status open_named_slots(const std::vector<SlotName> &all, int32_t init_timeout_ms);
  plx_status grow_slots(uint64_t bytes);
  void set_slots(int32_t r, core::ShmSegment segment);
  bool peer_gone(int32_t r);

  int32_t rank_, nranks_;
  Params params_;
  SpinBudget spin_{0};
  bool oversubscribed_ = false;
  int32_t helper_count_ = 0;
  std::unique_ptr<HelperThreads> helpers_;
  int32_t timeout_ms_;
  uint32_t step_ = 0;
  uint64_t ll_seq_ = 0;
  size_t ll_cursor_[2] = {0, 0};
  std::vector<uint8_t> ll_staging_;
  std::vector<uint16_t> wire_input_, wire_result_;
  uint64_t region_[2] = {0, 0};  // where in slot p the current step p's data is
  uint64_t cursor_[2] = {0, 0};  // where the next rotating step's region in slot p starts
  uint64_t rotate_min_bytes_ = 0;  // Params::rotate_min_bytes for nranks_
  uint64_t collectives_ = 0;
  std::unique_ptr<core::Rendezvous> rendezvous_;
  std::shared_ptr<StagingReport> report_;
  std::vector<int32_t> pids_;
  int32_t numa_node_ = 0;                    // this rank's, at init
  Placement placement_;                      // of this rank's slots
  std::vector<core::ShmSegment> controls_;   // [rank_] is our own control page
  std::vector<core::ShmSegment> slots_;      // every rank's slot segment
  std::vector<uint8_t *> slot_base_;         // the first slot of each
  uint64_t slot_bytes_ = 0;
  uint64_t grow_above_ = UINT64_MAX;         // stage() grows for more bytes than this
  uint32_t generation_ = 0;                  // of the slots; the same on every rank
  bool growth_pending_ = false;
  // This rank's previous slot segment, kept until the first exchange in the
  // new one, so that its descriptor stays valid for a peer that has not yet
  // mapped it (grow_slots explains why).
  core::ShmSegment retired_;
  // Destroyed before the slots and control pages: the pool and the peers'
  // pool mappings go first.
  std::unique_ptr<ShmPool> pool_;
  std::unique_ptr<PeerMaps> peer_maps_;
  bool reads_in_place_ = false;
};

static_assert(sizeof(RankControl) <= Comm::control_page_bytes, "control words fit their page");

}  // namespace plexus::shm_native

// A p2p-tree communicator: one GPU per rank, the ranks of one host, each a
// process or a thread of one process.
//
// Each rank owns an exchange block (flags, its epoch counter, two halves
// of input and result areas; kernels/kernels.hpp) from a private
// DevicePool of cudaMalloc segments; the segment's legacy IPC handle goes
// to the peers through the init rendezvous (core::Rendezvous::allgather),
// and every rank maps every peer's segment (core::ImportedSegment), except
// a peer of its own process (CUDA IPC cannot open a handle of the process
// that made it): that block is used at its address, with peer access. The
// kernels run on the caller's stream; all waiting happens on the device,
// bounded by the timeout (globaltimer) and by a host abort word in
// host-mapped memory (kernels::Control).
//
// Failure. The init rendezvous stays joined for the communicator's life:
// it is the failure domain. A failure (a kernel's timeout record, abort, a
// dead peer, a launch error) is recorded once here, written to the host
// abort word so this rank's kernels return, and posted in the rendezvous,
// where every other rank's watchdog adopts it (and aborts its kernels).
// Every call checks the local word and the posted one first (two loads).
#pragma once

#include <algorithm>
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
#include "core/identity_buffers.hpp"
#include "core/names.hpp"
#include "core/scratch_pool.hpp"
#include "core/rendezvous.hpp"
#include "kernels/ce.hpp"
#include "kernels/kernels.hpp"
#include "plexus/plugin.h"
#include "plugins/p2p-tree/p2p_registry.hpp"
#include "plugins/p2p-tree/p2p_topo.hpp"

namespace plexus::p2p_tree {

// PLEXUS_P2P_TREE_ALGO=one_shot_bulk: a plugin-internal id (the statistics
// count it as PLX_ALGO_ONE_SHOT, which it is: only the protocol differs).
constexpr int32_t kAlgoOneShotBulk = 100;
// Above the one-shot's limit, up to Params::ll128_two_shot_max_bytes: the
// LL128 two-shot (counted as PLX_ALGO_TWO_SHOT).
constexpr int32_t kAlgoLL128TwoShot = 101;
// All-reduces from Params::copy_min_bytes up: the copy-engine two-shot
// (kernels/ce.hpp; counted as PLX_ALGO_COPY, and PLX_ALGO_COPY asks for it).
constexpr int32_t kAlgoCopy = PLX_ALGO_COPY;

struct Params {
  // Measured on 2 H100 (docs/performance.md): one-shot wins up to 512 KiB.
  // Auto scales it by 2 / nranks (a one-shot sends nranks - 1 copies).
  uint64_t oneshot_max_bytes = uint64_t{512} << 10;
  // Above the LL one-shot and up to this (also times 2 / nranks): the bulk
  // one-shot (whole inputs pushed, one exchange); two-shot beyond.
  uint64_t bulk_max_bytes = uint64_t{4} << 20;  // bulk beat two-shot to 4 MiB (2 H200, bfloat16)
  int32_t forced_algo = PLX_ALGO_AUTO;  // PLEXUS_P2P_TREE_ALGO
  int32_t tree_arity = 4;               // PLEXUS_P2P_TREE_TREE_ARITY: the k-ary tree's children per rank
  uint64_t unlinked = 0;                // PLEXUS_P2P_TREE_UNLINK: pairs taken as not linked (with_pair bits)
  // 64 MiB: 316 against 274 GB/s for 16 MiB at 128 MiB on 2 H200 (fewer launches, each
  // with two exchanges); the exchange block holds four areas, so 256 MiB per rank.
  uint64_t slot_bytes = uint64_t{64} << 20;
  int32_t max_blocks = 0;  // 0: one block per SM of the device, at most kernels::kMaxBlocks
  int32_t watchdog_poll_ms = 5;
  bool probe_peer_copies = true;
  // PDL and LL blocks of 128: 8 B 4.3 -> 3.1 us, 8 KiB 4.7 -> 3.2, 128 KiB 5.5 -> 4.2 in graphs on 2 H200.
  bool dependent_launch = true;  // PLEXUS_P2P_TREE_PDL
  int32_t ll_threads = 128;      // PLEXUS_P2P_TREE_LL_THREADS
  // The two-shot's copy-out beside its reduction (kernels.hpp, two_shot_rounds):
  // 4 H100, same call: 128 MiB 656 -> 627 us, 64 MiB 327 -> 313 (eager; 8-32 MiB keep one round).
  int32_t copy_blocks = 128;     // PLEXUS_P2P_TREE_COPY_BLOCKS: the two-shot's copy-out blocks
  int32_t rounds = 4;            // PLEXUS_P2P_TREE_ROUNDS: most rounds of the two-shot's phase 2
  // One-shots from this many bytes use LL128 lines where every pair is
  // NVLink (PLEXUS_P2P_TREE_LL128=0: never): 4 H100, 4 KiB 5.00 -> 4.34 us,
  // 128 KiB 8.25 -> 5.60, 256 KiB 11.3 -> 7.2 against LL lines.
  bool ll128 = true;
  uint64_t ll128_min_bytes = 0;
  // Where LL128 starts as these parameters ask (UINT64_MAX: never).
  uint64_t ll128_from() const { return ll128 ? ll128_min_bytes : UINT64_MAX; }
  // On 3 ranks and more, all-reduces above the one-shot's limit and up to
  // this run the LL128 two-shot: 4 H100, 1 MiB 17.4 -> 10.5 us, 2 MiB 22.0
  // -> 15.0, 4 MiB 33.9 -> 30.6 against bulk and two-shot; 8 MiB 55.4
  // against two-shot's 52.5. On 2 ranks it sends what the one-shot sends.
  uint64_t ll128_two_shot_max_bytes = uint64_t{4} << 20;  // PLEXUS_P2P_TREE_LL128_TWO_SHOT_MAX_BYTES
  // On 2 ranks, all-reduces of at least this many bytes go by the copy
  // engines (kAlgoCopy; UINT64_MAX: never), each launch's chunks in
  // copy_pieces pieces (PLEXUS_P2P_TREE_COPY_MIN_BYTES, _COPY_PIECES).
  // 2 H100, bfloat16, same calls: 128 MiB 422-424 us against the SM
  // two-shot's 434-435 (1.11-1.12x raw NCCL against 1.09x), 256 MiB 845-847
  // against 865-868, 96 MiB 329 against 333, 64 MiB 229 against 218. On 4
  // H100 the copy engines ran 2.3x slower (1441 against 633 us at 128 MiB),
  // so auto takes them on 2 ranks only.
  uint64_t copy_min_bytes = uint64_t{128} << 20;
  int32_t copy_pieces = 2;  // 2 H100: 128 MiB 432 us with 2, 439 with 4, 470 with 7, 541 with 1
  // Scatter (and gather) streams the peers share, peer j on stream j mod
  // this; 0: one per peer (PLEXUS_P2P_TREE_COPY_STREAMS). Local only: the
  // ranks need not agree. 4 H100, 128 MiB: 669 us with 1, 1471 with one per
  // peer (three concurrent copies share the engines unevenly); 2 ranks: the same.
  int32_t copy_streams = 1;
  int32_t copy_lanes(int32_t nranks) const {
    return copy_streams == 0 ? nranks - 1 : std::min(copy_streams, nranks - 1);
  }
  bool copy_by_size(uint64_t bytes, int32_t nranks) const { return nranks == 2 && bytes >= copy_min_bytes; }
  bool enable = true;  // PLEXUS_P2P_TREE_ENABLE=0 declines every machine
  bool shared_gpu = false;  // PLEXUS_P2P_TREE_SHARED_GPU: thread ranks may share a GPU (tests)
  double defrag_threshold = 0.30;

  // The all-reduce algorithm auto picks on nranks > 1 ranks (ll128: the
  // communicator agreed on LL128 lines): the one-shot up to
  // ONESHOT_MAX_BYTES x 2 / nranks (LL or LL128 lines); on 3 ranks and more
  // with LL128 the LL128 two-shot up to LL128_TWO_SHOT_MAX_BYTES; the bulk
  // one-shot up to BULK_MAX_BYTES x 2 / (nranks (nranks - 1)), as it sends
  // nranks - 1 copies of the input where two-shot sends 2 (nranks - 1) /
  // nranks (4 H100: bulk 9.9 us at 256 KiB against two-shot's 14.9, 19.5
  // against 16.5 at 1 MiB); two-shot beyond.
  int32_t auto_algo(uint64_t bytes, uint64_t nranks, bool with_ll128) const {
    if (bytes <= oneshot_max_bytes * 2 / nranks) return PLX_ALGO_ONE_SHOT;
    if (nranks >= 3 && with_ll128 && bytes <= ll128_two_shot_max_bytes) return kAlgoLL128TwoShot;
    return bytes <= bulk_max_bytes * 2 / (nranks * (nranks - 1)) ? kAlgoOneShotBulk : PLX_ALGO_TWO_SHOT;
  }

  // Bytes of one LL (and one LL128) slot: LL lines carry half data, and
  // the slot holds at least 64 KiB of payload so that a forced one-shot is
  // not all launches; on 3 ranks and more also an LL128 two-shot of
  // ll128_two_shot_max_bytes in one launch (both halves of a chunk's lines).
  uint64_t ll_slot_bytes(int32_t nranks) const {
    const uint64_t payload = oneshot_max_bytes > (64u << 10) ? oneshot_max_bytes : (64u << 10);
    const uint64_t ll = 2 * ((payload + 4095) / 4096 * 4096);
    if (nranks < 3 || !ll128) return ll;
    const uint64_t chunk = (ll128_two_shot_max_bytes + nranks - 1) / nranks;
    const uint64_t lines = (2 * kernels::ll128_tiles(chunk) * kernels::kLL128TileBytes + 4095) / 4096 * 4096;
    return lines > ll ? lines : ll;
  }
};

// The unique id payload: a header this plugin checks and the rendezvous.
struct IdPayload {
  uint32_t magic;
  uint16_t version;
  uint16_t reserved0;
  core::RendezvousId rendezvous;
};
constexpr uint32_t id_magic = 0x54325058u;  // "XP2T"
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
  uint32_t nvlinked_ordinals = 0;  // bit d: CUDA device d has NVLink to ours (NVML; 0 when unknown)
};

// What each rank tells the others at init.
struct PeerCard {
  uint64_t pid;
  int32_t device;           // its CUDA ordinal, in its own process
  int32_t max_blocks;       // its resolved MAX_BLOCKS; the communicator uses the smallest
  uint64_t slot_bytes;      // must be the same everywhere
  uint64_t ll_slot_bytes;   // the same everywhere (PLEXUS_P2P_TREE_ONESHOT_MAX_BYTES)
  uint64_t block_bytes;
  uint64_t bulk_max_bytes;  // the same everywhere
  int32_t forced_algo;      // the same everywhere (PLEXUS_P2P_TREE_ALGO)
  int32_t tree_arity;       // the same everywhere
  int32_t rounds;           // the same everywhere (PLEXUS_P2P_TREE_ROUNDS)
  uint64_t unlinked;        // the same everywhere (PLEXUS_P2P_TREE_UNLINK)
  uint64_t ll128_min_bytes; // the same everywhere (LL128, LL128_MIN_BYTES; UINT64_MAX: off)
  uint64_t ll128_two_shot_max_bytes;  // the same everywhere
  uint64_t copy_min_bytes;  // the same everywhere (COPY_MIN_BYTES)
  int32_t copy_pieces;      // the same everywhere (COPY_PIECES)
  char pci_bus_id[32];      // cudaDeviceGetPCIBusId of its device
  core::DeviceSegmentExport segment;  // its exchange block (cuda_malloc: IPC handle)
  uint64_t process;         // this_process_token(): equal for ranks that are threads of one process
  uint64_t block_address;   // the block's device address: a rank of the same process uses it as is
  char registry_name[64];   // its bulletin of registered buffers (p2p_registry.hpp)
};
static_assert(std::is_trivially_copyable_v<PeerCard>);
static_assert(sizeof(PeerCard) <= core::Rendezvous::kMaxAllgatherBytes);

// The copy-engine two-shot's streams and events (p2p_copy_engine.cpp): a
// scatter and a gather stream per lane (Params::copy_lanes), forked from the caller's stream
// and joined back within each launch. Made at init (a call must not
// allocate) and reused by every launch: a wait keeps the record it was
// enqueued after, so recording an event again is safe.
struct CopyEngines {
  cudaStream_t scatter[kernels::kMaxRanks - 1] = {};
  cudaStream_t gather[kernels::kMaxRanks - 1] = {};
  cudaEvent_t forked = nullptr;
  cudaEvent_t summed[kernels::kCopyMaxPieces] = {};
  cudaEvent_t joined[2 * (kernels::kMaxRanks - 1)] = {};
};

// Device pointers this communicator has already checked (as in the nccl
// plugin): inference reuses its buffers, so a hit is a few compares.
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
  // Joins the rendezvous, makes and exchanges the exchange blocks, maps the
  // peers' blocks, starts the watchdog. Bounded by init_timeout_ms.
  static plx_status create(const core::RendezvousId &id, const CommSetup &setup, const Params &params,
                           std::unique_ptr<Comm> *out);
  // Waits (bounded by the kernels' own timeouts) for this device's work
  // and for the peers, then unmaps and frees everything.
  ~Comm();
  Comm(const Comm &) = delete;
  Comm &operator=(const Comm &) = delete;

  int32_t rank() const { return setup_.rank; }
  int32_t nranks() const { return setup_.nranks; }
  int device() const { return setup_.device; }
  const CommSetup &setup() const { return setup_; }
  const Params &params() const { return params_; }
  const kernels::Peers &peers() const { return peers_; }
  // One-shots of at least this many bytes take LL128 lines (UINT64_MAX:
  // never; every rank agreed on it at init).
  uint64_t ll128_min_bytes() const { return ll128_min_bytes_; }
  bool ll128() const { return ll128_min_bytes_ != UINT64_MAX; }
  // Which ranks are linked, the ring and the trees over them (same on every rank).
  const Routes &routes() const { return routes_; }

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
  // Records the first failure, stops this rank's kernels (host abort word),
  // posts it for the peers; returns the status reported (a peer's earlier
  // post wins, so every rank reports the same code).
  plx_status set_failure(plx_status status, const std::string &message);

  PointerCache &pointer_cache() { return pointer_cache_; }
  CopyEngines &copy_engines() { return copy_engines_; }
  // What this rank sends when it contributes nothing (p2p_coll.cpp).
  core::IdentityBuffers &identity_buffers() { return identity_buffers_; }
  // A float32 reduction's blocks in its wire dtype (p2p_coll.cpp).
  core::ScratchPool &wire_pool() { return wire_pool_; }
  void count_call(int32_t coll, int32_t algo);
  void stats(int32_t coll, plx_op_stats *out) const;

  // The pool behind plx_mem_alloc (PLX_MEM_DEVICE), made on first use.
  core::CommDevicePool &user_pool() { return user_pool_; }

  // Registered buffers (p2p_registry.hpp; p2p_memory.cpp).
  Registry &registry() { return registry_; }
  // Fills a two-shot launch's candidate registration when out lies in one
  // (the kernel posts it once every peer mapped it). A plx_mem_alloc
  // block's pool segment is registered on its first use here, inside a
  // graph capture too, and pinned: it stays mapped by the peers, and
  // reserved, until the communicator is destroyed.
  void post_output(const void *out, uint64_t bytes, kernels::ReduceArgs *args);

 private:
  Comm(const CommSetup &setup, const Params &params);
  plx_status make_block();
  plx_status make_control();
  plx_status make_registry();
  plx_status make_copy_engines();
  void release_copy_engines();
  plx_status resolve_max_blocks();
  plx_status resolve_dependent_launch();
  void agree_max_blocks(const std::vector<PeerCard> &cards);
  plx_status exchange_cards(std::vector<PeerCard> *cards);
  plx_status check_same_params(const PeerCard &card, int32_t q) const;
  plx_status check_cards(const std::vector<PeerCard> &cards);
  bool may_share_gpu(const PeerCard &card) const;
  plx_status map_peer(int32_t peer, const PeerCard &card);
  plx_status use_block_in_process(int32_t peer, const PeerCard &card);
  // p2p_links.cpp
  plx_status agree_links(const std::vector<PeerCard> &cards);
  plx_status reaches(int32_t peer, const PeerCard &card, bool *reach, bool *nvlink);
  void agree_ll128(const uint32_t *nvlinked);
  plx_status enable_peer_access(int32_t peer, const PeerCard &card);
  void drain_and_release();
  // p2p_watchdog.cpp
  void watchdog_main();
  void watch_device_error();
  void watch_posted();
  void watch_peers();
  void stop_watchdog();
  plx_status posted_failure(std::string *message) const;

  CommSetup setup_;
  Params params_;
  kernels::Peers peers_{};
  Routes routes_;
  uint64_t ll128_min_bytes_ = UINT64_MAX;

  std::unique_ptr<core::Rendezvous> rendezvous_;
  const uint64_t *posted_word_ = nullptr;
  std::vector<uint64_t> pids_;
  std::atomic<plx_status> failure_{PLX_OK};
  std::mutex failure_mutex_;
  std::string failure_message_;

  std::unique_ptr<core::DevicePool> exchange_pool_;
  void *block_ = nullptr;
  uint64_t block_bytes_ = 0;
  std::vector<std::unique_ptr<core::ImportedSegment>> imports_;  // per peer (mine: null)
  kernels::Control *control_host_ = nullptr;

  PointerCache pointer_cache_;
  CopyEngines copy_engines_;
  core::IdentityBuffers identity_buffers_;
  core::ScratchPool wire_pool_;
  std::atomic<uint64_t> algo_calls_[PLX_COLL_KIND_COUNT][PLX_OP_STATS_ALGO_SLOTS] = {};
  std::atomic<int32_t> last_algo_[PLX_COLL_KIND_COUNT] = {};

  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;
  int64_t next_peer_check_ns_ = 0;

  core::CommDevicePool user_pool_;
  Registry registry_;
};

int64_t now_ns();
using core::coll_name;

}  // namespace plexus::p2p_tree

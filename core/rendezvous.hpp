// Ranks of one node meet through a shared-memory segment named by a unique
// id: every host plugin's comm_init uses it to find its peers, exchange a
// few bytes (segment names, pids), and watch them for the life of the
// communicator.
//
// Protocol. Ranks arrive in any order, seconds apart, as processes or as
// threads of one process. The first creates the segment (O_EXCL), fills the
// header and publishes a magic word; the others wait for the magic, check
// the nonce and nranks, and claim their slot. Once every rank has arrived
// each rank unlinks the name (idempotent), so nothing stays in /dev/shm after
// success, error, or a rank killed after join; a failed or timed-out join
// unlinks too. A failure on one rank (timeout, lost peer, abort) is posted
// in the segment and returned by every later wait on every rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/shm_segment.hpp"
#include "plexus/types.h"

namespace plexus::core {

// What a rendezvous needs from a unique id; plain bytes, copied into the
// plugin's part of plx_unique_id.
struct RendezvousId {
  char name[64];   // NUL-terminated shm name, "/plexus-..."
  uint64_t nonce;  // random; tells our segment from a stale or foreign one
};
static_assert(std::is_trivially_copyable_v<RendezvousId> &&
              std::is_standard_layout_v<RendezvousId>);
static_assert(sizeof(RendezvousId) <= 128, "a rendezvous id fits the unique-id payload");

// A fresh unguessable name and nonce. Creates nothing, so an id that is
// never used leaks nothing.
plx_status make_rendezvous_id(RendezvousId *id);

struct RendezvousShared;  // the segment's layout, private to rendezvous.cpp

// One thread at a time per object, except post_failure() and failure(),
// which any thread may call (an abort while another thread waits).
class Rendezvous {
 public:
  static constexpr int32_t kMaxRanks = 1024;
  static constexpr size_t kMaxAllgatherBytes = 1024;

  // Waits until all nranks ranks have joined, or timeout_ms (negative waits
  // forever, 0 looks once; the same for every wait below). PLX_ERR_TIMEOUT names the ranks that
  // never came; PLX_ERR_INVALID_USAGE for a rank claimed twice or an nranks that differs from the
  // first rank's (the other ranks then fail with it too).
  static plx_status join(const RendezvousId &id, int32_t nranks, int32_t rank, int32_t timeout_ms,
                         std::unique_ptr<Rendezvous> *out);
  ~Rendezvous();
  Rendezvous(const Rendezvous &) = delete;
  Rendezvous &operator=(const Rendezvous &) = delete;

  int32_t rank() const { return rank_; }
  int32_t nranks() const { return nranks_; }

  // A process rank is alive while its pid runs the process that joined
  // (kill(pid, 0), start time, not a zombie); a thread rank of this process
  // while it has not left. Our own rank is always alive.
  bool peer_alive(int32_t rank) const;
  // Whether `rank` left (destroyed its object) rather than died: a rank
  // that finished cleanly is not alive, yet not lost either.
  bool peer_left(int32_t rank) const;
  // PLX_ERR_PEER_LOST naming the first rank that is not alive (posted for
  // all ranks), else PLX_OK.
  plx_status check_peers();

  // Posts a failure every rank's waits will return; the first post wins.
  void post_failure(plx_status status, std::string_view message);
  // The posted status (message: its text and who posted it), or PLX_OK.
  plx_status failure(std::string *message) const;
  // The shared failure word, for a hot path that must see a peer's post
  // with one load: read it with an atomic load (__atomic_load_n, relaxed);
  // nonzero once a failure is posted, its low 32 bits the plx_status.
  // Valid while this object lives.
  const uint64_t *failure_word() const;

  // Every rank passes `bytes` (at most kMaxAllgatherBytes, the same on every
  // rank); `all` receives nranks blocks in rank order. Returns a posted
  // failure, PLX_ERR_PEER_LOST for a dead rank we wait on, or
  // PLX_ERR_TIMEOUT naming the ranks that did not arrive.
  plx_status allgather(const void *mine, size_t bytes, void *all, int32_t timeout_ms);
  // allgather of nothing.
  plx_status barrier(int32_t timeout_ms);

 private:
  class Deadline;
  Rendezvous(int32_t nranks, int32_t rank) : rank_(rank), nranks_(nranks) {}
  plx_status attach(const RendezvousId &id, const Deadline &deadline);
  plx_status check_header(const RendezvousId &id, const Deadline &deadline);
  plx_status claim_slot();
  plx_status exchange(const void *mine, size_t bytes, void *all, int32_t timeout_ms,
                      std::string_view kind);
  plx_status collect(uint64_t epoch, size_t bytes, void *all, std::string_view what);
  plx_status wait_for_epoch(uint64_t epoch, std::string_view what, const Deadline &deadline);
  plx_status wait_failed(uint64_t epoch, std::string_view what, const Deadline &deadline,
                         bool check_liveness);
  std::string describe_lost(int32_t rank) const;
  // Posts `message` for every rank and fails with it here.
  plx_status fail_all(plx_status status, const std::string &message);

  int32_t rank_;
  int32_t nranks_;
  ShmSegment segment_;
  RendezvousShared *shared_ = nullptr;
  bool claimed_ = false;
  uint64_t epoch_ = 0;  // of this rank's last join/allgather/barrier
};

}  // namespace plexus::core

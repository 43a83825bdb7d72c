// A communicator: one POSIX shared-memory segment that every rank maps. It
// holds a header (who made it, the first failure), one line of state per
// rank (its pid, the last barrier it reached, a small mailbox) and one data
// slot per rank through which collectives move their bytes.
//
// Joining. Rank 0 creates the segment under the name in the unique id and
// publishes a magic word; the others wait for it, check the nonce and
// nranks, and claim their rank. When all have arrived every rank unlinks
// the name, so nothing is left in /dev/shm whatever happens later (a rank
// killed, a destroy that never comes); a failed join unlinks too.
//
// Waiting. Ranks meet in barriers: each posts the barrier's number and
// waits until every rank has posted it. A wait ends with the first failure
// any rank posted (timeout, lost peer, abort), so failure is sticky on every
// rank; it checks every few milliseconds that the ranks it waits for are
// still alive. No lock lives in shared memory, so a rank that dies holds
// nothing the others need.
#pragma once

#include <plexus/plugin.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace example_shm {

// The plugin's part of plx_unique_id (at most PLX_UNIQUE_ID_PAYLOAD_BYTES).
struct UniqueId {
  char tag[8];     // kIdTag: this plugin made it
  char name[64];   // "/plexus-example-shm-<pid>-<random>", NUL-terminated
  uint64_t nonce;  // random: tells our segment from a stale one of that name
};
static_assert(sizeof(UniqueId) <= PLX_UNIQUE_ID_PAYLOAD_BYTES, "the id fits the payload");

// A fresh name and nonce; creates nothing, so an id never used leaks nothing.
plx_status make_unique_id(UniqueId *id);

struct Header;
struct RankLine;

class Comm {
 public:
  // Joins as `rank` of `nranks` within init_timeout_ms (-1: forever); the
  // communicator's collectives then wait at most timeout_ms for a peer.
  static plx_status join(const UniqueId &id, int32_t nranks, int32_t rank, int32_t init_timeout_ms,
                         int32_t timeout_ms, Comm **out);
  ~Comm();
  Comm(const Comm &) = delete;
  Comm &operator=(const Comm &) = delete;

  int32_t rank() const { return rank_; }
  int32_t nranks() const { return nranks_; }
  size_t slot_bytes() const { return slot_bytes_; }
  unsigned char *slot(int32_t rank) const { return data_ + static_cast<size_t>(rank) * slot_bytes_; }
  // A small per-rank box for exchanges outside the slots (split).
  static constexpr size_t kMailboxBytes = 128;
  unsigned char *mailbox(int32_t rank) const;

  // Names the operation in timeout and lost-peer messages ("all_reduce #3").
  void set_operation(const char *what);
  // Calls of one collective kind so far (plx_comm_stats, messages).
  uint64_t count_call(int32_t coll) { return ++calls_[coll]; }
  uint64_t calls(int32_t coll) const { return calls_[coll]; }
  // Waits until every rank has reached this barrier.
  plx_status barrier();
  // The first failure any rank posted (with set_error's message set), or PLX_OK.
  plx_status posted_failure() const;
  plx_status failure_status() const;
  // Makes every rank's waits, and this communicator's later calls, fail.
  void post_failure(plx_status status, const char *message);

 private:
  Comm(int32_t nranks, int32_t rank, int32_t timeout_ms);
  plx_status create(const UniqueId &id, int64_t deadline_ns);
  plx_status attach(const UniqueId &id, int64_t deadline_ns);
  plx_status map_when_sized(int fd, const UniqueId &id, int64_t deadline_ns);
  plx_status check_header(const UniqueId &id, int64_t deadline_ns);
  plx_status claim();
  void map_layout(void *base, size_t bytes);
  plx_status wait_for(uint64_t epoch, int32_t timeout_ms);
  plx_status wait_failed(uint64_t epoch, int32_t timeout_ms, bool expired, bool check_peers);
  bool alive(int32_t rank) const;
  plx_status fail_all(plx_status status, const char *format, ...) __attribute__((format(printf, 3, 4)));

  int32_t nranks_, rank_, timeout_ms_;
  void *base_ = nullptr;
  size_t bytes_ = 0, slot_bytes_ = 0;
  Header *header_ = nullptr;
  RankLine *lines_ = nullptr;
  unsigned char *data_ = nullptr;
  bool claimed_ = false;
  uint64_t epoch_ = 0;  // the last barrier this rank reached; joining is 1
  char operation_[48] = "comm_init";
  uint64_t calls_[PLX_COLL_KIND_COUNT] = {};
};

}  // namespace example_shm

// The PLX_MEM_SHARED_HOST pool of a shm-native communicator, and the peers'
// view of it.
//
// Each rank owns a core::HostPool whose segments are anonymous memfds: no
// name ever exists in /dev/shm, so a rank killed with SIGKILL leaves nothing
// behind. A segment is created pre-faulted (posix_fallocate and
// MAP_POPULATE, so a full tmpfs fails the allocation rather than raising
// SIGBUS later) and named by a per-rank id that only grows, never reused.
//
// Peers map a segment by opening /proc/<owner pid>/fd/<fd>: this needs the
// same uid, not ptrace attach rights, and no descriptor passing. Descriptor
// numbers are reused by the kernel, ids are not, so every segment starts
// with a header page holding its id and a `live` word: a peer checks both
// after opening and on every later use of its cached mapping, and a released
// or recycled segment is never read as live data.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/host_pool.hpp"
#include "core/shm_segment.hpp"

namespace plexus::shm_native {

// Where a block lives, as a peer needs it: published in the control page.
// segment_id 0 means "no block: the data is in the slot".
struct BlockRef {
  uint64_t segment_id = 0;
  uint64_t offset = 0;      // from the start of the segment's usable bytes
  uint64_t file_bytes = 0;  // the memfd's size, header included
  int32_t fd = -1;          // the owner's descriptor
  uint32_t pad = 0;
};

// The first page of every pool segment. Peers only read it.
struct SegmentHeader {
  static constexpr uint64_t magic_value = 0x706c78706f6f6c31;  // "plxpool1"
  uint64_t magic;
  uint64_t id;
  std::atomic<uint32_t> live;
};
inline constexpr size_t segment_header_bytes = 4096;

// Segments for the pool: one memfd each, with the header page in front.
class MemfdSource final : public core::SegmentSource {
 public:
  plx_status acquire(size_t bytes, void **base, uint64_t *handle) override;
  void release(void *base, size_t bytes, uint64_t handle) override;
  // The memfd of segment `id`; false once it was released.
  bool lookup(uint64_t id, int32_t *fd, uint64_t *file_bytes) const;
  // Fills *ref when [ptr, ptr + bytes) lies in one live segment. Called by
  // every collective on every send buffer, so a miss costs no message and,
  // while the pool has no segment, not even the lock.
  bool find(const void *ptr, size_t bytes, BlockRef *ref) const;

 private:
  mutable std::mutex mutex_;
  std::map<uint64_t, core::ShmSegment> segments_;  // by id
  std::atomic<size_t> count_{0};                   // segments_.size(), read without the lock
  uint64_t next_id_ = 1;
};

class ShmPool {
 public:
  explicit ShmPool(double defrag_threshold);
  core::HostPool &pool() { return pool_; }
  // Fills *ref when [ptr, ptr + bytes) lies in one segment of this pool.
  bool describe(const void *ptr, size_t bytes, BlockRef *ref) const;

 private:
  MemfdSource source_;  // declared first: it must outlive the pool
  core::HostPool pool_;
};

// Peers' segments, mapped on first use and cached per (rank, segment id)
// until the communicator is destroyed or the owner releases the segment.
class PeerMaps {
 public:
  explicit PeerMaps(std::vector<int32_t> pids) : pids_(std::move(pids)) {}
  // Whether /proc/<pid>/fd/<fd> of `rank` opens; the message says why not.
  static plx_status probe(int32_t pid, int32_t fd);
  // Where `bytes` bytes at ref lie in this process. UNSUPPORTED when the
  // owner's /proc/<pid>/fd cannot be opened; INVALID_USAGE for a segment
  // that is released, recycled or too small.
  plx_status resolve(int32_t rank, const BlockRef &ref, size_t bytes, const uint8_t **out);
  size_t cached() const { return maps_.size(); }

 private:
  plx_status map_segment(int32_t rank, const BlockRef &ref, core::ShmSegment *out);
  void drop_released(int32_t rank);

  std::vector<int32_t> pids_;
  std::map<std::pair<int32_t, uint64_t>, core::ShmSegment> maps_;
};

// True while the segment's header says it is `id` and still live.
bool segment_is_live(const core::ShmSegment &segment, uint64_t id);

}  // namespace plexus::shm_native

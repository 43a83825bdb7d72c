#include "plugins/shm-native/shm_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "core/status.hpp"

namespace plexus::shm_native {
namespace {

SegmentHeader &header_of(const core::ShmSegment &segment) {
  return *static_cast<SegmentHeader *>(segment.data());
}

std::string proc_fd_path(int32_t pid, int32_t fd) {
  return "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
}

// Opens a peer's descriptor through /proc; -1 with the failure set.
int open_proc_fd(int32_t pid, int32_t fd) {
  const std::string path = proc_fd_path(pid, fd);
  const int own = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (own < 0)
    core::fail(PLX_ERR_UNSUPPORTED, "shm-native: cannot open {} ({}): peers cannot map pool "
               "segments, so collectives copy shared-host buffers", path, std::strerror(errno));
  return own;
}

}  // namespace

bool segment_is_live(const core::ShmSegment &segment, uint64_t id) {
  const SegmentHeader &h = header_of(segment);
  return h.magic == SegmentHeader::magic_value && h.id == id &&
         h.live.load(std::memory_order_acquire) != 0;
}

// The id is taken under the lock but the memfd is created outside it: the
// pool may grow from several threads, and creation faults in every page.
plx_status MemfdSource::acquire(size_t bytes, void **base, uint64_t *handle) {
  uint64_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
  }
  core::ShmSegment segment;
  if (plx_status s = core::ShmSegment::create_memfd("plexus-pool", segment_header_bytes + bytes, &segment))
    return s;
  new (segment.data()) SegmentHeader{SegmentHeader::magic_value, id, {1}};
  *base = static_cast<uint8_t *>(segment.data()) + segment_header_bytes;
  *handle = id;
  std::lock_guard lock(mutex_);
  segments_.emplace(id, std::move(segment));
  count_.store(segments_.size(), std::memory_order_relaxed);
  return PLX_OK;
}

// Marks the header released before unmapping: a peer still holding a
// mapping keeps the pages alive, and must see that they are no longer ours.
void MemfdSource::release(void *, size_t, uint64_t handle) {
  core::ShmSegment gone;
  {
    std::lock_guard lock(mutex_);
    auto it = segments_.find(handle);
    if (it == segments_.end()) return;
    gone = std::move(it->second);
    segments_.erase(it);
    count_.store(segments_.size(), std::memory_order_relaxed);
  }
  header_of(gone).live.store(0, std::memory_order_release);
}

bool MemfdSource::lookup(uint64_t id, int32_t *fd, uint64_t *file_bytes) const {
  std::lock_guard lock(mutex_);
  auto it = segments_.find(id);
  if (it == segments_.end()) return false;
  *fd = it->second.fd();
  *file_bytes = it->second.size();
  return true;
}

bool MemfdSource::find(const void *ptr, size_t bytes, BlockRef *ref) const {
  if (count_.load(std::memory_order_relaxed) == 0) return false;
  const auto at = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard lock(mutex_);
  for (const auto &[id, segment] : segments_) {
    const auto base = reinterpret_cast<uintptr_t>(segment.data()) + segment_header_bytes;
    const size_t usable = segment.size() - segment_header_bytes;
    if (at < base || at - base >= usable) continue;
    if (at - base + bytes > usable) return false;  // spans two segments
    *ref = {id, at - base, segment.size(), segment.fd(), 0};
    return true;
  }
  return false;
}

namespace {

core::HostPoolConfig pool_config(double defrag_threshold) {
  core::HostPoolConfig config;
  config.kind = PLX_MEM_SHARED_HOST;
  config.defrag_threshold = defrag_threshold;
  return config;
}

}  // namespace

ShmPool::ShmPool(double defrag_threshold) : pool_(source_, pool_config(defrag_threshold)) {}

// The segment is the source's: asking the pool instead would format a
// failure message for every send buffer that is not a pool block.
bool ShmPool::describe(const void *ptr, size_t bytes, BlockRef *ref) const {
  return source_.find(ptr, bytes, ref);
}

plx_status PeerMaps::probe(int32_t pid, int32_t fd) {
  const int own = open_proc_fd(pid, fd);
  if (own < 0) return PLX_ERR_UNSUPPORTED;
  ::close(own);
  return PLX_OK;
}

// Opening the /proc link reopens the peer's file itself, so a second
// descriptor number of the peer's cannot be mistaken for it; the header then
// proves which segment it is (the peer may have reused the number).
plx_status PeerMaps::map_segment(int32_t rank, const BlockRef &ref, core::ShmSegment *out) {
  if (rank < 0 || rank >= static_cast<int32_t>(pids_.size()) || ref.file_bytes <= segment_header_bytes)
    return core::fail(PLX_ERR_INVALID_USAGE, "shm-native: bad pool block reference from rank {}", rank);
  const int own = open_proc_fd(pids_[rank], ref.fd);
  if (own < 0) return PLX_ERR_UNSUPPORTED;
  const plx_status s = core::ShmSegment::from_fd(own, ref.file_bytes, out);
  ::close(own);
  if (s != PLX_OK) return s;
  if (!segment_is_live(*out, ref.segment_id))
    return core::fail(PLX_ERR_INVALID_USAGE, "shm-native: rank {}'s pool segment {} was released",
                      rank, ref.segment_id);
  return PLX_OK;
}

// Unmaps what the owner has released, so trim and defragment give memory
// back to the system rather than only to the owner's view of it.
void PeerMaps::drop_released(int32_t rank) {
  for (auto it = maps_.lower_bound({rank, 0}); it != maps_.end() && it->first.first == rank;)
    it = segment_is_live(it->second, it->first.second) ? std::next(it) : maps_.erase(it);
}

plx_status PeerMaps::resolve(int32_t rank, const BlockRef &ref, size_t bytes, const uint8_t **out) {
  auto it = maps_.find({rank, ref.segment_id});
  if (it != maps_.end() && !segment_is_live(it->second, ref.segment_id)) {
    maps_.erase(it);
    it = maps_.end();
  }
  if (it == maps_.end()) {
    drop_released(rank);
    core::ShmSegment segment;
    if (plx_status s = map_segment(rank, ref, &segment)) return s;
    it = maps_.emplace(std::make_pair(rank, ref.segment_id), std::move(segment)).first;
  }
  if (ref.offset + bytes > it->second.size() - segment_header_bytes)
    return core::fail(PLX_ERR_INVALID_USAGE, "shm-native: rank {}'s block at {}+{} passes the end of "
                      "segment {}", rank, ref.offset, bytes, ref.segment_id);
  *out = static_cast<const uint8_t *>(it->second.data()) + segment_header_bytes + ref.offset;
  return PLX_OK;
}

}  // namespace plexus::shm_native

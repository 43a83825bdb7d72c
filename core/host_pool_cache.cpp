// HostPool's front caches, live-block registry, release of free segments,
// statistics and memory pressure (the scheme: host_pool.cpp's header).
#include <sys/sysinfo.h>

#include <fstream>
#include <string>

#include "core/host_pool_internal.hpp"
#include "core/log.hpp"

namespace plexus::core {

// ---------------------------------------------------------------------------
// Front caches and the live-block registry (their own locks, never nested)

HostPool::Block *HostPool::pop_cached(size_t size) {
  CacheSlot &slot = caches_[thread_slot()];
  std::lock_guard lock(slot.mutex);
  std::vector<Block *> &blocks = slot.classes[bin_of(size)];
  if (blocks.empty()) return nullptr;
  Block *block = blocks.back();
  blocks.pop_back();
  slot.bytes -= block->size;
  return block;
}

bool HostPool::push_cached(Block *block) {
  CacheSlot &slot = caches_[thread_slot()];
  std::lock_guard lock(slot.mutex);
  std::vector<Block *> &blocks = slot.classes[bin_of(block->size)];
  if (blocks.size() >= kCacheDepth || slot.bytes + block->size > kCacheSlotBytes) return false;
  blocks.push_back(block);
  slot.bytes += block->size;
  return true;
}

void HostPool::drain_caches() {
  std::vector<Block *> drained;
  for (size_t i = 0; i < kCacheSlots; ++i) {
    std::lock_guard lock(caches_[i].mutex);
    for (std::vector<Block *> &blocks : caches_[i].classes) {
      drained.insert(drained.end(), blocks.begin(), blocks.end());
      blocks.clear();
    }
    caches_[i].bytes = 0;
  }
  std::lock_guard lock(mutex_);
  for (Block *block : drained) release_block_locked(block);
}

uint64_t HostPool::largest_cached_block() const {
  uint64_t largest = 0;
  for (size_t i = 0; i < kCacheSlots; ++i) {
    std::lock_guard lock(caches_[i].mutex);
    for (const std::vector<Block *> &blocks : caches_[i].classes)
      if (!blocks.empty()) largest = std::max<uint64_t>(largest, blocks.back()->size);
  }
  return largest;
}

void HostPool::track_live(Block *block) {
  LiveShard &shard = live_[live_shard_of(block->addr)];
  {
    std::lock_guard lock(shard.mutex);
    shard.blocks.emplace(block->addr, block);
  }
  counters_->total.on_alloc(block->size, block->requested);
  counters_->tags[block->tag].on_alloc(block->size, block->requested);
}

HostPool::Block *HostPool::untrack_live(uintptr_t addr) {
  LiveShard &shard = live_[live_shard_of(addr)];
  Block *block = nullptr;
  {
    std::lock_guard lock(shard.mutex);
    const auto it = shard.blocks.find(addr);
    if (it == shard.blocks.end()) return nullptr;
    block = it->second;
    shard.blocks.erase(it);
  }
  counters_->total.on_free(block->size, block->requested);
  counters_->tags[block->tag].on_free(block->size, block->requested);
  return block;
}

// ---------------------------------------------------------------------------
// Defragmentation, trimming, statistics

// Returns whether an automatic defragmentation is due.
bool HostPool::return_block(Block *block) {
  std::lock_guard lock(mutex_);
  release_block_locked(block);
  return auto_defragment_due_locked();
}

// Cheap tests first: this runs on every free that reaches the free map.
// Without a whole free segment a run could give nothing back, so it waits.
bool HostPool::auto_defragment_due_locked() {
  if (whole_free_segments_ == 0) return false;
  const uint64_t in_use = counters_->total.in_use.load(std::memory_order_relaxed);
  const uint64_t free_bytes = reserved_ > in_use ? reserved_ - in_use : 0;
  if (free_bytes < config_.auto_defrag_min_free_bytes) return false;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_auto_defrag_ < config_.auto_defrag_interval) return false;
  if (fragmentation_of(free_map_->largest(), free_bytes) <= config_.defrag_threshold) return false;
  last_auto_defrag_ = now;
  return true;
}

uint64_t HostPool::release_free_segments(uint64_t keep_bytes, bool is_defragment) {
  drain_caches();
  std::vector<Segment> gone;
  {
    std::lock_guard lock(mutex_);
    if (is_defragment) ++defragments_;
    gone = detach_free_segments_locked(keep_bytes);
  }
  uint64_t bytes = 0;
  for (const Segment &segment : gone) {
    source_.release(reinterpret_cast<void *>(segment.base), segment.bytes, segment.handle);
    bytes += segment.bytes;
  }
  return bytes;
}

// Largest first: the fewest releases reach keep_bytes.
std::vector<HostPool::Segment> HostPool::detach_free_segments_locked(uint64_t keep_bytes) {
  std::vector<Segment> whole;
  for (const auto &[base, segment] : segments_)
    if (segment.first->free && segment.first->next_phys == nullptr) whole.push_back(segment);
  std::sort(whole.begin(), whole.end(), [](const Segment &a, const Segment &b) { return a.bytes > b.bytes; });
  std::vector<Segment> gone;
  for (const Segment &segment : whole) {
    if (reserved_ <= keep_bytes) break;
    remove_free_locked(segment.first);
    recycle_block_locked(segment.first);
    segments_.erase(segment.base);
    reserved_ -= segment.bytes;
    released_ += segment.bytes;
    gone.push_back(segment);
  }
  if (segments_.empty()) last_segment_bytes_ = 0;  // growth starts over
  return gone;
}

// Cached blocks are free memory to callers, so they count as free here.
void HostPool::fill_pool_stats(plx_mem_stats *out) const {
  const uint64_t largest_cached = largest_cached_block();
  std::lock_guard lock(mutex_);
  out->bytes_reserved = reserved_;
  out->segment_count = segments_.size();
  out->defragment_count = defragments_;
  out->bytes_released = released_;
  out->largest_free_block = std::max(free_map_->largest(), largest_cached);
  const uint64_t free_bytes = reserved_ > out->bytes_in_use ? reserved_ - out->bytes_in_use : 0;
  out->fragmentation = fragmentation_of(out->largest_free_block, free_bytes);
}

// ---------------------------------------------------------------------------
// Memory pressure

plx_pressure pressure_from_used_fraction(double used) {
  if (used < 0.30) return PLX_PRESSURE_LOW;
  return used <= 0.80 ? PLX_PRESSURE_MEDIUM : PLX_PRESSURE_HIGH;
}

double system_memory_used_fraction() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, rest;
  uint64_t kib = 0, total = 0, available = 0;
  bool have_available = false;
  while (meminfo >> key >> kib && std::getline(meminfo, rest)) {
    if (key == "MemTotal:") total = kib;
    if (key == "MemAvailable:") {
      available = kib;
      have_available = true;
    }
  }
  if (total > 0 && have_available) return 1.0 - static_cast<double>(std::min(available, total)) / total;
  struct sysinfo info {};
  if (sysinfo(&info) != 0 || info.totalram == 0) return 0.0;
  return 1.0 - static_cast<double>(info.freeram + info.bufferram) / static_cast<double>(info.totalram);
}

}  // namespace plexus::core

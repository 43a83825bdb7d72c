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

// A parked block for the request, taken and counted under the thread's own
// slot lock: one uncontended lock for the whole cache hit.
HostPool::Block *HostPool::pop_cached(const Claim &claim, size_t size, size_t alignment) {
  if (config_.cache_max_block_bytes == 0) return nullptr;
  CacheSlot &slot = caches_[claim.slot];
  std::lock_guard lock(slot.mutex);
  Block *block = nullptr;
  if (!claim.cacheable) {
    block = pop_large_locked(slot, size, alignment);
  } else if (std::vector<Block *> &blocks = slot.classes[bin_of(size)]; !blocks.empty()) {
    block = blocks.back();
    blocks.pop_back();
    slot.bytes -= block->size;
  }
  if (block != nullptr) claim_locked(slot, block, claim);
  return block;
}

void HostPool::claim_locked(CacheSlot &slot, Block *block, const Claim &claim) {
  block->cacheable = claim.cacheable;
  block->requested = claim.bytes;
  block->tag = claim.tag;
  block->slot = claim.slot;
  slot.total.on_alloc(block->size, block->requested);
  slot.tags[block->tag].on_alloc(block->size, block->requested);
}

// Counted against the slot that allocated the block, whoever frees it.
void HostPool::unclaim_locked(CacheSlot &slot, const Block *block) {
  slot.total.on_free(block->size, block->requested);
  slot.tags[block->tag].on_free(block->size, block->requested);
}

// The smallest parked block that fits with at most 1/8 to spare: a large
// block serves requests of about its own size only, so the cache cannot
// strand a big block under a small request.
HostPool::Block *HostPool::pop_large_locked(CacheSlot &slot, size_t size, size_t alignment) {
  size_t best = kLargeCacheDepth;
  for (size_t i = 0; i < slot.large_count; ++i) {
    const Block *b = slot.large[i];
    if (b->size < size || b->size - size > size / 8 || b->addr % alignment != 0) continue;
    if (best == kLargeCacheDepth || b->size < slot.large[best]->size) best = i;
  }
  if (best == kLargeCacheDepth) return nullptr;
  Block *block = slot.large[best];
  std::copy(slot.large.begin() + best + 1, slot.large.begin() + slot.large_count, slot.large.begin() + best);
  --slot.large_count;
  slot.large_bytes -= block->size;
  return block;
}

bool HostPool::large_cacheable(const Block *block) const {
  return config_.cache_max_block_bytes > 0 && block->size > config_.cache_max_block_bytes &&
         block->size <= kLargeCacheSlotBytes;
}

// Parks a freed block in this thread's slot; what the caches do not keep
// goes to `back` for the free map.
void HostPool::park(Block *block, Evicted *back) {
  const size_t here = thread_slot();
  if (block->slot != here) {  // another thread's block: its slot's counters
    CacheSlot &owner = caches_[block->slot];
    std::lock_guard lock(owner.mutex);
    unclaim_locked(owner, block);
  }
  CacheSlot &slot = caches_[here];
  std::lock_guard lock(slot.mutex);
  if (block->slot == here) unclaim_locked(slot, block);
  const bool large = !block->cacheable && large_cacheable(block);
  if (!block->cacheable && !large) return back->add(block);
  if (large) return park_large_locked(slot, block, back);
  std::vector<Block *> &blocks = slot.classes[bin_of(block->size)];
  if (blocks.size() >= kCacheDepth || slot.bytes + block->size > kCacheSlotBytes) return back->add(block);
  blocks.push_back(block);
  slot.bytes += block->size;
}

// Newest in, oldest out, within the depth and the byte bound.
void HostPool::park_large_locked(CacheSlot &slot, Block *block, Evicted *back) {
  size_t evict = 0;
  size_t bytes = slot.large_bytes + block->size;
  while (evict < slot.large_count && (slot.large_count - evict >= kLargeCacheDepth || bytes > kLargeCacheSlotBytes))
    bytes -= slot.large[evict++]->size;
  for (size_t i = 0; i < evict; ++i) back->add(slot.large[i]);
  std::copy(slot.large.begin() + evict, slot.large.begin() + slot.large_count, slot.large.begin());
  slot.large_count -= evict;
  slot.large[slot.large_count++] = block;
  slot.large_bytes = bytes;
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
    drained.insert(drained.end(), caches_[i].large.begin(), caches_[i].large.begin() + caches_[i].large_count);
    caches_[i].large_count = 0;
    caches_[i].large_bytes = 0;
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
    for (size_t j = 0; j < caches_[i].large_count; ++j)
      largest = std::max<uint64_t>(largest, caches_[i].large[j]->size);
  }
  return largest;
}

// Lock-free, so exact only once threads are quiet.
uint64_t HostPool::bytes_in_use() const {
  uint64_t bytes = 0;
  for (size_t i = 0; i < kCacheSlots; ++i) bytes += caches_[i].total.in_use.get();
  return bytes;
}

void HostPool::track_live(Block *block) {
  LiveShard &shard = live_[live_shard_of(block->addr)];
  std::lock_guard lock(shard.mutex);
  shard.blocks.emplace(block->addr, block);
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
  const uint64_t in_use = bytes_in_use();
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
    if (segment.first->free && segment.first->next_phys == nullptr && !segment.pinned) whole.push_back(segment);
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

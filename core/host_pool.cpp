// The pool's scheme, in one place:
// - Free space is kept TLSF-style (Masmano et al., ECRTS 2004): segregated
//   lists, 4 per power of two, with a bitmap of the non-empty ones. Lookup is
//   good-fit in O(1) and a freed block merges with its free neighbours at
//   once, so free space is always in maximal runs and a whole free segment is
//   a single block. Blocks split to the exact granted size (256-byte granule).
//   An ordered set gives true best fit but costs about 10x more per pair
//   (allocator-lessons §0: 409 ns against 38 ns), and a buddy system wastes
//   about 25 % to power-of-two rounding; TLSF's 4-way lists bound the search
//   the same way size classes bound waste.
// - Small requests (cache_max_block_bytes) round to 4 size classes per power
//   of two and park in front caches when freed. A thread keeps to one of 16
//   cache slots (round-robin at its first use), so up to 16 threads never
//   share one: a cache hit takes only that slot's uncontended lock and the
//   live-block shard lock, never the pool lock that a global-mutex design
//   made 70x slower at 8 threads. Slots belong to the pool, so nothing
//   depends on thread exit and nothing outlives the pool.
// - Live blocks are found by address in 64 sharded hash maps, which is how
//   free() tells a live block from a second free or a foreign pointer.
#include "core/host_pool.hpp"

#include <sys/mman.h>

#include <cerrno>

#include "core/host_pool_internal.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

HostPoolConfig normalized(HostPoolConfig config) {
  config.alignment = std::bit_ceil(std::max(config.alignment, kGranule));
  config.segment_granularity = round_up(std::max(config.segment_granularity, kGranule), kGranule);
  config.min_segment_bytes = std::max(config.min_segment_bytes, kGranule);
  config.growth_factor = std::max(config.growth_factor, 1.0);
  config.cache_max_block_bytes = std::min(config.cache_max_block_bytes, kMaxCachedBlock);
  return config;
}

}  // namespace

// ---------------------------------------------------------------------------
// Segment sources

SegmentSource::~SegmentSource() = default;

plx_status MallocSegmentSource::acquire(size_t bytes, void **base, uint64_t *handle) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return fail_errno(errno, fmt::format("mmap of a {}-byte pool segment", bytes));
  *base = p;
  *handle = next_handle_.fetch_add(1, std::memory_order_relaxed);
  return PLX_OK;
}

void MallocSegmentSource::release(void *base, size_t bytes, uint64_t) { munmap(base, bytes); }

// ---------------------------------------------------------------------------
// Public interface

HostPool::HostPool(SegmentSource &source, const HostPoolConfig &config)
    : source_(source),
      config_(normalized(config)),
      free_map_(std::make_unique<FreeMap>()),
      caches_(std::make_unique<CacheSlot[]>(kCacheSlots)),
      live_(std::make_unique<LiveShard[]>(kLiveShards)) {}

HostPool::~HostPool() {
  const uint64_t in_use = bytes_in_use();
  if (in_use != 0) log_warn("pool destroyed with {} bytes still in use", in_use);
  for (const auto &[base, segment] : segments_)
    source_.release(reinterpret_cast<void *>(base), segment.bytes, segment.handle);
}

plx_status HostPool::allocate(size_t bytes, size_t alignment, uint32_t tag, void **out) {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "pool allocate: out is NULL");
  *out = nullptr;
  if (const plx_status status = check_request(bytes, alignment, tag); status != PLX_OK) return status;
  alignment = std::max(alignment, config_.alignment);
  const bool cacheable = alignment == config_.alignment && bytes <= config_.cache_max_block_bytes;
  const size_t size = cacheable ? class_size(bytes) : round_up(bytes, kGranule);
  const Claim claim{bytes, tag, static_cast<uint32_t>(thread_slot()), cacheable};
  Block *block = pop_cached(claim, size, alignment);
  if (block == nullptr) {
    if (const plx_status status = allocate_block(size, alignment, &block); status != PLX_OK) return status;
    CacheSlot &slot = caches_[claim.slot];
    std::lock_guard lock(slot.mutex);
    claim_locked(slot, block, claim);
  }
  track_live(block);
  *out = reinterpret_cast<void *>(block->addr);
  return PLX_OK;
}

plx_status HostPool::free(void *ptr) {
  if (ptr == nullptr) return PLX_OK;
  Block *block = untrack_live(reinterpret_cast<uintptr_t>(ptr));
  if (block == nullptr)
    return fail(PLX_ERR_INVALID_ARGUMENT,
                "pool free: {} is not a live block of this pool (freed twice, interior or foreign pointer)", ptr);
  Evicted back;
  park(block, &back);
  bool defragment_due = false;
  for (size_t i = 0; i < back.count; ++i) defragment_due = return_block(back.blocks[i]) || defragment_due;
  if (defragment_due) {
    const uint64_t bytes = release_free_segments(0, true);
    log_debug("pool defragmented by itself: {} bytes given back", bytes);
  }
  return PLX_OK;
}

plx_status HostPool::stats(uint32_t tag, plx_mem_stats *out) const {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "pool stats: out is NULL");
  if (tag != PLX_MEM_TAG_ALL && tag >= PLX_MEM_TAG_COUNT)
    return fail(PLX_ERR_INVALID_ARGUMENT, "pool stats: tag {} is not below {}", tag, PLX_MEM_TAG_COUNT);
  *out = plx_mem_stats{};
  out->struct_size = sizeof(plx_mem_stats);
  out->kind = config_.kind;
  for (size_t i = 0; i < kCacheSlots; ++i)
    (tag == PLX_MEM_TAG_ALL ? caches_[i].total : caches_[i].tags[tag]).add_to(out);
  if (tag == PLX_MEM_TAG_ALL) fill_pool_stats(out);
  return PLX_OK;
}

plx_status HostPool::defragment(uint64_t *released) {
  const uint64_t bytes = release_free_segments(0, true);
  if (released != nullptr) *released = bytes;
  return PLX_OK;
}

plx_status HostPool::trim(uint64_t keep_bytes, uint64_t *released) {
  const uint64_t bytes = release_free_segments(keep_bytes, false);
  if (released != nullptr) *released = bytes;
  return PLX_OK;
}

// In-use bytes, not reserved ones: cached free memory is reused without the
// system, so it is no pressure.
plx_pressure HostPool::pressure() const {
  if (config_.max_bytes == 0) return pressure_from_used_fraction(system_memory_used_fraction());
  const double in_use = static_cast<double>(bytes_in_use());
  return pressure_from_used_fraction(in_use / static_cast<double>(config_.max_bytes));
}

bool HostPool::owns(const void *ptr) const {
  std::lock_guard lock(mutex_);
  return segment_containing_locked(ptr) != nullptr;
}

plx_status HostPool::segment_of(const void *ptr, void **base, size_t *offset, uint64_t *handle,
                                size_t *segment_bytes) const {
  std::lock_guard lock(mutex_);
  const Segment *segment = segment_containing_locked(ptr);
  if (segment == nullptr) return fail(PLX_ERR_NOT_FOUND, "pool: {} is in none of its segments", ptr);
  if (base != nullptr) *base = reinterpret_cast<void *>(segment->base);
  if (offset != nullptr) *offset = reinterpret_cast<uintptr_t>(ptr) - segment->base;
  if (handle != nullptr) *handle = segment->handle;
  if (segment_bytes != nullptr) *segment_bytes = segment->bytes;
  return PLX_OK;
}

plx_status HostPool::pin_segment(const void *ptr) {
  std::lock_guard lock(mutex_);
  const Segment *found = segment_containing_locked(ptr);
  if (found == nullptr) return fail(PLX_ERR_NOT_FOUND, "pool: {} is in none of its segments", ptr);
  segments_.at(found->base).pinned = true;
  return PLX_OK;
}

// ---------------------------------------------------------------------------
// The free map and growth (under mutex_)

plx_status HostPool::check_request(size_t bytes, size_t alignment, uint32_t tag) const {
  if (bytes == 0) return fail(PLX_ERR_INVALID_ARGUMENT, "pool allocate: bytes is 0");
  if (tag >= PLX_MEM_TAG_COUNT)
    return fail(PLX_ERR_INVALID_ARGUMENT, "pool allocate: tag {} is not below {}", tag, PLX_MEM_TAG_COUNT);
  if (alignment != 0 && !std::has_single_bit(alignment))
    return fail(PLX_ERR_INVALID_ARGUMENT, "pool allocate: alignment {} is not a power of two", alignment);
  if (bytes > kMaxRequest || alignment > kMaxRequest)
    return fail(PLX_ERR_OUT_OF_MEMORY, "pool allocate: {} bytes aligned to {} exceed any segment", bytes, alignment);
  return PLX_OK;
}

// Cached blocks go back (and coalesce) before the pool grows: growing is
// the slow path, draining 16 slots is not.
plx_status HostPool::allocate_block(size_t size, size_t alignment, Block **out) {
  if (take_free(size, alignment, out)) return PLX_OK;
  drain_caches();
  if (take_free(size, alignment, out)) return PLX_OK;
  return grow_and_take(size, alignment, out);
}

// The source is called without the lock; the bytes count against the budget
// meanwhile (pending_). Over the budget, whole free segments go back first:
// they count against it too.
plx_status HostPool::grow_and_take(size_t size, size_t alignment, Block **out) {
  const size_t need = size + alignment - kGranule;
  size_t bytes = reserve_growth(need);
  if (bytes == 0 && release_free_segments(0, false) > 0) bytes = reserve_growth(need);
  if (bytes == 0) return fail_over_budget(need);
  void *base = nullptr;
  uint64_t handle = 0;
  const plx_status status = source_.acquire(bytes, &base, &handle);
  std::lock_guard lock(mutex_);
  pending_ -= bytes;
  if (status != PLX_OK) return status;
  if (reinterpret_cast<uintptr_t>(base) % kGranule != 0) {
    source_.release(base, bytes, handle);
    return fail(PLX_ERR_INTERNAL, "pool: segment source returned {}, not 256-byte aligned", base);
  }
  add_segment_locked(base, bytes, handle);
  *out = take_free_locked(size, alignment);  // another thread may have won it
  return *out != nullptr ? PLX_OK : fail(PLX_ERR_OUT_OF_MEMORY, "pool: a new segment was taken by other threads");
}

size_t HostPool::reserve_growth(size_t need) {
  std::lock_guard lock(mutex_);
  const size_t bytes = next_segment_bytes_locked(need);
  pending_ += bytes;
  return bytes;
}

// max(request, last segment x growth, minimum), in granules, capped by the
// budget; 0 when even the request does not fit under it.
size_t HostPool::next_segment_bytes_locked(size_t need) const {
  const auto grown = static_cast<size_t>(static_cast<double>(last_segment_bytes_) * config_.growth_factor);
  const size_t bytes = round_up(std::max({need, grown, config_.min_segment_bytes}), config_.segment_granularity);
  if (config_.max_bytes == 0) return bytes;
  const size_t held = reserved_ + pending_;
  const size_t room = config_.max_bytes > held ? config_.max_bytes - held : 0;
  if (bytes <= room) return bytes;
  const size_t capped = room / config_.segment_granularity * config_.segment_granularity;
  return capped >= need ? capped : (need <= room ? need : 0);
}

plx_status HostPool::fail_over_budget(size_t need) const {
  std::lock_guard lock(mutex_);
  return fail(PLX_ERR_OUT_OF_MEMORY, "pool out of memory: {} bytes asked, {} reserved, budget {} bytes", need,
              reserved_ + pending_, config_.max_bytes);
}

bool HostPool::take_free(size_t size, size_t alignment, Block **out) {
  std::lock_guard lock(mutex_);
  *out = take_free_locked(size, alignment);
  return *out != nullptr;
}

HostPool::Block *HostPool::take_free_locked(size_t size, size_t alignment) {
  Block *block = free_map_->find(size, alignment);
  if (block == nullptr) return nullptr;
  remove_free_locked(block);
  const size_t padding = ((block->addr + alignment - 1) & ~(uintptr_t{alignment} - 1)) - block->addr;
  if (padding > 0) {
    Block *head = block;
    block = split_locked(head, padding);
    insert_free_locked(head);
  }
  if (block->size > size) insert_free_locked(split_locked(block, size));
  block->free = false;
  return block;
}

// Cuts `block` at `offset`: it keeps the front; the rest is returned.
HostPool::Block *HostPool::split_locked(Block *block, size_t offset) {
  Block *rest = new_block_locked();
  *rest = Block{};
  rest->addr = block->addr + offset;
  rest->size = block->size - offset;
  rest->prev_phys = block;
  rest->next_phys = block->next_phys;
  if (rest->next_phys != nullptr) rest->next_phys->prev_phys = rest;
  block->next_phys = rest;
  block->size = offset;
  return rest;
}

// The left descriptor survives a merge, so a segment's first block is stable.
HostPool::Block *HostPool::absorb_next_locked(Block *block) {
  Block *next = block->next_phys;
  block->size += next->size;
  block->next_phys = next->next_phys;
  if (block->next_phys != nullptr) block->next_phys->prev_phys = block;
  recycle_block_locked(next);
  return block;
}

void HostPool::release_block_locked(Block *block) {
  if (Block *prev = block->prev_phys; prev != nullptr && prev->free) {
    remove_free_locked(prev);
    block = absorb_next_locked(prev);
  }
  if (Block *next = block->next_phys; next != nullptr && next->free) {
    remove_free_locked(next);
    absorb_next_locked(block);
  }
  insert_free_locked(block);
}

void HostPool::insert_free_locked(Block *block) {
  block->free = true;
  free_map_->insert(block);
  if (block->prev_phys == nullptr && block->next_phys == nullptr) ++whole_free_segments_;
}

void HostPool::remove_free_locked(Block *block) {
  block->free = false;
  free_map_->remove(block);
  if (block->prev_phys == nullptr && block->next_phys == nullptr) --whole_free_segments_;
}

HostPool::Block *HostPool::new_block_locked() {
  if (spare_blocks_ == nullptr) {
    constexpr size_t kChunk = 256;
    block_chunks_.push_back(std::make_unique<Block[]>(kChunk));
    for (size_t i = 0; i < kChunk; ++i) recycle_block_locked(&block_chunks_.back()[i]);
  }
  Block *block = spare_blocks_;
  spare_blocks_ = block->next_free;
  return block;
}

void HostPool::recycle_block_locked(Block *block) {
  block->next_free = spare_blocks_;
  spare_blocks_ = block;
}

void HostPool::add_segment_locked(void *base, size_t bytes, uint64_t handle) {
  const auto addr = reinterpret_cast<uintptr_t>(base);
  Segment &segment = segments_[addr];
  Block *block = new_block_locked();
  *block = Block{};
  block->addr = addr;
  block->size = bytes;
  segment = Segment{addr, bytes, handle, block};
  reserved_ += bytes;
  last_segment_bytes_ = bytes;
  insert_free_locked(block);
}

const HostPool::Segment *HostPool::segment_containing_locked(const void *ptr) const {
  const auto addr = reinterpret_cast<uintptr_t>(ptr);
  auto it = segments_.upper_bound(addr);
  if (it == segments_.begin()) return nullptr;
  --it;
  return addr < it->first + it->second.bytes ? &it->second : nullptr;
}

}  // namespace plexus::core

// Internals of HostPool shared by its two source files (host_pool.cpp: the
// free map and blocks; host_pool_cache.cpp: front caches, the live-block
// registry, release and statistics). Not a public header.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/host_pool.hpp"

namespace plexus::core::pool_detail {


constexpr size_t kGranule = 256;
// Far beyond any machine; keeps the rounding below from overflowing.
constexpr size_t kMaxRequest = size_t{1} << 56;
constexpr size_t kMaxCachedBlock = size_t{1} << 20;
constexpr size_t kCacheSlots = 16;
constexpr size_t kCacheDepth = 32;              // blocks per class per slot
constexpr size_t kCacheSlotBytes = size_t{1} << 20;  // bounds what caches pin
// Large blocks parked per slot, oldest evicted first; with the byte bound
// this keeps what 16 slots can strand at 16 GiB in the worst case, all of it
// given back by a miss (before the pool grows), defragment and trim.
constexpr size_t kLargeCacheDepth = 4;
constexpr size_t kLargeCacheSlotBytes = size_t{1} << 30;
constexpr size_t kLiveShards = 64;
constexpr int kBinCount = 256;  // 4 per power of two, sizes up to 2^63

inline size_t round_up(size_t value, size_t step) { return (value + step - 1) / step * step; }
constexpr int floor_log2(size_t value) { return 63 - std::countl_zero(value); }

// The free-map list (and cache class) of a size of at least 256 bytes.
constexpr int bin_of(size_t size) {
  const int top = floor_log2(size);
  return top * 4 + static_cast<int>((size >> (top - 2)) & 3);
}

// 4 classes per power of two cap rounding waste at 20 %; below 1 KiB the
// 256-byte granule is the step.
inline size_t class_size(size_t bytes) {
  const int top = floor_log2(bytes);
  return round_up(bytes, top >= 10 ? size_t{1} << (top - 2) : kGranule);
}

inline double fragmentation_of(uint64_t largest_free, uint64_t free_bytes) {
  if (free_bytes == 0 || largest_free >= free_bytes) return 0.0;
  return 1.0 - static_cast<double>(largest_free) / static_cast<double>(free_bytes);
}

inline size_t thread_slot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed) % kCacheSlots;
  return slot;
}

inline size_t live_shard_of(uintptr_t addr) {
  return static_cast<size_t>(((addr >> 8) * 0x9E3779B97F4A7C15ull) >> 58);  // 64 shards
}

}  // namespace plexus::core::pool_detail

namespace plexus::core {

using namespace pool_detail;

// ---------------------------------------------------------------------------
// Internal structures

class HostPool::FreeMap {
 public:
  void insert(Block *block) {
    const int bin = bin_of(block->size);
    block->prev_free = nullptr;
    block->next_free = heads_[bin];
    if (block->next_free) block->next_free->prev_free = block;
    heads_[bin] = block;
    bits_[bin / 64] |= uint64_t{1} << (bin % 64);
  }
  void remove(Block *block) {
    const int bin = bin_of(block->size);
    if (block->prev_free) block->prev_free->next_free = block->next_free;
    else heads_[bin] = block->next_free;
    if (block->next_free) block->next_free->prev_free = block->prev_free;
    if (heads_[bin] == nullptr) bits_[bin / 64] &= ~(uint64_t{1} << (bin % 64));
  }
  // A few entries of the request's own list first (best fit among them),
  // then the first list whose every block fits (O(1)), then all of the own
  // list before the pool grows.
  Block *find(size_t size, size_t alignment) const {
    const size_t need = size + alignment - kGranule;  // worst-case padding
    const int own = bin_of(need);
    if (Block *best = best_in_bin(own, size, alignment, 8)) return best;
    const int all_fit = first_bin_from(bin_of(need + (size_t{1} << (floor_log2(need) - 2)) - 1));
    if (all_fit >= 0) return heads_[all_fit];
    return best_in_bin(own, size, alignment, SIZE_MAX);
  }
  uint64_t largest() const {
    for (int word = kBinCount / 64 - 1; word >= 0; --word) {
      if (bits_[word] == 0) continue;
      uint64_t best = 0;
      for (const Block *b = heads_[word * 64 + floor_log2(bits_[word])]; b; b = b->next_free)
        best = std::max<uint64_t>(best, b->size);
      return best;
    }
    return 0;
  }

 private:
  static bool fits(const Block &block, size_t size, size_t alignment) {
    const uintptr_t start = (block.addr + alignment - 1) & ~(uintptr_t{alignment} - 1);
    return start + size <= block.addr + block.size;
  }
  Block *best_in_bin(int bin, size_t size, size_t alignment, size_t limit) const {
    Block *best = nullptr;
    for (Block *b = heads_[bin]; b != nullptr && limit > 0; b = b->next_free, --limit)
      if (fits(*b, size, alignment) && (best == nullptr || b->size < best->size)) best = b;
    return best;
  }
  int first_bin_from(int bin) const {
    for (int word = bin / 64; word < kBinCount / 64; ++word) {
      uint64_t bits = bits_[word];
      if (word == bin / 64) bits &= ~uint64_t{0} << (bin % 64);
      if (bits != 0) return word * 64 + std::countr_zero(bits);
    }
    return -1;
  }
  std::array<Block *, kBinCount> heads_{};
  std::array<uint64_t, kBinCount / 64> bits_{};
};

// A counter that only its slot's lock holder writes (a load and a store,
// no locked read-modify-write) and anyone may read without the lock.
class SlotCounter {
 public:
  void add(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void raise_to(uint64_t n) {
    if (n > value_.load(std::memory_order_relaxed)) value_.store(n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// What one slot's threads allocated (a free is counted against the slot that
// allocated the block, so in_use never goes below 0 and its peak is real).
struct Tally {
  SlotCounter in_use, requested, peak, allocs, frees;

  void on_alloc(uint64_t size, uint64_t requested_bytes) {
    in_use.add(size);
    peak.raise_to(in_use.get());
    requested.add(requested_bytes);
    allocs.add(1);
  }
  void on_free(uint64_t size, uint64_t requested_bytes) {
    in_use.sub(size);
    requested.sub(requested_bytes);
    frees.add(1);
  }
  void add_to(plx_mem_stats *out) const {
    out->bytes_in_use += in_use.get();
    out->bytes_requested += requested.get();
    out->bytes_peak += peak.get();
    out->alloc_count += allocs.get();
    out->free_count += frees.get();
  }
};

// One thread slot: its free small blocks by class, LIFO (the block freed
// last is warmest in cache), a few large free blocks, and its counters. All
// under `mutex`, which only the slot's own threads take on the hot path.
struct alignas(64) HostPool::CacheSlot {
  std::mutex mutex;
  std::array<std::vector<Block *>, bin_of(kMaxCachedBlock) + 1> classes;
  size_t bytes = 0;
  std::array<Block *, kLargeCacheDepth> large{};  // oldest first
  size_t large_count = 0;
  size_t large_bytes = 0;
  Tally total;
  std::array<Tally, PLX_MEM_TAG_COUNT> tags;
};

// Blocks that free() must return to the free map: the freed one when no
// cache took it, or large ones it displaced.
struct HostPool::Evicted {
  std::array<Block *, kLargeCacheDepth + 1> blocks{};
  size_t count = 0;
  void add(Block *block) { blocks[count++] = block; }
};

struct alignas(64) HostPool::LiveShard {
  std::mutex mutex;
  std::unordered_map<uintptr_t, Block *> blocks;
};

}  // namespace plexus::core

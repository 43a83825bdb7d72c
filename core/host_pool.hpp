// A pool allocator over large segments, shared by the plugins for shared
// host memory, pinned host memory and, later, device memory. Segments come
// from a SegmentSource; the pool carves blocks out of them. Its bookkeeping
// lives outside the memory it manages (device memory cannot hold headers,
// and peers can write shared memory), and it never moves a live block:
// defragmenting means coalescing free space and giving back whole free
// segments, nothing more (DESIGN §5, allocator-lessons §5).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "plexus/types.h"

namespace plexus::core {

// Where a pool's segments come from. Acquiring is the slow path (mmap,
// cudaHostRegister, cuMemCreate): the pool calls it only to grow, never while
// holding its lock, so a source may take milliseconds.
struct SegmentSource {
  virtual ~SegmentSource();
  // One new segment of `bytes`. *base must be at least 256-byte aligned;
  // *handle is the source's own name for it (an fd, an offset in a shared
  // file, an IPC handle index), reported by HostPool::segment_of so a plugin
  // can tell peers which segment a block lives in. Fails through fail().
  virtual plx_status acquire(size_t bytes, void **base, uint64_t *handle) = 0;
  virtual void release(void *base, size_t bytes, uint64_t handle) = 0;
};

// Private anonymous mappings: page-aligned, committed on first touch and
// given back to the kernel at release. For tests and plain host memory.
class MallocSegmentSource final : public SegmentSource {
 public:
  plx_status acquire(size_t bytes, void **base, uint64_t *handle) override;
  void release(void *base, size_t bytes, uint64_t handle) override;

 private:
  std::atomic<uint64_t> next_handle_{1};
};

struct HostPoolConfig {
  size_t min_segment_bytes = size_t{2} << 20;
  // Budget on reserved bytes (segments held); 0 = unlimited.
  size_t max_bytes = 0;
  // Each new segment is at least this times the last one, so a growing
  // workload needs few segments (and peers few imports).
  double growth_factor = 1.5;
  // Of every block; raised to 256 (GPU coalescing and cache lines at once)
  // and to a power of two.
  size_t alignment = 256;
  // Segment sizes are multiples of this: the VMM granule and huge page size.
  size_t segment_granularity = size_t{2} << 20;
  // Automatic defragmentation inside free(): when fragmentation passes the
  // threshold while at least auto_defrag_min_free_bytes are free and a whole
  // free segment exists, at most once per auto_defrag_interval. The floor
  // and the interval keep it from thrashing (release, regrow, release).
  double defrag_threshold = 0.30;
  size_t auto_defrag_min_free_bytes = size_t{64} << 20;
  std::chrono::milliseconds auto_defrag_interval{1000};
  // Requests up to this size are rounded to size classes and served from
  // per-thread caches (at most 1 MiB; 0 turns the caches off, the large-block
  // caches too). Larger blocks, when freed, park in a small per-thread cache
  // of their own (a few blocks, up to 1 GiB per thread slot) and serve a later
  // request of their size (within 1/8) without the pool lock.
  size_t cache_max_block_bytes = size_t{64} << 10;
  // Copied into plx_mem_stats.kind.
  plx_mem_kind kind = PLX_MEM_HOST;
};

class HostPool {
 public:
  // `source` must outlive the pool.
  explicit HostPool(SegmentSource &source, const HostPoolConfig &config = {});
  ~HostPool();  // gives every segment back, live blocks or not
  HostPool(const HostPool &) = delete;
  HostPool &operator=(const HostPool &) = delete;

  // A block of at least `bytes`, aligned to `alignment` (a power of two; 0
  // means the pool's), counted under `tag` (below PLX_MEM_TAG_COUNT).
  // INVALID_ARGUMENT for bad arguments, OUT_OF_MEMORY over the budget.
  plx_status allocate(size_t bytes, size_t alignment, uint32_t tag, void **out);
  // INVALID_ARGUMENT, with the pool unchanged, for anything that is not the
  // start of a live block (a second free, an interior or foreign pointer).
  // NULL is a no-op, as for free(3).
  plx_status free(void *ptr);

  // Totals for PLX_MEM_TAG_ALL; for one tag only the per-tag fields (in use,
  // requested, peak, counts) are filled and the pool-wide ones are 0. Blocks
  // parked in the caches count as free (largest_free_block included). The
  // counters are kept per thread slot, so bytes_peak is the sum of each
  // slot's peak: exact with one thread, never below the true peak with more.
  plx_status stats(uint32_t tag, plx_mem_stats *out) const;
  // Coalesces cached blocks and gives back every whole free segment.
  plx_status defragment(uint64_t *released);
  // Gives back whole free segments, largest first, until reserved <= keep.
  plx_status trim(uint64_t keep_bytes, uint64_t *released);
  // Bytes in use against the budget, or the system's memory without one.
  plx_pressure pressure() const;

  bool owns(const void *ptr) const;
  // The segment holding `ptr` (any byte of it) and the offset in it, so a
  // plugin can name the block to peers; NOT_FOUND if the pool has none.
  plx_status segment_of(const void *ptr, void **base, size_t *offset, uint64_t *handle,
                        size_t *segment_bytes = nullptr) const;
  // Keeps the segment holding `ptr` for the pool's life: defragment, trim
  // and the budget never give it back (peers map it and cannot be told to
  // let go). NOT_FOUND if the pool has none.
  plx_status pin_segment(const void *ptr);
  const HostPoolConfig &config() const { return config_; }

 private:
  // One run of bytes inside a segment: live, free, or parked in a cache.
  struct Block {
    uintptr_t addr = 0;
    size_t size = 0;
    Block *prev_phys = nullptr;  // neighbours in address order
    Block *next_phys = nullptr;
    Block *prev_free = nullptr;  // free-map list; spare-descriptor list
    Block *next_free = nullptr;
    size_t requested = 0;
    uint32_t tag = 0;
    uint32_t slot = 0;       // the cache slot whose counters hold it
    bool free = false;       // in the free map
    bool cacheable = false;  // size-class block, may park in a cache
  };
  struct Segment {
    uintptr_t base = 0;
    size_t bytes = 0;
    uint64_t handle = 0;
    Block *first = nullptr;  // the block at base; never changes
    bool pinned = false;     // pin_segment: never released before the pool
  };
  class FreeMap;
  struct CacheSlot;
  struct LiveShard;
  struct Evicted;

  plx_status check_request(size_t bytes, size_t alignment, uint32_t tag) const;
  plx_status allocate_block(size_t size, size_t alignment, Block **out);
  plx_status grow_and_take(size_t size, size_t alignment, Block **out);
  size_t reserve_growth(size_t need);
  size_t next_segment_bytes_locked(size_t need) const;
  plx_status fail_over_budget(size_t need) const;
  bool take_free(size_t size, size_t alignment, Block **out);
  Block *take_free_locked(size_t size, size_t alignment);
  Block *split_locked(Block *block, size_t offset);
  Block *absorb_next_locked(Block *block);
  void release_block_locked(Block *block);
  void insert_free_locked(Block *block);
  void remove_free_locked(Block *block);
  Block *new_block_locked();
  void recycle_block_locked(Block *block);
  void add_segment_locked(void *base, size_t bytes, uint64_t handle);
  const Segment *segment_containing_locked(const void *ptr) const;

  // Who takes a block: the caller's request, tag and thread slot.
  struct Claim {
    size_t bytes;
    uint32_t tag;
    uint32_t slot;
    bool cacheable;
  };
  Block *pop_cached(const Claim &claim, size_t size, size_t alignment);
  void claim_locked(CacheSlot &slot, Block *block, const Claim &claim);
  Block *pop_large_locked(CacheSlot &slot, size_t size, size_t alignment);
  bool large_cacheable(const Block *block) const;
  void park(Block *block, Evicted *back);
  void park_large_locked(CacheSlot &slot, Block *block, Evicted *back);
  void drain_caches();
  uint64_t largest_cached_block() const;
  void unclaim_locked(CacheSlot &slot, const Block *block);
  uint64_t bytes_in_use() const;
  void track_live(Block *block);
  Block *untrack_live(uintptr_t addr);

  bool return_block(Block *block);
  bool auto_defragment_due_locked();
  uint64_t release_free_segments(uint64_t keep_bytes, bool is_defragment);
  std::vector<Segment> detach_free_segments_locked(uint64_t keep_bytes);
  void fill_pool_stats(plx_mem_stats *out) const;

  SegmentSource &source_;
  const HostPoolConfig config_;
  // Guards the free map, the segments and the descriptors. Held only for
  // O(1) bookkeeping: never across a source call or a cache lock.
  mutable std::mutex mutex_;
  std::unique_ptr<FreeMap> free_map_;
  std::map<uintptr_t, Segment> segments_;  // by base
  std::vector<std::unique_ptr<Block[]>> block_chunks_;
  Block *spare_blocks_ = nullptr;
  size_t reserved_ = 0;
  size_t pending_ = 0;  // being acquired, counted against the budget
  size_t last_segment_bytes_ = 0;
  size_t whole_free_segments_ = 0;
  uint64_t defragments_ = 0;
  uint64_t released_ = 0;
  std::chrono::steady_clock::time_point last_auto_defrag_{};
  std::unique_ptr<CacheSlot[]> caches_;
  std::unique_ptr<LiveShard[]> live_;
};

// LOW under 30 % used, MEDIUM to 80 %, HIGH above (DESIGN §5).
plx_pressure pressure_from_used_fraction(double used);
// 1 - MemAvailable / MemTotal (sysinfo when /proc/meminfo is unreadable).
double system_memory_used_fraction();

}  // namespace plexus::core

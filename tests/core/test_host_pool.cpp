#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "core/host_pool.hpp"
#include "core/services.hpp"

using namespace plexus::core;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// Counts the slow path, so tests can see exactly when segments come and go.
struct CountingSource final : SegmentSource {
  plx_status acquire(size_t bytes, void **base, uint64_t *handle) override {
    std::lock_guard lock(mutex);
    acquired.push_back(bytes);
    const plx_status status = inner.acquire(bytes, base, handle);
    last_handle = *handle;
    return status;
  }
  void release(void *base, size_t bytes, uint64_t handle) override {
    std::lock_guard lock(mutex);
    released.push_back(bytes);
    inner.release(base, bytes, handle);
  }
  std::mutex mutex;
  MallocSegmentSource inner;
  std::vector<size_t> acquired, released;
  uint64_t last_handle = 0;
};

// Whole-MiB segments one at a time, no caches, no automatic runs: every
// segment and block is where the test puts it.
HostPoolConfig exact_config() {
  HostPoolConfig config;
  config.min_segment_bytes = MiB;
  config.segment_granularity = MiB;
  config.growth_factor = 1.0;
  config.cache_max_block_bytes = 0;
  config.defrag_threshold = 1.0;
  return config;
}

plx_mem_stats stats_of(const HostPool &pool, uint32_t tag = PLX_MEM_TAG_ALL) {
  plx_mem_stats stats{};
  REQUIRE(pool.stats(tag, &stats) == PLX_OK);
  return stats;
}

void *allocate(HostPool &pool, size_t bytes, uint32_t tag = 0, size_t alignment = 0) {
  void *ptr = nullptr;
  const plx_status status = pool.allocate(bytes, alignment, tag, &ptr);
  REQUIRE_MESSAGE(status == PLX_OK, default_last_error());
  REQUIRE(ptr != nullptr);
  return ptr;
}

// A value per block written over all of it, so an overlap shows on free.
void fill(void *ptr, size_t bytes, uint64_t value) { std::fill_n(static_cast<uint64_t *>(ptr), bytes / 8, value); }
bool holds(const void *ptr, size_t bytes, uint64_t value) {
  const auto *words = static_cast<const uint64_t *>(ptr);
  return std::all_of(words, words + bytes / 8, [&](uint64_t w) { return w == value; });
}

// Different for every live block of every thread.
uint64_t pattern(int thread, const void *ptr) {
  return reinterpret_cast<uintptr_t>(ptr) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(thread);
}

// Sizes from 8 bytes to 256 KiB, evenly spread over the powers of two.
size_t random_size(std::mt19937_64 &rng) {
  const int top = std::uniform_int_distribution<int>(4, 18)(rng);
  return std::uniform_int_distribution<size_t>(size_t{1} << (top - 1), size_t{1} << top)(rng) & ~size_t{7};
}

}  // namespace

TEST_CASE("Core.HostPool.every_block_is_aligned") {
  MallocSegmentSource source;
  HostPool pool(source);
  std::mt19937_64 rng(1);
  std::vector<void *> blocks;
  for (size_t alignment = 0; alignment <= 64 * KiB; alignment = alignment ? alignment * 2 : 1) {
    for (int i = 0; i < 20; ++i) {
      void *ptr = allocate(pool, random_size(rng), 0, alignment);
      CHECK(reinterpret_cast<uintptr_t>(ptr) % std::max<size_t>(alignment, 256) == 0);
      blocks.push_back(ptr);
    }
  }
  for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
  HostPoolConfig page_aligned;
  page_aligned.alignment = 4096;
  HostPool pages(source, page_aligned);
  void *ptr = allocate(pages, 100);
  CHECK(reinterpret_cast<uintptr_t>(ptr) % 4096 == 0);
  CHECK(pages.free(ptr) == PLX_OK);
}

TEST_CASE("Core.HostPool.random_alloc_free_never_overlaps") {
  MallocSegmentSource source;
  HostPool pool(source);
  std::mt19937_64 rng(7);
  std::map<uintptr_t, size_t> live;  // address -> bytes asked
  for (int i = 0; i < 4000; ++i) {
    if (!live.empty() && rng() % 2 == 0) {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      REQUIRE(pool.free(reinterpret_cast<void *>(it->first)) == PLX_OK);
      live.erase(it);
      continue;
    }
    const size_t bytes = random_size(rng);
    const auto addr = reinterpret_cast<uintptr_t>(allocate(pool, bytes));
    const auto next = live.lower_bound(addr);
    if (next != live.end()) REQUIRE(addr + bytes <= next->first);
    if (next != live.begin()) REQUIRE(std::prev(next)->first + std::prev(next)->second <= addr);
    live.emplace(addr, bytes);
  }
  for (const auto &[addr, bytes] : live) REQUIRE(pool.free(reinterpret_cast<void *>(addr)) == PLX_OK);
  CHECK(stats_of(pool).bytes_in_use == 0);
}

TEST_CASE("Core.HostPool.stats_are_exact_after_a_known_sequence") {
  MallocSegmentSource source;
  HostPool pool(source);  // default config: caches on, 2 MiB segments
  void *small = allocate(pool, 1000, 1);        // class 1 KiB
  void *middle = allocate(pool, 5000, 1);       // class 5 KiB (4 per power of two)
  void *large = allocate(pool, 300 * KiB, 2);   // beyond the caches: 256-byte granule
  plx_mem_stats all = stats_of(pool);
  CHECK(all.bytes_in_use == 1024 + 5120 + 300 * KiB);
  CHECK(all.bytes_requested == 1000 + 5000 + 300 * KiB);
  CHECK(all.bytes_reserved == 2 * MiB);
  CHECK(all.segment_count == 1);
  CHECK(all.alloc_count == 3);
  CHECK(stats_of(pool, 1).bytes_in_use == 1024 + 5120);
  CHECK(stats_of(pool, 2).bytes_requested == 300 * KiB);
  CHECK(stats_of(pool, 2).bytes_reserved == 0);  // pool-wide fields stay with the total
  CHECK(pool.free(large) == PLX_OK);
  CHECK(pool.free(small) == PLX_OK);
  CHECK(pool.free(middle) == PLX_OK);
  all = stats_of(pool);
  CHECK(all.bytes_in_use == 0);
  CHECK(all.bytes_requested == 0);
  CHECK(all.bytes_peak == 1024 + 5120 + 300 * KiB);
  CHECK(all.free_count == 3);
  CHECK(all.fragmentation == doctest::Approx(1.0 - double(all.largest_free_block) / double(2 * MiB)));
  const plx_mem_stats tag1 = stats_of(pool, 1);
  CHECK(tag1.bytes_peak == 1024 + 5120);
  CHECK(tag1.alloc_count == 2);
  CHECK(tag1.free_count == 2);
  CHECK(stats_of(pool, 3).alloc_count == 0);
}

TEST_CASE("Core.HostPool.bad_arguments_are_rejected") {
  MallocSegmentSource source;
  HostPool pool(source);
  void *ptr = nullptr;
  CHECK(pool.allocate(0, 0, 0, &ptr) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pool.allocate(64, 300, 0, &ptr) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error().find("alignment 300") != std::string::npos);
  CHECK(pool.allocate(64, 0, PLX_MEM_TAG_COUNT, &ptr) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pool.allocate(64, 0, 0, nullptr) == PLX_ERR_INVALID_ARGUMENT);
  plx_mem_stats stats{};
  CHECK(pool.stats(PLX_MEM_TAG_COUNT, &stats) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pool.free(nullptr) == PLX_OK);
}

TEST_CASE("Core.HostPool.invalid_free_is_rejected_and_pool_still_works") {
  MallocSegmentSource source;
  HostPool pool(source);
  void *small = allocate(pool, 512);
  void *large = allocate(pool, 512 * KiB);
  CHECK(pool.free(small) == PLX_OK);
  CHECK(pool.free(small) == PLX_ERR_INVALID_ARGUMENT);  // second free of a cached block
  CHECK(default_last_error().find("not a live block") != std::string::npos);
  CHECK(pool.free(static_cast<char *>(large) + 256) == PLX_ERR_INVALID_ARGUMENT);  // interior
  int on_stack = 0;
  CHECK(pool.free(&on_stack) == PLX_ERR_INVALID_ARGUMENT);  // foreign
  CHECK(pool.free(large) == PLX_OK);
  CHECK(pool.free(large) == PLX_ERR_INVALID_ARGUMENT);  // second free of a coalesced block
  const plx_mem_stats stats = stats_of(pool);
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.free_count == 2);
  void *again = allocate(pool, 512 * KiB);
  fill(again, 512 * KiB, 42);
  CHECK(holds(again, 512 * KiB, 42));
  CHECK(pool.free(again) == PLX_OK);
}

TEST_CASE("Core.HostPool.small_blocks_come_back_from_the_thread_cache") {
  CountingSource source;
  HostPool pool(source);
  void *first = allocate(pool, 3000);
  CHECK(pool.free(first) == PLX_OK);
  CHECK(allocate(pool, 3000) == first);  // same class, same thread: the cached block
  CHECK(pool.free(first) == PLX_OK);
  CHECK(source.acquired.size() == 1);
  uint64_t released = 0;
  CHECK(pool.defragment(&released) == PLX_OK);  // drains the caches first
  CHECK(released == 2 * MiB);
}

TEST_CASE("Core.HostPool.segments_grow_by_the_growth_factor") {
  CountingSource source;
  HostPoolConfig config = exact_config();
  config.growth_factor = 1.5;
  config.segment_granularity = 256 * KiB;
  HostPool pool(source, config);
  std::vector<void *> blocks;
  for (int i = 0; i < 3; ++i) blocks.push_back(allocate(pool, 900 * KiB));  // one per segment
  blocks.push_back(allocate(pool, 5 * MiB));                               // above 1.5x the last
  CHECK(source.acquired == std::vector<size_t>{MiB, 1536 * KiB, 2304 * KiB, 5 * MiB});
  for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
}

TEST_CASE("Core.HostPool.defragment_releases_free_segments") {
  CountingSource source;
  HostPool pool(source, exact_config());
  std::vector<void *> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(allocate(pool, MiB));  // one segment each
  fill(blocks[1], MiB, 1);
  fill(blocks[3], MiB, 3);
  CHECK(pool.free(blocks[0]) == PLX_OK);
  CHECK(pool.free(blocks[2]) == PLX_OK);
  uint64_t released = 0;
  CHECK(pool.defragment(&released) == PLX_OK);
  CHECK(released == 2 * MiB);
  CHECK(source.released.size() == 2);
  const plx_mem_stats stats = stats_of(pool);
  CHECK(stats.segment_count == 2);
  CHECK(stats.bytes_reserved == 2 * MiB);
  CHECK(stats.defragment_count == 1);
  CHECK(stats.bytes_released == 2 * MiB);
  CHECK(holds(blocks[1], MiB, 1));  // live blocks stay where they were
  CHECK(holds(blocks[3], MiB, 3));
  CHECK(pool.owns(blocks[1]));
  CHECK_FALSE(pool.owns(blocks[0]));
  CHECK(pool.free(blocks[1]) == PLX_OK);
  CHECK(pool.free(blocks[3]) == PLX_OK);
}

TEST_CASE("Core.HostPool.defragment_runs_by_itself_past_the_threshold") {
  CountingSource source;
  HostPoolConfig config = exact_config();
  config.defrag_threshold = 0.30;
  config.auto_defrag_min_free_bytes = 0;
  config.auto_defrag_interval = std::chrono::milliseconds(0);
  HostPool pool(source, config);
  void *a = allocate(pool, 512 * KiB);
  void *b = allocate(pool, 512 * KiB);  // segment 1 full
  void *c = allocate(pool, MiB);        // segment 2
  CHECK(pool.free(a) == PLX_OK);        // a hole, no whole free segment: nothing to do
  CHECK(stats_of(pool).defragment_count == 0);
  CHECK(pool.free(c) == PLX_OK);        // 1.5 MiB free, largest 1 MiB: 33 % > 30 %
  const plx_mem_stats stats = stats_of(pool);
  CHECK(stats.defragment_count == 1);
  CHECK(stats.segment_count == 1);
  CHECK(source.released == std::vector<size_t>{MiB});
  CHECK(pool.free(b) == PLX_OK);
}

TEST_CASE("Core.HostPool.trim_releases_down_to_keep_bytes") {
  CountingSource source;
  HostPool pool(source, exact_config());
  std::vector<void *> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(allocate(pool, MiB));
  for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
  uint64_t released = 0;
  CHECK(pool.trim(2 * MiB, &released) == PLX_OK);
  CHECK(released == 2 * MiB);
  CHECK(stats_of(pool).bytes_reserved == 2 * MiB);
  CHECK(pool.trim(0, &released) == PLX_OK);
  CHECK(released == 2 * MiB);
  CHECK(stats_of(pool).segment_count == 0);
  CHECK(stats_of(pool).defragment_count == 0);  // trimming is not defragmenting
  CHECK(stats_of(pool).bytes_released == 4 * MiB);
}

TEST_CASE("Core.HostPool.budget_exceeded_is_out_of_memory_with_message") {
  CountingSource source;
  HostPoolConfig config = exact_config();
  config.max_bytes = 4 * MiB;
  HostPool pool(source, config);
  void *first = allocate(pool, 3 * MiB);
  void *ptr = nullptr;
  CHECK(pool.allocate(2 * MiB, 0, 0, &ptr) == PLX_ERR_OUT_OF_MEMORY);
  CHECK(ptr == nullptr);
  const std::string &message = default_last_error();
  CHECK(message.find("2097152 bytes asked") != std::string::npos);
  CHECK(message.find("3145728 reserved") != std::string::npos);
  CHECK(message.find("budget 4194304") != std::string::npos);
  CHECK(pool.free(first) == PLX_OK);
  void *second = allocate(pool, 4 * MiB);  // the free 3 MiB segment goes back to make room
  CHECK(source.released == std::vector<size_t>{3 * MiB});
  CHECK(stats_of(pool).bytes_reserved == 4 * MiB);
  CHECK(pool.free(second) == PLX_OK);
}

TEST_CASE("Core.HostPool.fragmentation_of_a_constructed_layout") {
  MallocSegmentSource source;
  HostPool pool(source, exact_config());
  void *blocks[4];
  for (void *&ptr : blocks) ptr = allocate(pool, 256 * KiB);  // fill one 1 MiB segment
  CHECK(stats_of(pool).fragmentation == 0.0);                   // nothing free
  CHECK(pool.free(blocks[0]) == PLX_OK);
  CHECK(pool.free(blocks[2]) == PLX_OK);
  plx_mem_stats stats = stats_of(pool);
  CHECK(stats.largest_free_block == 256 * KiB);
  CHECK(stats.fragmentation == doctest::Approx(0.5));  // two separate 256 KiB holes
  CHECK(pool.free(blocks[1]) == PLX_OK);                // joins both: one 768 KiB run
  stats = stats_of(pool);
  CHECK(stats.largest_free_block == 768 * KiB);
  CHECK(stats.fragmentation == 0.0);
  CHECK(pool.free(blocks[3]) == PLX_OK);
}

TEST_CASE("Core.HostPool.segment_of_maps_pointers_to_segment_offsets") {
  CountingSource source;
  HostPool pool(source, exact_config());
  void *first = allocate(pool, 4096);
  char *ptr = static_cast<char *>(allocate(pool, 4096));
  void *base = nullptr;
  size_t offset = 0;
  uint64_t handle = 0;
  CHECK(pool.segment_of(ptr + 10, &base, &offset, &handle) == PLX_OK);
  CHECK(static_cast<char *>(base) + offset == ptr + 10);
  CHECK(handle == source.last_handle);
  int elsewhere = 0;
  CHECK_FALSE(pool.owns(&elsewhere));
  CHECK(pool.segment_of(&elsewhere, &base, &offset, &handle) == PLX_ERR_NOT_FOUND);
  CHECK(pool.free(first) == PLX_OK);
  CHECK(pool.free(ptr) == PLX_OK);
}

TEST_CASE("Core.HostPool.pressure_follows_the_budget") {
  CHECK(pressure_from_used_fraction(0.0) == PLX_PRESSURE_LOW);
  CHECK(pressure_from_used_fraction(0.30) == PLX_PRESSURE_MEDIUM);
  CHECK(pressure_from_used_fraction(0.80) == PLX_PRESSURE_MEDIUM);
  CHECK(pressure_from_used_fraction(0.81) == PLX_PRESSURE_HIGH);
  const double used = system_memory_used_fraction();
  CHECK((used >= 0.0 && used <= 1.0));
  MallocSegmentSource source;
  HostPoolConfig config = exact_config();
  config.max_bytes = 8 * MiB;
  HostPool pool(source, config);
  CHECK(pool.pressure() == PLX_PRESSURE_LOW);
  void *half = allocate(pool, 4 * MiB);
  CHECK(pool.pressure() == PLX_PRESSURE_MEDIUM);
  void *most = allocate(pool, 3 * MiB);
  CHECK(pool.pressure() == PLX_PRESSURE_HIGH);
  CHECK(pool.free(half) == PLX_OK);
  CHECK(pool.free(most) == PLX_OK);
}

// Eight threads allocate random sizes, fill each block with its own pattern
// and check it before freeing: an overlap between any two live blocks, or a
// block handed out twice, breaks a pattern.
static plx_mem_stats hammer_from_eight_threads(const HostPoolConfig &config) {
  MallocSegmentSource source;
  HostPool pool(source, config);
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&pool, &failures, t] {
      std::mt19937_64 rng(100 + t);
      std::vector<std::pair<void *, size_t>> live;
      for (int i = 0; i < 3000; ++i) {
        if (live.size() > 32 || (!live.empty() && rng() % 2 == 0)) {
          const size_t pick = rng() % live.size();
          const auto [ptr, bytes] = live[pick];
          failures[t] += !holds(ptr, bytes, pattern(t, ptr));
          failures[t] += pool.free(ptr) != PLX_OK;
          live[pick] = live.back();
          live.pop_back();
          continue;
        }
        const size_t bytes = random_size(rng);
        void *ptr = nullptr;
        if (pool.allocate(bytes, 0, static_cast<uint32_t>(t), &ptr) != PLX_OK) {
          ++failures[t];
          continue;
        }
        failures[t] += reinterpret_cast<uintptr_t>(ptr) % 256 != 0;
        fill(ptr, bytes, pattern(t, ptr));
        live.emplace_back(ptr, bytes);
      }
      for (const auto &[ptr, bytes] : live) failures[t] += pool.free(ptr) != PLX_OK;
    });
  }
  for (std::thread &thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) CHECK(failures[t] == 0);
  const plx_mem_stats stats = stats_of(pool);
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.alloc_count == stats.free_count);
  CHECK(stats.alloc_count > 8 * 1000);
  return stats;
}

TEST_CASE("Core.HostPool.eight_threads_never_overlap") { hammer_from_eight_threads(HostPoolConfig{}); }

// Small segments given back at every chance: growth and release race with
// the other threads' frees and cache hits.
TEST_CASE("Core.HostPool.eight_threads_with_constant_defragmentation") {
  HostPoolConfig config;
  config.min_segment_bytes = 256 * KiB;
  config.segment_granularity = 256 * KiB;
  config.growth_factor = 1.0;
  config.defrag_threshold = 0.0;
  config.auto_defrag_min_free_bytes = 0;
  config.auto_defrag_interval = std::chrono::milliseconds(0);
  CHECK(hammer_from_eight_threads(config).defragment_count > 0);
}

// Blocks beyond the size classes park in a per-thread cache of their own
// and serve requests of about their size (within 1/8) without the pool lock.
TEST_CASE("Core.HostPool.large_blocks_come_back_from_the_thread_cache") {
  CountingSource source;
  HostPool pool(source);  // default: classes up to 64 KiB, 2 MiB segments
  void *large = allocate(pool, 3 * MiB);
  CHECK(pool.free(large) == PLX_OK);
  CHECK(stats_of(pool).bytes_in_use == 0);
  CHECK(stats_of(pool).largest_free_block >= 3 * MiB);  // parked blocks count as free
  CHECK(allocate(pool, 3 * MiB) == large);
  CHECK(pool.free(large) == PLX_OK);
  CHECK(allocate(pool, 3 * MiB - 200 * KiB) == large);  // within 1/8: the same block
  CHECK(stats_of(pool).bytes_in_use == 3 * MiB);        // counted at its real size
  CHECK(pool.free(large) == PLX_OK);
  void *half = allocate(pool, 1536 * KiB);  // too small for the parked block:
  CHECK(stats_of(pool).bytes_in_use == 1536 * KiB);  // drained to the free map and split
  CHECK(pool.free(half) == PLX_OK);
  uint64_t released = 0;
  CHECK(pool.defragment(&released) == PLX_OK);  // drains the large caches too
  CHECK(stats_of(pool).bytes_reserved == 0);
  CHECK(released == std::accumulate(source.acquired.begin(), source.acquired.end(), uint64_t{0}));
}

// Four large blocks per thread slot, the oldest evicted to the free map.
TEST_CASE("Core.HostPool.large_cache_keeps_the_newest_four") {
  CountingSource source;
  HostPoolConfig config;
  config.min_segment_bytes = 16 * MiB;
  HostPool pool(source, config);
  std::vector<void *> blocks;
  for (int i = 0; i < 6; ++i) blocks.push_back(allocate(pool, 2 * MiB));
  for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
  std::vector<void *> again;
  for (int i = 0; i < 4; ++i) again.push_back(allocate(pool, 2 * MiB));
  std::sort(again.begin(), again.end());
  std::vector<void *> newest(blocks.begin() + 2, blocks.end());
  std::sort(newest.begin(), newest.end());
  CHECK(again == newest);
  CHECK(source.acquired.size() == 1);
  for (void *ptr : again) CHECK(pool.free(ptr) == PLX_OK);
}

// A block freed by another thread is counted against the thread (slot) that
// allocated it, so per-slot counters never go below zero.
TEST_CASE("Core.HostPool.cross_thread_frees_keep_the_counters_exact") {
  MallocSegmentSource source;
  HostPool pool(source);
  std::vector<void *> blocks;
  std::thread producer([&] {
    for (int i = 0; i < 20; ++i) blocks.push_back(allocate(pool, i % 2 ? 4096 : 3 * MiB, 5));
  });
  producer.join();
  for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
  const plx_mem_stats tag = stats_of(pool, 5);
  CHECK(tag.bytes_in_use == 0);
  CHECK(tag.alloc_count == 20);
  CHECK(tag.free_count == 20);
  CHECK(tag.bytes_peak == 10 * 4096 + 10 * 3 * MiB);
  CHECK(stats_of(pool).bytes_requested == 0);
}

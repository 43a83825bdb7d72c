// DevicePool on a real GPU (suite 'gpu'; gpu_main skips without one). Every
// test runs for both apis; vmm says so and passes where the device cannot
// make POSIX-fd-shareable memory. The cross-process test re-executes this
// program as the importer (a forked child of a process that initialised
// CUDA cannot use CUDA), selecting the child's test case by name.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda_status.hpp"
#include "core/device_pool.hpp"
#include "core/fd_passing.hpp"
#include "core/services.hpp"
#include "core/status.hpp"

extern char **environ;

using namespace plexus::core;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;
constexpr const char *kChildFdVar = "PLEXUS_TEST_DEVICE_POOL_IMPORT_FD";
constexpr const char *kChildTest = "core.device_pool.import_child_role";

const char *api_name(DeviceMemoryApi api) { return api == DeviceMemoryApi::vmm ? "vmm" : "cuda_malloc"; }

// The pool, or nullptr where vmm is unsupported (reported, not failed).
std::unique_ptr<DevicePool> make_pool(DeviceMemoryApi api, DevicePoolConfig config = {}) {
  config.api = api;
  std::unique_ptr<DevicePool> pool;
  const plx_status status = DevicePool::create(config, &pool);
  if (status == PLX_ERR_UNSUPPORTED && api == DeviceMemoryApi::vmm) {
    MESSAGE("vmm skipped: " << default_last_error());
    return nullptr;
  }
  REQUIRE_MESSAGE(status == PLX_OK, default_last_error());
  CHECK(pool->api() == api);
  return pool;
}

// Runs `body` once per api that the device supports.
void for_each_api(const std::function<void(DevicePool &)> &body, DevicePoolConfig config = {}) {
  for (const DeviceMemoryApi api : {DeviceMemoryApi::cuda_malloc, DeviceMemoryApi::vmm}) {
    CAPTURE(api_name(api));
    if (std::unique_ptr<DevicePool> pool = make_pool(api, config)) body(*pool);
  }
}

// No automatic defragmentation, so segments stay until a test releases them.
DevicePoolConfig manual_config() {
  DevicePoolConfig config;
  config.defrag_threshold = 1.0;
  return config;
}

void *allocate(DevicePool &pool, size_t bytes, uint32_t tag = 0, size_t alignment = 0) {
  void *ptr = nullptr;
  const plx_status status = pool.allocate(bytes, alignment, tag, &ptr);
  REQUIRE_MESSAGE(status == PLX_OK, default_last_error());
  REQUIRE(ptr != nullptr);
  return ptr;
}

plx_mem_stats stats_of(const DevicePool &pool, uint32_t tag = PLX_MEM_TAG_ALL) {
  plx_mem_stats stats{};
  REQUIRE(pool.stats(tag, &stats) == PLX_OK);
  return stats;
}

std::vector<uint32_t> pattern(size_t bytes, uint32_t seed) {
  std::vector<uint32_t> words(bytes / 4);
  for (size_t i = 0; i < words.size(); ++i) words[i] = static_cast<uint32_t>(i * 2654435761u) ^ seed;
  return words;
}

// Device bytes at `ptr` equal pattern(bytes, seed).
bool device_holds(const void *ptr, size_t bytes, uint32_t seed) {
  std::vector<uint32_t> got(bytes / 4);
  REQUIRE(cudaMemcpy(got.data(), ptr, got.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  return got == pattern(bytes, seed);
}

void write_pattern(void *ptr, size_t bytes, uint32_t seed) {
  const std::vector<uint32_t> words = pattern(bytes, seed);
  REQUIRE(cudaMemcpy(ptr, words.data(), words.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // pageable: the DMA may still be in flight
}

}  // namespace

TEST_CASE("core.device_pool.allocate_write_read_free") {
  for_each_api([](DevicePool &pool) {
    std::vector<std::pair<void *, size_t>> blocks;
    uint32_t seed = 1;
    for (const size_t bytes : {size_t{512}, 64 * KiB, 3 * MiB, 40 * MiB}) {
      void *ptr = allocate(pool, bytes);
      plx_mem_kind kind = PLX_MEM_HOST;
      int device = -2;
      CHECK(pointer_kind(ptr, &kind, &device) == PLX_OK);
      CHECK(kind == PLX_MEM_DEVICE);
      CHECK(device == pool.device());
      CHECK(pool.owns(ptr));
      write_pattern(ptr, bytes, seed++);
      blocks.emplace_back(ptr, bytes);
    }
    seed = 1;
    for (const auto &[ptr, bytes] : blocks) CHECK(device_holds(ptr, bytes, seed++));
    for (const auto &[ptr, bytes] : blocks) CHECK(pool.free(ptr) == PLX_OK);
    const plx_mem_stats stats = stats_of(pool);
    CHECK(stats.kind == PLX_MEM_DEVICE);
    CHECK(stats.bytes_in_use == 0);
    CHECK(stats.alloc_count == 4);
    CHECK(stats.bytes_reserved % pool.segment_granularity() == 0);
    CHECK(stats.bytes_reserved >= 32 * MiB);
  }, manual_config());
}

TEST_CASE("core.device_pool.blocks_are_aligned") {
  for_each_api([](DevicePool &pool) {
    std::vector<void *> blocks;
    for (const size_t alignment : {size_t{0}, size_t{256}, size_t{4096}, size_t{2} * MiB}) {
      for (const size_t bytes : {size_t{1}, size_t{1000}, 70 * KiB, 3 * MiB + 5}) {
        void *ptr = allocate(pool, bytes, 0, alignment);
        CHECK(reinterpret_cast<uintptr_t>(ptr) % std::max<size_t>(alignment, 256) == 0);
        blocks.push_back(ptr);
      }
    }
    for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
  });
}

TEST_CASE("core.device_pool.per_tag_statistics") {
  for_each_api([](DevicePool &pool) {
    void *a = allocate(pool, 1000, 1);
    void *b = allocate(pool, 1000, 1);
    void *c = allocate(pool, 5 * MiB, 2);
    const plx_mem_stats one = stats_of(pool, 1);
    CHECK(one.kind == PLX_MEM_DEVICE);
    CHECK(one.alloc_count == 2);
    CHECK(one.bytes_requested == 2000);
    CHECK(one.bytes_in_use == 2 * 1024);  // 1000 rounds to the 1 KiB class
    CHECK(one.bytes_reserved == 0);       // pool-wide fields only for TAG_ALL
    const plx_mem_stats two = stats_of(pool, 2);
    CHECK(two.bytes_requested == 5 * MiB);
    CHECK(two.bytes_in_use == 5 * MiB);
    CHECK(stats_of(pool).bytes_in_use == 2 * 1024 + 5 * MiB);
    CHECK(pool.free(a) == PLX_OK);
    CHECK(pool.free(b) == PLX_OK);
    CHECK(pool.free(c) == PLX_OK);
    CHECK(stats_of(pool, 1).free_count == 2);
    CHECK(stats_of(pool, 1).bytes_in_use == 0);
    CHECK(stats_of(pool, 2).bytes_peak == 5 * MiB);
  });
}

TEST_CASE("core.device_pool.defragment_returns_whole_free_segments") {
  for_each_api([](DevicePool &pool) {
    void *first = allocate(pool, 40 * MiB);   // a 40 MiB segment
    void *second = allocate(pool, 40 * MiB);  // a 60 MiB one (x1.5)
    void *keep = allocate(pool, 1000);        // in the second's spare room
    write_pattern(keep, 1024, 7);
    CHECK(stats_of(pool).segment_count == 2);
    const uint64_t reserved = stats_of(pool).bytes_reserved;
    CHECK(pool.free(first) == PLX_OK);
    CHECK(pool.free(second) == PLX_OK);
    uint64_t released = 0;
    CHECK(pool.defragment(&released) == PLX_OK);
    CHECK(released == 40 * MiB);  // the segment still holding `keep` stays
    const plx_mem_stats after = stats_of(pool);
    CHECK(after.bytes_reserved == reserved - released);
    CHECK(after.bytes_released == released);
    CHECK(after.defragment_count >= 1);
    CHECK(device_holds(keep, 1024, 7));
    CHECK(pool.free(keep) == PLX_OK);
    CHECK(pool.defragment(&released) == PLX_OK);
    CHECK(stats_of(pool).bytes_reserved == 0);
  }, manual_config());
}

TEST_CASE("core.device_pool.trim_to_keep_bytes") {
  for_each_api([](DevicePool &pool) {
    std::vector<void *> blocks;
    for (int i = 0; i < 3; ++i) blocks.push_back(allocate(pool, 100 * MiB));  // one segment each
    for (void *ptr : blocks) CHECK(pool.free(ptr) == PLX_OK);
    const uint64_t reserved = stats_of(pool).bytes_reserved;
    uint64_t released = 0;
    CHECK(pool.trim(reserved - 1, &released) == PLX_OK);  // the largest segment goes first
    CHECK(released > 0);
    const uint64_t left = stats_of(pool).bytes_reserved;
    CHECK(left == reserved - released);
    CHECK(pool.trim(left, &released) == PLX_OK);
    CHECK(released == 0);
    CHECK(pool.trim(0, &released) == PLX_OK);
    CHECK(released == left);
    CHECK(stats_of(pool).segment_count == 0);
  }, manual_config());
}

TEST_CASE("core.device_pool.pressure") {
  for_each_api([](DevicePool &pool) {
    const plx_pressure pressure = pool.pressure();
    CHECK((pressure == PLX_PRESSURE_LOW || pressure == PLX_PRESSURE_MEDIUM || pressure == PLX_PRESSURE_HIGH));
  });
  DevicePoolConfig budget;
  budget.max_bytes = 64 * MiB;
  for_each_api([](DevicePool &pool) {
    CHECK(pool.pressure() == PLX_PRESSURE_LOW);
    void *most = allocate(pool, 60 * MiB);
    CHECK(pool.pressure() == PLX_PRESSURE_HIGH);
    void *over = nullptr;
    CHECK(pool.allocate(16 * MiB, 0, 0, &over) == PLX_ERR_OUT_OF_MEMORY);
    CHECK(pool.free(most) == PLX_OK);
    CHECK(pool.pressure() == PLX_PRESSURE_LOW);
  }, budget);
}

TEST_CASE("core.device_pool.bad_input_leaves_the_pool_unchanged") {
  for_each_api([](DevicePool &pool) {
    void *live = allocate(pool, 4096);
    void *freed = allocate(pool, 4096);
    CHECK(pool.free(freed) == PLX_OK);
    const plx_mem_stats before = stats_of(pool);
    void *ptr = reinterpret_cast<void *>(1);
    CHECK(pool.allocate(0, 0, 0, &ptr) == PLX_ERR_INVALID_ARGUMENT);
    CHECK(ptr == nullptr);
    CHECK(pool.allocate(64, 3, 0, &ptr) == PLX_ERR_INVALID_ARGUMENT);
    CHECK(pool.allocate(64, 0, PLX_MEM_TAG_COUNT, &ptr) == PLX_ERR_INVALID_ARGUMENT);
    CHECK(pool.free(freed) == PLX_ERR_INVALID_ARGUMENT);  // a second free
    CHECK(pool.free(static_cast<char *>(live) + 256) == PLX_ERR_INVALID_ARGUMENT);
    int foreign = 0;
    CHECK(pool.free(&foreign) == PLX_ERR_INVALID_ARGUMENT);
    DeviceSegmentExport exported;
    CHECK(pool.export_segment(&foreign, &exported) == PLX_ERR_NOT_FOUND);
    const plx_mem_stats after = stats_of(pool);
    CHECK(after.bytes_in_use == before.bytes_in_use);
    CHECK(after.alloc_count == before.alloc_count);
    CHECK(after.free_count == before.free_count);
    CHECK(after.bytes_reserved == before.bytes_reserved);
    CHECK(pool.free(live) == PLX_OK);
  });
  DevicePoolConfig bad;
  bad.device = 1 << 20;
  std::unique_ptr<DevicePool> pool;
  CHECK(DevicePool::create(bad, &pool) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(pool == nullptr);
}

// ---------------------------------------------------------------------------
// Export in this process, import in another

namespace {

// What the parent tells the importer; for vmm the fd travels beside it.
struct ImportOrder {
  DeviceSegmentExport exported;
  uint64_t block_bytes = 0;
  uint32_t seed = 0;
};

// This program again, running only kChildTest, with `fd` inherited and
// named by kChildFdVar as "<api>:<fd>".
pid_t spawn_importer(DeviceMemoryApi api, int fd) {
  REQUIRE(fcntl(fd, F_SETFD, 0) == 0);  // inherited across exec
  std::vector<std::string> env_text;
  for (char **e = environ; *e != nullptr; ++e) env_text.emplace_back(*e);
  env_text.push_back(fmt::format("{}={}:{}", kChildFdVar, api_name(api), fd));
  std::vector<char *> env;
  for (std::string &text : env_text) env.push_back(text.data());
  env.push_back(nullptr);
  std::string filter = std::string("--test-case=") + kChildTest;
  char program[] = "/proc/self/exe";
  char *argv[] = {program, filter.data(), nullptr};
  pid_t child = -1;
  REQUIRE(posix_spawn(&child, program, nullptr, nullptr, argv, env.data()) == 0);
  return child;
}

int exit_code(pid_t child) {
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Legacy handles are plain bytes: a pipe carries them. A vmm fd needs
// SCM_RIGHTS over a Unix socket.
int send_order(DevicePool &pool, void *block, size_t bytes, uint32_t seed) {
  ImportOrder order;
  REQUIRE(pool.export_segment(block, &order.exported) == PLX_OK);
  CHECK(order.exported.offset > 0);
  CHECK(order.exported.offset + bytes <= order.exported.segment_bytes);
  order.block_bytes = bytes;
  order.seed = seed;
  int ours = -1, theirs = -1;
  if (pool.api() == DeviceMemoryApi::vmm) {
    REQUIRE(fd_socket_pair(&ours, &theirs) == PLX_OK);
    REQUIRE(send_fd(ours, order.exported.fd, &order, sizeof order) == PLX_OK);
    close(order.exported.fd);  // the child holds its own copy now
  } else {
    int ends[2] = {-1, -1};
    REQUIRE(pipe2(ends, O_CLOEXEC) == 0);
    ours = ends[1];
    theirs = ends[0];
    REQUIRE(write(ours, &order, sizeof order) == static_cast<ssize_t>(sizeof order));
  }
  const pid_t child = spawn_importer(pool.api(), theirs);
  close(theirs);
  close(ours);
  return exit_code(child);
}

}  // namespace

TEST_CASE("core.device_pool.export_import_in_another_process") {
  for_each_api([](DevicePool &pool) {
    void *before = allocate(pool, 3 * MiB);  // so the block sits at an offset
    void *block = allocate(pool, 5 * MiB);
    REQUIRE(cudaMemset(block, 0, 5 * MiB) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(send_order(pool, block, 5 * MiB, 0xC0FFEE) == 0);
    CHECK(device_holds(block, 5 * MiB, 0xC0FFEE));
    CHECK(pool.free(block) == PLX_OK);
    CHECK(pool.free(before) == PLX_OK);
  });
}

// The importer: passes trivially unless spawned by the test above.
TEST_CASE("core.device_pool.import_child_role") {
  const char *role = std::getenv(kChildFdVar);
  if (role == nullptr) return;
  const std::string text = role;
  const bool vmm = text.rfind("vmm:", 0) == 0;
  const int channel = std::atoi(text.substr(text.find(':') + 1).c_str());
  ImportOrder order;
  int fd = -1;
  if (vmm) {
    REQUIRE_MESSAGE(receive_fd(channel, &fd, &order, sizeof order, 30000) == PLX_OK, default_last_error());
  } else {
    REQUIRE(read(channel, &order, sizeof order) == static_cast<ssize_t>(sizeof order));
  }
  close(channel);
  order.exported.fd = fd;
  REQUIRE(order.exported.api == (vmm ? DeviceMemoryApi::vmm : DeviceMemoryApi::cuda_malloc));
  std::unique_ptr<ImportedSegment> segment;
  REQUIRE_MESSAGE(ImportedSegment::open(order.exported, -1, &segment) == PLX_OK, default_last_error());
  CHECK(segment->bytes() == order.exported.segment_bytes);
  char *block = static_cast<char *>(segment->base()) + order.exported.offset;
  write_pattern(block, order.block_bytes, order.seed);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(device_holds(block, order.block_bytes, order.seed));
}

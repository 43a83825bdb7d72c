// shm-native's PLX_MEM_SHARED_HOST pool through the loader: allocation,
// statistics per tag, bad frees, defragment and trim, pressure, collectives
// on pool buffers across forked ranks and threads, and that nothing stays
// behind (no /dev/shm name, no descriptor).
#include <dirent.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/shm-native/fork_ranks.hpp"

namespace {

using plexus::test::count_fds;
using plexus::test::run_ranks;

// Names in /dev/shm made by any of `pids` ("/plexus-<uid>-<pid>-...").
int shm_names_of(const std::vector<pid_t> &pids) {
  int n = 0;
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  while (dirent *e = readdir(d))
    for (pid_t pid : pids)
      n += std::strstr(e->d_name, ("-" + std::to_string(pid) + "-").c_str()) != nullptr;
  closedir(d);
  return n;
}

void *alloc(plx_comm_h comm, uint64_t bytes, uint32_t tag = 0, uint64_t alignment = 0) {
  plx_mem_alloc_params p{sizeof(p), PLX_MEM_SHARED_HOST, bytes, alignment, tag, 0};
  void *ptr = nullptr;
  return plx_mem_alloc(comm, &p, &ptr) == PLX_OK ? ptr : nullptr;
}

plx_mem_stats stats(plx_comm_h comm, uint32_t tag = PLX_MEM_TAG_ALL) {
  plx_mem_stats s{};
  s.struct_size = sizeof(s);
  REQUIRE(plx_mem_stats_get(comm, PLX_MEM_SHARED_HOST, tag, &s) == PLX_OK);
  return s;
}

// A one-rank communicator in this process, for the pool calls alone.
struct SoloComm {
  plx_backend_h backend = nullptr;
  plx_comm_h comm = nullptr;
  int fds_before = 0;
  SoloComm() {
    REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
    plx_unique_id id;
    REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
    fds_before = count_fds();
    REQUIRE(plx_comm_init(backend, &id, 1, 0, nullptr, &comm) == PLX_OK);
  }
  // Destroys the communicator and checks no descriptor stayed open.
  void finish() {
    CHECK(plx_comm_destroy(comm) == PLX_OK);
    comm = nullptr;
    CHECK(count_fds() == fds_before);
  }
  ~SoloComm() {
    if (comm) plx_comm_destroy(comm);
    plx_backend_close(backend);
  }
};

float value(int rank, size_t i) { return static_cast<float>((rank + 1) * 1000 + static_cast<int>(i % 997)); }

// Whether recv holds the all-reduce of every rank's value(r, i): sums of
// small integers, exact in float32 whatever the order.
bool sums_right(const float *recv, int nranks, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float want = 0;
    for (int r = 0; r < nranks; ++r) want += value(r, i);
    if (recv[i] != want) return false;
  }
  return true;
}

int all_reduce_case(plx_comm_h comm, int rank, int nranks, size_t n, bool in_place) {
  auto *send = static_cast<float *>(alloc(comm, n * sizeof(float)));
  auto *recv = in_place ? send : static_cast<float *>(alloc(comm, n * sizeof(float)));
  if (!send || !recv) return 1;
  for (size_t i = 0; i < n; ++i) send[i] = value(rank, i);
  if (plx_all_reduce(comm, send, recv, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 2;
  if (!sums_right(recv, nranks, n)) return 3;
  if (!in_place && plx_mem_free(comm, recv) != PLX_OK) return 4;
  return plx_mem_free(comm, send) == PLX_OK ? 0 : 5;
}

int broadcast_case(plx_comm_h comm, int rank, size_t n, int root, bool in_place) {
  auto *send = static_cast<int32_t *>(alloc(comm, n * 4));
  auto *recv = in_place ? send : static_cast<int32_t *>(alloc(comm, n * 4));
  if (!send || !recv) return 1;
  for (size_t i = 0; i < n; ++i) send[i] = rank == root ? static_cast<int32_t>(i * 7) : -1;
  if (plx_broadcast(comm, send, recv, n, PLX_INT32, root, nullptr, nullptr) != PLX_OK) return 2;
  for (size_t i = 0; i < n; ++i)
    if (recv[i] != static_cast<int32_t>(i * 7)) return 3;
  if (!in_place) plx_mem_free(comm, recv);
  plx_mem_free(comm, send);
  return 0;
}

int all_gather_case(plx_comm_h comm, int rank, int nranks, size_t n) {
  auto *send = static_cast<int64_t *>(alloc(comm, n * 8));
  auto *recv = static_cast<int64_t *>(alloc(comm, n * 8 * nranks));
  if (!send || !recv) return 1;
  for (size_t i = 0; i < n; ++i) send[i] = rank * 1000000 + static_cast<int64_t>(i);
  if (plx_all_gather(comm, send, recv, n, PLX_INT64, nullptr, nullptr) != PLX_OK) return 2;
  for (int r = 0; r < nranks; ++r)
    for (size_t i = 0; i < n; ++i)
      if (recv[r * n + i] != r * 1000000 + static_cast<int64_t>(i)) return 3;
  plx_mem_free(comm, recv);
  plx_mem_free(comm, send);
  return 0;
}

// Rank r's i-th element in the gathers: never 0 and never the poison.
int64_t item(int rank, size_t i) { return (rank + 1) * 10000000 + static_cast<int64_t>(i); }

// A pool block, or (for ranks with `plain`) an ordinary buffer that the
// peers cannot read in place: the caller frees pool blocks only.
template <typename T>
T *buffer(plx_comm_h comm, size_t n, bool plain, std::vector<T> *keep) {
  if (!plain) return static_cast<T *>(alloc(comm, n * sizeof(T)));
  keep->assign(n, T{});
  return keep->data();
}

// All-gather of n int64 (in place: send is this rank's place in recv),
// outputs poisoned, every element compared.
int all_gather_mixed_case(plx_comm_h comm, int rank, int nranks, size_t n, bool plain, bool in_place) {
  std::vector<int64_t> keep_send, keep_recv;
  int64_t *recv = buffer(comm, n * nranks, plain, &keep_recv);
  int64_t *send = in_place ? recv + rank * n : buffer(comm, n, plain, &keep_send);
  if (!send || !recv) return 1;
  std::fill(recv, recv + n * nranks, -7);
  for (size_t i = 0; i < n; ++i) send[i] = item(rank, i);
  if (plx_all_gather(comm, send, recv, n, PLX_INT64, nullptr, nullptr) != PLX_OK) return 2;
  for (int r = 0; r < nranks; ++r)
    for (size_t i = 0; i < n; ++i)
      if (recv[r * n + i] != item(r, i)) return 3;
  if (!plain && !in_place) plx_mem_free(comm, send);
  if (!plain) plx_mem_free(comm, recv);
  return 0;
}

// Gather to rank 1 with counts n, 0, n/3 + 1, n, ... (a zero, unequal).
int gather_mixed_case(plx_comm_h comm, int rank, int nranks, size_t n, bool plain) {
  std::vector<uint64_t> counts(nranks), displ(nranks);
  for (int r = 0; r < nranks; ++r) counts[r] = r == 1 ? 0 : r == 2 ? n / 3 + 1 : n;
  for (int r = 1; r < nranks; ++r) displ[r] = displ[r - 1] + counts[r - 1];
  const size_t total = displ.back() + counts.back();
  std::vector<int64_t> keep_send, keep_recv;
  int64_t *send = buffer(comm, counts[rank] + 1, plain, &keep_send);
  int64_t *recv = rank == 1 ? buffer(comm, total, plain, &keep_recv) : nullptr;
  if (!send || (rank == 1 && !recv)) return 1;
  if (recv) std::fill(recv, recv + total, -7);
  for (size_t i = 0; i < counts[rank]; ++i) send[i] = item(rank, i);
  if (plx_gather(comm, counts[rank] ? send : nullptr, recv, 0, counts.data(), PLX_INT64, 1, nullptr, nullptr) != PLX_OK)
    return 2;
  for (int r = 0; recv && r < nranks; ++r)
    for (size_t i = 0; i < counts[r]; ++i)
      if (recv[displ[r] + i] != item(r, i)) return 3;
  if (!plain) plx_mem_free(comm, send);
  if (!plain && recv) plx_mem_free(comm, recv);
  return 0;
}

// Reduce-scatter of n floats a rank (small integers: exact in any order).
int reduce_scatter_mixed_case(plx_comm_h comm, int rank, int nranks, size_t n, bool plain) {
  std::vector<float> keep_send, keep_recv;
  float *send = buffer(comm, n * nranks, plain, &keep_send), *recv = buffer(comm, n, plain, &keep_recv);
  if (!send || !recv) return 1;
  std::fill(recv, recv + n, -7.0f);
  for (size_t i = 0; i < n * nranks; ++i) send[i] = value(rank, i);
  if (plx_reduce_scatter(comm, send, recv, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 2;
  for (size_t i = 0; i < n; ++i) {
    float want = 0;
    for (int r = 0; r < nranks; ++r) want += value(r, rank * n + i);
    if (recv[i] != want) return 3;
  }
  if (!plain) plx_mem_free(comm, recv), plx_mem_free(comm, send);
  return 0;
}

// All-reduce of n floats where `plain` ranks use ordinary buffers and the
// others pool blocks (small integers: exact in any order), outputs poisoned.
int all_reduce_mixed_case(plx_comm_h comm, int rank, int nranks, size_t n, bool plain) {
  std::vector<float> keep_send, keep_recv;
  float *send = buffer(comm, n, plain, &keep_send), *recv = buffer(comm, n, plain, &keep_recv);
  if (!send || !recv) return 1;
  std::fill(recv, recv + n, -7.0f);
  for (size_t i = 0; i < n; ++i) send[i] = value(rank, i);
  if (plx_all_reduce(comm, send, recv, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 2;
  if (!sums_right(recv, nranks, n)) return 3;
  if (!plain) plx_mem_free(comm, recv), plx_mem_free(comm, send);
  return 0;
}

}  // namespace

TEST_CASE("ShmPool.Alloc.free_and_stats_per_tag") {
  SoloComm solo;
  void *a = alloc(solo.comm, 1000, 3);
  void *b = alloc(solo.comm, 5000, 5, 4096);
  void *c = alloc(solo.comm, 3 << 20, 5);
  REQUIRE((a && b && c));
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0);
  CHECK(reinterpret_cast<uintptr_t>(b) % 4096 == 0);
  CHECK(reinterpret_cast<uintptr_t>(c) % 256 == 0);
  std::memset(c, 0x5a, 3 << 20);
  CHECK(stats(solo.comm, 3).bytes_in_use >= 1000);
  CHECK(stats(solo.comm, 3).alloc_count == 1);
  CHECK(stats(solo.comm, 5).bytes_requested == 5000 + (3 << 20));
  const plx_mem_stats all = stats(solo.comm);
  CHECK(all.kind == PLX_MEM_SHARED_HOST);
  CHECK(all.bytes_in_use >= 6000 + (3 << 20));
  CHECK(all.bytes_reserved >= all.bytes_in_use);
  for (void *p : {a, b, c}) CHECK(plx_mem_free(solo.comm, p) == PLX_OK);
  CHECK(stats(solo.comm).bytes_in_use == 0);
  CHECK(stats(solo.comm, 3).bytes_in_use == 0);
  CHECK(stats(solo.comm, 5).bytes_in_use == 0);
  CHECK(stats(solo.comm, 5).free_count == 2);
  solo.finish();
}

TEST_CASE("ShmPool.Free.foreign_double_and_interior_are_invalid") {
  SoloComm solo;
  void *a = alloc(solo.comm, 4096);
  REQUIRE(a);
  std::vector<char> foreign(4096);
  CHECK(plx_mem_free(solo.comm, foreign.data()) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(plx_mem_free(solo.comm, static_cast<char *>(a) + 256) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(plx_mem_free(solo.comm, a) == PLX_OK);
  CHECK(plx_mem_free(solo.comm, a) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(plx_mem_free(solo.comm, nullptr) == PLX_OK);
  plx_mem_alloc_params p{sizeof(p), PLX_MEM_PINNED_HOST, 64, 0, 0, 0};
  void *ptr = nullptr;
  CHECK(plx_mem_alloc(solo.comm, &p, &ptr) == PLX_ERR_UNSUPPORTED);
  solo.finish();
}

TEST_CASE("ShmPool.Defragment.and_trim_release_whole_segments") {
  SoloComm solo;
  std::vector<void *> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(alloc(solo.comm, 6 << 20));
  for (void *p : blocks) REQUIRE(p);
  const uint64_t reserved = stats(solo.comm).bytes_reserved;
  CHECK(reserved >= (24u << 20));
  for (void *p : blocks) plx_mem_free(solo.comm, p);
  uint64_t released = 0;
  CHECK(plx_mem_defragment(solo.comm, PLX_MEM_SHARED_HOST, &released) == PLX_OK);
  CHECK(released > 0);
  CHECK(stats(solo.comm).bytes_reserved == reserved - released);
  CHECK(stats(solo.comm).defragment_count >= 1);
  blocks.clear();
  for (int i = 0; i < 3; ++i) blocks.push_back(alloc(solo.comm, 8 << 20));
  for (void *p : blocks) plx_mem_free(solo.comm, p);
  CHECK(plx_mem_trim(solo.comm, PLX_MEM_SHARED_HOST, 0, &released) == PLX_OK);
  CHECK(released >= (24u << 20));
  CHECK(stats(solo.comm).bytes_reserved == 0);
  solo.finish();
}

TEST_CASE("ShmPool.Pressure.level_is_valid_and_live_block_goes_with_destroy") {
  SoloComm solo;
  plx_pressure level = -1;
  CHECK(plx_mem_pressure(solo.comm, PLX_MEM_SHARED_HOST, &level) == PLX_OK);
  CHECK((level == PLX_PRESSURE_LOW || level == PLX_PRESSURE_MEDIUM || level == PLX_PRESSURE_HIGH));
  CHECK(alloc(solo.comm, 1 << 20) != nullptr);  // never freed: destroy releases it
  solo.finish();
}

// Gathers, reduce-scatter and all-reduce read pool blocks in place: every
// rank's buffers pool blocks, larger than the 1 MiB slots and small;
// all-gather in place; and mixed, where rank 0's buffers are ordinary (its
// contribution goes through the slots while the others' are read in place;
// reduce-scatter and a large all-reduce then copy through the slots for all).
TEST_CASE("ShmPool.Collectives.gathers_reduce_scatter_and_all_reduce_read_pool_blocks_in_place") {
  for (int nranks : {2, 3, 4}) {
    CAPTURE(nranks);
    std::vector<pid_t> pids;
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      for (bool mixed : {false, true}) {
        const bool plain = mixed && r == 0;
        for (size_t n : {size_t{3}, size_t{1000}, size_t{300001}}) {
          if (int e = all_gather_mixed_case(c, r, nranks, n, plain, false)) return 10 + e;
          if (int e = all_gather_mixed_case(c, r, nranks, n, plain, true)) return 20 + e;
          if (int e = gather_mixed_case(c, r, nranks, n, plain)) return 30 + e;
          if (int e = reduce_scatter_mixed_case(c, r, nranks, n, plain)) return 40 + e;
          if (int e = all_reduce_mixed_case(c, r, nranks, n, plain)) return 60 + e;
        }
      }
      return stats(c).bytes_in_use == 0 ? 0 : 50;
    }, 10000, &pids) == 0);
    CHECK(shm_names_of(pids) == 0);
  }
}

TEST_CASE("ShmPool.Collectives.on_pool_buffers_across_processes") {
  for (int nranks : {2, 3}) {
    CAPTURE(nranks);
    std::vector<pid_t> pids;
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      for (size_t n : {size_t{1}, size_t{1000}, size_t{300001}})
        for (bool in_place : {false, true})
          if (int e = all_reduce_case(c, r, nranks, n, in_place)) return 10 + e;
      for (bool in_place : {false, true})
        if (int e = broadcast_case(c, r, 700001, 1, in_place)) return 20 + e;
      if (int e = broadcast_case(c, r, 100, 0, false)) return 30 + e;
      if (int e = all_gather_case(c, r, nranks, 200003)) return 40 + e;
      return stats(c).bytes_in_use == 0 ? 0 : 50;
    }, 10000, &pids) == 0);
    CHECK(shm_names_of(pids) == 0);
  }
}

// Rank 0 frees and trims its block between collectives, so the peer's cached
// mapping of that segment goes stale and a new segment (often under the same
// descriptor number) takes its place.
TEST_CASE("ShmPool.Collectives.survive_released_and_recycled_segments") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    for (int round = 0; round < 4; ++round) {
      if (int e = all_reduce_case(c, r, 2, 5000, false)) return 10 * round + e;
      if (int e = broadcast_case(c, r, 300000, 0, false)) return 50 + e;
      if (plx_mem_trim(c, PLX_MEM_SHARED_HOST, 0, nullptr) != PLX_OK) return 60;
    }
    return 0;
  }) == 0);
}

TEST_CASE("ShmPool.Collectives.threads_as_ranks") {
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  plx_unique_id id;
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  int results[2] = {-1, -1};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      plx_comm_h comm = nullptr;
      if (plx_comm_init(backend, &id, 2, r, nullptr, &comm) != PLX_OK) return;
      results[r] = all_reduce_case(comm, r, 2, 4096, false) + broadcast_case(comm, r, 4096, 1, false);
      plx_comm_destroy(comm);
    });
  for (auto &t : threads) t.join();
  CHECK(results[0] == 0);
  CHECK(results[1] == 0);
  plx_backend_close(backend);
}

TEST_CASE("ShmPool.Killed.rank_with_live_blocks_leaves_no_shm_name") {
  std::vector<pid_t> pids;
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    void *p = alloc(c, 4 << 20);
    if (!p) return 1;
    if (r == 1) raise(SIGKILL);
    float x = 1;
    const plx_status s = plx_all_reduce(c, &x, &x, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
    return s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT ? 0 : 2;
  }, 10000, &pids) == 1);  // the killed rank itself counts as failed
  pids.push_back(getpid());  // the rendezvous is named after the id's maker
  CHECK(shm_names_of(pids) == 0);
}

// The fallback when peers cannot open /proc/<pid>/fd (forced here: as root
// in a container every probe succeeds): pool buffers go through the slots.
TEST_CASE("ShmPool.Collectives.copy_path_when_reading_in_place_is_off") {
  setenv("PLEXUS_SHM_NATIVE_READ_IN_PLACE", "0", 1);
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    if (int e = all_reduce_case(c, r, 2, 300001, false)) return 10 + e;
    return broadcast_case(c, r, 300001, 1, false);
  }) == 0);
  unsetenv("PLEXUS_SHM_NATIVE_READ_IN_PLACE");
}

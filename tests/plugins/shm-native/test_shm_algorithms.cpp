// shm-native's algorithm choices, each against a reference on random data:
// the inline one-shot (inputs of at most 56 bytes ride in the cache line that
// announces them) mixed back to back with slot steps, for every rank count
// the CI machine runs; reduce to a root; ranks that contribute nothing; the
// two-shot that reads pool buffers in place; steps of many sizes rotating
// through the slot regions, in place and not.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/shm-native/fork_ranks.hpp"

namespace {

using plexus::test::run_ranks;

using plexus::test::expected_sum;
using plexus::test::random_floats;

// One float32 sum of n elements with inputs from `seed`, checked bit for bit;
// to_root: a reduce to the last rank, whose result alone is checked.
int float_sum_case(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t seed, bool to_root) {
  const std::vector<float> send = random_floats(n, seed + rank);
  std::vector<float> recv(n, -777.0f);
  const plx_status s = to_root ? plx_reduce(comm, send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM, nranks - 1, nullptr, nullptr)
                               : plx_all_reduce(comm, send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  if (s != PLX_OK) return 1;
  if (to_root && rank != nranks - 1) return 0;
  return std::memcmp(recv.data(), expected_sum(n, nranks, seed).data(), n * sizeof(float)) == 0 ? 0 : 2;
}

// The same sum in place (send == recv).
int float_sum_in_place_case(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t seed) {
  std::vector<float> buf = random_floats(n, seed + rank);
  if (plx_all_reduce(comm, buf.data(), buf.data(), n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 1;
  return std::memcmp(buf.data(), expected_sum(n, nranks, seed).data(), n * sizeof(float)) == 0 ? 0 : 2;
}

// The same sum into a recv one element past a 16-byte boundary, poisoned
// on both sides: a streaming copy's unaligned head and its tail land
// exactly, and nothing is written outside recv.
int float_sum_unaligned_case(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t seed) {
  const std::vector<float> send = random_floats(n, seed + rank);
  std::vector<float> area(n + 8, -777.0f);
  float *recv = area.data() + 1;
  if (plx_all_reduce(comm, send.data(), recv, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 1;
  if (std::memcmp(recv, expected_sum(n, nranks, seed).data(), n * sizeof(float)) != 0) return 2;
  const auto poisoned = [](float v) { return v == -777.0f; };
  return poisoned(area[0]) && std::all_of(recv + n, area.data() + area.size(), poisoned) ? 0 : 3;
}

// int8 max over 1 to 60 elements: both sides of the 56-byte inline limit.
int int8_max_case(plx_comm_h comm, int rank, int nranks, size_t n) {
  std::vector<int8_t> send(n), recv(n, 0), want(n, INT8_MIN);
  for (int r = 0; r < nranks; ++r)
    for (size_t i = 0; i < n; ++i) {
      const auto v = static_cast<int8_t>((i * 37 + r * 101 + n) % 251 - 125);
      if (r == rank) send[i] = v;
      want[i] = std::max(want[i], v);
    }
  if (plx_all_reduce(comm, send.data(), recv.data(), n, PLX_INT8, PLX_MAX, nullptr, nullptr)) return 3;
  return recv == want ? 0 : 4;
}

void *pool_alloc(plx_comm_h comm, uint64_t bytes) {
  plx_mem_alloc_params p{sizeof(p), PLX_MEM_SHARED_HOST, bytes, 0, 0, 0};
  void *ptr = nullptr;
  return plx_mem_alloc(comm, &p, &ptr) == PLX_OK ? ptr : nullptr;
}

int last_algorithm(plx_comm_h comm, plx_coll_kind coll) {
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  return plx_comm_stats(comm, coll, &stats) == PLX_OK ? stats.last_algorithm : -1;
}

// A two-shot's sums of n elements: all-reduce (which must have gone
// two-shot), in place, and to the last rank, each with inputs of its own
// seed (*seed advances).
int two_shot_sum_cases(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t *seed) {
  if (int code = float_sum_case(comm, rank, nranks, n, (*seed)++, false)) return code;
  if (last_algorithm(comm, PLX_COLL_ALL_REDUCE) != PLX_ALGO_TWO_SHOT) return 5;
  if (int code = float_sum_in_place_case(comm, rank, nranks, n, (*seed)++)) return 10 + code;
  if (int code = float_sum_case(comm, rank, nranks, n, (*seed)++, true)) return 20 + code;
  return 0;
}

// A float32 sum (or reduce to the last rank) of pool buffers larger than
// the slots, checked bit for bit against the rank-order reference.
int pool_sum_case(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t seed, bool to_root) {
  auto *send = static_cast<float *>(pool_alloc(comm, n * sizeof(float)));
  auto *recv = static_cast<float *>(pool_alloc(comm, n * sizeof(float)));
  if (!send || !recv) return 1;
  const std::vector<float> mine = random_floats(n, seed + rank);
  std::memcpy(send, mine.data(), n * sizeof(float));
  std::fill(recv, recv + n, -777.0f);
  const plx_status s = to_root ? plx_reduce(comm, send, recv, n, PLX_FLOAT32, PLX_SUM, nranks - 1, nullptr, nullptr)
                               : plx_all_reduce(comm, send, recv, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  int code = s != PLX_OK ? 2 : 0;
  if (code == 0 && (!to_root || rank == nranks - 1))
    code = std::memcmp(recv, expected_sum(n, nranks, seed).data(), n * sizeof(float)) == 0 ? 0 : 3;
  plx_mem_free(comm, recv);
  plx_mem_free(comm, send);
  return code;
}

}  // namespace

TEST_CASE("ShmNative.InPlace.two_shot_on_pool_buffers_matches_the_reference") {
  for (int nranks : {3, 4}) {
    CAPTURE(nranks);
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      uint32_t seed = 700;
      for (size_t n : {size_t{262145}, size_t{700001}}) {  // 1 and 3 chunks of the 1 MiB slots
        if (int code = pool_sum_case(c, r, nranks, n, seed++, false)) return code;
        if (last_algorithm(c, PLX_COLL_ALL_REDUCE) != PLX_ALGO_TWO_SHOT) return 4;
        if (int code = pool_sum_case(c, r, nranks, n, seed++, true)) return 10 + code;
        if (int code = float_sum_case(c, r, nranks, 1000, seed++, false)) return 20 + code;  // slots after
      }
      return 0;
    }) == 0);
  }
}

// The one-shot limit with the default ONESHOT_MAX_BYTES (64 KiB): x 2 for 2
// ranks, x 2/n up to 4 ranks, x 4/n^2 beyond (8 ranks: 4096 bytes, 12 ranks:
// 1820).
TEST_CASE("ShmNative.Choice.one_shot_limit_falls_with_the_rank_count") {
  const std::pair<int, size_t> limits[] = {{2, 131072}, {4, 32768}, {6, 7281}, {8, 4096}, {12, 1820}};
  for (const auto &ranks_limit : limits) {
    const int nranks = ranks_limit.first;  // not a binding: the lambda and CAPTURE take it
    const size_t limit = ranks_limit.second;
    CAPTURE(nranks);
    const size_t last_one_shot = limit / sizeof(float);
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      uint32_t seed = 900;
      for (size_t n : {last_one_shot, last_one_shot + 1}) {
        if (int code = float_sum_case(c, r, nranks, n, seed++, false)) return code;
        const int want = n == last_one_shot ? PLX_ALGO_ONE_SHOT : PLX_ALGO_TWO_SHOT;
        if (last_algorithm(c, PLX_COLL_ALL_REDUCE) != want) return n == last_one_shot ? 10 : 11;
      }
      return 0;
    }) == 0);
  }
}

TEST_CASE("ShmNative.Inline.sizes_around_the_limit_back_to_back_with_slot_steps") {
  for (int nranks : {2, 3, 4}) {
    CAPTURE(nranks);
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      uint32_t seed = 50;
      for (size_t n = 1; n <= 16; ++n) {  // 4 to 64 bytes: inline up to 14
        if (int code = float_sum_case(c, r, nranks, n, seed++, false)) return code;
        if (int code = float_sum_case(c, r, nranks, 3000, seed++, false)) return 10 + code;  // slots
        if (int code = float_sum_case(c, r, nranks, n, seed++, true)) return 20 + code;
      }
      for (size_t n = 1; n <= 60; ++n)
        if (int code = int8_max_case(c, r, nranks, n)) return 30 + code;
      return 0;
    }) == 0);
  }
}

TEST_CASE("ShmNative.Inline.in_place_and_no_contribution") {
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    for (int round = 0; round < 50; ++round) {
      std::vector<float> buf(3, static_cast<float>(r + 1 + round));
      plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
      if (r == round % 3) opts.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
      if (plx_all_reduce(c, opts.flags ? nullptr : buf.data(), buf.data(), 3, PLX_FLOAT32, PLX_SUM, &opts, nullptr))
        return 1;
      const float want = static_cast<float>(6 + 3 * round - (round % 3 + 1 + round));
      for (float v : buf) if (v != want) return 2;
    }
    return 0;
  }) == 0);
}

// Reductions from 8 KiB take the next region of their slot, wrapping at its
// end: sizes that do not divide the 1 MiB slots, one-shot and two-shot (and
// two chunks), with inline and small steps between, many times round.
TEST_CASE("ShmNative.Rotation.mixed_sizes_wrap_the_slot_regions_and_stay_exact") {
  for (int nranks : {2, 3, 4}) {
    CAPTURE(nranks);
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      uint32_t seed = 900;
      for (int round = 0; round < 12; ++round)
        for (size_t n : {size_t{2048}, size_t{10001}, size_t{7}, size_t{65537}, size_t{1000}, size_t{300001}}) {
          if (int code = float_sum_case(c, r, nranks, n, seed++, false)) return code;
          if (int code = float_sum_in_place_case(c, r, nranks, n + round, seed++)) return 10 + code;
          if (int code = float_sum_case(c, r, nranks, n, seed++, true)) return 20 + code;
        }
      return 0;
    }) == 0);
  }
}

// Two-shot steps split over helper threads (THREADS=3, and from 4 KiB so
// that small steps split too): odd counts that no part divides, reduce to a
// root, in place, int8 (64-element lines), pool buffers read in place (one
// step with 2 ranks, shares of every block beyond), ranks that contribute
// nothing, each bit for bit against the reference. Helpers that poll, and
// helpers that sleep between steps (THREADS_POLL_US=0), so that the rank's
// own thread also runs parts it finds unclaimed.
TEST_CASE("ShmNative.Threads.helpers_split_two_shot_steps_and_stay_exact") {
  setenv("PLEXUS_SHM_NATIVE_THREADS", "3", 1);
  setenv("PLEXUS_SHM_NATIVE_THREADS_MIN_BYTES", "4K", 1);
  for (const char *poll_us : {"200", "0"}) {
    setenv("PLEXUS_SHM_NATIVE_THREADS_POLL_US", poll_us, 1);
    CAPTURE(poll_us);
    for (int nranks : {2, 3, 4}) {
      CAPTURE(nranks);
      CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
        uint32_t seed = 1300;
        for (size_t n : {size_t{45001}, size_t{65536}, size_t{262147}, size_t{700003}}) {  // two-shot from 128 KiB
          if (int code = two_shot_sum_cases(c, r, nranks, n, &seed)) return code;
          if (int code = int8_max_case(c, r, nranks, n / 3)) return 30 + code;
          if (int code = pool_sum_case(c, r, nranks, n, seed++, false)) return 50 + code;  // read in place
          if (int code = pool_sum_case(c, r, nranks, n, seed++, true)) return 60 + code;
        }
        std::vector<float> buf(100003, static_cast<float>(r + 1));
        plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
        if (r == 0) opts.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
        if (plx_all_reduce(c, r == 0 ? nullptr : buf.data(), buf.data(), buf.size(), PLX_FLOAT32, PLX_SUM, &opts, nullptr))
          return 40;
        const float want = static_cast<float>(nranks * (nranks + 1) / 2 - 1);
        return std::all_of(buf.begin(), buf.end(), [&](float v) { return v == want; }) ? 0 : 41;
      }) == 0);
    }
  }
  unsetenv("PLEXUS_SHM_NATIVE_THREADS_POLL_US");
  unsetenv("PLEXUS_SHM_NATIVE_THREADS_MIN_BYTES");
  unsetenv("PLEXUS_SHM_NATIVE_THREADS");
}

// Results written with streaming stores (STREAM_MIN_BYTES down to 64K, so
// that small two-shots stream): the own share reduced piece by piece and
// copied out, the peers' shares copied out, by the rank alone and split
// over helper threads; all-reduce, to a root, in place and into an
// unaligned recv, each bit for bit against the reference. The parameter
// takes a size or "auto" and refuses other words, naming itself.
TEST_CASE("ShmNative.Streaming.results_written_with_streaming_stores_stay_exact") {
  setenv("PLEXUS_SHM_NATIVE_STREAM_MIN_BYTES", "64K", 1);
  setenv("PLEXUS_SHM_NATIVE_THREADS_MIN_BYTES", "4K", 1);
  for (const char *threads : {"1", "2"}) {
    setenv("PLEXUS_SHM_NATIVE_THREADS", threads, 1);
    CAPTURE(threads);
    for (int nranks : {2, 3, 4}) {
      CAPTURE(nranks);
      CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
        uint32_t seed = 1700;
        for (size_t n : {size_t{45001}, size_t{262147}, size_t{700003}}) {  // two-shot, 1 to 3 chunks
          if (int code = two_shot_sum_cases(c, r, nranks, n, &seed)) return code;
          if (int code = float_sum_unaligned_case(c, r, nranks, n, seed++)) return 30 + code;
        }
        return 0;
      }) == 0);
    }
  }
  unsetenv("PLEXUS_SHM_NATIVE_THREADS");
  unsetenv("PLEXUS_SHM_NATIVE_THREADS_MIN_BYTES");
  for (const char *value : {"auto", "1G"}) {  // the default by CPU, and a size
    setenv("PLEXUS_SHM_NATIVE_STREAM_MIN_BYTES", value, 1);
    plx_backend_h backend = nullptr;
    CHECK(plx_backend_open("shm-native", &backend) == PLX_OK);
    if (backend) plx_backend_close(backend);
  }
  setenv("PLEXUS_SHM_NATIVE_STREAM_MIN_BYTES", "soon", 1);
  plx_backend_h backend = nullptr;
  CHECK(plx_backend_open("shm-native", &backend) != PLX_OK);
  CHECK(std::strstr(plx_last_error(), "STREAM_MIN_BYTES=soon") != nullptr);
  unsetenv("PLEXUS_SHM_NATIVE_STREAM_MIN_BYTES");
}

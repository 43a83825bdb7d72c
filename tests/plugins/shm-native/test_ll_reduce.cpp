// shm-native's low-latency (LL) all-reduce (plugins/shm-native/ll_reduce.cpp),
// asked for by name (PLX_ALGO_LOW_LATENCY) or by LL_MAX_BYTES, each result
// against a rank-order reference on random data: every length around the
// 56-byte line and up to the lines' capacity, back to back (the lines'
// reuse), in place, overlapping, without a contribution, other types and
// operators; a missing rank, a killed rank and an abort end the waits. The
// lines exist only where LL_MAX_BYTES is set, the same on every rank.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/shm-native/fork_ranks.hpp"

namespace {

using plexus::test::expected_sum;
using plexus::test::random_floats;
using plexus::test::run_ranks;

constexpr size_t capacity_floats = 33600 / sizeof(float);  // 600 lines of 56 bytes

// Sets PLEXUS_SHM_NATIVE_LL_MAX_BYTES for a test (the backend reads it at
// open, in run_ranks), so that the ranks map LL lines.
struct LlLines {
  explicit LlLines(const char *max_bytes = "32K") { setenv("PLEXUS_SHM_NATIVE_LL_MAX_BYTES", max_bytes, 1); }
  ~LlLines() { unsetenv("PLEXUS_SHM_NATIVE_LL_MAX_BYTES"); }
};

plx_coll_options forced_low_latency(uint32_t flags = 0) {
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = PLX_ALGO_LOW_LATENCY;
  opts.flags = flags;
  return opts;
}

int last_algorithm(plx_comm_h comm) {
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  return plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats) == PLX_OK ? stats.last_algorithm : -1;
}

// A float32 sum of n elements from `seed` (in place or not), with `opts`,
// checked bit for bit and for the algorithm the statistics record.
int float_sum(plx_comm_h c, int rank, int nranks, size_t n, uint32_t seed, bool in_place,
              const plx_coll_options *opts, int want_algorithm) {
  std::vector<float> send = random_floats(n, seed + rank), recv(n, -777.0f);
  float *out = in_place ? send.data() : recv.data();
  if (plx_all_reduce(c, send.data(), out, n, PLX_FLOAT32, PLX_SUM, opts, nullptr) != PLX_OK) return 1;
  if (std::memcmp(out, expected_sum(n, nranks, seed).data(), n * sizeof(float)) != 0) return 2;
  return want_algorithm < 0 || last_algorithm(c) == want_algorithm ? 0 : 3;
}

// int32 sum (wrapping) and float64 min over n elements, against references.
int other_types(plx_comm_h c, int rank, int nranks, size_t n) {
  std::vector<int32_t> isend(n), irecv(n, 7), iwant(n, 0);
  std::vector<double> dsend(n), drecv(n, 7.0), dwant(n, 1e300);
  for (int r = 0; r < nranks; ++r)
    for (size_t i = 0; i < n; ++i) {
      const auto iv = static_cast<int32_t>((i * 2654435761u + r * 40503u) ^ (n << 7));
      const double dv = static_cast<double>(static_cast<int64_t>(i * 7919 + r * 104729) % 9973) - 4000.5;
      if (r == rank) isend[i] = iv, dsend[i] = dv;
      iwant[i] = static_cast<int32_t>(static_cast<uint32_t>(iwant[i]) + static_cast<uint32_t>(iv));
      dwant[i] = std::min(dwant[i], dv);
    }
  const plx_coll_options opts = forced_low_latency();
  if (plx_all_reduce(c, isend.data(), irecv.data(), n, PLX_INT32, PLX_SUM, &opts, nullptr)) return 4;
  if (plx_all_reduce(c, dsend.data(), drecv.data(), n, PLX_FLOAT64, PLX_MIN, &opts, nullptr)) return 5;
  return irecv == iwant && drecv == dwant ? 0 : 6;
}

}  // namespace

TEST_CASE("ShmNative.LowLatency.float_sums_of_every_length_match_the_reference") {
  const LlLines lines;
  for (int nranks : {2, 3, 4}) {
    CAPTURE(nranks);
    CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
      const plx_coll_options opts = forced_low_latency();
      uint32_t seed = 1100;
      for (size_t n : {size_t{1}, size_t{14}, size_t{15}, size_t{29}, size_t{57}, size_t{1000}, size_t{8192},
                       capacity_floats})
        for (bool in_place : {false, true})
          if (int code = float_sum(c, r, nranks, n, seed++, in_place, &opts, PLX_ALGO_LOW_LATENCY)) return code;
      return 0;
    }) == 0);
  }
}

TEST_CASE("ShmNative.LowLatency.back_to_back_calls_reuse_the_lines_safely") {
  const LlLines lines;
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    const plx_coll_options opts = forced_low_latency();
    uint32_t seed = 1300;
    for (int round = 0; round < 300; ++round) {  // sizes that change the shares' lines each call
      const size_t n = 15 + static_cast<size_t>(round * 37) % 2000;
      if (int code = float_sum(c, r, 3, n, seed++, round % 2 == 1, &opts, PLX_ALGO_LOW_LATENCY)) return code;
      if (round % 50 == 0)  // other algorithms between LL calls
        if (int code = float_sum(c, r, 3, 100000, seed++, false, nullptr, -1)) return 10 + code;
    }
    return 0;
  }) == 0);
}

TEST_CASE("ShmNative.LowLatency.other_types_and_operators") {
  const LlLines lines;
  CHECK(run_ranks(4, [](plx_comm_h c, int r) {
    for (size_t n : {size_t{1}, size_t{13}, size_t{14}, size_t{15}, size_t{700}, size_t{4200}})
      if (int code = other_types(c, r, 4, n)) return code;
    return 0;
  }) == 0);
}

TEST_CASE("ShmNative.LowLatency.no_contribution_and_overlapping_buffers") {
  const LlLines lines;
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    const size_t n = 3000;
    // Rank 1 contributes nothing: the sum of ranks 0 and 2 in rank order.
    const plx_coll_options none = forced_low_latency(PLX_COLL_FLAG_NO_CONTRIBUTION);
    const plx_coll_options opts = forced_low_latency();
    std::vector<float> send = random_floats(n, 1500 + r), recv(n, -777.0f), want = random_floats(n, 1500);
    const std::vector<float> third = random_floats(n, 1502);
    for (size_t i = 0; i < n; ++i) want[i] += third[i];
    if (plx_all_reduce(c, r == 1 ? nullptr : send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM,
                       r == 1 ? &none : &opts, nullptr)) return 1;
    if (recv != want) return 2;
    // recv 16 elements past send, overlapping it: every rank reads its own
    // input from its posted lines.
    std::vector<float> buf(n + 16);
    const std::vector<float> mine = random_floats(n, 1600 + r);
    std::copy(mine.begin(), mine.end(), buf.begin());
    if (plx_all_reduce(c, buf.data(), buf.data() + 16, n, PLX_FLOAT32, PLX_SUM, &opts, nullptr)) return 3;
    return std::memcmp(buf.data() + 16, expected_sum(n, 3, 1600).data(), n * sizeof(float)) == 0 ? 0 : 4;
  }) == 0);
}

TEST_CASE("ShmNative.LowLatency.too_large_for_the_lines_takes_another_algorithm") {
  const LlLines lines;
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    const plx_coll_options opts = forced_low_latency();
    if (int code = float_sum(c, r, 2, capacity_floats, 1700, false, &opts, PLX_ALGO_LOW_LATENCY)) return code;
    const int code = float_sum(c, r, 2, capacity_floats + 1, 1701, false, &opts, -1);
    return code != 0 ? code : last_algorithm(c) != PLX_ALGO_LOW_LATENCY ? 0 : 9;
  }) == 0);
}

TEST_CASE("ShmNative.LowLatency.without_ll_max_bytes_there_are_no_lines") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    const plx_coll_options opts = forced_low_latency();
    const int code = float_sum(c, r, 2, 1000, 1900, false, &opts, -1);
    return code != 0 ? code : last_algorithm(c) != PLX_ALGO_LOW_LATENCY ? 0 : 9;
  }) == 0);
}

TEST_CASE("ShmNative.LowLatency.ll_max_bytes_picks_it_by_size") {
  setenv("PLEXUS_SHM_NATIVE_LL_MAX_BYTES", "4K", 1);
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    if (int code = float_sum(c, r, 3, 10, 1800, false, nullptr, PLX_ALGO_ONE_SHOT)) return code;  // inline line
    if (int code = float_sum(c, r, 3, 1024, 1801, false, nullptr, PLX_ALGO_LOW_LATENCY)) return 10 + code;
    return float_sum(c, r, 3, 1025, 1802, false, nullptr, -1) == 0 && last_algorithm(c) != PLX_ALGO_LOW_LATENCY
               ? 0 : 20;
  }) == 0);
  setenv("PLEXUS_SHM_NATIVE_LL_MAX_BYTES", "64K", 1);  // more than the lines hold: init fails
  plx_backend_h backend = nullptr;
  CHECK(plx_backend_open("shm-native", &backend) == PLX_ERR_INVALID_ARGUMENT);
  if (backend) plx_backend_close(backend);
  unsetenv("PLEXUS_SHM_NATIVE_LL_MAX_BYTES");
}

TEST_CASE("ShmNative.LowLatency.missing_killed_or_aborting_ranks_end_the_waits") {
  const LlLines lines;
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    if (r == 1) { usleep(100000); raise(SIGKILL); }
    std::vector<float> x(1000, 1.0f);
    const plx_coll_options opts = forced_low_latency();
    const plx_status s = plx_all_reduce(c, x.data(), x.data(), x.size(), PLX_FLOAT32, PLX_SUM, &opts, nullptr);
    return (s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT) ? 0 : 1;
  }) == 1);  // the killed rank itself counts as failed
  // The last rank calls nothing for a second: the others time out, naming
  // it, also those that wait on a peer's result lines (of 28 floats, two
  // lines, ranks 2 and 3 own none: rank 2 waits only on ranks 0 and 1).
  for (const auto &ranks_count : {std::pair{3, 1000}, std::pair{4, 28}}) {
    const int nranks = ranks_count.first, count = ranks_count.second;  // no bindings: lambdas capture them
    CAPTURE(nranks);
    CHECK(run_ranks(nranks, [nranks, count](plx_comm_h c, int r) {
      if (r == nranks - 1) return usleep(1000000), 0;
      std::vector<float> x(count, 1.0f);
      const plx_coll_options opts = forced_low_latency();
      const plx_status s = plx_all_reduce(c, x.data(), x.data(), x.size(), PLX_FLOAT32, PLX_SUM, &opts, nullptr);
      const std::string late = "for rank " + std::to_string(nranks - 1) + ",";
      return s == PLX_ERR_TIMEOUT && std::strstr(plx_last_error(), late.c_str()) ? 0 : 1;
    }, 300) == 0);
  }
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    if (r == 0) plx_comm_abort(c);
    std::vector<float> x(1000, 1.0f);
    const plx_coll_options opts = forced_low_latency();
    return plx_all_reduce(c, x.data(), x.data(), x.size(), PLX_FLOAT32, PLX_SUM, &opts, nullptr) == PLX_ERR_ABORTED
               ? 0 : 1;
  }) == 0);
}

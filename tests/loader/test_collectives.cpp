// Every collective through the loader on fixture-good (1 rank, host
// memory), on random data: the descriptor the loader builds reaches the
// plugin intact, and the statistics count calls and bytes.
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

struct Fixture {
  Backend backend{"fixture-good"};
  Comm comm{backend.handle};
};

// Bytes of `count` random elements of `dtype`.
std::vector<unsigned char> random_bytes(plx_dtype dtype, uint64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> bytes(count * plx_dtype_size(dtype));
  for (unsigned char &b : bytes) b = static_cast<unsigned char>(rng());
  return bytes;  // NaN patterns included: results are compared byte for byte
}

uint64_t stat(plx_comm_h comm, plx_coll_kind coll, uint64_t plx_op_stats::*field) {
  plx_op_stats s{};
  s.struct_size = sizeof(s);
  return plx_comm_stats(comm, coll, &s) == PLX_OK ? s.*field : UINT64_MAX;
}

}  // namespace

TEST_CASE("Loader.Collectives.reductions_over_one_rank_are_the_identity") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype) {
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op) {
      INFO(std::string(plx_dtype_string(dtype)), " ", std::string(plx_reduce_op_string(op)));
      const uint64_t count = 37 + dtype;  // odd sizes
      const std::vector<unsigned char> send = random_bytes(dtype, count, dtype * 10 + op);
      std::vector<unsigned char> recv(send.size(), 0), in_place = send;
      CHECK_OK(plx_all_reduce(f.comm.handle, send.data(), recv.data(), count, dtype, op, nullptr, nullptr));
      CHECK(recv == send);
      CHECK_OK(plx_all_reduce(f.comm.handle, in_place.data(), in_place.data(), count, dtype, op, nullptr, nullptr));
      CHECK(in_place == send);
      std::fill(recv.begin(), recv.end(), 0);
      CHECK_OK(plx_reduce(f.comm.handle, send.data(), recv.data(), count, dtype, op, 0, nullptr, nullptr));
      CHECK(recv == send);
      std::fill(recv.begin(), recv.end(), 0);
      CHECK_OK(plx_reduce_scatter(f.comm.handle, send.data(), recv.data(), count, dtype, op, nullptr, nullptr));
      CHECK(recv == send);
    }
  }
}

TEST_CASE("Loader.Collectives.copies_over_one_rank") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  const uint64_t count = 1001;
  const std::vector<unsigned char> send = random_bytes(PLX_FLOAT32, count, 42);
  std::vector<unsigned char> recv(send.size() + 3, 0);
  unsigned char *unaligned = recv.data() + 3;  // not 16-byte aligned
  CHECK_OK(plx_broadcast(f.comm.handle, send.data(), unaligned, count, PLX_FLOAT32, 0, nullptr, nullptr));
  CHECK(std::memcmp(unaligned, send.data(), send.size()) == 0);
  std::fill(recv.begin(), recv.end(), 0);
  CHECK_OK(plx_all_gather(f.comm.handle, send.data(), unaligned, count, PLX_FLOAT32, nullptr, nullptr));
  CHECK(std::memcmp(unaligned, send.data(), send.size()) == 0);
  std::fill(recv.begin(), recv.end(), 0);
  const uint64_t counts[1] = {count - 1};
  CHECK_OK(plx_gather(f.comm.handle, send.data(), unaligned, 0, counts, PLX_FLOAT32, 0, nullptr, nullptr));
  CHECK(std::memcmp(unaligned, send.data(), send.size() - 4) == 0);
  CHECK(unaligned[send.size() - 1] == 0);  // counts[0], not count, elements
  const uint64_t none[1] = {0};
  CHECK_OK(plx_gather(f.comm.handle, nullptr, nullptr, 5, none, PLX_FLOAT32, 0, nullptr, nullptr));
  CHECK_OK(plx_barrier(f.comm.handle, nullptr, nullptr));
}

TEST_CASE("Loader.Collectives.send_and_recv_to_self") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  const std::vector<unsigned char> msg = random_bytes(PLX_INT64, 16, 7);
  std::vector<unsigned char> got(msg.size(), 0);
  CHECK_OK(plx_group_start(f.comm.handle));
  CHECK_OK(plx_send(f.comm.handle, msg.data(), 16, PLX_INT64, 0, nullptr, nullptr));
  CHECK_OK(plx_recv(f.comm.handle, got.data(), 16, PLX_INT64, 0, nullptr, nullptr));
  CHECK_OK(plx_group_end(f.comm.handle));
  CHECK(got == msg);
  CHECK_FAILS(plx_recv(f.comm.handle, got.data(), 16, PLX_INT64, 0, nullptr, nullptr), PLX_ERR_INVALID_USAGE,
              "no message from self");
}

TEST_CASE("Loader.Collectives.statistics_count_calls_and_bytes") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  std::vector<float> a(100, 1.0f), b(100, 0.0f);
  for (int i = 0; i < 5; ++i)
    CHECK_OK(plx_all_reduce(f.comm.handle, a.data(), b.data(), 100, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  CHECK_OK(plx_broadcast(f.comm.handle, a.data(), b.data(), 10, PLX_FLOAT32, 0, nullptr, nullptr));
  float x = 0;
  CHECK_FAILS(plx_all_reduce(f.comm.handle, &x, &x, 1, 42, PLX_SUM, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "dtype 42");
  CHECK(stat(f.comm.handle, PLX_COLL_ALL_REDUCE, &plx_op_stats::calls) == 5);  // the rejected call is not counted
  CHECK(stat(f.comm.handle, PLX_COLL_ALL_REDUCE, &plx_op_stats::bytes) == 5 * 400);
  CHECK(stat(f.comm.handle, PLX_COLL_BROADCAST, &plx_op_stats::calls) == 1);
  CHECK(stat(f.comm.handle, PLX_COLL_BROADCAST, &plx_op_stats::bytes) == 40);
  CHECK(stat(f.comm.handle, PLX_COLL_GATHER, &plx_op_stats::calls) == 0);
  plx_op_stats s{};
  s.struct_size = sizeof(s);
  CHECK_OK(plx_comm_stats(f.comm.handle, PLX_COLL_ALL_REDUCE, &s));
  CHECK(s.coll == PLX_COLL_ALL_REDUCE);
  CHECK(s.last_algorithm == PLX_ALGO_COPY);  // from the plugin's comm_stats slot
  CHECK(s.algorithm_calls[PLX_ALGO_COPY] == 5);
  CHECK_FAILS(plx_comm_stats(f.comm.handle, 11, &s), PLX_ERR_INVALID_ARGUMENT, "coll 11");
}

// time_ns is the host time inside the calls: some, and no more than the
// time around them.
TEST_CASE("Loader.Collectives.statistics_time_the_calls") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  std::vector<float> a(1 << 16, 1.0f), b(a.size(), 0.0f);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i)
    CHECK_OK(plx_all_reduce(f.comm.handle, a.data(), b.data(), a.size(), PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  const auto around = std::chrono::steady_clock::now() - start;
  const uint64_t inside = stat(f.comm.handle, PLX_COLL_ALL_REDUCE, &plx_op_stats::time_ns);
  CHECK(inside > 0);
  CHECK(inside <= static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(around).count()));
  CHECK(stat(f.comm.handle, PLX_COLL_BROADCAST, &plx_op_stats::time_ns) == 0);
}

TEST_CASE("Loader.Collectives.host_plugin_rejects_a_stream") {
  Fixture f;
  REQUIRE_MESSAGE(f.comm.status == PLX_OK, f.comm.error);
  float x = 1, y = 0;
  int fake_stream = 0;
  CHECK_FAILS(plx_all_reduce(f.comm.handle, &x, &y, 1, PLX_FLOAT32, PLX_SUM, nullptr, &fake_stream),
              PLX_ERR_INVALID_ARGUMENT, "fixture-good: host memory only; stream must be NULL");
}

// p2p-tree's copy-engine all-reduce (PLX_ALGO_COPY, kernels/ce.hpp) on
// every GPU up to 4 (skipped with fewer than two): every dtype x op x size
// (odd, unaligned, in place, several launches with 4 MiB areas) bit for bit
// against core's CPU reduction, outputs poisoned first; one and seven
// pieces; the auto choice from COPY_MIN_BYTES on 2 ranks and the statistics; graph
// replays; a timeout when a rank skips the call; a killed rank.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using namespace plexus::test::p2p;  // Stream, Device, input_of, reference, check_same

int copy_ranks() { return std::min(cuda_devices(), 4); }

// One all-reduce with `algo` as the call's hint, against the reference;
// the output poisoned first.
void check_copy_all_reduce(plx_comm_h comm, int rank, int nranks, plx_dtype dtype, plx_reduce_op op, uint64_t count,
                           bool in_place, uint32_t salt, int32_t algo = PLX_ALGO_COPY) {
  const size_t es = plx_dtype_size(dtype), bytes = count * es, off = in_place ? 0 : es;  // unaligned out of place
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, salt + static_cast<uint32_t>(op)));
  Device a(bytes + es), b(bytes + es);
  a.put(off, inputs[rank]);
  if (!in_place) b.put(off, Bytes(bytes, 0xA5));
  void *send = a.p + off, *recv = in_place ? send : b.p + off;
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = algo;
  Stream stream;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, send, recv, count, dtype, op, &opts, stream.s));
  stream.sync();
  check_same((in_place ? a : b).get(off, bytes), reference(dtype, op, inputs, count), es,
             std::string(plx_dtype_string(dtype)) + " " + plx_reduce_op_string(op) + " count " + std::to_string(count) +
                 (in_place ? " in place" : " unaligned") + " by copy engines");
}

uint64_t copy_calls(plx_comm_h comm) {
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
  return stats.algorithm_calls[PLX_ALGO_COPY];
}

// Every rank of the case joins, runs body, and destroys its communicator.
template <class Body>
void on_ranks(const char *name, int nranks, int32_t timeout_ms, Body body) {
  run_p2p_ranks(name, nranks, [&](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank, timeout_ms);
    body(comm, rank);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

// An 8 MiB all-reduce by the copy engines that the peer never joins: the
// copies go ahead, every kernel of the sequence gives up by itself (the
// deadline, or the abort the watchdog sets), and the stream comes back.
void copy_all_reduce_alone(plx_comm_h comm) {
  Stream stream;
  Device buf(8 << 20);
  plx_coll_options copy = PLX_COLL_OPTIONS_INIT;
  copy.algorithm = PLX_ALGO_COPY;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 2 << 20, PLX_FLOAT32, PLX_SUM, &copy, stream.s));
  const auto start = std::chrono::steady_clock::now();
  stream.sync();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

// With one parameter set (COPY_PIECES, COPY_STREAMS): a bfloat16 sum over
// 1 to several launches, in place and not, and an int64 max (every rank of
// a case runs it from the start, so one setting per case).
void check_setting(const char *name, const char *variable, const char *value) {
  const ScopedEnv slots = small_slots();
  const ScopedEnv env(variable, value);
  const int n = copy_ranks();
  on_ranks(name, n, 60000, [n](plx_comm_h comm, int rank) {
    for (uint64_t count : {uint64_t{5}, uint64_t{100003}, uint64_t{2500001}})
      for (bool in_place : {false, true}) check_copy_all_reduce(comm, rank, n, PLX_BFLOAT16, PLX_SUM, count, in_place, 4);
    check_copy_all_reduce(comm, rank, n, PLX_INT64, PLX_MAX, 1200007, false, 5);
  });
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.copy_engines_every_type") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  const int n = copy_ranks();
  on_ranks("plugins.p2p_tree.gpu.copy_engines_every_type", n, 60000, [n](plx_comm_h comm, int rank) {
    for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
      for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
        for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, uint64_t{65537}})
          for (bool in_place : {false, true}) check_copy_all_reduce(comm, rank, n, dtype, op, count, in_place, 1);
    // Over 2 x 4 MiB: two and three launches.
    check_copy_all_reduce(comm, rank, n, PLX_FLOAT32, PLX_SUM, 3000001, false, 2);
    check_copy_all_reduce(comm, rank, n, PLX_BFLOAT16, PLX_SUM, 9000001, true, 3);
    CHECK(copy_calls(comm) == uint64_t(PLX_DTYPE_COUNT) * PLX_REDUCE_OP_COUNT * 8 + 2);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.copy_engines_one_piece") {
  if (two_gpus()) check_setting("plugins.p2p_tree.gpu.copy_engines_one_piece", "PLEXUS_P2P_TREE_COPY_PIECES", "1");
}

TEST_CASE("plugins.p2p_tree.gpu.copy_engines_seven_pieces") {
  if (two_gpus()) check_setting("plugins.p2p_tree.gpu.copy_engines_seven_pieces", "PLEXUS_P2P_TREE_COPY_PIECES", "7");
}

// A scatter and a gather stream per peer (the default shares one of each;
// on 3 ranks and more the copies to the peers then run at once).
TEST_CASE("plugins.p2p_tree.gpu.copy_engines_stream_per_peer") {
  if (two_gpus()) check_setting("plugins.p2p_tree.gpu.copy_engines_stream_per_peer", "PLEXUS_P2P_TREE_COPY_STREAMS", "0");
}

// COPY_MIN_BYTES=1M on 2 ranks: auto takes the copy engines from 1 MiB,
// not below, and never for reduce.
TEST_CASE("plugins.p2p_tree.gpu.copy_engines_chosen_by_size") {
  if (!two_gpus()) return;
  const ScopedEnv min_bytes("PLEXUS_P2P_TREE_COPY_MIN_BYTES", "1M");
  const int n = 2;
  on_ranks("plugins.p2p_tree.gpu.copy_engines_chosen_by_size", n, 60000, [n](plx_comm_h comm, int rank) {
    check_copy_all_reduce(comm, rank, n, PLX_FLOAT32, PLX_SUM, (1 << 18) - 1, false, 6, PLX_ALGO_AUTO);
    CHECK(copy_calls(comm) == 0);
    check_copy_all_reduce(comm, rank, n, PLX_FLOAT32, PLX_SUM, 1 << 18, false, 7, PLX_ALGO_AUTO);
    CHECK(copy_calls(comm) == 1);
    Stream stream;
    Device in(4 << 20), out(4 << 20);
    PLX_OK_OR_FAIL(plx_reduce(comm, in.p, rank == 0 ? out.p : nullptr, 1 << 20, PLX_FLOAT32, PLX_SUM, 0, nullptr,
                              stream.s));
    stream.sync();
    CHECK(copy_calls(comm) == 1);
  });
}

// Two copy-engine all-reduces captured once, replayed with fresh inputs:
// the side streams join the capture and the epochs advance on the device.
TEST_CASE("plugins.p2p_tree.gpu.copy_engines_graph_replays") {
  if (!two_gpus()) return;
  const int n = copy_ranks();
  on_ranks("plugins.p2p_tree.gpu.copy_engines_graph_replays", n, 60000, [n](plx_comm_h comm, int rank) {
    const uint64_t count = 1000003;
    Stream stream;
    Device in(count * 2), one(count * 2), two(count * 2);
    plx_coll_options copy = PLX_COLL_OPTIONS_INIT;
    copy.algorithm = PLX_ALGO_COPY;
    REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    const plx_status s1 = plx_all_reduce(comm, in.p, one.p, count, PLX_BFLOAT16, PLX_SUM, &copy, stream.s);
    const plx_status s2 = plx_all_reduce(comm, one.p, two.p, count, PLX_BFLOAT16, PLX_MAX, &copy, stream.s);
    cudaGraph_t graph = nullptr;
    REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
    REQUIRE((s1 == PLX_OK && s2 == PLX_OK));
    cudaGraphExec_t exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
    for (uint32_t replay = 0; replay < 5; ++replay) {
      std::vector<Bytes> inputs;
      for (int r = 0; r < n; ++r) inputs.push_back(input_of(r, PLX_BFLOAT16, count, 200 + replay));
      in.put(0, inputs[rank]);
      one.put(0, Bytes(count * 2, 0xA5)), two.put(0, Bytes(count * 2, 0x5A));
      REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
      stream.sync();
      const Bytes sum = reference(PLX_BFLOAT16, PLX_SUM, inputs, count);
      check_same(one.get(0, count * 2), sum, 2, "graph replay, copy engines, sum");
      check_same(two.get(0, count * 2), reference(PLX_BFLOAT16, PLX_MAX, std::vector<Bytes>(n, sum), count), 2,
                 "graph replay, copy engines, max of the sums");
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    check_copy_all_reduce(comm, rank, n, PLX_INT32, PLX_SUM, 999, false, 8, PLX_ALGO_AUTO);  // epochs agree after
  });
}

TEST_CASE("plugins.p2p_tree.gpu.copy_engines_timeout_when_a_rank_skips") {
  if (!two_gpus()) return;
  on_ranks("plugins.p2p_tree.gpu.copy_engines_timeout_when_a_rank_skips", 2, 1500, [](plx_comm_h comm, int rank) {
    if (rank == 1) {
      CHECK(wait_for_failure(comm, std::chrono::seconds(15)) == PLX_ERR_TIMEOUT);  // rank 0's, adopted
      return;
    }
    copy_all_reduce_alone(comm);
    CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_TIMEOUT);
    Device buf(4096);
    plx_coll_options copy = PLX_COLL_OPTIONS_INIT;
    copy.algorithm = PLX_ALGO_COPY;
    CHECK(plx_all_reduce(comm, buf.p, buf.p, 1024, PLX_FLOAT32, PLX_SUM, &copy, nullptr) == PLX_ERR_TIMEOUT);
    CHECK(std::string(plx_last_error()).find("rank 1") != std::string::npos);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.copy_engines_killed_rank") {
  if (!two_gpus()) return;
  run_p2p_ranks("plugins.p2p_tree.gpu.copy_engines_killed_rank", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/30000);
    if (rank == 1) raise(SIGKILL);
    copy_all_reduce_alone(comm);
    CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_PEER_LOST);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  }, /*killed_rank=*/1);
}

// The p2p-tree plugin on GPUs, through the loader. One rank (any GPU):
// every collective against a host reference, host-buffer rejection, the
// device pool. Two ranks as processes (skipped with fewer than two GPUs):
// all-reduce for every dtype x op x algorithm x size (odd, unaligned, in
// place, larger than the exchange slot) bit for bit against core's CPU
// reduction (so both ranks hold identical bits), the other collectives,
// CUDA-graph replays, a timeout when a rank skips a call, an abort, and a
// killed rank. Exits 77 (skipped) without a CUDA device.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plexus/plexus.h"
#include "tests/plugins/gpu_no_contribution.hpp"
#include "tests/plugins/gpu_wire.hpp"
#include "tests/plugins/p2p-tree/p2p_faults.hpp"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using plexus::test::p2p::cuda_devices;
using plexus::test::p2p::join;
using plexus::test::p2p::run_p2p_ranks;
using namespace plexus::test::p2p;  // Stream, Device, input_of, reference, check_same

// One all-reduce (or reduce at root) against the CPU reference.
void check_all_reduce(plx_comm_h comm, int rank, int nranks, plx_dtype dtype, plx_reduce_op op, uint64_t count,
                      int32_t algo, bool in_place, const Stream &stream) {
  const size_t es = plx_dtype_size(dtype), bytes = count * es, off = in_place ? 0 : es;  // unaligned when out of place
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, static_cast<uint32_t>(op)));
  Device a(bytes + es), b(bytes + es);
  a.put(off, inputs[rank]);
  void *send = a.p + off, *recv = in_place ? send : b.p + off;
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = algo;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, send, recv, count, dtype, op, &opts, stream.s));
  stream.sync();
  const Bytes got = in_place ? a.get(off, bytes) : b.get(off, bytes);
  check_same(got, reference(dtype, op, inputs, count), es,
             std::string(plx_dtype_string(dtype)) + " " + plx_reduce_op_string(op) + " count " +
                 std::to_string(count) + (algo == PLX_ALGO_TWO_SHOT ? " two-shot" : " one-shot") +
                 (in_place ? " in place" : " unaligned"));
}

void check_every_all_reduce(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      // 640 KiB and a bit: past the LL slot's 512 KiB, so a one-shot runs bulk
      for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, uint64_t{65537},
                             (uint64_t{640} << 10) / plx_dtype_size(dtype) + 3})
        for (int32_t algo : {PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT})
          for (bool in_place : {false, true})
            check_all_reduce(comm, rank, nranks, dtype, op, count, algo, in_place, stream);
  // Larger than the 4 MiB exchange slot (small_slots) and than a bulk
  // launch (2 MiB on 2 ranks): several launches.
  for (int32_t algo : {PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT}) {
    check_all_reduce(comm, rank, nranks, PLX_FLOAT32, PLX_SUM, 1500001, algo, false, stream);
    check_all_reduce(comm, rank, nranks, PLX_BFLOAT16, PLX_SUM, 3000000, algo, true, stream);
  }
}

// Gather onto root: per-rank counts (rank 0 gives none; the last gives
// more than an exchange area), then count each with the root in place;
// root's recv poisoned first.
void check_gather(plx_comm_h comm, int rank, int nranks, int root, const Stream &stream) {
  std::vector<uint64_t> counts;
  for (int r = 0; r < nranks; ++r) counts.push_back(r == 0 ? 0 : r == nranks - 1 ? 1300001 : 1001 * r + 3);
  for (bool each : {false, true}) {
    if (each) counts.assign(nranks, 70001);
    std::vector<Bytes> in;
    uint64_t total = 0, mine_at = 0;
    for (int r = 0; r < nranks; ++r) {
      in.push_back(input_of(r, PLX_FLOAT32, counts[r], 9));
      if (r == rank) mine_at = total;
      total += counts[r];
    }
    Device recv(total * 4 + 4), send(counts[rank] * 4 + 4);
    recv.put(0, Bytes(total * 4, 0xA5));
    const bool in_place = each && rank == root;
    uint8_t *mine = in_place ? recv.p + mine_at * 4 : send.p;
    if (counts[rank] > 0) (in_place ? recv : send).put(in_place ? mine_at * 4 : 0, in[rank]);
    PLX_OK_OR_FAIL(plx_gather(comm, mine, rank == root ? recv.p : nullptr, counts[0], each ? nullptr : counts.data(),
                              PLX_FLOAT32, root, nullptr, stream.s));
    stream.sync();
    if (rank != root) continue;
    Bytes want;
    for (const Bytes &b : in) want.insert(want.end(), b.begin(), b.end());
    check_same(recv.get(0, total * 4), want, 4, each ? "gather, count each, root in place" : "gather, per-rank counts");
  }
}

// Reduce, broadcast, all-gather, reduce-scatter (small and larger than the
// slot, in place and not), gather and barrier.
void check_other_collectives(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  check_gather(comm, rank, nranks, nranks - 1, stream);
  check_gather(comm, rank, nranks, 0, stream);
  const int root = nranks - 1;
  for (uint64_t count : {uint64_t{1001}, uint64_t{1200000}}) {
    std::vector<Bytes> in;
    for (int r = 0; r < nranks; ++r) in.push_back(input_of(r, PLX_FLOAT32, count));
    const size_t bytes = count * 4;
    Device send(bytes), recv(bytes * nranks);
    send.put(0, in[rank]);
    PLX_OK_OR_FAIL(plx_reduce(comm, send.p, rank == root ? recv.p : nullptr, count, PLX_FLOAT32, PLX_SUM, root,
                              nullptr, stream.s));
    stream.sync();
    if (rank == root) check_same(recv.get(0, bytes), reference(PLX_FLOAT32, PLX_SUM, in, count), 4, "reduce");
    PLX_OK_OR_FAIL(plx_broadcast(comm, send.p, recv.p, count, PLX_FLOAT32, 0, nullptr, stream.s));
    stream.sync();
    check_same(recv.get(0, bytes), in[0], 4, "broadcast");
    PLX_OK_OR_FAIL(plx_all_gather(comm, send.p, recv.p, count, PLX_FLOAT32, nullptr, stream.s));
    stream.sync();
    for (int r = 0; r < nranks; ++r) check_same(recv.get(r * bytes, bytes), in[r], 4, "all_gather");
    // In place: my part of recv is the input.
    recv.put(rank * bytes, in[rank]);
    PLX_OK_OR_FAIL(plx_all_gather(comm, recv.p + rank * bytes, recv.p, count, PLX_FLOAT32, nullptr, stream.s));
    stream.sync();
    for (int r = 0; r < nranks; ++r) check_same(recv.get(r * bytes, bytes), in[r], 4, "all_gather in place");
  }
  for (uint64_t count : {uint64_t{1001}, uint64_t{1100000}}) {
    std::vector<Bytes> in;
    for (int r = 0; r < nranks; ++r) in.push_back(input_of(r, PLX_BFLOAT16, count * nranks, 5));
    const size_t bytes = count * 2;
    std::vector<Bytes> mine_of_each;  // block `rank` of every rank's input
    for (int r = 0; r < nranks; ++r) mine_of_each.emplace_back(in[r].begin() + rank * bytes, in[r].begin() + (rank + 1) * bytes);
    const Bytes want = reference(PLX_BFLOAT16, PLX_SUM, mine_of_each, count);
    Device send(bytes * nranks), recv(bytes);
    send.put(0, in[rank]);
    PLX_OK_OR_FAIL(plx_reduce_scatter(comm, send.p, recv.p, count, PLX_BFLOAT16, PLX_SUM, nullptr, stream.s));
    stream.sync();
    check_same(recv.get(0, bytes), want, 2, "reduce_scatter");
    PLX_OK_OR_FAIL(plx_reduce_scatter(comm, send.p, send.p + rank * bytes, count, PLX_BFLOAT16, PLX_SUM, nullptr,
                                      stream.s));
    stream.sync();
    check_same(send.get(rank * bytes, bytes), want, 2, "reduce_scatter in place");
  }
  PLX_OK_OR_FAIL(plx_barrier(comm, nullptr, stream.s));
  stream.sync();
}

void check_graph_replays(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const uint64_t n = 65536;
  Device in(n * 4), one(n * 4), two(n * 4), bcast(n * 4);
  plx_coll_options one_shot = PLX_COLL_OPTIONS_INIT, two_shot = PLX_COLL_OPTIONS_INIT;
  one_shot.algorithm = PLX_ALGO_ONE_SHOT;
  two_shot.algorithm = PLX_ALGO_TWO_SHOT;
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status s1 = plx_all_reduce(comm, in.p, one.p, n, PLX_FLOAT32, PLX_SUM, &one_shot, stream.s);
  const plx_status s2 = plx_all_reduce(comm, in.p, two.p, n, PLX_FLOAT32, PLX_SUM, &two_shot, stream.s);
  const plx_status s3 = plx_broadcast(comm, in.p, bcast.p, n, PLX_FLOAT32, 0, nullptr, stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE((s1 == PLX_OK && s2 == PLX_OK && s3 == PLX_OK));
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 5; ++replay) {  // every replay advances the epochs on the device
    std::vector<Bytes> inputs;
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, PLX_FLOAT32, n, 100 + replay));
    in.put(0, inputs[rank]);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    const Bytes want = reference(PLX_FLOAT32, PLX_SUM, inputs, n);
    check_same(one.get(0, n * 4), want, 4, "graph replay one-shot");
    check_same(two.get(0, n * 4), want, 4, "graph replay two-shot");
    check_same(bcast.get(0, n * 4), inputs[0], 4, "graph replay broadcast");
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  // Eager calls after the replays still agree on the epoch.
  check_all_reduce(comm, rank, nranks, PLX_INT32, PLX_MAX, 999, PLX_ALGO_AUTO, false, stream);
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.one_rank") {
  run_p2p_ranks("plugins.p2p_tree.gpu.one_rank", 1, [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 1, rank);
    Stream stream;
    for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
      for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
        check_all_reduce(comm, rank, 1, dtype, op, 1001, PLX_ALGO_AUTO, false, stream);
    check_other_collectives(comm, rank, 1);
    plx_op_stats op_stats{};
    op_stats.struct_size = sizeof(op_stats);
    PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &op_stats));
    CHECK(op_stats.last_algorithm == PLX_ALGO_COPY);  // one rank: the result is the input, copied
    std::vector<float> host(64, 1.0f);
    CHECK(plx_all_reduce(comm, host.data(), host.data(), 64, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) ==
          PLX_ERR_UNSUPPORTED);
    CHECK(std::string(plx_last_error()).find("shm-native") != std::string::npos);
    plx_mem_alloc_params params{sizeof(plx_mem_alloc_params), PLX_MEM_DEVICE, 1 << 20, 0, 3, 0};
    void *block = nullptr;
    PLX_OK_OR_FAIL(plx_mem_alloc(comm, &params, &block));
    PLX_OK_OR_FAIL(plx_all_reduce(comm, block, block, (1 << 20) / 4, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
    stream.sync();
    PLX_OK_OR_FAIL(plx_mem_free(comm, block));
    plx_mem_stats stats{};
    stats.struct_size = sizeof(stats);
    PLX_OK_OR_FAIL(plx_mem_stats_get(comm, PLX_MEM_DEVICE, PLX_MEM_TAG_ALL, &stats));
    CHECK(stats.bytes_in_use == 0);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.two_ranks_all_reduce_every_type") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  run_p2p_ranks("plugins.p2p_tree.gpu.two_ranks_all_reduce_every_type", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank);
    check_every_all_reduce(comm, rank, 2);
    plx_op_stats stats{};
    stats.struct_size = sizeof(stats);
    PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
    CHECK(stats.algorithm_calls[PLX_ALGO_ONE_SHOT] > 0);
    CHECK(stats.algorithm_calls[PLX_ALGO_TWO_SHOT] > 0);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.two_ranks_other_collectives") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  run_p2p_ranks("plugins.p2p_tree.gpu.two_ranks_other_collectives", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank);
    check_other_collectives(comm, rank, 2);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.graph_capture_replays") {
  const int nranks = cuda_devices() >= 2 ? 2 : 1;
  run_p2p_ranks("plugins.p2p_tree.gpu.graph_capture_replays", nranks,
                [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    check_graph_replays(comm, rank, nranks);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

// One-shot (1001 elements) and two-shot or bulk (2^20 + 3) with a rank
// that contributes nothing; on one GPU the single rank's result is the
// identity itself.
TEST_CASE("plugins.p2p_tree.gpu.no_contribution") {
  const int nranks = cuda_devices() >= 2 ? 2 : 1;
  run_p2p_ranks("plugins.p2p_tree.gpu.no_contribution", nranks,
                [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    plexus::test::check_no_contribution(comm, rank, nranks, 1001, (1u << 20) + 3, true);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

// float32 sent as bfloat16 and float16, bit for bit on any rank count: the
// one-shot that converts in its own loads and stores (1001: LL128 lines
// where NVLink joins every pair) and the stand-in around the two-shot or
// bulk kernels of the wire type (2^20 + 3; reduce-scatter at every size).
TEST_CASE("plugins.p2p_tree.gpu.wire_precision") {
  const int nranks = cuda_devices() >= 2 ? 2 : 1;
  run_p2p_ranks("plugins.p2p_tree.gpu.wire_precision", nranks,
                [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    plexus::test::check_wire_precision(comm, rank, nranks, 1001, (1u << 20) + 3);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

// The converting one-shot with LL lines (PCIe machines' lines): 1001 and
// 30001 elements (60002 bytes on the wire, one launch).
TEST_CASE("plugins.p2p_tree.gpu.wire_precision_ll_lines") {
  const int nranks = cuda_devices() >= 2 ? 2 : 1;
  setenv("PLEXUS_P2P_TREE_LL128", "0", 1);
  run_p2p_ranks("plugins.p2p_tree.gpu.wire_precision_ll_lines", nranks,
                [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    plexus::test::check_wire_precision(comm, rank, nranks, 1001, 30001);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
  unsetenv("PLEXUS_P2P_TREE_LL128");
}

TEST_CASE("plugins.p2p_tree.gpu.timeout_when_a_rank_skips") {
  if (!two_gpus()) return;
  run_p2p_ranks("plugins.p2p_tree.gpu.timeout_when_a_rank_skips", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/1500);
    timeout_when_rank_1_skips(comm, rank);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.abort_reaches_the_peer") {
  if (!two_gpus()) return;
  run_p2p_ranks("plugins.p2p_tree.gpu.abort_reaches_the_peer", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/30000);
    abort_reaches_rank_0(comm, rank);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.killed_rank_is_noticed") {
  if (!two_gpus()) return;
  run_p2p_ranks("plugins.p2p_tree.gpu.killed_rank_is_noticed", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/30000);
    if (rank == 1) raise(SIGKILL);
    Stream stream;
    Device buf(4096);
    PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 1024, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
    const auto start = std::chrono::steady_clock::now();
    stream.sync();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
    CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_PEER_LOST);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  }, /*killed_rank=*/1);
}

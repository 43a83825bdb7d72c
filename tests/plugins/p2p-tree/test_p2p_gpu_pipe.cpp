// p2p-tree's ring and trees on GPUs (suite gpu; skipped without two GPUs):
// forced per call (opts->algorithm) or by PLEXUS_P2P_TREE_ALGO, all-reduce
// for every dtype x op x size (to several MiB, so the pipeline wraps its
// FIFOs many times), in place and unaligned, against core's CPU reduction:
// bit for bit for integers and MIN/MAX, within the conformance kit's
// tolerance for float sums and products (a ring adds in ring order), and
// bit for bit between the ranks; many launches in a row; a CUDA graph;
// reduce and broadcast over the trees; a timeout in the ring's bounded
// waits; PLEXUS_P2P_TREE_UNLINK refusing a split machine and, with three
// or four GPUs, routing a partly connected one.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using namespace plexus::test::p2p;

constexpr int32_t kPipeAlgos[] = {PLX_ALGO_RING, PLX_ALGO_TREE, PLX_ALGO_KARY_TREE};

bool is_pipe(int32_t algo) { return algo == PLX_ALGO_RING || algo == PLX_ALGO_TREE || algo == PLX_ALGO_KARY_TREE; }

const char *algo_text(int32_t algo) {
  return algo == PLX_ALGO_RING ? " ring" : algo == PLX_ALGO_TREE ? " tree" : algo == PLX_ALGO_KARY_TREE ? " kary" : " auto";
}

double half_to_double(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double v = e == 0 ? std::ldexp(double(m), -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(double(m | 1024), e - 25);
  return (h >> 15) ? -v : v;
}

double value_at(plx_dtype d, const uint8_t *p) {
  uint64_t bits = 0;
  std::memcpy(&bits, p, plx_dtype_size(d));
  if (d == PLX_FLOAT16) return half_to_double(static_cast<uint16_t>(bits));
  const uint32_t b32 = static_cast<uint32_t>(d == PLX_BFLOAT16 ? bits << 16 : bits);
  float f = 0;
  std::memcpy(&f, &b32, 4);
  double g = 0;
  std::memcpy(&g, &bits, 8);
  return d == PLX_FLOAT64 ? g : f;
}

// |got - want| <= 2 u |want| + 2 n u_acc magnitude + smallest normal, as
// tools/plexus-conformance/dtypes.cpp; integers and MIN/MAX bit for bit.
void check_close(const Bytes &got, const std::vector<Bytes> &in, plx_dtype d, plx_reduce_op op, uint64_t count,
                 const std::string &what) {
  const Bytes want = reference(d, op, in, count);
  const bool floating = d == PLX_FLOAT16 || d == PLX_BFLOAT16 || d == PLX_FLOAT32 || d == PLX_FLOAT64;
  if (!floating || op == PLX_MIN || op == PLX_MAX) return check_same(got, want, plx_dtype_size(d), what);
  const double u = std::ldexp(1.0, d == PLX_FLOAT16 ? -11 : d == PLX_BFLOAT16 ? -8 : d == PLX_FLOAT32 ? -24 : -53);
  const double u_acc = d == PLX_FLOAT64 ? u : std::ldexp(1.0, -24), n = double(in.size());
  const double floor = d == PLX_FLOAT16 ? std::ldexp(1.0, -14) : d == PLX_FLOAT64 ? 0x1p-1022 : std::ldexp(1.0, -126);
  const size_t es = plx_dtype_size(d);
  for (uint64_t i = 0; i < count; ++i) {
    const double w = value_at(d, want.data() + i * es), g = value_at(d, got.data() + i * es);
    double magnitude = 0;
    for (const Bytes &b : in) magnitude += std::fabs(value_at(d, b.data() + i * es));
    if (op == PLX_AVG) magnitude /= n;
    if (op == PLX_PROD) magnitude = std::fabs(w);
    if (std::fabs(g - w) <= 2 * u * std::fabs(w) + 2 * n * u_acc * magnitude + floor) continue;
    FAIL(what, ": element ", i, " got ", g, " want ", w);
  }
}

// Every rank holds the same bytes: all-gathered and compared (2 GPUs are
// fully connected, so the all-gather runs).
void check_ranks_agree(plx_comm_h comm, int nranks, const Bytes &mine, const Stream &stream, const std::string &what) {
  Device in(mine.size()), all(mine.size() * nranks);
  in.put(0, mine);
  PLX_OK_OR_FAIL(plx_all_gather(comm, in.p, all.p, mine.size(), PLX_UINT8, nullptr, stream.s));
  stream.sync();
  for (int r = 0; r < nranks; ++r) check_same(all.get(r * mine.size(), mine.size()), mine, 1, what + " (ranks differ)");
}

struct Case {
  plx_dtype dtype;
  plx_reduce_op op;
  uint64_t count;
  int32_t algo;
  bool in_place;
  std::string what() const {
    return std::string(plx_dtype_string(dtype)) + " " + plx_reduce_op_string(op) + " count " + std::to_string(count) +
           algo_text(algo) + (in_place ? " in place" : " unaligned");
  }
};

// One all-reduce of `k` against the reference; true bits agree across ranks.
void check_pipe_all_reduce(plx_comm_h comm, int rank, int nranks, const Case &k, const Stream &stream, bool agree) {
  const size_t es = plx_dtype_size(k.dtype), bytes = k.count * es, off = k.in_place ? 0 : es;
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, k.dtype, k.count, 7u * k.op + 1));
  Device a(bytes + es), b(bytes + es);
  a.put(off, inputs[rank]);
  void *send = a.p + off, *recv = k.in_place ? send : b.p + off;
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = k.algo;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, send, recv, k.count, k.dtype, k.op, &opts, stream.s));
  stream.sync();
  const Bytes got = k.in_place ? a.get(off, bytes) : b.get(off, bytes);
  check_close(got, inputs, k.dtype, k.op, k.count, k.what());
  if (agree) check_ranks_agree(comm, nranks, got, stream, k.what());
}

void check_every_pipe_all_reduce(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, uint64_t{65537}})
        for (int32_t algo : kPipeAlgos)
          for (bool in_place : {false, true})
            check_pipe_all_reduce(comm, rank, nranks, {dtype, op, count, algo, in_place}, stream, true);
  // Several MiB: with 4 MiB areas a block's FIFO of 8 slots of 4 KiB wraps
  // dozens of times.
  for (int32_t algo : kPipeAlgos) {
    check_pipe_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_SUM, 6000001, algo, false}, stream, true);
    check_pipe_all_reduce(comm, rank, nranks, {PLX_BFLOAT16, PLX_SUM, 5000000, algo, true}, stream, true);
    check_pipe_all_reduce(comm, rank, nranks, {PLX_INT32, PLX_PROD, 3000001, algo, false}, stream, true);
    check_pipe_all_reduce(comm, rank, nranks, {PLX_FLOAT16, PLX_MAX, 4000003, algo, true}, stream, true);
    check_pipe_all_reduce(comm, rank, nranks, {PLX_FLOAT64, PLX_AVG, 1500000, algo, false}, stream, true);
  }
}

// Twelve all-reduces queued back to back (ring, trees and the full-graph
// algorithms interleaved, no host sync), then checked: epochs, halves and
// counters stay in step across kernels of different kinds.
void check_launches_in_a_row(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const int32_t algos[] = {PLX_ALGO_RING, PLX_ALGO_TREE, PLX_ALGO_AUTO, PLX_ALGO_KARY_TREE, PLX_ALGO_TWO_SHOT,
                           PLX_ALGO_RING};
  std::vector<std::unique_ptr<Device>> in, out;
  std::vector<std::vector<Bytes>> inputs;
  for (int i = 0; i < 12; ++i) {
    const uint64_t n = i % 3 == 0 ? 300001 : 1000 + 37 * i;
    inputs.emplace_back();
    for (int r = 0; r < nranks; ++r) inputs.back().push_back(input_of(r, PLX_INT64, n, 50u + i));
    in.push_back(std::make_unique<Device>(n * 8));
    out.push_back(std::make_unique<Device>(n * 8));
    in.back()->put(0, inputs.back()[rank]);
  }
  for (int i = 0; i < 12; ++i) {
    plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
    opts.algorithm = algos[i % 6];
    const uint64_t n = inputs[i][0].size() / 8;
    PLX_OK_OR_FAIL(plx_all_reduce(comm, in[i]->p, out[i]->p, n, PLX_INT64, PLX_SUM, &opts, stream.s));
  }
  stream.sync();
  for (int i = 0; i < 12; ++i) {
    const uint64_t n = inputs[i][0].size() / 8;
    check_same(out[i]->get(0, n * 8), reference(PLX_INT64, PLX_SUM, inputs[i], n), 8,
               "launch " + std::to_string(i) + algo_text(algos[i % 6]));
  }
}

// Reduce to each root and broadcast from each root over the trees (and a
// ring reduce where a ring exists), small and larger than an area, in
// place and not.
void check_tree_reduce_broadcast(plx_comm_h comm, int rank, int nranks, bool ring = true) {
  Stream stream;
  for (int root = 0; root < nranks; ++root)
    for (uint64_t count : {uint64_t{5}, uint64_t{1200001}})
      for (int32_t algo : kPipeAlgos) {
        if (algo == PLX_ALGO_RING && !ring) continue;
        plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
        opts.algorithm = algo;
        const std::string what = std::string(algo_text(algo)) + " root " + std::to_string(root) + " count " +
                                 std::to_string(count);
        std::vector<Bytes> in;
        for (int r = 0; r < nranks; ++r) in.push_back(input_of(r, PLX_INT32, count, 9));
        Device send(count * 4), recv(count * 4 + 1);
        send.put(0, in[rank]);
        PLX_OK_OR_FAIL(plx_reduce(comm, send.p, rank == root ? recv.p : nullptr, count, PLX_INT32, PLX_SUM, root,
                                  &opts, stream.s));
        stream.sync();
        if (rank == root) check_same(recv.get(0, count * 4), reference(PLX_INT32, PLX_SUM, in, count), 4, "reduce" + what);
        if (algo == PLX_ALGO_RING) continue;  // broadcast has no ring
        const uint64_t bytes = count * 4 + 1;  // an odd byte count
        const Bytes payload = input_of(root, PLX_UINT8, bytes, 3);
        if (rank == root) recv.put(0, payload);
        PLX_OK_OR_FAIL(plx_broadcast(comm, recv.p, recv.p, bytes, PLX_UINT8, root, &opts, stream.s));
        stream.sync();
        check_same(recv.get(0, bytes), payload, 1, "broadcast in place" + what);
        Device out(bytes);
        if (rank == root) send.put(0, Bytes(payload.begin(), payload.begin() + count * 4));
        PLX_OK_OR_FAIL(plx_broadcast(comm, send.p, out.p, count, PLX_INT32, root, &opts, stream.s));
        stream.sync();
        check_same(out.get(0, count * 4), Bytes(payload.begin(), payload.begin() + count * 4), 4, "broadcast" + what);
      }
}

void check_pipe_graph(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const uint64_t n = 300000;
  Device in(n * 4), ring(n * 4), tree(n * 4), kary(n * 4), bcast(n * 4);
  plx_coll_options o[3] = {PLX_COLL_OPTIONS_INIT, PLX_COLL_OPTIONS_INIT, PLX_COLL_OPTIONS_INIT};
  for (int i = 0; i < 3; ++i) o[i].algorithm = kPipeAlgos[i];
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  plx_status s[4];
  s[0] = plx_all_reduce(comm, in.p, ring.p, n, PLX_INT32, PLX_SUM, &o[0], stream.s);
  s[1] = plx_all_reduce(comm, in.p, tree.p, n, PLX_INT32, PLX_SUM, &o[1], stream.s);
  s[2] = plx_all_reduce(comm, in.p, kary.p, n, PLX_INT32, PLX_SUM, &o[2], stream.s);
  s[3] = plx_broadcast(comm, in.p, bcast.p, n, PLX_INT32, nranks - 1, &o[2], stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  for (plx_status one : s) REQUIRE(one == PLX_OK);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 5; ++replay) {
    std::vector<Bytes> inputs;
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, PLX_INT32, n, 200 + replay));
    in.put(0, inputs[rank]);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    const Bytes want = reference(PLX_INT32, PLX_SUM, inputs, n);
    check_same(ring.get(0, n * 4), want, 4, "graph replay ring");
    check_same(tree.get(0, n * 4), want, 4, "graph replay tree");
    check_same(kary.get(0, n * 4), want, 4, "graph replay kary tree");
    check_same(bcast.get(0, n * 4), inputs[nranks - 1], 4, "graph replay tree broadcast");
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

template <class Body>
void on_ranks(const char *test_case, int nranks, Body body, int timeout_ms = 20000) {
  run_p2p_ranks(test_case, nranks, [&](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank, timeout_ms);
    body(comm, rank);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.pipe_all_reduce_every_type") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  on_ranks("plugins.p2p_tree.gpu.pipe_all_reduce_every_type", 2, [](plx_comm_h comm, int rank) {
    check_every_pipe_all_reduce(comm, rank, 2);
    plx_op_stats stats{};
    stats.struct_size = sizeof(stats);
    PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
    for (int32_t algo : kPipeAlgos) CHECK(stats.algorithm_calls[algo] > 0);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_few_blocks_wrap_the_fifos") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  ScopedEnv blocks("PLEXUS_P2P_TREE_MAX_BLOCKS", "2");
  on_ranks("plugins.p2p_tree.gpu.pipe_few_blocks_wrap_the_fifos", 2, [](plx_comm_h comm, int rank) {
    Stream stream;
    for (int32_t algo : kPipeAlgos)
      for (bool in_place : {false, true})
        check_pipe_all_reduce(comm, rank, 2, {PLX_FLOAT32, PLX_SUM, 2000003, algo, in_place}, stream, true);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_launches_in_a_row") {
  if (!two_gpus()) return;
  on_ranks("plugins.p2p_tree.gpu.pipe_launches_in_a_row", 2,
           [](plx_comm_h comm, int rank) { check_launches_in_a_row(comm, rank, 2); });
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_reduce_and_broadcast") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  on_ranks("plugins.p2p_tree.gpu.pipe_reduce_and_broadcast", 2,
           [](plx_comm_h comm, int rank) { check_tree_reduce_broadcast(comm, rank, 2); });
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_graph_capture_replays") {
  if (!two_gpus()) return;
  on_ranks("plugins.p2p_tree.gpu.pipe_graph_capture_replays", 2,
           [](plx_comm_h comm, int rank) { check_pipe_graph(comm, rank, 2); });
}

// PLEXUS_P2P_TREE_ALGO=<algo> on every rank: every all-reduce takes it,
// whatever the hint; the other collectives keep their kernels.
static void forced_case(const char *test_case, const char *algo) {
  if (!two_gpus()) return;
  ScopedEnv forced("PLEXUS_P2P_TREE_ALGO", algo);
  on_ranks(test_case, 2, [](plx_comm_h comm, int rank) {
    Stream stream;
    check_pipe_all_reduce(comm, rank, 2, {PLX_BFLOAT16, PLX_SUM, 77777, PLX_ALGO_AUTO, false}, stream, true);
    check_pipe_all_reduce(comm, rank, 2, {PLX_UINT8, PLX_MIN, 3, PLX_ALGO_ONE_SHOT, true}, stream, true);
    PLX_OK_OR_FAIL(plx_barrier(comm, nullptr, stream.s));
    stream.sync();
    plx_op_stats stats{};
    stats.struct_size = sizeof(stats);
    PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
    CHECK(is_pipe(stats.last_algorithm));
  });
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_forced_ring") { forced_case("plugins.p2p_tree.gpu.pipe_forced_ring", "ring"); }
TEST_CASE("plugins.p2p_tree.gpu.pipe_forced_tree") { forced_case("plugins.p2p_tree.gpu.pipe_forced_tree", "tree"); }
TEST_CASE("plugins.p2p_tree.gpu.pipe_forced_kary_tree") {
  forced_case("plugins.p2p_tree.gpu.pipe_forced_kary_tree", "kary_tree");
}

TEST_CASE("plugins.p2p_tree.gpu.pipe_timeout_when_a_rank_skips") {
  if (!two_gpus()) return;
  ScopedEnv forced("PLEXUS_P2P_TREE_ALGO", "ring");
  on_ranks("plugins.p2p_tree.gpu.pipe_timeout_when_a_rank_skips", 2, [](plx_comm_h comm, int rank) {
    if (rank == 0) {
      Stream stream;
      Device buf(1 << 20);
      PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 1 << 18, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
      const auto start = std::chrono::steady_clock::now();
      stream.sync();  // the ring's bounded waits give up by themselves
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
      CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_TIMEOUT);
      CHECK(std::string(plx_last_error()).find("rank 1") != std::string::npos);
    } else {
      CHECK(wait_for_failure(comm, std::chrono::seconds(15)) == PLX_ERR_TIMEOUT);  // rank 0's, adopted
    }
  }, /*timeout_ms=*/1500);
}

TEST_CASE("plugins.p2p_tree.gpu.unlink_splitting_two_ranks_is_refused") {
  if (!two_gpus()) return;
  ScopedEnv unlink("PLEXUS_P2P_TREE_UNLINK", "0-1");
  run_p2p_ranks("plugins.p2p_tree.gpu.unlink_splitting_two_ranks_is_refused", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_config config = PLX_COMM_CONFIG_INIT;
    config.cuda_device = rank;
    config.init_timeout_ms = 20000;
    REQUIRE(cudaSetDevice(rank) == cudaSuccess);
    plx_comm_h comm = nullptr;
    CHECK(plx_comm_init(b, &id, 2, rank, &config, &comm) == PLX_ERR_UNSUPPORTED);
    CHECK(std::string(plx_last_error()).find("ranks 0 and 1") != std::string::npos);
  });
}

// Three GPUs with 0-2 unlinked: a line, so trees only; four with 0-2 and
// 1-3 unlinked: the ring 0 1 2 3 takes large messages.
static void partly_connected(const char *test_case, int nranks) {
  if (cuda_devices() < nranks) {
    plexus::test::skip_case("fewer than " + std::to_string(nranks) + " GPUs for the partly connected case");
    return;
  }
  ScopedEnv unlink("PLEXUS_P2P_TREE_UNLINK", nranks == 3 ? "0-2" : "0-2,1-3");
  on_ranks(test_case, nranks, [nranks](plx_comm_h comm, int rank) {
    Stream stream;
    for (uint64_t count : {uint64_t{1001}, uint64_t{3000001}})
      check_pipe_all_reduce(comm, rank, nranks, {PLX_INT32, PLX_SUM, count, PLX_ALGO_AUTO, false}, stream, false);
    plx_op_stats stats{};
    stats.struct_size = sizeof(stats);
    PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
    CHECK(stats.last_algorithm == (nranks == 4 ? PLX_ALGO_RING : PLX_ALGO_KARY_TREE));
    Device buf(4096 * nranks);
    CHECK(plx_all_gather(comm, buf.p, buf.p, 4096, PLX_UINT8, nullptr, stream.s) == PLX_ERR_UNSUPPORTED);
    CHECK(std::string(plx_last_error()).find("ranks 0 and 2") != std::string::npos);
    plx_coll_options one_shot = PLX_COLL_OPTIONS_INIT;
    one_shot.algorithm = PLX_ALGO_ONE_SHOT;
    CHECK(plx_all_reduce(comm, buf.p, buf.p, 16, PLX_INT32, PLX_SUM, &one_shot, stream.s) == PLX_ERR_UNSUPPORTED);
    PLX_OK_OR_FAIL(plx_barrier(comm, nullptr, stream.s));
    stream.sync();
    check_tree_reduce_broadcast(comm, rank, nranks, /*ring=*/nranks == 4);
  });
}

TEST_CASE("plugins.p2p_tree.gpu.partly_connected_three_ranks") {
  partly_connected("plugins.p2p_tree.gpu.partly_connected_three_ranks", 3);
}

TEST_CASE("plugins.p2p_tree.gpu.partly_connected_four_ranks") {
  partly_connected("plugins.p2p_tree.gpu.partly_connected_four_ranks", 4);
}

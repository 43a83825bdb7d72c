// pinned-host's reductions on GPUs, through the loader. One rank (any GPU):
// every dtype x op, host buffers refused, the device pool. Two ranks as
// processes (skipped with fewer than two GPUs): all-reduce for every dtype
// x op x algorithm (low-latency, one-shot, two-shot) x size (1, odd,
// unaligned, in place, more than the ring holds; both sides of the LL
// threshold, LL in batches of lines per thread) bit for bit against
// core's CPU reduction, outputs poisoned beforehand and the bytes around
// them checked untouched; float32 sent as bfloat16 and float16; a rank
// that contributes nothing; reduce to each root; reduce-scatter; the CPU
// helper's and the copy engines' paths; the statistics. Exits 77 (skipped) without a CUDA device.
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/plugins/pinned-host/pinned_gpu_util.hpp"

namespace {

using namespace plexus::test::pinned;

struct Case {
  plx_dtype dtype;
  plx_reduce_op op;
  uint64_t count;
  int32_t algo = PLX_ALGO_AUTO;
  bool in_place = false;
  plx_dtype wire = -1;
  int absent = -1;  // the rank that contributes nothing
  plx_dtype param_wire = -1;  // PLEXUS_PINNED_HOST_WIRE, for the expected result
};

std::string describe(const Case &k) {
  std::string s = std::string(plx_dtype_string(k.dtype)) + " " + plx_reduce_op_string(k.op) + " count " +
                  std::to_string(k.count) + " " + algo_text(k.algo) + (k.in_place ? " in place" : " unaligned");
  if (k.wire >= 0) s += std::string(" wire ") + plx_dtype_string(k.wire);
  if (k.absent >= 0) s += " rank " + std::to_string(k.absent) + " adds nothing";
  return s;
}

uint32_t salt_of(const Case &k) { return static_cast<uint32_t>(k.op * 1000003 + k.count * 31 + k.algo * 7 + k.in_place); }

// Buffers for a test's largest call, reused by every case.
struct Buffers {
  Device send, recv;
  explicit Buffers(size_t bytes) : send(bytes + 16), recv(bytes + 16) {}
};

Bytes expected(const Case &k, std::vector<Bytes> inputs) {
  if (k.absent >= 0) inputs.erase(inputs.begin() + k.absent);
  const plx_dtype wire = k.wire >= 0 ? k.wire : k.param_wire;
  return wire >= 0 ? wire_reference(wire, k.op, inputs, k.count) : reference(k.dtype, k.op, inputs, k.count);
}

// One all-reduce against the reference: out of place the buffers start one
// element past 16-byte alignment; the output's neighbours stay poisoned.
void check_all_reduce(plx_comm_h comm, int rank, int nranks, const Case &k, Buffers &b, const Stream &stream) {
  const size_t es = plx_dtype_size(k.dtype), bytes = k.count * es, off = k.in_place ? 0 : es;
  const std::vector<Bytes> inputs = inputs_of(nranks, k.dtype, k.count, salt_of(k));
  const bool absent = rank == k.absent, in_place = k.in_place && !absent;
  b.send.poison(), b.recv.poison();
  b.send.put(off, inputs[rank]);
  const Device &out = in_place ? b.send : b.recv;
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  o.algorithm = k.algo, o.wire_dtype = k.wire;
  if (absent) o.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, absent ? nullptr : b.send.p + off, out.p + off, k.count, k.dtype, k.op, &o,
                                stream.s));
  stream.sync();
  INFO(describe(k));
  check_same(out.get(off, bytes), expected(k, inputs), es, describe(k));
  CHECK(out.poisoned(off + bytes, kGuard));
  CHECK(out.poisoned(0, off));
}

void every_type(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(65537 * 8);
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      for (int32_t algo : {PLX_ALGO_LOW_LATENCY, PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT})
        for (uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, uint64_t{65537}})
          for (bool in_place : {false, true})
            check_all_reduce(comm, rank, nranks, {dtype, op, count, algo, in_place}, b, stream);
}

uint64_t calls_of(plx_comm_h comm, int32_t algo) {
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  PLX_OK_OR_FAIL(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats));
  return stats.algorithm_calls[algo];
}

// The automatic choice on both sides of the LL threshold (ll_max payload
// bytes per rank): every dtype x op at a third of it (odd), at it, and one
// element past it (one-shot), plus float32 sent as bfloat16 at its edge;
// the statistics show which path each took.
void ll_threshold(plx_comm_h comm, int rank, int nranks, uint64_t ll_max) {
  Stream stream;
  Buffers b(2 * ll_max + 64);
  const uint64_t ll_before = calls_of(comm, PLX_ALGO_LOW_LATENCY), bulk_before = calls_of(comm, PLX_ALGO_ONE_SHOT);
  uint64_t ll = 0, bulk = 0;
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype) {
    const uint64_t edge = ll_max / plx_dtype_size(dtype);
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      for (uint64_t count : {edge / 3 | 1, edge, edge + 1})
        for (bool in_place : {false, true}) {
          check_all_reduce(comm, rank, nranks, {dtype, op, count, PLX_ALGO_AUTO, in_place}, b, stream);
          ++(count <= edge ? ll : bulk);
        }
  }
  for (uint64_t count : {ll_max / 2, ll_max / 2 + 1}) {
    check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_SUM, count, PLX_ALGO_AUTO, false, PLX_BFLOAT16}, b, stream);
    ++(count <= ll_max / 2 ? ll : bulk);
  }
  CHECK(calls_of(comm, PLX_ALGO_LOW_LATENCY) - ll_before == ll);
  CHECK(calls_of(comm, PLX_ALGO_ONE_SHOT) - bulk_before == bulk);
}

// Several times around each rank's ring (16 stages of 256 KiB by default).
void beyond_the_ring(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{9000001});
  for (int32_t algo : {PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT}) {
    check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_SUM, 2000001, algo, false}, b, stream);
    check_all_reduce(comm, rank, nranks, {PLX_BFLOAT16, PLX_MAX, 4000003, algo, true}, b, stream);
    check_all_reduce(comm, rank, nranks, {PLX_INT8, PLX_SUM, 9000001, algo, false}, b, stream);
  }
}

void wire_precision(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{300001} * 4);
  for (plx_dtype wire : {PLX_BFLOAT16, PLX_FLOAT16})
    for (plx_reduce_op op : {PLX_SUM, PLX_PROD, PLX_MAX, PLX_AVG})
      for (int32_t algo : {PLX_ALGO_LOW_LATENCY, PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT})
        for (uint64_t count : {uint64_t{1001}, uint64_t{300001}})
          check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, op, count, algo, count < 2000, wire}, b, stream);
}

// avg is left out: plexus.h divides by every rank, the reference by the
// contributing ones.
void no_contribution(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{300001} * 8);
  for (plx_dtype dtype : {PLX_FLOAT32, PLX_INT64, PLX_BFLOAT16})
    for (plx_reduce_op op : {PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX})
      for (int32_t algo : {PLX_ALGO_LOW_LATENCY, PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT})
        for (uint64_t count : {uint64_t{999}, uint64_t{300001}})
          check_all_reduce(comm, rank, nranks, {dtype, op, count, algo, false, -1, nranks - 1}, b, stream);
}

// Reduce to every root: the root's output against the reference, the
// others' recv untouched.
void reduce_to_roots(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{700001} * 4);
  for (int root = 0; root < nranks; ++root)
    for (int32_t algo : {PLX_ALGO_LOW_LATENCY, PLX_ALGO_ONE_SHOT, PLX_ALGO_TWO_SHOT})
      for (uint64_t count : {uint64_t{1001}, uint64_t{700001}}) {
        const Case k{PLX_FLOAT32, PLX_SUM, count, algo, false};
        const std::vector<Bytes> in = inputs_of(nranks, PLX_FLOAT32, count, salt_of(k) + root);
        b.send.poison(), b.recv.poison();
        b.send.put(0, in[rank]);
        plx_coll_options o = PLX_COLL_OPTIONS_INIT;
        o.algorithm = algo;
        PLX_OK_OR_FAIL(plx_reduce(comm, b.send.p, b.recv.p, count, PLX_FLOAT32, PLX_SUM, root, &o, stream.s));
        stream.sync();
        INFO("reduce to root ", root, ": ", describe(k));
        if (rank == root) check_same(b.recv.get(0, count * 4), reference(PLX_FLOAT32, PLX_SUM, in, count), 4, "reduce");
        else CHECK(b.recv.poisoned(0, count * 4));
        CHECK(b.recv.poisoned(count * 4, kGuard));
      }
}

// Reduce-scatter: rank r gets block r reduced over the ranks, in place too.
void reduce_scatter(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{1100000} * 8 * nranks);
  for (plx_dtype dtype : {PLX_BFLOAT16, PLX_FLOAT32, PLX_INT8, PLX_FLOAT64})
    for (plx_reduce_op op : {PLX_SUM, PLX_MIN, PLX_AVG})
      for (uint64_t count : {uint64_t{1}, uint64_t{1001}, uint64_t{1100000}})
        for (bool in_place : {false, true}) {
          const size_t es = plx_dtype_size(dtype), bytes = count * es;
          const std::vector<Bytes> in = inputs_of(nranks, dtype, count * nranks, static_cast<uint32_t>(op + count));
          std::vector<Bytes> mine_of_each;  // block `rank` of every rank's input
          for (const Bytes &x : in) mine_of_each.emplace_back(x.begin() + rank * bytes, x.begin() + (rank + 1) * bytes);
          b.send.poison(), b.recv.poison();
          b.send.put(0, in[rank]);
          uint8_t *out = in_place ? b.send.p + rank * bytes : b.recv.p;
          PLX_OK_OR_FAIL(plx_reduce_scatter(comm, b.send.p, out, count, dtype, op, nullptr, stream.s));
          stream.sync();
          const std::string what = std::string("reduce_scatter ") + plx_dtype_string(dtype) + " " +
                                   plx_reduce_op_string(op) + " count " + std::to_string(count) + (in_place ? " in place" : "");
          check_same(in_place ? b.send.get(rank * bytes, bytes) : b.recv.get(0, bytes),
                     reference(dtype, op, mine_of_each, count), es, what);
          if (!in_place) CHECK(b.recv.poisoned(bytes, kGuard));
        }
}

// The CPU-helper path (the helpers run: CPU_MIN_BYTES is set): every type,
// the wire, a rank that adds nothing, reduce, many times around the ring
// and the job ring, and a graph replayed (the kernels post the jobs).
void cpu_helper(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{2000001} * 4);
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      for (uint64_t count : {uint64_t{1}, uint64_t{1001}, uint64_t{100001}})
        check_all_reduce(comm, rank, nranks, {dtype, op, count, PLX_ALGO_CPU_STAR, count == 1001}, b, stream);
  for (plx_reduce_op op : {PLX_SUM, PLX_AVG, PLX_MAX}) {
    check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, op, 300001, PLX_ALGO_CPU_STAR, false, PLX_BFLOAT16}, b, stream);
    if (op != PLX_AVG)
      check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, op, 300001, PLX_ALGO_CPU_STAR, false, -1, 1}, b, stream);
  }
  check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_SUM, 2000001, PLX_ALGO_AUTO}, b, stream);  // CPU_MIN_BYTES
  const std::vector<Bytes> in = inputs_of(nranks, PLX_FLOAT32, 100001, 11);
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  o.algorithm = PLX_ALGO_CPU_STAR;
  b.send.put(0, in[rank]);
  b.recv.poison();
  PLX_OK_OR_FAIL(plx_reduce(comm, b.send.p, b.recv.p, 100001, PLX_FLOAT32, PLX_SUM, 0, &o, stream.s));
  stream.sync();
  if (rank == 0) check_same(b.recv.get(0, 100001 * 4), reference(PLX_FLOAT32, PLX_SUM, in, 100001), 4, "cpu reduce");
  else CHECK(b.recv.poisoned(0, 100001 * 4));
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status captured = plx_all_reduce(comm, b.send.p, b.recv.p, 100001, PLX_FLOAT32, PLX_SUM, &o, stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE(captured == PLX_OK);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 40; ++replay) {  // more replays than the job ring has slots
    const std::vector<Bytes> x = inputs_of(nranks, PLX_FLOAT32, 100001, 50 + replay);
    b.send.put(0, x[rank]);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    check_same(b.recv.get(0, 100001 * 4), reference(PLX_FLOAT32, PLX_SUM, x, 100001), 4, "cpu graph replay");
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  CHECK(calls_of(comm, PLX_ALGO_CPU_STAR) > 0);
}

// The copy-engine path (COPY_MIN_BYTES is set, chunks of 1 MiB, 2 slots):
// every type at sizes of many chunks, a rank that adds nothing, reduce to
// each root, and a captured call (which takes an SM path) between eager ones.
void copy_engines(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Buffers b(uint64_t{3000001} * 8);
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      for (uint64_t count : {uint64_t{1001}, uint64_t{3000001}})
        check_all_reduce(comm, rank, nranks, {dtype, op, count, PLX_ALGO_COPY, op % 2 == 0}, b, stream);
  check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_MAX, 3000001, PLX_ALGO_COPY, false, -1, 0}, b, stream);
  for (int root = 0; root < nranks; ++root) {
    const std::vector<Bytes> in = inputs_of(nranks, PLX_INT32, 700001, 21 + root);
    plx_coll_options o = PLX_COLL_OPTIONS_INIT;
    o.algorithm = PLX_ALGO_COPY;
    b.send.put(0, in[rank]);
    b.recv.poison();
    PLX_OK_OR_FAIL(plx_reduce(comm, b.send.p, b.recv.p, 700001, PLX_INT32, PLX_SUM, root, &o, stream.s));
    stream.sync();
    if (rank == root) check_same(b.recv.get(0, 700001 * 4), reference(PLX_INT32, PLX_SUM, in, 700001), 4, "copy reduce");
    else CHECK(b.recv.poisoned(0, 700001 * 4));
  }
  const std::vector<Bytes> in = inputs_of(nranks, PLX_FLOAT32, 2000001, 77);
  b.send.put(0, in[rank]);
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status captured = plx_all_reduce(comm, b.send.p, b.recv.p, 2000001, PLX_FLOAT32, PLX_SUM, nullptr, stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE(captured == PLX_OK);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int replay = 0; replay < 3; ++replay) {
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    check_same(b.recv.get(0, 2000001 * 4), reference(PLX_FLOAT32, PLX_SUM, in, 2000001), 4, "captured, SM path");
    check_all_reduce(comm, rank, nranks, {PLX_FLOAT32, PLX_SUM, 2000001, PLX_ALGO_AUTO}, b, stream);  // copy, eager
    b.send.put(0, in[rank]);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  CHECK(calls_of(comm, PLX_ALGO_COPY) > 0);
  CHECK(calls_of(comm, PLX_ALGO_TWO_SHOT) > 0);  // the captured call
}

void expect_algorithms_counted(plx_comm_h comm) {
  CHECK(calls_of(comm, PLX_ALGO_LOW_LATENCY) > 0);
  CHECK(calls_of(comm, PLX_ALGO_ONE_SHOT) > 0);
  CHECK(calls_of(comm, PLX_ALGO_TWO_SHOT) > 0);
}

void two_ranks(const char *test_case, void (*body)(plx_comm_h, int, int)) {
  if (!two_gpus()) return;
  run_pinned_ranks(test_case, 2, [body](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank);
    body(comm, rank, 2);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

}  // namespace

TEST_CASE("plugins.pinned_host.gpu.one_rank") {
  run_pinned_ranks("plugins.pinned_host.gpu.one_rank", 1, [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 1, rank);
    CHECK(leftover_segments() == 0);  // the name went once every rank had mapped it
    Stream stream;
    Buffers buf(300001 * 8);
    for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
      for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
        for (uint64_t count : {uint64_t{1001}, uint64_t{300001}})
          check_all_reduce(comm, rank, 1, {dtype, op, count}, buf, stream);
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

TEST_CASE("plugins.pinned_host.gpu.two_ranks_all_reduce_every_type") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_all_reduce_every_type", [](plx_comm_h comm, int rank, int n) {
    every_type(comm, rank, n);
    expect_algorithms_counted(comm);
  });
}

// The default LL_MAX_BYTES (128K): two lines per thread over 16 blocks at its edge.
TEST_CASE("plugins.pinned_host.gpu.two_ranks_ll_threshold") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_ll_threshold",
            [](plx_comm_h comm, int rank, int n) { ll_threshold(comm, rank, n, uint64_t{128} << 10); });
}

// LL_BLOCKS=1 and LL_MAX_BYTES=256K: up to 64 lines per thread, in batches
// (full, partial, and a peer's next batch in flight).
TEST_CASE("plugins.pinned_host.gpu.two_ranks_ll_batches") {
  setenv("PLEXUS_PINNED_HOST_LL_BLOCKS", "1", 1);
  setenv("PLEXUS_PINNED_HOST_LL_MAX_BYTES", "256K", 1);
  two_ranks("plugins.pinned_host.gpu.two_ranks_ll_batches",
            [](plx_comm_h comm, int rank, int n) {
              ll_threshold(comm, rank, n, uint64_t{256} << 10);
              reduce_scatter(comm, rank, n);
            });
  unsetenv("PLEXUS_PINNED_HOST_LL_BLOCKS");
  unsetenv("PLEXUS_PINNED_HOST_LL_MAX_BYTES");
}

TEST_CASE("plugins.pinned_host.gpu.two_ranks_beyond_the_ring") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_beyond_the_ring", beyond_the_ring);
}

TEST_CASE("plugins.pinned_host.gpu.two_ranks_wire_precision") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_wire_precision", wire_precision);
}

// PLEXUS_PINNED_HOST_WIRE=bf16: float32 reductions without options travel as bfloat16.
TEST_CASE("plugins.pinned_host.gpu.two_ranks_wire_param") {
  setenv("PLEXUS_PINNED_HOST_WIRE", "bf16", 1);
  two_ranks("plugins.pinned_host.gpu.two_ranks_wire_param", [](plx_comm_h comm, int rank, int n) {
    Stream stream;
    Buffers b(uint64_t{300001} * 4);
    for (uint64_t count : {uint64_t{1001}, uint64_t{300001}})
      check_all_reduce(comm, rank, n, {PLX_FLOAT32, PLX_SUM, count, PLX_ALGO_AUTO, false, -1, -1, PLX_BFLOAT16}, b,
                       stream);
  });
  unsetenv("PLEXUS_PINNED_HOST_WIRE");
}

// PLEXUS_PINNED_HOST_CPU_MIN_BYTES=1M: a CPU helper thread per rank.
TEST_CASE("plugins.pinned_host.gpu.two_ranks_cpu_helper") {
  setenv("PLEXUS_PINNED_HOST_CPU_MIN_BYTES", "1M", 1);
  two_ranks("plugins.pinned_host.gpu.two_ranks_cpu_helper", cpu_helper);
  unsetenv("PLEXUS_PINNED_HOST_CPU_MIN_BYTES");
}

// PLEXUS_PINNED_HOST_COPY_MIN_BYTES=1M: the copy engines, 1 MiB chunks in 2 slots.
TEST_CASE("plugins.pinned_host.gpu.two_ranks_copy_engines") {
  setenv("PLEXUS_PINNED_HOST_COPY_MIN_BYTES", "1M", 1);
  setenv("PLEXUS_PINNED_HOST_COPY_CHUNK_BYTES", "1M", 1);
  setenv("PLEXUS_PINNED_HOST_COPY_STAGES", "2", 1);
  two_ranks("plugins.pinned_host.gpu.two_ranks_copy_engines", copy_engines);
  for (const char *v : {"PLEXUS_PINNED_HOST_COPY_MIN_BYTES", "PLEXUS_PINNED_HOST_COPY_CHUNK_BYTES",
                        "PLEXUS_PINNED_HOST_COPY_STAGES"})
    unsetenv(v);
}

TEST_CASE("plugins.pinned_host.gpu.two_ranks_no_contribution") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_no_contribution", no_contribution);
}

TEST_CASE("plugins.pinned_host.gpu.two_ranks_reduce_and_reduce_scatter") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_reduce_and_reduce_scatter", [](plx_comm_h comm, int rank, int n) {
    reduce_to_roots(comm, rank, n);
    reduce_scatter(comm, rank, n);
  });
}

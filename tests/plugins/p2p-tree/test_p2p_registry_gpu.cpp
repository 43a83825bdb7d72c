// Registered outputs (plugins/p2p-tree/p2p_registry.hpp): two-shot
// all-reduces into buffers registered with plx_mem_register and into
// plx_mem_alloc blocks, where the peers store their reduced chunks in
// place once they have mapped the registration (a watchdog poll, a few
// ms: the calls are repeated with pauses so that both paths run); every
// element against the CPU reference, outputs poisoned first. Then
// deregistration (collective: a handshake with the peers' watchdogs), bad
// input, and the pool's pinned segment; a CUDA graph captured before the
// peers mapped its outputs, replayed before and after a deregistration.
// Needs two GPUs; uses up to 4.
#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using plexus::test::p2p::cuda_devices;
using plexus::test::p2p::join;
using plexus::test::p2p::run_p2p_ranks;
using namespace plexus::test::p2p;

constexpr uint8_t kPoison = 0xa5;

// count elements at send -> recv (both device pointers), forced two-shot,
// `rounds` times with fresh inputs; pauses between the first rounds let the
// peers map the registration.
void check_rounds(plx_comm_h comm, int rank, int nranks, plx_dtype dtype, uint8_t *send, uint8_t *recv,
                  uint64_t count, int rounds, const Stream &stream, const char *what) {
  const size_t es = plx_dtype_size(dtype), bytes = count * es;
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = PLX_ALGO_TWO_SHOT;
  for (int round = 0; round < rounds; ++round) {
    std::vector<Bytes> inputs;
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, 7 + round));
    if (send != recv) REQUIRE(cudaMemset(recv, kPoison, bytes) == cudaSuccess);
    REQUIRE(cudaMemcpy(send, inputs[rank].data(), bytes, cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    PLX_OK_OR_FAIL(plx_all_reduce(comm, send, recv, count, dtype, PLX_SUM, &opts, stream.s));
    stream.sync();
    Bytes got(bytes);
    REQUIRE(cudaMemcpy(got.data(), recv, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    check_same(got, reference(dtype, PLX_SUM, inputs, count), es,
               std::string(what) + " round " + std::to_string(round) + " count " + std::to_string(count));
    if (round < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// plx_mem_register'ed cudaMalloc buffers: the whole output, a sub-range, an
// unaligned start (not posted: the exchange areas), in place.
void check_registered(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 1500001;  // float32: several 4 MiB launches, a short last chunk
  Device send(count * 4 + 4096), recv(count * 4 + 4096);
  plx_mem_reg_h reg_send = nullptr, reg_recv = nullptr;
  PLX_OK_OR_FAIL(plx_mem_register(comm, recv.p, recv.bytes, &reg_recv));
  PLX_OK_OR_FAIL(plx_mem_register(comm, send.p, send.bytes, &reg_send));
  check_rounds(comm, rank, nranks, PLX_FLOAT32, send.p, recv.p, count, 6, stream, "registered");
  check_rounds(comm, rank, nranks, PLX_FLOAT32, send.p, recv.p + 4096, count - 2000, 2, stream, "sub-range");
  check_rounds(comm, rank, nranks, PLX_FLOAT32, send.p, recv.p + 4, count - 3, 2, stream, "unaligned");
  check_rounds(comm, rank, nranks, PLX_BFLOAT16, recv.p, recv.p, 2 * count + 5, 2, stream, "in place");
  PLX_OK_OR_FAIL(plx_mem_deregister(comm, reg_recv));
  PLX_OK_OR_FAIL(plx_mem_deregister(comm, reg_send));
  // Deregistered: the same buffers through the exchange areas.
  check_rounds(comm, rank, nranks, PLX_FLOAT32, send.p, recv.p, count, 1, stream, "deregistered");
}

// A plx_mem_alloc block's segment is registered on its first two-shot use
// and pinned: freed blocks give their bytes back, trim keeps the segment.
void check_pool_blocks(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 3000000;
  plx_mem_alloc_params params{sizeof(plx_mem_alloc_params), PLX_MEM_DEVICE, count * 2, 0, 5, 0};
  void *send = nullptr, *recv = nullptr;
  PLX_OK_OR_FAIL(plx_mem_alloc(comm, &params, &send));
  PLX_OK_OR_FAIL(plx_mem_alloc(comm, &params, &recv));
  check_rounds(comm, rank, nranks, PLX_BFLOAT16, static_cast<uint8_t *>(send), static_cast<uint8_t *>(recv), count,
               6, stream, "pool block");
  PLX_OK_OR_FAIL(plx_mem_free(comm, recv));
  PLX_OK_OR_FAIL(plx_mem_free(comm, send));
  plx_mem_stats stats{};
  stats.struct_size = sizeof(stats);
  PLX_OK_OR_FAIL(plx_mem_stats_get(comm, PLX_MEM_DEVICE, PLX_MEM_TAG_ALL, &stats));
  CHECK(stats.bytes_in_use == 0);
  uint64_t released = 0;
  PLX_OK_OR_FAIL(plx_mem_trim(comm, PLX_MEM_DEVICE, 0, &released));
  PLX_OK_OR_FAIL(plx_mem_stats_get(comm, PLX_MEM_DEVICE, PLX_MEM_TAG_ALL, &stats));
  CHECK(stats.bytes_reserved >= count * 2);  // the pinned segment stays: the peers map it
}

void check_bad_input(plx_comm_h comm) {
  std::vector<float> host(1024);
  plx_mem_reg_h reg = nullptr;
  CHECK(plx_mem_register(comm, host.data(), 4096, &reg) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(std::string(plx_last_error()).find("not device memory") != std::string::npos);
  Device d(4096);
  CHECK(plx_mem_register(comm, d.p, 1 << 30, &reg) == PLX_ERR_INVALID_ARGUMENT);  // past its allocation
  PLX_OK_OR_FAIL(plx_mem_register(comm, d.p, 4096, &reg));
  PLX_OK_OR_FAIL(plx_mem_deregister(comm, reg));
  CHECK(plx_mem_deregister(comm, reg) == PLX_ERR_INVALID_ARGUMENT);  // twice
}

// A graph captured before any peer mapped its outputs: two two-shots into a
// plx_mem_alloc block (first used inside the capture) and into a
// plx_mem_register'ed buffer, replayed with fresh inputs and pauses (the
// watchdogs map and acknowledge meanwhile, so later replays write in
// place); then the buffer is deregistered and the graph replayed again:
// those replays copy out, correct and with no failure.
void check_graph_first_use(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 1 << 20;  // float32, 4 MiB: past the one-shots on 2 and 4 ranks
  const size_t bytes = count * 4;
  plx_mem_alloc_params params{sizeof(plx_mem_alloc_params), PLX_MEM_DEVICE, bytes, 0, 6, 0};
  void *pool_out = nullptr;
  PLX_OK_OR_FAIL(plx_mem_alloc(comm, &params, &pool_out));
  Device send(bytes), reg_out(bytes);
  plx_mem_reg_h reg = nullptr;
  PLX_OK_OR_FAIL(plx_mem_register(comm, reg_out.p, bytes, &reg));
  plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
  opts.algorithm = PLX_ALGO_TWO_SHOT;
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status a = plx_all_reduce(comm, send.p, pool_out, count, PLX_FLOAT32, PLX_SUM, &opts, stream.s);
  const plx_status b = plx_all_reduce(comm, send.p, reg_out.p, count, PLX_FLOAT32, PLX_SUM, &opts, stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE((a == PLX_OK && b == PLX_OK));
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 8; ++replay) {
    if (replay == 6) PLX_OK_OR_FAIL(plx_mem_deregister(comm, reg));  // collective: every rank here
    std::vector<Bytes> inputs;
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, PLX_FLOAT32, count, 300 + replay));
    send.put(0, inputs[rank]);
    REQUIRE(cudaMemset(pool_out, kPoison, bytes) == cudaSuccess);
    REQUIRE(cudaMemset(reg_out.p, kPoison, bytes) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    const Bytes want = reference(PLX_FLOAT32, PLX_SUM, inputs, count);
    Bytes got(bytes);
    REQUIRE(cudaMemcpy(got.data(), pool_out, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    check_same(got, want, 4, "graph, pool block, replay " + std::to_string(replay));
    check_same(reg_out.get(0, bytes), want, 4, "graph, registered buffer, replay " + std::to_string(replay));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  plx_status state = PLX_ERR_INTERNAL;
  REQUIRE(plx_comm_async_status(comm, &state) == PLX_OK);
  CHECK(state == PLX_OK);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  PLX_OK_OR_FAIL(plx_mem_free(comm, pool_out));
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.registered_in_graph") {
  if (!two_gpus()) return;
  const int nranks = std::min(cuda_devices(), 4);
  run_p2p_ranks("plugins.p2p_tree.gpu.registered_in_graph", nranks,
                [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    Stream stream;
    check_graph_first_use(comm, rank, nranks, stream);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

namespace {

// The registered and pool-block all-reduces on every GPU up to 4 (bad
// input first when asked).
void run_registered(const char *test_case, bool bad_input) {
  const int nranks = std::min(cuda_devices(), 4);
  run_p2p_ranks(test_case, nranks, [nranks, bad_input](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    Stream stream;
    if (bad_input) check_bad_input(comm);
    check_registered(comm, rank, nranks, stream);
    check_pool_blocks(comm, rank, nranks, stream);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.registered_outputs") {
  if (!two_gpus()) return;
  const ScopedEnv slots = small_slots();
  run_registered("plugins.p2p_tree.gpu.registered_outputs", true);
}

// The same with 4 worker blocks and 3 copy blocks, so that every share goes
// in rounds: outputs that every peer posted take the whole share in one
// piece and the last round's signal, the others (unaligned, deregistered)
// the rounds and their copy-out.
TEST_CASE("plugins.p2p_tree.gpu.registered_outputs_in_rounds") {
  if (!two_gpus()) return;
  const std::pair<const char *, const char *> settings[] = {
      {"PLEXUS_P2P_TREE_SLOT_BYTES", "4M"}, {"PLEXUS_P2P_TREE_MAX_BLOCKS", "4"}, {"PLEXUS_P2P_TREE_COPY_BLOCKS", "3"}};
  for (const auto &[name, value] : settings) setenv(name, value, 1);
  run_registered("plugins.p2p_tree.gpu.registered_outputs_in_rounds", false);
  for (const auto &setting : settings) unsetenv(setting.first);
}

// p2p-tree with its ranks as threads of one process, one GPU each (every
// GPU up to 4; skipped with fewer than two): CUDA IPC cannot open a handle
// in the process that made it, so each rank uses its peers' exchange blocks
// and registered buffers at their addresses, with peer access. All-reduces
// through every kernel (LL and LL128 lines, bulk, LL128 two-shot, two-shot
// over several launches of 4 MiB slots, in place), a registered output
// repeated until the peers write it in place, the copy collectives, and a
// CUDA graph; outputs poisoned, every element against core's CPU reduction.
#include <doctest/doctest.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_first_calls.hpp"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using plexus::test::p2p::cuda_devices;
using plexus::test::p2p::join;
using plexus::test::p2p::run_p2p_ranks;
using namespace plexus::test::p2p;  // Stream, Device, input_of, reference, check_same

constexpr uint8_t kPoison = 0xa5;

// count elements from send to recv (device pointers; recv poisoned first
// unless in place), salted inputs, against the reference.
void check_sum(plx_comm_h comm, int rank, int nranks, plx_dtype dtype, uint64_t count, uint8_t *send, uint8_t *recv,
               uint32_t salt, const Stream &stream, const std::string &what) {
  const size_t es = plx_dtype_size(dtype), bytes = count * es;
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, salt));
  if (send != recv) REQUIRE(cudaMemset(recv, kPoison, bytes) == cudaSuccess);
  REQUIRE(cudaMemcpy(send, inputs[rank].data(), bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  PLX_OK_OR_FAIL(plx_all_reduce(comm, send, recv, count, dtype, PLX_SUM, nullptr, stream.s));
  stream.sync();
  Bytes got(bytes);
  REQUIRE(cudaMemcpy(got.data(), recv, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
  check_same(got, reference(dtype, PLX_SUM, inputs, count), es, what + " count " + std::to_string(count));
}

// Every all-reduce kernel by size (auto's choice), out of place (unaligned
// by one element) and in place.
void check_sizes(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  for (uint64_t count : {uint64_t{7}, uint64_t{65537}, uint64_t{300001}, uint64_t{1500001}}) {
    Device send(count * 4 + 4), recv(count * 4 + 4);
    check_sum(comm, rank, nranks, PLX_FLOAT32, count, send.p + 4, recv.p + 4, 1, stream, "float32 unaligned");
    check_sum(comm, rank, nranks, PLX_BFLOAT16, count * 2, send.p, send.p, 2, stream, "bfloat16 in place");
  }
}

// A registered output, repeated with pauses: the first calls copy out, the
// later ones are written in place once every peer's watchdog mapped it.
void check_registered(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 1500001;
  Device send(count * 4), recv(count * 4);
  plx_mem_reg_h reg = nullptr;
  PLX_OK_OR_FAIL(plx_mem_register(comm, recv.p, recv.bytes, &reg));
  for (uint32_t round = 0; round < 5; ++round) {
    check_sum(comm, rank, nranks, PLX_FLOAT32, count, send.p, recv.p, 10 + round, stream,
              "registered round " + std::to_string(round));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  PLX_OK_OR_FAIL(plx_mem_deregister(comm, reg));
  check_sum(comm, rank, nranks, PLX_FLOAT32, count, send.p, recv.p, 20, stream, "deregistered");
}

// Broadcast, all-gather, gather and reduce-scatter, once each.
void check_copies(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 300001;
  const size_t bytes = count * 4;
  std::vector<Bytes> in;
  for (int r = 0; r < nranks; ++r) in.push_back(input_of(r, PLX_FLOAT32, count, 30));
  Device send(bytes), recv(bytes * nranks);
  send.put(0, in[rank]);
  PLX_OK_OR_FAIL(plx_broadcast(comm, send.p, recv.p, count, PLX_FLOAT32, nranks - 1, nullptr, stream.s));
  stream.sync();
  check_same(recv.get(0, bytes), in[nranks - 1], 4, "broadcast");
  PLX_OK_OR_FAIL(plx_all_gather(comm, send.p, recv.p, count, PLX_FLOAT32, nullptr, stream.s));
  stream.sync();
  for (int r = 0; r < nranks; ++r) check_same(recv.get(r * bytes, bytes), in[r], 4, "all_gather");
  if (rank == 0) recv.put(0, Bytes(bytes * nranks, kPoison));
  PLX_OK_OR_FAIL(plx_gather(comm, send.p, rank == 0 ? recv.p : nullptr, count, nullptr, PLX_FLOAT32, 0, nullptr,
                            stream.s));
  stream.sync();
  for (int r = 0; rank == 0 && r < nranks; ++r) check_same(recv.get(r * bytes, bytes), in[r], 4, "gather");
  const uint64_t share = count / nranks;
  std::vector<Bytes> blocks;  // block `rank` of every rank's input
  for (int r = 0; r < nranks; ++r)
    blocks.emplace_back(in[r].begin() + rank * share * 4, in[r].begin() + (rank + 1) * share * 4);
  PLX_OK_OR_FAIL(plx_reduce_scatter(comm, send.p, recv.p, share, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
  stream.sync();
  check_same(recv.get(0, share * 4), reference(PLX_FLOAT32, PLX_SUM, blocks, share), 4, "reduce_scatter");
}

// A two-shot captured once, replayed with fresh inputs.
void check_graph(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const uint64_t count = 1 << 20;
  Device in(count * 4), out(count * 4);
  plx_coll_options two_shot = PLX_COLL_OPTIONS_INIT;
  two_shot.algorithm = PLX_ALGO_TWO_SHOT;
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  const plx_status s = plx_all_reduce(comm, in.p, out.p, count, PLX_FLOAT32, PLX_SUM, &two_shot, stream.s);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE(s == PLX_OK);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 3; ++replay) {
    std::vector<Bytes> inputs;
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, PLX_FLOAT32, count, 40 + replay));
    in.put(0, inputs[rank]);
    REQUIRE(cudaMemset(out.p, kPoison, count * 4) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    check_same(out.get(0, count * 4), reference(PLX_FLOAT32, PLX_SUM, inputs, count), 4,
               "graph replay " + std::to_string(replay));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

void thread_rank(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join(b, id, nranks, rank);
  Stream stream;
  check_sizes(comm, rank, nranks, stream);
  check_registered(comm, rank, nranks, stream);
  check_copies(comm, rank, nranks, stream);
  check_graph(comm, rank, nranks, stream);
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.thread_ranks") {
  if (!two_gpus()) return;
  const int nranks = std::min(cuda_devices(), 4);
  const ScopedEnv slots("PLEXUS_P2P_TREE_SLOT_BYTES", "4M");  // 1500001 floats: two launches
  run_p2p_ranks("plugins.p2p_tree.gpu.thread_ranks", 1, [nranks](plx_backend_h b, const plx_unique_id &id, int) {
    const int failed = run_thread_ranks(nranks, [&](int r) { thread_rank(b, id, nranks, r); });
    CHECK(failed == 0);
  });
}

// Two thread ranks on two GPUs in a process of their own, whose kernels
// CUDA loads lazily (its default), so the case also shows each rank loading
// its kernels on its own device at init.
TEST_CASE("plugins.p2p_tree.gpu.thread_ranks_first_wire_call_while_peer_waits") {
  if (!two_gpus()) return;
  static const char *const name = "plugins.p2p_tree.gpu.thread_ranks_first_wire_call_while_peer_waits";
  const ScopedEnv lazy("CUDA_MODULE_LOADING", "LAZY");
  plexus::test::run_in_fresh_process(name, [] {
    run_p2p_ranks(name, 1, [](plx_backend_h b, const plx_unique_id &id, int) {
      std::barrier<> meeting(2);
      plexus::test::before_collective() = [&meeting] { meeting.arrive_and_wait(); };
      const int failed = run_thread_ranks(2, [&](int r) {
        plx_comm_h comm = join(b, id, 2, r);
        first_wire_call_while_peer_waits(comm, r, 2);
        CHECK(plx_comm_destroy(comm) == PLX_OK);
      }, [&meeting] { meeting.arrive_and_drop(); });
      plexus::test::before_collective() = nullptr;
      CHECK(failed == 0);
    });
  });
}

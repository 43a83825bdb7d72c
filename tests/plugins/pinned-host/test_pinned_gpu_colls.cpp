// pinned-host's copies, barrier, graphs and thread ranks on GPUs:
// broadcast from every root, all-gather and gather (per-rank counts, zero
// among them) on the low-latency and the bulk path (also with LL in
// batches of lines per thread), in place and one byte off alignment,
// outputs poisoned beforehand; a barrier; CUDA graphs of
// every path replayed with fresh inputs; two ranks as threads of one
// process. Exits 77 (skipped) without a CUDA device.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "tests/plugins/pinned-host/pinned_gpu_util.hpp"

namespace {

using namespace plexus::test::pinned;

constexpr uint64_t kSizes[] = {1, 999, 60000, 1500001};  // bytes: LL, LL, LL, bulk (several times the ring)

void broadcast(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Device send(kSizes[3] + 1), recv(kSizes[3] + 1);
  for (int root = 0; root < nranks; ++root)
    for (uint64_t n : kSizes)
      for (bool in_place : {false, true}) {
        const Bytes in = input_of(root, PLX_UINT8, n, static_cast<uint32_t>(n));
        const size_t off = in_place ? 0 : 1;
        send.poison(), recv.poison();
        send.put(off, in);
        uint8_t *out = in_place && rank == root ? send.p + off : recv.p + off;
        PLX_OK_OR_FAIL(plx_broadcast(comm, send.p + off, out, n, PLX_UINT8, root, nullptr, stream.s));
        stream.sync();
        INFO("broadcast root ", root, " bytes ", n, in_place ? " in place" : " unaligned");
        const Device &dev = in_place && rank == root ? send : recv;
        check_same(dev.get(off, n), in, 1, "broadcast");
        CHECK(dev.poisoned(off + n, kGuard));
      }
}

void all_gather(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  Device send(kSizes[3] + 1), recv(kSizes[3] * nranks + 1);
  for (uint64_t n : kSizes)
    for (bool in_place : {false, true}) {
      const std::vector<Bytes> in = inputs_of(nranks, PLX_UINT8, n, static_cast<uint32_t>(n + 1));
      const size_t off = in_place ? 0 : 1;
      send.poison(), recv.poison();
      send.put(off, in[rank]);
      if (in_place) recv.put(rank * n, in[rank]);
      const uint8_t *src = in_place ? recv.p + rank * n : send.p + off;
      PLX_OK_OR_FAIL(plx_all_gather(comm, src, recv.p + off, n, PLX_UINT8, nullptr, stream.s));
      stream.sync();
      INFO("all_gather bytes ", n, in_place ? " in place" : " unaligned");
      for (int q = 0; q < nranks; ++q) check_same(recv.get(off + q * n, n), in[q], 1, "all_gather");
      CHECK(recv.poisoned(off + nranks * n, kGuard));
    }
}

// Gather of float16: every rank count each, then per-rank counts where the
// odd ranks send nothing; the root's output is the parts in rank order.
void gather(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const uint64_t most = 700001;
  Device send(most * 2 + 2), recv(most * 2 * nranks + 2 * nranks);
  for (int root = 0; root < nranks; ++root)
    for (uint64_t count : {uint64_t{3}, uint64_t{20000}, most})
      for (bool varied : {false, true}) {
        std::vector<uint64_t> counts(nranks, count);
        if (varied)
          for (int q = 0; q < nranks; ++q) counts[q] = q % 2 ? 0 : count + q;
        std::vector<Bytes> in;
        for (int q = 0; q < nranks; ++q) in.push_back(input_of(q, PLX_FLOAT16, counts[q], static_cast<uint32_t>(count)));
        send.poison(), recv.poison();
        send.put(2, in[rank]);
        PLX_OK_OR_FAIL(plx_gather(comm, send.p + 2, recv.p + 2, counts[rank], varied ? counts.data() : nullptr,
                                  PLX_FLOAT16, root, nullptr, stream.s));
        stream.sync();
        INFO("gather root ", root, " count ", count, varied ? " per-rank counts" : "");
        size_t at = 2;
        for (int q = 0; q < nranks; ++q) {
          if (rank == root) check_same(recv.get(at, counts[q] * 2), in[q], 2, "gather");
          at += counts[q] * 2;
        }
        CHECK(recv.poisoned(rank == root ? at : 0, rank == root ? kGuard : at));
      }
}

void barrier(plx_comm_h comm) {
  Stream stream;
  for (int i = 0; i < 100; ++i) PLX_OK_OR_FAIL(plx_barrier(comm, nullptr, stream.s));
  stream.sync();
}

// Every path captured once and replayed: the steps and epochs advance on
// the device, so each replay agrees with the peers.
void graph_replays(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const uint64_t n = 300001, small = 3001;
  Device in(n * 4), ll(small * 4), one(n * 4), two(n * 4), bcast(n * 4);
  plx_coll_options o[3] = {PLX_COLL_OPTIONS_INIT, PLX_COLL_OPTIONS_INIT, PLX_COLL_OPTIONS_INIT};
  o[0].algorithm = PLX_ALGO_LOW_LATENCY, o[1].algorithm = PLX_ALGO_ONE_SHOT, o[2].algorithm = PLX_ALGO_TWO_SHOT;
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status s[] = {plx_all_reduce(comm, in.p, ll.p, small, PLX_FLOAT32, PLX_SUM, &o[0], stream.s),
                          plx_all_reduce(comm, in.p, one.p, n, PLX_FLOAT32, PLX_SUM, &o[1], stream.s),
                          plx_all_reduce(comm, in.p, two.p, n, PLX_FLOAT32, PLX_SUM, &o[2], stream.s),
                          plx_barrier(comm, nullptr, stream.s),
                          plx_broadcast(comm, in.p, bcast.p, n, PLX_FLOAT32, nranks - 1, nullptr, stream.s)};
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  for (plx_status st : s) REQUIRE(st == PLX_OK);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (uint32_t replay = 0; replay < 5; ++replay) {
    const std::vector<Bytes> inputs = inputs_of(nranks, PLX_FLOAT32, n, 100 + replay);
    std::vector<Bytes> heads;
    for (const Bytes &x : inputs) heads.emplace_back(x.begin(), x.begin() + small * 4);
    in.put(0, inputs[rank]);
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    INFO("replay ", replay);
    check_same(ll.get(0, small * 4), reference(PLX_FLOAT32, PLX_SUM, heads, small), 4, "graph low-latency");
    const Bytes want = reference(PLX_FLOAT32, PLX_SUM, inputs, n);
    check_same(one.get(0, n * 4), want, 4, "graph one-shot");
    check_same(two.get(0, n * 4), want, 4, "graph two-shot");
    check_same(bcast.get(0, n * 4), inputs[nranks - 1], 4, "graph broadcast");
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  // Eager calls after the replays still agree on the steps and epochs.
  const std::vector<Bytes> inputs = inputs_of(nranks, PLX_INT32, 999, 7);
  in.put(0, inputs[rank]);
  PLX_OK_OR_FAIL(plx_all_reduce(comm, in.p, one.p, 999, PLX_INT32, PLX_MAX, nullptr, stream.s));
  stream.sync();
  check_same(one.get(0, 999 * 4), reference(PLX_INT32, PLX_MAX, inputs, 999), 4, "eager after the graph");
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

TEST_CASE("plugins.pinned_host.gpu.two_ranks_copies") {
  two_ranks("plugins.pinned_host.gpu.two_ranks_copies", [](plx_comm_h comm, int rank, int n) {
    broadcast(comm, rank, n);
    all_gather(comm, rank, n);
    gather(comm, rank, n);
    barrier(comm);
  });
}

// LL_BLOCKS=1, LL_MAX_BYTES=1M: the LL copies (60000 bytes, gather's 40000)
// read up to 15 lines per thread, in batches.
TEST_CASE("plugins.pinned_host.gpu.two_ranks_copies_ll_batches") {
  setenv("PLEXUS_PINNED_HOST_LL_BLOCKS", "1", 1);
  setenv("PLEXUS_PINNED_HOST_LL_MAX_BYTES", "1M", 1);
  two_ranks("plugins.pinned_host.gpu.two_ranks_copies_ll_batches", [](plx_comm_h comm, int rank, int n) {
    broadcast(comm, rank, n);
    all_gather(comm, rank, n);
    gather(comm, rank, n);
    barrier(comm);
  });
  unsetenv("PLEXUS_PINNED_HOST_LL_BLOCKS");
  unsetenv("PLEXUS_PINNED_HOST_LL_MAX_BYTES");
}

TEST_CASE("plugins.pinned_host.gpu.graph_capture_replays") {
  const int nranks = cuda_devices() >= 2 ? 2 : 1;
  run_pinned_ranks("plugins.pinned_host.gpu.graph_capture_replays", nranks,
                   [nranks](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, nranks, rank);
    graph_replays(comm, rank, nranks);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

// Two ranks as threads of this process, one GPU each.
TEST_CASE("plugins.pinned_host.gpu.thread_ranks") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.thread_ranks", 1, [](plx_backend_h b, const plx_unique_id &id, int) {
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    for (int r = 0; r < 2; ++r)
      threads.emplace_back([&, r] {
        try {  // a REQUIRE throws; it must not leave the thread
          plx_comm_h comm = join(b, id, 2, r);
          Stream stream;
          const std::vector<Bytes> in = inputs_of(2, PLX_FLOAT32, 100001, 3);
          Device buf(100001 * 4);
          buf.put(0, in[r]);
          PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 100001, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
          stream.sync();
          check_same(buf.get(0, 100001 * 4), reference(PLX_FLOAT32, PLX_SUM, in, 100001), 4, "thread ranks");
          CHECK(plx_comm_destroy(comm) == PLX_OK);
        } catch (...) {
          ++failed;
        }
      });
    for (std::thread &t : threads) t.join();
    CHECK(failed == 0);
  });
}

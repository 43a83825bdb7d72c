// plexus-bench-launch: the floor under every collective kernel on this
// machine. How long the host takes to enqueue one kernel, how often the GPU
// runs back-to-back kernels (eager and in a CUDA graph, with and without
// programmatic dependent launch), and how long a store takes to reach the
// other GPU (a flag ping-pong over peer access). A one-shot all-reduce
// cannot beat one launch period plus one crossing; docs/performance.md
// puts p2p-tree's small-message times against these. With --push, also
// the NVLink bandwidth of every way to move a two-shot phase's traffic
// (nvlink.hpp), the ceiling of an all-reduce's bus bandwidth; with
// --ce-model, an all-reduce whose NVLink traffic all goes by copy engines
// (ce_model.hpp). With --contexts (alone), the host's cost of a launch as
// the process takes on peers (contexts.hpp). Exits 77 (skipped) without a
// CUDA device.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "kernels/probe.hpp"
#include "tools/plexus-bench-launch/ce_model.hpp"
#include "tools/plexus-bench-launch/common.hpp"
#include "tools/plexus-bench-launch/contexts.hpp"
#include "tools/plexus-bench-launch/nvlink.hpp"

namespace {

namespace probe = plexus::kernels::probe;
using namespace plexus::bench_launch;

// The time from the first enqueue until n kernels all ran.
double eager_period_us(const Shape &s, int n, cudaStream_t stream) {
  return median_of(9, [&] {
    const auto start = Clock::now();
    enqueue(s, n, stream);
    ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    return us_since(start, n);
  });
}

// n kernels captured in one graph, launched and waited for.
double graph(const Shape &s, int n, cudaStream_t stream) {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (!ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture")) return -1;
  enqueue(s, n, stream);
  if (!ok(cudaStreamEndCapture(stream, &g), "cudaStreamEndCapture") ||
      !ok(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate"))
    return -1;
  const double us = median_of(9, [&] {
    const auto start = Clock::now();
    ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    return us_since(start, n);
  });
  cudaGraphExecDestroy(exec), cudaGraphDestroy(g);
  return us;
}

void launches(cudaStream_t stream, std::FILE *csv) {
  const int n = 2000;
  for (unsigned blocks : {1u, 128u})
    for (bool dependent : {false, true}) {
      const Shape s{blocks, 512, dependent};
      enqueue(s, 100, stream), cudaStreamSynchronize(stream);
      row(csv, "host_enqueue", s, enqueue_us(s, n, stream));
      row(csv, "eager_period", s, eager_period_us(s, n, stream));
      row(csv, "graph_period", s, graph(s, 200, stream));
    }
}

struct PingPair {
  uint64_t *flag[2] = {};
  cudaStream_t stream[2] = {};
};

bool make_pair(PingPair &p) {
  for (int d = 0; d < 2; ++d) {
    if (!ok(cudaSetDevice(d), "cudaSetDevice")) return false;
    const cudaError_t peer = cudaDeviceEnablePeerAccess(1 - d, 0);
    if (peer != cudaErrorPeerAccessAlreadyEnabled && !ok(peer, "cudaDeviceEnablePeerAccess")) return false;
    (void)cudaGetLastError();
    if (!ok(cudaMalloc(reinterpret_cast<void **>(&p.flag[d]), sizeof(uint64_t)), "cudaMalloc") ||
        !ok(cudaStreamCreateWithFlags(&p.stream[d], cudaStreamNonBlocking), "cudaStreamCreate"))
      return false;
  }
  return true;
}

// One-way latency in µs: `rounds` round trips from GPU 0 to GPU 1 and back.
double ping_once(PingPair &p, int rounds) {
  for (int d = 0; d < 2; ++d) cudaSetDevice(d), cudaMemset(p.flag[d], 0, sizeof(uint64_t)), cudaDeviceSynchronize();
  const auto start = Clock::now();
  for (int d = 1; d >= 0; --d) {
    cudaSetDevice(d);
    ok(probe::launch_ping(p.flag[d], p.flag[1 - d], rounds, d == 1, p.stream[d]), "launching the ping kernel");
  }
  for (int d = 0; d < 2; ++d) cudaSetDevice(d), ok(cudaStreamSynchronize(p.stream[d]), "cudaStreamSynchronize");
  return us_since(start, 2 * rounds);
}

void ping(std::FILE *csv) {
  int count = 0, can = 0;
  cudaGetDeviceCount(&count);
  if (count < 2 || cudaDeviceCanAccessPeer(&can, 0, 1) != cudaSuccess || !can)
    return (void)fmt::print("one_way_store: skipped (needs 2 GPUs with peer access)\n");
  PingPair p;
  if (!make_pair(p)) return;
  const double us = median_of(5, [&] { return ping_once(p, 20000); });
  fmt::print("{:<22} gpu0 <-> gpu1         {:8.3f} us\n", "one_way_store", us);
  if (csv) std::fprintf(csv, "one_way_store,1,1,peer,%.4f\n", us);
  for (int d = 0; d < 2; ++d) cudaSetDevice(d), cudaFree(p.flag[d]), cudaStreamDestroy(p.stream[d]);
}

}  // namespace

int main(int argc, char **argv) {
  const char *csv_path = nullptr;
  bool with_push = false, with_ce_model = false, contexts = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv_path = argv[++i];
    else if (std::strcmp(argv[i], "--push") == 0) with_push = true;
    else if (std::strcmp(argv[i], "--ce-model") == 0) with_ce_model = true;
    else if (std::strcmp(argv[i], "--contexts") == 0) contexts = true;
    else return std::fprintf(stderr, "usage: plexus-bench-launch [--csv FILE] [--push] [--ce-model] | --contexts\n"), 2;
  }
  // the helper is forked before this process touches CUDA
  if (contexts && !start_context_helper()) return 1;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) return std::printf("SKIP: no CUDA device\n"), 77;
  std::FILE *csv = csv_path ? std::fopen(csv_path, "w") : nullptr;
  if (csv_path && !csv) return std::fprintf(stderr, "plexus-bench-launch: cannot write %s\n", csv_path), 1;
  // value: µs, or GB/s for *_gbs; ce_all_reduce_model_* rows put the chunk
  // count under blocks and the wrong elements ("-": not checked) under threads
  if (csv) std::fprintf(csv, "what,blocks,threads,launch,value\n");
  if (contexts) {  // alone: the other probes would change the state it starts from
    const bool good = launch_contexts(csv);
    if (csv) std::fclose(csv);
    return good ? 0 : 1;
  }
  cudaStream_t stream = nullptr;
  if (!ok(cudaSetDevice(0), "cudaSetDevice") ||
      !ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"))
    return 1;
  launches(stream, csv);
  cudaStreamDestroy(stream);
  ping(csv);
  if (with_push) nvlink_rates(csv);
  const bool model_good = !with_ce_model || ce_all_reduce_model(csv);
  if (csv) std::fclose(csv);
  if (!model_good) return std::fprintf(stderr, "plexus-bench-launch: the copy-engine model failed (above)\n"), 1;
  return 0;
}

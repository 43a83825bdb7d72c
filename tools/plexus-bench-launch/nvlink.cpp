// The NVLink bandwidth a collective can use (nvlink.hpp). A two-shot or
// ring all-reduce's bus bandwidth is the rate at which each GPU moves data
// to its peers; this measures that rate for every way a kernel or the copy
// engines can move it, so that the plugins' numbers have a ceiling beside
// them in docs/performance.md.
#include "tools/plexus-bench-launch/nvlink.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/probe.hpp"
#include "tools/plexus-bench-launch/common.hpp"

namespace plexus::bench_launch {
namespace {

namespace probe = kernels::probe;

// What a transfer carries: one constant byte, random bytes, or random
// bfloat16 values in [-1, 1) (the copy-engine model's data, which it moved
// slower than constant data on 4 H100).
enum class Data { constant, random, bf16 };
constexpr int kinds_of_data = 3;

// Every GPU's receive buffer and a source buffer per kind of data (n slots
// of `bytes` each: source slot t is what it sends GPU t where the sources
// are distinct, receive slot g what GPU g sends here); stream 0 for the SM
// kernel and one stream per copy for the copy engines.
struct Rig {
  int n = 0;
  uint64_t bytes = 0;
  std::vector<char *> recv;
  std::array<std::vector<char *>, kinds_of_data> sources;
  std::vector<std::vector<cudaStream_t>> streams;
};

bool fill(Data kind, char *dst, uint64_t bytes, int d) {
  if (kind == Data::constant) return ok(cudaMemset(dst, d + 1, bytes), "cudaMemset");
  std::vector<uint64_t> host(bytes / 8);
  for (uint64_t i = 0; i < host.size(); ++i) {
    uint64_t four = 0;  // bfloat16 elements 4i .. 4i + 3
    for (uint64_t j = 0; kind == Data::bf16 && j < 4; ++j)
      four |= uint64_t{random_bf16(uint64_t(d), 4 * i + j)} << (16 * j);
    host[i] = kind == Data::bf16 ? four : mix64((uint64_t(d) << 40) ^ i);
  }
  return ok(cudaMemcpy(dst, host.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
}

bool make_rig(Rig &r) {
  r.recv.assign(r.n, nullptr), r.streams.assign(r.n, {});
  for (auto &kind : r.sources) kind.assign(r.n, nullptr);
  for (int d = 0; d < r.n; ++d) {
    if (!ok(cudaSetDevice(d), "cudaSetDevice") || !enable_peers(d, r.n)) return false;
    r.streams[d].assign(r.n + 1, nullptr);
    for (auto &s : r.streams[d])
      if (!ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate")) return false;
    if (!ok(cudaMalloc(reinterpret_cast<void **>(&r.recv[d]), r.bytes * r.n), "cudaMalloc")) return false;
    for (int k = 0; k < kinds_of_data; ++k)
      if (!ok(cudaMalloc(reinterpret_cast<void **>(&r.sources[k][d]), r.bytes * r.n), "cudaMalloc") ||
          !fill(static_cast<Data>(k), r.sources[k][d], r.bytes * r.n, d))
        return false;
  }
  return true;
}

// Also after a failed make_rig: what it did not create is null.
void free_rig(Rig &r) {
  for (int d = 0; d < r.n; ++d) {
    cudaSetDevice(d), cudaFree(r.recv[d]);
    for (auto &kind : r.sources) cudaFree(kind[d]);
    for (auto s : r.streams[d])
      if (s != nullptr) cudaStreamDestroy(s);
  }
}

// How a measurement moves each transfer: `blocks` SM blocks of 512
// threads (0: none) move the first (1 - ce_share) of its bytes, the copy
// engines the rest; each part issued by the sender (stores or a copy
// pushed over NVLink) or by the receiver (`*_pull`: loads, or a copy
// reading the peer).
struct Plan {
  const char *name;
  unsigned blocks;
  double ce_share;
  bool sm_pull, ce_pull;
};

// Who sends to whom: GPUs [0, senders) each to the next `targets` of the
// first `ranks` GPUs; the same 32 MiB to each (which the L2 may hold), or
// distinct ones (as a two-shot sends); and what.
struct Traffic {
  const char *name;
  int ranks, senders, targets;
  bool distinct;
  Data data;
};

struct Transfer {
  int from, to;
  const char *src;
  char *dst;
};

std::vector<Transfer> transfers(const Rig &r, const Traffic &t) {
  std::vector<Transfer> v;
  for (int g = 0; g < t.senders; ++g)
    for (int k = 1; k <= t.targets; ++k) {
      const int to = (g + k) % t.ranks;
      const char *base = r.sources[static_cast<int>(t.data)][g];
      v.push_back({g, to, base + (t.distinct ? to * r.bytes : 0), r.recv[to] + g * r.bytes});
    }
  return v;
}

// Enqueues device d's share of one round: one kernel for its SM parts,
// one copy per transfer on its own stream for the copy-engine parts.
void enqueue_on(const Rig &r, int d, const std::vector<Transfer> &all, const Plan &p, uint64_t sm_bytes) {
  const void *srcs[probe::kMaxCopyPairs];
  void *dsts[probe::kMaxCopyPairs];
  int sm = 0, ce = 0;
  for (const Transfer &x : all) {
    if (p.blocks > 0 && sm_bytes > 0 && (p.sm_pull ? x.to : x.from) == d && sm < probe::kMaxCopyPairs)
      srcs[sm] = x.src, dsts[sm++] = x.dst;
    if (sm_bytes < r.bytes && (p.ce_pull ? x.to : x.from) == d)
      ok(cudaMemcpyPeerAsync(x.dst + sm_bytes, x.to, x.src + sm_bytes, x.from, r.bytes - sm_bytes, r.streams[d][1 + ce++]),
         "cudaMemcpyPeerAsync");
  }
  if (sm > 0) ok(probe::launch_copies(srcs, dsts, sm, sm_bytes, p.blocks, r.streams[d][0]), "launch_copies");
}

// `iters` rounds of t's transfers moved by p; one sender's egress in GB/s.
double rate(Rig &r, const Traffic &t, const Plan &p, int iters) {
  const std::vector<Transfer> all = transfers(r, t);
  const uint64_t sm_bytes = p.blocks == 0 ? 0 : static_cast<uint64_t>(r.bytes * (1.0 - p.ce_share)) / 16 * 16;
  const auto start = Clock::now();
  for (int it = 0; it < iters; ++it)
    for (int d = 0; d < t.ranks; ++d) cudaSetDevice(d), enqueue_on(r, d, all, p, sm_bytes);
  for (int d = 0; d < t.ranks; ++d) cudaSetDevice(d), ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(r.bytes) * t.targets * iters / seconds / 1e9;
}

void report(std::FILE *csv, const Traffic &t, const Plan &p, double gbs) {
  fmt::print("{:<20} {:<24} {:>4} x 512 {:8.1f} GB/s per sending GPU\n", t.name, p.name, p.blocks, gbs);
  if (csv) std::fprintf(csv, "nvlink_%s_gbs,%u,512,%s,%.2f\n", t.name, p.blocks, p.name, gbs);
}

constexpr Plan plans[] = {
    {"ce_push", 0, 1.0, false, false},         {"ce_pull", 0, 1.0, false, true},
    {"sm_push", 128, 0.0, false, false},       {"sm_push", 256, 0.0, false, false},
    {"sm_pull", 128, 0.0, true, false},        {"sm_pull", 256, 0.0, true, false},
    {"sm_push+ce_push_25", 128, 0.25, false, false}, {"sm_push+ce_push_50", 128, 0.5, false, false},
    {"sm_push+ce_pull_50", 128, 0.5, false, true},  {"sm_pull+ce_push_50", 128, 0.5, true, false},
};

}  // namespace

void nvlink_rates(std::FILE *csv) {
  Rig r;
  cudaGetDeviceCount(&r.n);
  r.n = std::min(r.n, probe::kMaxCopyPairs);
  r.bytes = uint64_t{32} << 20;
  if (r.n < 2) return (void)fmt::print("push: skipped (needs 2 GPUs)\n");
  if (!make_rig(r)) return free_rig(r), (void)fmt::print("push: skipped (no peer access or memory)\n");
  const Data c = Data::constant, x = Data::random, h = Data::bf16;
  std::vector<Traffic> traffic{{"one_way", 2, 1, 1, false, c},         {"one_way_rand", 2, 1, 1, false, x},
                               {"all_to_all_2", 2, 2, 1, false, c},    {"all_to_all_2_dist", 2, 2, 1, true, c},
                               {"all_to_all_2_rand", 2, 2, 1, true, x}, {"all_to_all_2_bf16", 2, 2, 1, true, h}};
  if (r.n > 2)
    for (const Traffic &t : {Traffic{"all_to_all_all", r.n, r.n, r.n - 1, false, c},
                             Traffic{"all_to_all_all_dist", r.n, r.n, r.n - 1, true, c},
                             Traffic{"all_to_all_all_rand", r.n, r.n, r.n - 1, true, x},
                             Traffic{"all_to_all_all_bf16", r.n, r.n, r.n - 1, true, h}})
      traffic.push_back(t);
  for (const Traffic &t : traffic)
    for (const Plan &p : plans) {
      rate(r, t, p, 2);  // warm-up
      report(csv, t, p, median_of(5, [&] { return rate(r, t, p, 10); }));
    }
  free_rig(r);
}

}  // namespace plexus::bench_launch

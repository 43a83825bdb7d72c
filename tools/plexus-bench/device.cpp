#include "tools/plexus-bench/device.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/cuda_status.hpp"
#include "core/status.hpp"
#include "tools/plexus-bench/data.hpp"

namespace plexus::bench {
namespace {

cudaStream_t as_stream(void *stream) { return static_cast<cudaStream_t>(stream); }

// True for cudaSuccess; else prints the failure and clears CUDA's
// non-sticky last error.
bool cuda_ok(cudaError_t err, int32_t rank, const std::string &who, const std::string &what) {
  if (err == cudaSuccess) return true;
  (void)cudaGetLastError();
  std::fprintf(stderr, "plexus-bench: rank %d, %s: %s failed: %s: %s\n", rank, who.c_str(), what.c_str(),
               cudaGetErrorName(err), cudaGetErrorString(err));
  return false;
}

uint64_t page_rounded(uint64_t bytes) { return (std::max<uint64_t>(bytes, 1) + 4095) / 4096 * 4096; }

// A column's pool buffer, given back to the column.
struct PoolDeleter {
  DeviceColumn *column = nullptr;
  void operator()(uint8_t *p) const {
    if (column) column->release(p);
  }
};
using PoolBuffer = std::unique_ptr<uint8_t, PoolDeleter>;

// The graph of one size's sample, destroyed with the size.
struct Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  Graph() = default;
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;
  ~Graph() {
    if (exec) (void)cudaGraphExecDestroy(exec);
    if (graph) (void)cudaGraphDestroy(graph);
  }
};

// One column's sweep: the column, the rank's GPU, the buffers it runs on and
// a host buffer to fill and read them through.
struct Sweep {
  const Options &o;
  DeviceColumn &c;
  DeviceRank &d;
  uint8_t *send, *recv;
  std::vector<uint8_t> host;

  cudaStream_t stream() const { return as_stream(d.stream()); }
  bool cuda(cudaError_t err, const std::string &what) const { return cuda_ok(err, d.rank(), c.label(), what); }
  // Waits for the stream, then asks the column for an asynchronous error.
  bool settle(const char *after) const {
    return cuda(cudaStreamSynchronize(stream()), fmt::format("cudaStreamSynchronize after {}", after)) &&
           c.healthy();
  }
  bool copy(void *to, const void *from, uint64_t bytes, cudaMemcpyKind kind) const {
    return cuda(cudaMemcpyAsync(to, from, bytes, kind, stream()), "cudaMemcpyAsync") &&
           cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize after a copy");
  }
};

uint64_t element_bytes(const Sweep &x) { return dtype_bytes(x.o.dtype); }

bool poison_output(Sweep &x, const SizePoint &p) {
  const uint64_t n = recv_count(x.o, p);
  poison(x.o.dtype, x.host.data(), n);
  return x.copy(x.recv, x.host.data(), n * element_bytes(x), cudaMemcpyHostToDevice);
}

// The same input as the host sweep's, made on the host and copied over.
bool fill(Sweep &x, const SizePoint &p, uint64_t seed) {
  const uint64_t n = send_count(x.o, p);
  fill_input(x.o.dtype, seed, x.d.rank(), 0, n, x.host.data());
  return x.copy(x.send, x.host.data(), n * element_bytes(x), cudaMemcpyHostToDevice) && poison_output(x, p);
}

bool enqueue_calls(Sweep &x, const SizePoint &p, int32_t calls) {
  for (int32_t i = 0; i < calls; ++i)
    if (!x.c.enqueue(p, x.send, x.recv, x.d.stream())) return false;
  return true;
}

bool barrier(Sweep &x) { return x.c.barrier(x.d.stream()) && x.settle("a barrier"); }

// The iters calls of one sample, captured once. ThreadLocal mode: a
// backend's helper threads may still make calls that are illegal during a
// global capture; this thread's own illegal calls still invalidate it.
bool capture(Sweep &x, const SizePoint &p, Graph *g) {
  if (!x.cuda(cudaStreamBeginCapture(x.stream(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture"))
    return false;
  const bool called = enqueue_calls(x, p, p.iters);
  // Ended on every path: a stream left capturing would fail every later call.
  const cudaError_t ended = cudaStreamEndCapture(x.stream(), &g->graph);
  if (!called) return (void)cudaGetLastError(), false;
  const std::string what = fmt::format("capturing {} calls in a CUDA graph (cudaStreamEndCapture)", p.iters);
  return x.cuda(ended, what) && x.cuda(cudaGraphInstantiate(&g->exec, g->graph, 0), "cudaGraphInstantiate");
}

// The sample's calls: one graph launch, or iters calls one after the other.
bool enqueue_sample(Sweep &x, const SizePoint &p, const Graph &g) {
  if (g.exec) return x.cuda(cudaGraphLaunch(g.exec, x.stream()), "cudaGraphLaunch");
  return enqueue_calls(x, p, p.iters);
}

int64_t ns_per_call(std::chrono::steady_clock::duration elapsed, const SizePoint &p) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count() / p.iters;
}

// *ns: the sample's time per call, enqueue to completion; *host_ns: the
// host's time per call to enqueue them (eager calls return before their
// kernels run, so this is what a call costs the caller's thread).
bool time_sample(Sweep &x, const SizePoint &p, const Graph &g, int64_t *ns, int64_t *host_ns) {
  const auto start = std::chrono::steady_clock::now();
  if (!enqueue_sample(x, p, g)) return false;
  const auto enqueued = std::chrono::steady_clock::now();
  if (!x.cuda(cudaStreamSynchronize(x.stream()), "cudaStreamSynchronize after a sample")) return false;
  *ns = ns_per_call(std::chrono::steady_clock::now() - start, p);
  *host_ns = ns_per_call(enqueued - start, p);
  return true;
}

// Freshly poisoned outputs, then one call (with --graph one launch of the
// graph, so the captured path is what is checked), copied back and checked.
bool check(Sweep &x, const SizePoint &p, uint64_t seed, const Graph &g, RankResult *r) {
  if (!poison_output(x, p)) return false;
  const bool queued = g.exec ? enqueue_sample(x, p, g) : x.c.enqueue(p, x.send, x.recv, x.d.stream());
  if (!queued || !x.settle("the checked call")) return false;
  const uint64_t n = recv_count(x.o, p);
  if (!x.copy(x.host.data(), x.recv, n * element_bytes(x), cudaMemcpyDeviceToHost)) return false;
  r->wrong = count_wrong(x.o, p, x.d.rank(), seed, x.host.data());
  return true;
}

bool measure(Sweep &x, const SizePoint &p, RankResult *r) {
  const uint64_t seed = size_seed(p.bytes);
  if (!fill(x, p, seed) || !barrier(x)) return false;
  if (!enqueue_calls(x, p, p.warmup) || !x.settle("the warm-up calls")) return false;
  Graph g;
  if (x.o.graph && (!capture(x, p, &g) || !enqueue_sample(x, p, g) || !x.settle("the first graph launch")))
    return false;
  if (!barrier(x)) return false;
  r->ns.resize(static_cast<size_t>(p.samples));
  r->host_ns.resize(static_cast<size_t>(p.samples));
  for (size_t i = 0; i < r->ns.size(); ++i)
    if (!time_sample(x, p, g, &r->ns[i], &r->host_ns[i])) return false;
  if (g.exec) r->host_ns.clear();  // one graph launch per sample: no per-call host time
  return x.c.healthy() && check(x, p, seed, g, r);
}

PoolBuffer pool_buffer(DeviceColumn &c, uint64_t bytes) {
  return PoolBuffer(static_cast<uint8_t *>(c.allocate(page_rounded(bytes))), PoolDeleter{&c});
}

}  // namespace

int visible_gpus(std::string *why) {
  int count = 0;
  if (core::require_cuda_device(&count) == PLX_OK) return count;
  *why = core::last_message();
  return 0;
}

std::unique_ptr<DeviceRank> DeviceRank::open(const Options &o, int32_t rank) {
  std::string why;
  const int gpus = visible_gpus(&why);
  if (gpus == 0) return std::fprintf(stderr, "plexus-bench: rank %d: %s\n", rank, why.c_str()), nullptr;
  std::unique_ptr<DeviceRank> d(new DeviceRank());
  d->rank_ = rank;
  d->device_ = rank % gpus;
  if (!d->make_current()) return nullptr;
  cudaStream_t stream = nullptr;
  const std::string who = fmt::format("GPU {}", d->device_);
  if (!cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), rank, who, "cudaStreamCreateWithFlags"))
    return nullptr;
  d->stream_ = stream;
  return d->allocate(o) ? std::move(d) : nullptr;
}

bool DeviceRank::allocate(const Options &o) {
  uint64_t send_bytes = 0, recv_bytes = 0;
  largest_buffers(o, &send_bytes, &recv_bytes);
  const std::string who = fmt::format("GPU {}", device_);
  const auto alloc = [&](void **p, uint64_t bytes) {
    return cuda_ok(cudaMalloc(p, page_rounded(bytes)), rank_, who, fmt::format("cudaMalloc({})", page_rounded(bytes)));
  };
  return alloc(&send_, send_bytes) && alloc(&recv_, recv_bytes) && alloc(&scratch_, 256) &&
         cuda_ok(cudaMemset(scratch_, 0, 256), rank_, who, "cudaMemset");
}

bool DeviceRank::make_current() const {
  return cuda_ok(cudaSetDevice(device_), rank_, fmt::format("GPU {}", device_), fmt::format("cudaSetDevice({})", device_));
}

// Errors are ignored here: after a failed run the device may be unusable,
// and the process is about to exit anyway.
DeviceRank::~DeviceRank() {
  for (void *p : {send_, recv_, scratch_})
    if (p) (void)cudaFree(p);
  if (stream_) (void)cudaStreamDestroy(as_stream(stream_));
  (void)cudaGetLastError();
}

bool run_device_sweep(const Options &o, int32_t column, DeviceColumn &c, DeviceRank &d, const Reporter &report) {
  if (!d.make_current()) return false;
  uint64_t send_bytes = 0, recv_bytes = 0;
  largest_buffers(o, &send_bytes, &recv_bytes);
  PoolBuffer pool_send, pool_recv;
  if (c.pooled()) {
    pool_send = pool_buffer(c, send_bytes), pool_recv = pool_buffer(c, recv_bytes);
    if (!pool_send || !pool_recv) return false;
  }
  Sweep x{o, c, d, pool_send ? pool_send.get() : static_cast<uint8_t *>(d.send()),
          pool_recv ? pool_recv.get() : static_cast<uint8_t *>(d.recv()),
          std::vector<uint8_t>(std::max(send_bytes, recv_bytes))};
  for (const SizePoint &p : sweep_points(o)) {
    RankResult r{column, d.rank(), p.bytes, p.count, 0, {}};
    if (!measure(x, p, &r) || !report(r)) return false;
  }
  return true;
}

}  // namespace plexus::bench

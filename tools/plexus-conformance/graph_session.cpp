// Graph capture (PLX_CAP_GRAPH_CAPTURE, CUDA builds only): an all-reduce
// and a broadcast captured on the rank's stream into one CUDA graph,
// instantiated once and launched twice, with new inputs copied into the
// captured buffers before each launch; both launches' results are checked
// against the reference and hashed for the bit-identical check across
// ranks (PLX-P-15 for the capture, PLX-P-8 for the values).
#include <cuda_runtime_api.h>

#include <vector>

#include "device.hpp"
#include "reference.hpp"
#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr const char *kGroup = "graph capture";
constexpr uint64_t kCount = (1u << 20) + 3;  // odd, past any small-message path
constexpr int32_t kTimeoutMs = 60000;
constexpr int32_t kRoot = 0;

// `wanted` when the mask has it, else its lowest member.
int32_t preferred(uint32_t mask, int32_t wanted) {
  return ((mask >> wanted) & 1u) || mask == 0 ? wanted : __builtin_ctz(mask);
}

std::string cuda_text(cudaError_t err, const char *what) {
  (void)cudaGetLastError();
  return fmt::format("{}: {}: {}", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

// The captured buffers (device memory of the kit) and the graph.
struct Graph {
  explicit Graph(RankContext &ctx_)
      : ctx(ctx_),
        dtype(preferred(ctx_.props.dtype_mask, PLX_FLOAT32)),
        op(preferred(ctx_.props.reduce_op_mask, PLX_SUM)),
        bytes(kCount * plx_dtype_size(dtype)) {}
  ~Graph();
  RankContext &ctx;
  plx_dtype dtype;
  plx_reduce_op op;
  uint64_t bytes;
  void *send = nullptr, *recv = nullptr, *bcast = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
};

Graph::~Graph() {
  if (exec) (void)cudaGraphExecDestroy(exec);
  if (graph) (void)cudaGraphDestroy(graph);
  for (void *p : {send, recv, bcast}) device::release(PLX_MEM_DEVICE, p, ctx.stream);
}

bool allocate(Graph &g, CaseScope &c) {
  std::string error;
  for (void **p : {&g.send, &g.recv, &g.bcast})
    if (*p = device::allocate(PLX_MEM_DEVICE, g.bytes, &error); *p == nullptr)
      return c.expect(false, "{}", error);
  return true;
}

// Ends the capture whatever the calls returned, so the stream is usable.
bool capture(Graph &g, plx_comm_h comm, CaseScope &c) {
  auto *stream = static_cast<cudaStream_t>(g.ctx.stream);
  if (cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal))
    return c.expect(false, "{}", cuda_text(err, "cudaStreamBeginCapture"));
  const plx_status ar = plx_all_reduce(comm, g.send, g.recv, kCount, g.dtype, g.op, nullptr, stream);
  const std::string ar_error = ar == PLX_OK ? "" : status_text(ar);
  const plx_status bc = ar != PLX_OK ? PLX_OK
                                     : plx_broadcast(comm, g.ctx.rank() == kRoot ? g.bcast : nullptr, g.bcast,
                                                     kCount, g.dtype, kRoot, nullptr, stream);
  const std::string bc_error = bc == PLX_OK ? "" : status_text(bc);
  const cudaError_t end = cudaStreamEndCapture(stream, &g.graph);
  if (!c.expect(ar == PLX_OK, "all_reduce during capture returned {}", ar_error)) return false;
  if (!c.expect(bc == PLX_OK, "broadcast during capture returned {}", bc_error)) return false;
  if (!c.expect(end == cudaSuccess, "{}", cuda_text(end, "cudaStreamEndCapture"))) return false;
  const cudaError_t inst = cudaGraphInstantiate(&g.exec, g.graph, 0);
  return c.expect(inst == cudaSuccess, "{}", cuda_text(inst, "cudaGraphInstantiate"));
}

// New inputs into the captured buffers, outputs poisoned, on the stream.
bool load_inputs(Graph &g, const InputRule &ar, const InputRule &bc, std::vector<uint8_t> *host, CaseScope &c) {
  std::string error;
  fill_input(ar, g.ctx.rank(), 0, kCount, host->data());
  bool ok = device::copy(g.send, host->data(), g.bytes, g.ctx.stream, &error) &&
            device::fill(g.recv, 0xA5, g.bytes, g.ctx.stream, &error);
  if (ok && g.ctx.rank() == kRoot) {
    fill_input(bc, kRoot, 0, kCount, host->data());
    ok = device::copy(g.bcast, host->data(), g.bytes, g.ctx.stream, &error);
  } else if (ok) {
    ok = device::fill(g.bcast, 0xA5, g.bytes, g.ctx.stream, &error);
  }
  ok = ok && device::synchronize(g.ctx.stream, &error);  // the host vector is reused at once
  return c.expect(ok, "loading the inputs: {}", error);
}

void check_launch(Graph &g, plx_comm_h comm, int launch) {
  const std::string name = fmt::format("launch {} of the instantiated graph", launch + 1);
  CaseScope c(g.ctx.out, "PLX-P-8", kGroup, name);
  const uint64_t seed = 0x6a9e0000ull + 2 * static_cast<uint64_t>(launch);
  const InputRule ar = make_input_rule(g.dtype, g.op, g.ctx.nranks(), seed);
  const InputRule bc = make_input_rule(g.dtype, -1, g.ctx.nranks(), seed + 1);
  std::vector<uint8_t> host(g.bytes);
  if (!load_inputs(g, ar, bc, &host, c)) return;
  const Clock::time_point start = Clock::now();
  const cudaError_t err = cudaGraphLaunch(g.exec, static_cast<cudaStream_t>(g.ctx.stream));
  if (!c.expect(err == cudaSuccess, "{}", cuda_text(err, "cudaGraphLaunch"))) return;
  const Outcome o = settle(comm, PLX_OK, start, g.ctx.stream, kTimeoutMs + kMarginMs);
  if (!c.expect(o.ok(), "the graph: {}", o.text())) return;
  std::string error;
  std::vector<uint8_t> bcast(g.bytes);
  if (!c.expect(device::copy(host.data(), g.recv, g.bytes, g.ctx.stream, &error) &&
                    device::copy(bcast.data(), g.bcast, g.bytes, g.ctx.stream, &error) &&
                    device::synchronize(g.ctx.stream, &error),
                "copying the outputs back: {}", error))
    return;
  g.ctx.out.hash(kGroup, name, hash_bytes(host.data(), g.bytes) ^ mix(hash_bytes(bcast.data(), g.bytes)));
  const Mismatch reduced = check_reduction(ar, host.data(), 0, kCount);
  c.expect(reduced.ok(), "all_reduce {} {}: {}", plx_dtype_string(g.dtype), plx_reduce_op_string(g.op),
           reduced.describe());
  const Mismatch copied = check_copies(bc, bcast.data(), {{kRoot, 0, kCount}});
  c.expect(copied.ok(), "broadcast from rank {}: {}", kRoot, copied.describe());
}

}  // namespace

void run_graph_session(RankContext &ctx) {
  const plx_comm_h comm = join_checked(ctx, 0, kTimeoutMs);
  if (comm == nullptr) return;
  ctx.out.memory(kGroup, "device");
  {
    Graph g(ctx);
    bool ready = false;
    {
      CaseScope c(ctx.out, "PLX-P-15", kGroup,
                  fmt::format("capture all_reduce {} {} and broadcast, instantiate", plx_dtype_string(g.dtype),
                              plx_reduce_op_string(g.op)));
      ready = allocate(g, c) && capture(g, comm, c);
    }
    for (int launch = 0; ready && launch < 2; ++launch) check_launch(g, comm, launch);
  }
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "graph session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance

// The collective slot: every collective of plexus.h but send/recv, as one
// kernel launch on the caller's stream (kernels/pinned.hpp). The hot path
// is a failure load, a pointer-cache hit, the choice of algorithm (pure
// arithmetic, the same on every rank) and the launch: no allocation, no
// lock, no host synchronisation, so calls can be captured in a CUDA graph.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "core/coll_options.hpp"
#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/pinned-host/pinned_backend.hpp"

namespace plexus::pinned_host {
namespace {

bool contributes(const plx_coll_desc &d) { return !(d.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION); }

using core::is_reduction;

[[gnu::cold]] plx_status reject_kind(Comm &c, const void *p, const char *arg, plx_mem_kind kind, int device) {
  if (kind != PLX_MEM_DEVICE)
    return core::fail(PLX_ERR_UNSUPPORTED, "pinned-host: {} ({}) is {} memory; pinned-host takes device memory "
                      "(cudaMalloc, plx_mem_alloc of PLX_MEM_DEVICE); for host buffers use shm-native", arg, p,
                      kind == PLX_MEM_PINNED_HOST ? "pinned host" : "host");
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: {} ({}) is on CUDA device {}, but the communicator "
                    "of rank {} is on device {}", arg, p, device, c.rank(), c.device());
}

[[gnu::cold]] plx_status classify(Comm &c, const void *p, const char *arg) {
  plx_mem_kind kind = PLX_MEM_HOST;
  int device = -1;
  if (plx_status s = core::pointer_kind(p, &kind, &device)) return s;
  if (kind != PLX_MEM_DEVICE || device != c.device()) return reject_kind(c, p, arg, kind, device);
  c.pointer_cache().add(p);
  return PLX_OK;
}

inline plx_status check_device(Comm &c, const void *p, const char *arg, bool needed) {
  if (!needed || c.pointer_cache().contains(p)) [[likely]] return PLX_OK;
  return classify(c, p, arg);
}

uint64_t gather_total(const Comm &c, const plx_coll_desc &d) {
  if (d.counts == nullptr) return d.count * static_cast<uint64_t>(c.nranks());
  uint64_t total = 0;
  for (int32_t q = 0; q < c.nranks(); ++q) total += d.counts[q];
  return total;
}

plx_status check_buffers(Comm &c, const plx_coll_desc &d) {
  const bool root = c.rank() == d.root, some = d.count > 0, gives = some && contributes(d);
  plx_status s = PLX_OK;
  switch (d.coll) {
    case PLX_COLL_REDUCE:
      if (!(s = check_device(c, d.send, "send", gives))) s = check_device(c, d.recv, "recv", some && root);
      return s;
    case PLX_COLL_BROADCAST:
      if (!(s = check_device(c, d.send, "send", some && root))) s = check_device(c, d.recv, "recv", some);
      return s;
    case PLX_COLL_GATHER:
      if (!(s = check_device(c, d.send, "send", some))) s = check_device(c, d.recv, "recv", root && gather_total(c, d) > 0);
      return s;
    case PLX_COLL_BARRIER: return PLX_OK;
    default:
      if (!(s = check_device(c, d.send, "send", gives))) s = check_device(c, d.recv, "recv", some);
      return s;
  }
}

// The dtype the data travels as (reductions may send float32 as bfloat16
// or float16), or UNSUPPORTED with why.
plx_status wire_dtype(const Comm &c, const plx_coll_desc &d, int32_t *wire) {
  const plx_coll_options &o = *d.options;
  if ((o.flags & PLX_COLL_FLAG_NO_CONTRIBUTION) && !is_reduction(d.coll))
    return core::fail(PLX_ERR_UNSUPPORTED, "pinned-host: PLX_COLL_FLAG_NO_CONTRIBUTION applies to reductions, "
                      "not to {}", coll_name(d.coll));
  *wire = d.dtype;
  if (d.coll == PLX_COLL_BARRIER) return PLX_OK;
  if (is_reduction(d.coll)) *wire = wire_of(d.dtype, o.wire_dtype, c.params().wire);
  else if (o.wire_dtype != -1 && o.wire_dtype != d.dtype) *wire = -1;
  if (*wire >= 0) return PLX_OK;
  return core::refuse_wire_dtype("pinned-host", d);
}

// A failed launch leaves the peers waiting for this rank: sticky, so they
// learn it at once instead of at their timeout.
[[gnu::cold]] plx_status launch_failed(Comm &c, cudaError_t err, const char *kernel) {
  core::fail_cuda(err, fmt::format("pinned-host: rank {} (device {}): launching the {} kernel", c.rank(),
                                   c.device(), kernel));
  return c.set_failure(PLX_ERR_DEVICE, core::last_message());
}

const char *algo_name(int32_t algo) {
  switch (algo) {
    case PLX_ALGO_LOW_LATENCY: return "low-latency";
    case PLX_ALGO_ONE_SHOT: return "one-shot";
    case PLX_ALGO_CPU_STAR: return "CPU-helper";
    default: return "two-shot";
  }
}

// What bars the copy-engine path from this call (asked only where it runs).
uint32_t copy_bars(const Comm &c, int32_t dtype, int32_t wire, cudaStream_t stream) {
  if (!copy_path_runs(c.params())) return 0;
  return (wire != dtype ? kWireConverted : 0u) | (capturing(stream) ? kCapturing : 0u);
}

// One kernel launch of an SM algorithm, with its plan.
cudaError_t launch_reduction(const Comm &c, int32_t algo, uint64_t ws, kp::ReduceArgs &a, cudaStream_t stream) {
  const kp::Layout &l = c.layout();
  const int32_t blocks = c.params().max_blocks;
  if (algo == PLX_ALGO_LOW_LATENCY) return kp::launch_ll_reduce(c.channel(), a, stream);
  if (a.scatter) {
    a.plan = kp::plan_reduce_scatter(l, blocks, a.count, ws);
    return kp::launch_reduce_scatter(c.channel(), a, stream);
  }
  if (algo == PLX_ALGO_ONE_SHOT) {
    a.plan = kp::plan_one_shot(l, blocks, a.count, ws);
    return kp::launch_one_shot(c.channel(), a, stream);
  }
  a.plan = kp::plan_two_shot(l, blocks, a.count, ws);  // the CPU helper's steps are two-shot's
  return algo == PLX_ALGO_CPU_STAR ? kp::launch_cpu_star(c.channel(), a, stream)
                                   : kp::launch_two_shot(c.channel(), a, stream);
}

plx_status reduction(Comm &c, const plx_coll_desc &d, int32_t wire, cudaStream_t stream) {
  const uint64_t ws = core::kDtypeBytes[wire];
  const int32_t algo = choose_reduction(c.params(), d.coll, d.count, ws, c.nranks(), d.options->algorithm,
                                        copy_bars(c, d.dtype, wire, stream));
  c.count_call(d.coll, algo);
  if (d.count == 0) return PLX_OK;
  cudaError_t err = cudaSuccess;
  if (algo == PLX_ALGO_COPY)
    return copy_engine_reduction(c, d, stream, &err) == PLX_OK ? PLX_OK : launch_failed(c, err, "copy-engine");
  kp::ReduceArgs a;
  a.in = contributes(d) ? d.send : nullptr;
  a.out = d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv;
  a.count = d.count, a.dtype = d.dtype, a.wire = wire, a.op = d.op, a.coll = d.coll;
  a.contributes = contributes(d), a.scatter = d.coll == PLX_COLL_REDUCE_SCATTER;
  err = launch_reduction(c, algo, ws, a, stream);
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, algo_name(algo));
}

// Each rank's part and where it lands: broadcast the root's count, gather
// per-rank counts (or count each), all-gather count each.
uint64_t fill_parts(const Comm &c, const plx_coll_desc &d, kp::CopyArgs *a) {
  const uint64_t es = core::kDtypeBytes[d.dtype];
  uint64_t largest = 0, offset = 0;
  for (int32_t q = 0; q < c.nranks(); ++q) {
    uint64_t n = d.count;
    if (d.coll == PLX_COLL_BROADCAST) n = q == d.root ? d.count : 0;
    else if (d.coll == PLX_COLL_GATHER && d.counts != nullptr) n = d.counts[q];
    a->bytes[q] = n * es;
    a->displ[q] = d.coll == PLX_COLL_BROADCAST ? 0 : offset;
    offset += n * es;
    largest = std::max(largest, n * es);
  }
  return largest;
}

plx_status copies(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  kp::CopyArgs a;
  a.in = d.send, a.out = d.recv, a.root = d.root < 0 ? 0 : d.root, a.coll = d.coll;
  a.mode = d.coll == PLX_COLL_BROADCAST ? kp::kBroadcast : d.coll == PLX_COLL_GATHER ? kp::kGather : kp::kAllGather;
  const uint64_t largest = fill_parts(c, d, &a);
  const int32_t algo = choose_copy(c.params(), largest, d.options->algorithm);
  c.count_call(d.coll, algo);
  if (largest == 0) return PLX_OK;
  cudaError_t err = cudaSuccess;
  if (algo == PLX_ALGO_LOW_LATENCY) {
    err = kp::launch_ll_copy(c.channel(), a, stream);
  } else {
    a.plan = kp::plan_copy(c.layout(), c.params().max_blocks, largest);
    err = kp::launch_copy(c.channel(), a, stream);
  }
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, algo_name(algo));
}

plx_status barrier(Comm &c, cudaStream_t stream) {
  kp::CopyArgs a;
  a.mode = kp::kBarrier, a.coll = PLX_COLL_BARRIER;
  c.count_call(PLX_COLL_BARRIER, PLX_ALGO_LOW_LATENCY);
  const cudaError_t err = kp::launch_ll_copy(c.channel(), a, stream);
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "barrier");
}

plx_status issue(Comm &c, const plx_coll_desc &d, int32_t wire, cudaStream_t stream) {
  switch (d.coll) {
    case PLX_COLL_ALL_REDUCE:
    case PLX_COLL_REDUCE:
    case PLX_COLL_REDUCE_SCATTER: return reduction(c, d, wire, stream);
    case PLX_COLL_BROADCAST:
    case PLX_COLL_ALL_GATHER:
    case PLX_COLL_GATHER: return copies(c, d, stream);
    case PLX_COLL_BARRIER: return barrier(c, stream);
    default:
      return core::fail(PLX_ERR_UNSUPPORTED, "pinned-host: {} is not supported (every rank takes part in every "
                        "call of this version); nccl has it", coll_name(d.coll));
  }
}

}  // namespace

plx_status collective(void *comm, const plx_coll_desc *desc) {
  Comm &c = *static_cast<Comm *>(comm);
  const plx_coll_desc &d = *desc;
  if (c.failure() != PLX_OK) [[unlikely]] return c.report_failure();
  int32_t wire = -1;
  if (plx_status s = wire_dtype(c, d, &wire)) [[unlikely]] return s;
  if (plx_status s = check_buffers(c, d)) return s;
  // Kernels launch on the caller's stream, which belongs to our device.
  core::ScopedDevice device(c.device());
  if (device.status() != PLX_OK) [[unlikely]] return device.status();
  core::log_trace("pinned-host: rank {}: {} count {} dtype {} wire {} op {} root {} on stream {}", c.rank(),
                  coll_name(d.coll), d.count, d.dtype, wire, d.op, d.root, d.stream);
  return issue(c, d, wire, static_cast<cudaStream_t>(d.stream));
}

}  // namespace plexus::pinned_host

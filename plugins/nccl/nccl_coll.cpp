// The collective slot: every plexus collective as one NCCL call (gather as
// grouped send/recv), on device memory, stream-ordered, capturable. The hot
// path is a gate add, a failure load, a pointer-cache hit, the NCCL call
// and the progress check: no allocation, no lock, no formatting (a
// half-type reduction over more than 2 ranks adds nccl_widen.cpp's
// stream-ordered pool block and one or two kernels: PLX-P-8).
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "core/coll_options.hpp"
#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/names.hpp"
#include "core/status.hpp"
#include "plugins/nccl/nccl_backend.hpp"

namespace plexus::nccl {
namespace {

constexpr ncclDataType_t nccl_dtypes[PLX_DTYPE_COUNT] = {
    ncclInt8, ncclUint8, ncclInt32, ncclUint32, ncclInt64,
    ncclUint64, ncclFloat16, ncclBfloat16, ncclFloat32, ncclFloat64};
static_assert(PLX_SUM == 0 && PLX_PROD == 1 && PLX_MIN == 2 && PLX_MAX == 3 && PLX_AVG == 4);
static_assert(PLX_INT8 == 0 && PLX_FLOAT64 == 9 && PLX_DTYPE_COUNT == 10);

const char *const nccl_call_names[] = {"ncclAllReduce", "ncclReduce", "ncclBroadcast",
                                       "ncclAllGather", "gather (ncclGroupEnd)", "ncclReduceScatter",
                                       "barrier (ncclAllReduce)", "ncclSend", "ncclRecv"};

[[gnu::cold]] plx_status reject_kind(Comm &c, const void *p, const char *arg, plx_mem_kind kind, int device) {
  if (kind != PLX_MEM_DEVICE)
    return core::fail(PLX_ERR_UNSUPPORTED, "nccl: {} ({}) is {} memory; nccl takes device memory "
                      "(cudaMalloc, plx_mem_alloc of PLX_MEM_DEVICE); for host buffers use shm-native",
                      arg, p, kind == PLX_MEM_PINNED_HOST ? "pinned host" : "host");
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: {} ({}) is on CUDA device {}, but the "
                    "communicator of rank {} is on device {}", arg, p, device, c.rank(), c.device());
}

[[gnu::cold]] plx_status classify(Comm &c, const void *p, const char *arg) {
  plx_mem_kind kind = PLX_MEM_HOST;
  int device = -1;
  if (plx_status s = core::pointer_kind(p, &kind, &device)) return s;
  if (kind != PLX_MEM_DEVICE || device != c.device()) return reject_kind(c, p, arg, kind, device);
  c.pointer_cache().add(p);
  return PLX_OK;
}

inline plx_status check_device(Comm &c, const void *p, const char *arg) {
  if (c.pointer_cache().contains(p)) [[likely]] return PLX_OK;
  return classify(c, p, arg);
}

inline plx_status check_pair(Comm &c, const void *send, void *recv) {
  if (plx_status s = check_device(c, send, "send")) return s;
  return send == recv ? PLX_OK : check_device(c, recv, "recv");
}

// A float32 reduction sent as float16 or bfloat16 (nccl_widen.cpp; a build
// without nvcc has no conversion kernels, and declines it).
bool narrows_on_wire(const plx_coll_desc &d) {
  return PLEXUS_NCCL_WIDEN && core::float32_on_half_wire(d.coll, d.dtype, d.options->wire_dtype);
}

[[gnu::cold]] plx_status reject_options(const plx_coll_desc &d) {
  const plx_coll_options &o = *d.options;
  if (o.flags & ~PLX_COLL_FLAG_NO_CONTRIBUTION)
    return core::fail(PLX_ERR_UNSUPPORTED, "nccl: option flags {:#x} are not supported", o.flags);
  return core::refuse_wire_dtype("nccl", d,
                                 PLEXUS_NCCL_WIDEN ? "" : ", and not in this build (no nvcc, no conversion kernels)");
}

bool options_supported(const plx_coll_desc &d) {
  const plx_coll_options &o = *d.options;
  const bool built = PLEXUS_NCCL_WIDEN || !core::float32_on_half_wire(d.coll, d.dtype, o.wire_dtype);
  return (o.flags & ~PLX_COLL_FLAG_NO_CONTRIBUTION) == 0 && built &&
         core::wire_dtype_honoured(d.coll, d.dtype, o.wire_dtype);
}

// Root copies its own part (unless in place) before the group, so a failed
// copy leaves no half-issued group behind; then one receive per rank with
// data, or one send to root.
plx_status gather(Comm &c, const plx_coll_desc &d, cudaStream_t stream, ncclResult_t *result) {
  const size_t esize = core::kDtypeBytes[d.dtype];
  const ncclDataType_t dt = nccl_dtypes[d.dtype];
  const bool is_root = c.rank() == d.root;
  if (d.count > 0)
    if (plx_status s = check_device(c, d.send, "send")) return s;
  if (!is_root) {
    *result = d.count > 0 ? ncclSend(d.send, d.count, dt, d.root, c.nccl(), stream) : ncclSuccess;
    return PLX_OK;
  }
  uint64_t offset = 0, total = 0;
  for (int32_t r = 0; r < c.nranks(); ++r) total += d.counts ? d.counts[r] : d.count;
  if (total > 0)
    if (plx_status s = check_device(c, d.recv, "recv")) return s;
  for (int32_t r = 0; r < c.rank(); ++r) offset += d.counts ? d.counts[r] : d.count;
  auto *own = static_cast<uint8_t *>(d.recv) + offset * esize;
  if (d.count > 0 && own != d.send)
    PLX_CUDA_CHECK(cudaMemcpyAsync(own, d.send, d.count * esize, cudaMemcpyDeviceToDevice, stream));
  ncclResult_t first = ncclGroupStart();
  offset = 0;
  for (int32_t r = 0; r < c.nranks() && first == ncclSuccess; ++r) {
    const uint64_t n = d.counts ? d.counts[r] : d.count;
    if (n > 0 && r != c.rank())
      first = ncclRecv(static_cast<uint8_t *>(d.recv) + offset * esize, n, dt, r, c.nccl(), stream);
    offset += n;
  }
  const ncclResult_t end = ncclGroupEnd();
  *result = first != ncclSuccess ? first : end;
  return PLX_OK;
}

// A reduction that nccl_widen.cpp runs through a block of another
// precision: a half type accumulated in float32, or float32 on a half-type
// wire.
[[gnu::cold]] plx_status issue_converted(Comm &c, const plx_coll_desc &d, bool on_wire, ncclResult_t *result) {
  const bool sends_only = d.coll == PLX_COLL_REDUCE && c.rank() != d.root;
  if (plx_status s = sends_only ? check_device(c, d.send, "send") : check_pair(c, d.send, d.recv)) return s;
  return on_wire ? issue_on_wire(c, d, result) : issue_widened(c, d, result);
}

// Issues the NCCL call of one collective; *result is NCCL's answer.
plx_status issue(Comm &c, const plx_coll_desc &d, ncclResult_t *result) {
  if (narrows_on_wire(d)) [[unlikely]] return issue_converted(c, d, true, result);
  if (needs_widening(c, d)) [[unlikely]] return issue_converted(c, d, false, result);
  auto *stream = static_cast<cudaStream_t>(d.stream);
  ncclComm_t comm = c.nccl();
  const ncclDataType_t dt = d.dtype >= 0 ? nccl_dtypes[d.dtype] : ncclFloat32;
  const ncclRedOp_t op = d.op >= 0 ? nccl_op(c, d.op) : ncclSum;
  const bool is_root = c.rank() == d.root;
  plx_status s = PLX_OK;
  switch (d.coll) {
    case PLX_COLL_ALL_REDUCE:
      if (!(s = check_pair(c, d.send, d.recv))) *result = ncclAllReduce(d.send, d.recv, d.count, dt, op, comm, stream);
      return s;
    case PLX_COLL_REDUCE:
      s = is_root ? check_pair(c, d.send, d.recv) : check_device(c, d.send, "send");
      if (!s) *result = ncclReduce(d.send, d.recv, d.count, dt, op, d.root, comm, stream);
      return s;
    case PLX_COLL_BROADCAST:
      s = is_root ? check_pair(c, d.send, d.recv) : check_device(c, d.recv, "recv");
      if (!s) *result = ncclBroadcast(d.send, d.recv, d.count, dt, d.root, comm, stream);
      return s;
    case PLX_COLL_ALL_GATHER:
      if (!(s = check_pair(c, d.send, d.recv))) *result = ncclAllGather(d.send, d.recv, d.count, dt, comm, stream);
      return s;
    case PLX_COLL_REDUCE_SCATTER:
      if (!(s = check_pair(c, d.send, d.recv))) *result = ncclReduceScatter(d.send, d.recv, d.count, dt, op, comm, stream);
      return s;
    case PLX_COLL_BARRIER:
      *result = ncclAllReduce(c.scratch(), c.scratch(), 1, ncclFloat32, ncclSum, comm, stream);
      return PLX_OK;
    case PLX_COLL_SEND:
      if (!(s = check_device(c, d.send, "buf"))) *result = ncclSend(d.send, d.count, dt, d.peer, comm, stream);
      return s;
    case PLX_COLL_RECV:
      if (!(s = check_device(c, d.recv, "buf"))) *result = ncclRecv(d.recv, d.count, dt, d.peer, comm, stream);
      return s;
    default:
      return core::fail(PLX_ERR_UNSUPPORTED, "nccl: collective kind {} is not supported", d.coll);
  }
}

// Under the gate, healthy, options checked: one collective, as called or
// as its stand-in for a rank that contributes nothing.
plx_status run(Comm &c, const plx_coll_desc &d) {
  c.count_call(d.coll);
  // A zero count is a no-op that every rank skips alike (gather's counts
  // differ per rank, so it always goes through).
  if (d.count == 0 && d.coll != PLX_COLL_BARRIER && d.coll != PLX_COLL_GATHER) return PLX_OK;
  ncclResult_t result = ncclSuccess;
  const plx_status s = d.coll == PLX_COLL_GATHER
                           ? gather(c, d, static_cast<cudaStream_t>(d.stream), &result)
                           : issue(c, d, &result);
  if (s != PLX_OK) [[unlikely]] return s;
  if (result != ncclSuccess) [[unlikely]]
    if (plx_status st = c.after_nccl(result, nccl_call_names[d.coll])) return st;
  if (c.group_depth > 0) {  // launched at group_end
    c.group_stream = d.stream;
    c.group_coll = d.coll;
    return PLX_OK;
  }
  c.track(d.stream, d.coll);
  return PLX_OK;
}

// NCCL has no identity input: a rank that contributes nothing passes a
// buffer of the operator's identity as its input (core/identity_buffers.hpp).
[[gnu::cold]] plx_status run_without_contribution(Comm &c, const plx_coll_desc &d) {
  plx_coll_options options;
  plx_coll_desc stand_in;
  if (plx_status s = core::stand_in_for_absent_rank(c.identity_buffers(), d, c.nranks(), "nccl", &options, &stand_in))
    return s;
  return run(c, stand_in);
}

}  // namespace

ncclRedOp_t nccl_op(const Comm &c, int32_t op) {
  constexpr ncclRedOp_t ops[PLX_REDUCE_OP_COUNT] = {ncclSum, ncclProd, ncclMin, ncclMax, ncclAvg};
  // On one rank NCCL's average (its oneRankReduce kernel, NCCL before
  // 2.29.7, NVIDIA/nccl#1950) leaves the last count % blocks elements
  // unwritten (the conformance kit's 2^20 + 3 byte cases on one H200, NCCL
  // 2.28); an average of one value is the value, so it is a sum (a copy).
  return op == PLX_AVG && c.nranks() == 1 ? ncclSum : ops[op];
}

plx_status collective(void *comm, const plx_coll_desc *desc) {
  Comm &c = *static_cast<Comm *>(comm);
  GateHold hold(c.gate());
  if (c.failure() != PLX_OK) [[unlikely]] return c.report_failure();
  if (!options_supported(*desc)) [[unlikely]] return reject_options(*desc);
  if (desc->options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION) [[unlikely]] return run_without_contribution(c, *desc);
  return run(c, *desc);
}

plx_status group_start(void *comm) {
  Comm &c = *static_cast<Comm *>(comm);
  GateHold hold(c.gate());
  if (c.failure() != PLX_OK) return c.report_failure();
  if (c.group_depth > 0)
    return core::fail(PLX_ERR_INVALID_USAGE, "nccl: plx_group_start twice without plx_group_end");
  if (const ncclResult_t r = ncclGroupStart(); r != ncclSuccess) return c.after_nccl(r, "ncclGroupStart");
  c.gate().enter();  // the group's own hold, released by group_end
  c.group_depth = 1;
  c.group_stream = nullptr;
  c.group_coll = -1;
  return PLX_OK;
}

plx_status group_end(void *comm) {
  Comm &c = *static_cast<Comm *>(comm);
  GateHold hold(c.gate());
  if (c.group_depth == 0)
    return core::fail(PLX_ERR_INVALID_USAGE, "nccl: plx_group_end without plx_group_start");
  // Closed even on a failed comm, so NCCL's per-thread group state does not
  // swallow this thread's later calls; the abort waited for this group.
  const ncclResult_t r = ncclGroupEnd();
  plx_status s = PLX_OK;
  if (c.failure() != PLX_OK) s = c.report_failure();
  else if (r != ncclSuccess) s = c.after_nccl(r, "ncclGroupEnd");
  if (!c.pending_finishes.empty()) [[unlikely]]
    if (plx_status finished = finish_group_reductions(c, s == PLX_OK); s == PLX_OK) s = finished;
  c.group_depth = 0;
  c.gate().leave();
  if (s == PLX_OK && c.group_coll >= 0) c.track(c.group_stream, c.group_coll);
  return s;
}

}  // namespace plexus::nccl

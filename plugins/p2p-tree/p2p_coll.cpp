// The collective slot: all-reduce (one-shot or two-shot), reduce (the
// all-reduce kernels, non-roots discard), reduce-scatter (two-shot's first
// half), broadcast, all-gather, gather and barrier, as kernels on the caller's
// stream. A message larger than the exchange slot goes as several launches,
// each its own epoch. The hot path is a failure load, a pointer-cache hit
// and one kernel launch per slot-sized piece: no allocation, no lock, no
// host synchronisation (so it can be captured in a CUDA graph).
#include <cuda_runtime_api.h>

#include "core/coll_options.hpp"
#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "kernels/kernels.hpp"
#include "kernels/widen.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"
#include "plugins/p2p-tree/p2p_pipe.hpp"
#include "plugins/p2p-tree/p2p_plan.hpp"

namespace plexus::p2p_tree {
namespace {

[[gnu::cold]] plx_status reject_kind(Comm &c, const void *p, const char *arg, plx_mem_kind kind, int device) {
  if (kind != PLX_MEM_DEVICE)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: {} ({}) is {} memory; p2p-tree takes device "
                      "memory (cudaMalloc, plx_mem_alloc of PLX_MEM_DEVICE); for host buffers use shm-native",
                      arg, p, kind == PLX_MEM_PINNED_HOST ? "pinned host" : "host");
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: {} ({}) is on CUDA device {}, but the "
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

inline plx_status check_pair(Comm &c, const void *send, const void *recv) {
  if (plx_status s = check_device(c, send, "send")) return s;
  return send == recv ? PLX_OK : check_device(c, recv, "recv");
}

[[gnu::cold]] plx_status reject_options(const plx_coll_desc &d) {
  const plx_coll_options &o = *d.options;
  if (o.flags & ~PLX_COLL_FLAG_NO_CONTRIBUTION)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: option flags {:#x} are not supported", o.flags);
  return core::refuse_wire_dtype("p2p-tree", d);
}

// A float32 reduction sent as float16 or bfloat16 (run_on_wire).
bool narrows_on_wire(const plx_coll_desc &d) {
  return core::float32_on_half_wire(d.coll, d.dtype, d.options->wire_dtype);
}

bool options_supported(const plx_coll_desc &d) {
  const plx_coll_options &o = *d.options;
  return (o.flags & ~PLX_COLL_FLAG_NO_CONTRIBUTION) == 0 && core::wire_dtype_honoured(d.coll, d.dtype, o.wire_dtype);
}

// A failed launch leaves the peers waiting for this rank: sticky, so they
// learn it at once instead of at their timeout.
[[gnu::cold]] plx_status launch_failed(Comm &c, cudaError_t err, const char *kernel) {
  core::fail_cuda(err, fmt::format("p2p-tree: rank {} (device {}): launching the {} kernel", c.rank(),
                                   c.device(), kernel));
  return c.set_failure(PLX_ERR_DEVICE, core::last_message());
}

// The algorithm asked for: forced by the variable, else the call's hint,
// else auto.
int32_t wanted_algo(const Comm &c, const plx_coll_desc &d) {
  if (c.params().forced_algo != PLX_ALGO_AUTO) return c.params().forced_algo;
  const int32_t hint = d.options->algorithm;
  return hint == PLX_ALGO_ONE_SHOT || hint == PLX_ALGO_TWO_SHOT || hint == kAlgoCopy ? hint : PLX_ALGO_AUTO;
}

// One-shot (LL or LL128 lines), bulk one-shot, LL128 two-shot, two-shot or
// the copy engines (all-reduce only, by size on 2 ranks; a reduce asking
// for them takes the two-shot). A one-shot asked for runs as lines when one
// launch's LL slot holds it, else bulk.
int32_t choose_algo(const Comm &c, const plx_coll_desc &d, uint64_t bytes) {
  if (c.nranks() == 1) return PLX_ALGO_ONE_SHOT;
  const int32_t wanted = wanted_algo(c, d);
  const bool all_reduce = d.coll == PLX_COLL_ALL_REDUCE;
  if (all_reduce && (wanted == kAlgoCopy || (wanted == PLX_ALGO_AUTO && c.params().copy_by_size(bytes, c.nranks()))))
    return kAlgoCopy;
  if (wanted == kAlgoCopy) return PLX_ALGO_TWO_SHOT;
  if (wanted == PLX_ALGO_ONE_SHOT) return bytes <= c.peers().ll_slot_bytes / 2 ? PLX_ALGO_ONE_SHOT : kAlgoOneShotBulk;
  if (wanted == kAlgoLL128TwoShot) return c.ll128() ? kAlgoLL128TwoShot : PLX_ALGO_TWO_SHOT;
  if (wanted != PLX_ALGO_AUTO) return wanted;
  return c.params().auto_algo(bytes, static_cast<uint64_t>(c.nranks()), c.ll128());
}

// Bytes of one launch: half an LL slot (lines are half data), an input
// area shared by every rank's whole input, or an area of chunks.
uint64_t launch_capacity(const Comm &c, int32_t algo) {
  if (algo == PLX_ALGO_ONE_SHOT) return c.peers().ll_slot_bytes / 2;
  if (algo == kAlgoOneShotBulk) return bulk_capacity(c.params().slot_bytes, static_cast<uint64_t>(c.nranks()));
  if (algo == kAlgoLL128TwoShot)
    return kernels::ll128_two_shot_capacity(c.peers().ll_slot_bytes, static_cast<uint64_t>(c.nranks()));
  return c.params().slot_bytes;
}

// A one-shot launch goes as LL128 lines from the agreed size up (half the
// bytes of LL lines), as LL lines below it.
cudaError_t launch_reduce(const Comm &c, int32_t algo, const kernels::ReduceArgs &a, cudaStream_t stream) {
  if (algo == PLX_ALGO_ONE_SHOT && a.total * core::kDtypeBytes[a.dtype] >= c.ll128_min_bytes())
    return kernels::launch_one_shot_ll128(c.peers(), a, stream);
  if (algo == PLX_ALGO_ONE_SHOT) return kernels::launch_one_shot(c.peers(), a, stream);
  if (algo == kAlgoOneShotBulk) return kernels::launch_one_shot_bulk(c.peers(), a, stream);
  if (algo == kAlgoLL128TwoShot) return kernels::launch_two_shot_ll128(c.peers(), a, stream);
  return kernels::launch_two_shot(c.peers(), a, stream);
}

const char *algo_kernel_name(int32_t algo) {
  return algo == PLX_ALGO_ONE_SHOT ? "one-shot" : algo == kAlgoOneShotBulk ? "bulk one-shot"
         : algo == kAlgoLL128TwoShot ? "LL128 two-shot" : "two-shot";
}

// All-reduce, and reduce with out NULL on the non-roots.
plx_status reduce(Comm &c, const plx_coll_desc &d, void *out, int32_t algo, cudaStream_t stream) {
  const uint64_t es = core::kDtypeBytes[d.dtype];
  const bool one_shot = algo != PLX_ALGO_TWO_SHOT;
  kernels::ReduceArgs a;
  a.dtype = d.dtype, a.op = d.op, a.coll = d.coll;
  cudaError_t err = cudaSuccess;
  plan_reduce(d.count, es, static_cast<uint64_t>(c.nranks()), launch_capacity(c, algo), one_shot,
              [&](const ReducePiece &piece) {
                if (err != cudaSuccess) return;
                a.in = static_cast<const char *>(d.send) + piece.offset * es;
                a.out = out == nullptr ? nullptr : static_cast<char *>(out) + piece.offset * es;
                a.total = piece.total, a.chunk = piece.chunk, a.in_stride = piece.in_stride;
                if (algo == PLX_ALGO_TWO_SHOT) c.post_output(a.out, piece.total * es, &a);
                err = launch_reduce(c, algo, a, stream);
              });
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, algo_kernel_name(algo));
}

plx_status copy_engines(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const cudaError_t err = copy_engine_all_reduce(c, d, stream);
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "copy-engine all-reduce");
}

plx_status reduce_scatter(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t es = core::kDtypeBytes[d.dtype];
  kernels::ReduceArgs a;
  a.dtype = d.dtype, a.op = d.op, a.coll = d.coll, a.scatter_only = 1;
  cudaError_t err = cudaSuccess;
  plan_reduce_scatter(d.count, es, static_cast<uint64_t>(c.nranks()), c.params().slot_bytes,
                      [&](const ReducePiece &piece) {
                        if (err != cudaSuccess) return;
                        a.in = static_cast<const char *>(d.send) + piece.offset * es;
                        a.out = static_cast<char *>(d.recv) + piece.offset * es;
                        a.total = piece.total, a.chunk = piece.chunk, a.in_stride = piece.in_stride;
                        err = kernels::launch_two_shot(c.peers(), a, stream);
                      });
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "reduce-scatter");
}

plx_status copies(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t bytes = d.count * core::kDtypeBytes[d.dtype];
  const bool gather = d.coll == PLX_COLL_ALL_GATHER;
  kernels::CopyArgs a;
  a.root = d.root, a.coll = d.coll, a.out_stride = bytes;
  cudaError_t err = cudaSuccess;
  plan_copies(bytes, c.params().slot_bytes, [&](uint64_t offset, uint64_t m) {
    if (err != cudaSuccess) return;
    a.in = d.send == nullptr ? nullptr : static_cast<const char *>(d.send) + offset;
    a.out = static_cast<char *>(d.recv) + offset;
    a.bytes = m;
    err = gather ? kernels::launch_all_gather(c.peers(), a, stream) : kernels::launch_broadcast(c.peers(), a, stream);
  });
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, gather ? "all-gather" : "broadcast");
}

// Gather's part of rank q, in elements: counts[q], or count each.
uint64_t gather_count(const plx_coll_desc &d, int32_t q) { return d.counts != nullptr ? d.counts[q] : d.count; }

plx_status check_gather_buffers(Comm &c, const plx_coll_desc &d) {
  uint64_t total = 0;
  for (int32_t q = 0; q < c.nranks(); ++q) total += gather_count(d, q);
  if (gather_count(d, c.rank()) > 0)
    if (plx_status s = check_device(c, d.send, "send")) return s;
  return c.rank() == d.root && total > 0 ? check_device(c, d.recv, "recv") : PLX_OK;
}

// Gather: each launch carries a slice of every rank's part (p2p_plan.hpp);
// every rank computes the same parts from counts, so all launch alike.
plx_status gather(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t es = core::kDtypeBytes[d.dtype], n = static_cast<uint64_t>(c.nranks());
  uint64_t bytes[kernels::kMaxRanks] = {}, displ[kernels::kMaxRanks] = {};
  for (uint64_t q = 0, at = 0; q < n; ++q) {
    bytes[q] = gather_count(d, static_cast<int32_t>(q)) * es;
    displ[q] = at;
    at += bytes[q];
  }
  kernels::GatherArgs a;
  a.root = d.root, a.coll = d.coll, a.stride = gather_stride(c.params().slot_bytes, n);
  a.out = c.rank() == d.root ? d.recv : nullptr;
  cudaError_t err = cudaSuccess;
  plan_gather(bytes, n, c.params().slot_bytes, [&](uint64_t offset) {
    if (err != cudaSuccess) return;
    for (uint64_t q = 0; q < n; ++q) {
      a.bytes[q] = gather_piece(bytes[q], offset, a.stride);
      a.displ[q] = displ[q] + offset;
    }
    a.in = a.bytes[c.rank()] > 0 ? static_cast<const char *>(d.send) + offset : nullptr;
    err = kernels::launch_gather(c.peers(), a, stream);
  });
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "gather");
}

plx_status check_buffers(Comm &c, const plx_coll_desc &d) {
  const bool root = c.rank() == d.root;
  switch (d.coll) {
    case PLX_COLL_GATHER: return check_gather_buffers(c, d);
    case PLX_COLL_REDUCE: return root ? check_pair(c, d.send, d.recv) : check_device(c, d.send, "send");
    case PLX_COLL_BROADCAST: return root ? check_pair(c, d.send, d.recv) : check_device(c, d.recv, "recv");
    case PLX_COLL_BARRIER: return PLX_OK;
    default: return check_pair(c, d.send, d.recv);
  }
}

plx_status issue(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t bytes = d.count * core::dtype_bytes(d.dtype);
  switch (d.coll) {
    case PLX_COLL_ALL_REDUCE:
    case PLX_COLL_REDUCE: {
      const int32_t algo = choose_algo(c, d, bytes);
      c.count_call(d.coll, algo == kAlgoOneShotBulk ? PLX_ALGO_ONE_SHOT : algo == kAlgoLL128TwoShot ? PLX_ALGO_TWO_SHOT : algo);
      if (d.count == 0) return PLX_OK;
      if (algo == kAlgoCopy) return copy_engines(c, d, stream);
      return reduce(c, d, d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv, algo, stream);
    }
    case PLX_COLL_REDUCE_SCATTER:
      c.count_call(d.coll, PLX_ALGO_TWO_SHOT);
      return d.count == 0 ? PLX_OK : reduce_scatter(c, d, stream);
    case PLX_COLL_BROADCAST:
    case PLX_COLL_ALL_GATHER:
      c.count_call(d.coll, PLX_ALGO_ONE_SHOT);
      return d.count == 0 ? PLX_OK : copies(c, d, stream);
    case PLX_COLL_GATHER:
      c.count_call(d.coll, PLX_ALGO_ONE_SHOT);
      return gather(c, d, stream);  // no launch when every part is empty
    case PLX_COLL_BARRIER: {
      c.count_call(d.coll, PLX_ALGO_ONE_SHOT);
      const cudaError_t err = kernels::launch_barrier(c.peers(), d.coll, stream);
      return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "barrier");
    }
    default:
      return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: {} is not supported by this version (v1 has "
                        "all-reduce, reduce, reduce-scatter, broadcast, all-gather, gather and barrier); nccl has it",
                        coll_name(d.coll));
  }
}

// On one rank every collective's result is its input (a reduction of one
// value is that value, an average too; a rank that contributes nothing
// passes the identity as its input), so a copy-engine memcpy, as NCCL's
// one-rank path does, where the one-shot kernel's few blocks copied at
// 155-220 GB/s on one H200.
plx_status one_rank_copy(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  c.count_call(d.coll, PLX_ALGO_COPY);
  const uint64_t count = d.coll == PLX_COLL_GATHER ? gather_count(d, 0) : d.count;
  const uint64_t bytes = count * core::dtype_bytes(d.dtype);
  if (bytes == 0 || d.send == d.recv) return PLX_OK;
  const cudaError_t err = cudaMemcpyAsync(d.recv, d.send, bytes, cudaMemcpyDeviceToDevice, stream);
  if (err == cudaSuccess) return PLX_OK;
  return core::fail_cuda(err, fmt::format("p2p-tree: one rank (device {}): copying {} bytes for {}", c.device(),
                                          bytes, coll_name(d.coll)));
}

// The ring and tree routes first (p2p_pipe.hpp): forced, hinted, or the
// only ones a partly connected machine has; else issue's algorithms.
plx_status route(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t bytes = d.count * core::dtype_bytes(d.dtype);
  const bool moves_data = d.coll != PLX_COLL_BARRIER && d.coll != PLX_COLL_SEND && d.coll != PLX_COLL_RECV;
  if (c.nranks() == 1 && moves_data) return one_rank_copy(c, d, stream);
  int32_t algo = PLX_ALGO_AUTO;
  switch (d.coll) {
    case PLX_COLL_ALL_REDUCE:
    case PLX_COLL_REDUCE:
      if (plx_status s = pipe_reduce_algo(c, d, bytes, &algo)) return s;
      if (algo == PLX_ALGO_AUTO) break;
      c.count_call(d.coll, algo);
      return d.count == 0 ? PLX_OK : pipe_reduce(c, d, d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv,
                                                 algo, stream);
    case PLX_COLL_BROADCAST:
      if ((algo = pipe_broadcast_algo(c, d)) == PLX_ALGO_AUTO) break;
      c.count_call(d.coll, algo);
      return d.count == 0 ? PLX_OK : pipe_broadcast(c, d, algo, stream);
    case PLX_COLL_BARRIER:
      if (c.routes().full) break;
      c.count_call(d.coll, PLX_ALGO_KARY_TREE);
      return pipe_barrier(c, d, stream);
    case PLX_COLL_ALL_GATHER:
    case PLX_COLL_GATHER:
    case PLX_COLL_REDUCE_SCATTER:
      if (plx_status s = require_full_graph(c, d.coll, "")) return s;
      break;
    default:
      break;
  }
  return issue(c, d, stream);
}

// The float32 call `d` as the same reduction of its wire dtype's values in
// `block` (its input first, then its result).
plx_coll_desc on_wire(const plx_coll_desc &d, uint16_t *block, uint64_t in_count, bool gets,
                      plx_coll_options *options) {
  *options = *d.options;
  options->wire_dtype = -1;
  plx_coll_desc narrowed = d;
  narrowed.dtype = d.options->wire_dtype, narrowed.options = options;
  narrowed.send = block, narrowed.recv = gets ? block + in_count : nullptr;
  return narrowed;
}

// Whether one one-shot launch carries the call `as_wire` (the float32 call
// with the wire dtype as its dtype): an all-reduce or reduce on the full
// graph that takes the one-shot (LL or LL128 lines) in a single piece.
bool one_launch_on_wire(const Comm &c, const plx_coll_desc &as_wire) {
  if (as_wire.coll != PLX_COLL_ALL_REDUCE && as_wire.coll != PLX_COLL_REDUCE) return false;
  const uint64_t bytes = as_wire.count * core::kDtypeBytes[as_wire.dtype];
  int32_t pipe = PLX_ALGO_AUTO;
  if (pipe_reduce_algo(c, as_wire, bytes, &pipe) != PLX_OK || pipe != PLX_ALGO_AUTO) return false;
  return choose_algo(c, as_wire, bytes) == PLX_ALGO_ONE_SHOT && bytes <= launch_capacity(c, PLX_ALGO_ONE_SHOT);
}

// That one launch: the kernel rounds the float32 input to the wire dtype as
// it loads it and widens the result as it stores it (kernels/wire_io.cuh),
// so the call costs what the half-type call costs, with the numerics of
// the stand-in below, bit for bit.
plx_status wire_one_shot(Comm &c, const plx_coll_desc &d, plx_dtype wire, cudaStream_t stream) {
  kernels::ReduceArgs a;
  a.dtype = wire, a.op = d.op, a.coll = d.coll, a.float32_io = 1;
  a.in = d.send, a.out = d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv;
  a.total = d.count;
  c.count_call(d.coll, PLX_ALGO_ONE_SHOT);
  const cudaError_t err = launch_reduce(c, PLX_ALGO_ONE_SHOT, a, stream);
  return err == cudaSuccess ? PLX_OK : launch_failed(c, err, "one-shot on the wire dtype");
}

// The stand-in for the rest: the input rounded to the wire dtype into a pool
// block, the reduction run in that dtype (float32 accumulation in rank
// order, one rounding: every contribution and the result rounded to it, and
// every rank gets the same bits), the result widened into recv, the block
// freed behind it: all on the caller's stream (in a capture, the graph's
// allocation and free nodes).
plx_status run_on_wire(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const auto wire = static_cast<plx_dtype>(d.options->wire_dtype);
  plx_coll_desc as_wire = d;
  as_wire.dtype = wire;
  if (one_launch_on_wire(c, as_wire)) return wire_one_shot(c, d, wire, stream);
  const uint64_t in_count = d.coll == PLX_COLL_REDUCE_SCATTER ? d.count * static_cast<uint64_t>(c.nranks()) : d.count;
  const bool gets = d.coll != PLX_COLL_REDUCE || c.rank() == d.root;
  cudaMemPool_t pool = nullptr;
  if (plx_status s = c.wire_pool().get(&pool)) return s;
  void *block = nullptr;
  PLX_CUDA_CHECK(cudaMallocFromPoolAsync(&block, (in_count + d.count) * 2, pool, stream));
  plx_coll_options options;
  const plx_coll_desc narrowed = on_wire(d, static_cast<uint16_t *>(block), in_count, gets, &options);
  cudaError_t err = kernels::launch_narrow(static_cast<const float *>(d.send), block, in_count, wire, stream);
  plx_status s = err == cudaSuccess ? route(c, narrowed, stream) : launch_failed(c, err, "narrowing");
  if (s == PLX_OK && gets) err = kernels::launch_widen(narrowed.recv, static_cast<float *>(d.recv), d.count, wire, stream);
  if (s == PLX_OK && err != cudaSuccess) s = launch_failed(c, err, "widening");
  (void)cudaFreeAsync(block, stream);
  return s;
}

plx_status run(Comm &c, const plx_coll_desc &d) {
  if (d.count > 0 || d.coll == PLX_COLL_GATHER)  // gather's counts may be set where count is 0
    if (plx_status s = check_buffers(c, d)) return s;
  // Kernels launch on the caller's stream, which belongs to our device.
  core::ScopedDevice device(c.device());
  if (device.status() != PLX_OK) [[unlikely]] return device.status();
  core::log_trace("p2p-tree: rank {}: {} count {} dtype {} op {} root {} on stream {}", c.rank(),
                  coll_name(d.coll), d.count, d.dtype, d.op, d.root, d.stream);
  if (narrows_on_wire(d) && d.count > 0) [[unlikely]] return run_on_wire(c, d, static_cast<cudaStream_t>(d.stream));
  return route(c, d, static_cast<cudaStream_t>(d.stream));
}

// A rank that contributes nothing sends a buffer of the operator's identity
// in place of its input, and the kernels run unchanged: every rank still
// reduces every rank's values in rank order (core/identity_buffers.hpp).
[[gnu::cold]] plx_status run_without_contribution(Comm &c, const plx_coll_desc &d) {
  plx_coll_options options;
  plx_coll_desc stand_in;
  if (plx_status s = core::stand_in_for_absent_rank(c.identity_buffers(), d, c.nranks(), "p2p-tree", &options,
                                                    &stand_in))
    return s;
  return run(c, stand_in);
}

}  // namespace

plx_status collective(void *comm, const plx_coll_desc *desc) {
  Comm &c = *static_cast<Comm *>(comm);
  if (c.failure() != PLX_OK) [[unlikely]] return c.report_failure();
  if (!options_supported(*desc)) [[unlikely]] return reject_options(*desc);
  if (desc->options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION) [[unlikely]] return run_without_contribution(c, *desc);
  return run(c, *desc);
}

}  // namespace plexus::p2p_tree

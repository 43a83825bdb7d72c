// Half-type reductions that accumulate in float32 (PLX-P-8). NCCL adds a
// float16/bfloat16 partial sum in float but rounds it back to the half type
// at every hop of its ring or tree, so with more than 2 ranks a sum is off
// by up to nranks-1 roundings (2 ulp and more measured at 4 ranks). Two
// ways around it, both through a block of the comm's own stream-ordered
// pool (inside a graph capture, the graph's allocation node):
//  - small inputs (WIDEN_GATHER_MAX_BYTES): NCCL all-gathers the half-type
//    inputs and one kernel reduces them in rank order in float32, rounding
//    once: one launch after NCCL, nranks x the (small) bytes;
//  - larger ones: the input is widened to float32, NCCL reduces float32 in
//    place, and the result is rounded once into the caller's buffer: two
//    launches around NCCL, twice the bytes.
// With 2 ranks NCCL adds the two inputs once and rounds once, which is
// already float32 accumulation, so nothing changes there (WIDEN_HALF=2
// takes these paths anyway, so 2 GPUs can test them).
// And the other way, a float32 reduction sent as float16 or bfloat16
// (opts->wire_dtype): the input rounded into a block, NCCL reduces the half
// type in place (so every contribution and partial sum is rounded to it,
// as a wire dtype allows), the result widened into the caller's buffer.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/cuda_status.hpp"
#include "core/status.hpp"
#include "plugins/nccl/nccl_backend.hpp"
#if PLEXUS_NCCL_WIDEN
#include "kernels/widen.hpp"
#endif

namespace plexus::nccl {
namespace {

#if PLEXUS_NCCL_WIDEN
constexpr ncclDataType_t half_types[2] = {ncclFloat16, ncclBfloat16};
ncclDataType_t nccl_half(plx_dtype dtype) { return half_types[dtype == PLX_BFLOAT16]; }

cudaError_t finish(const PendingFinish &f) {
  if (f.out == nullptr) return cudaSuccess;
  switch (f.finish) {
    case Finish::reduce_gathered:
      return kernels::launch_reduce_gathered(f.result, f.stride, f.nranks, f.out, f.count, f.dtype, f.op, f.stream);
    case Finish::widen:
      return kernels::launch_widen(f.result, static_cast<float *>(f.out), f.count, f.dtype, f.stream);
    default:
      return kernels::launch_narrow(static_cast<const float *>(f.result), f.out, f.count, f.dtype, f.stream);
  }
}

plx_status finish_and_free(const PendingFinish &f) {
  const cudaError_t done = finish(f);
  const cudaError_t freed = cudaFreeAsync(f.block, f.stream);
  PLX_CUDA_CHECK(done);
  PLX_CUDA_CHECK(freed);
  return PLX_OK;
}

// The NCCL call on the float32 block; a reduce-scatter is NCCL's in-place
// form (this rank's part of the block receives the result).
ncclResult_t reduce_block(Comm &c, const plx_coll_desc &d, float *block, const void *result) {
  auto *stream = static_cast<cudaStream_t>(d.stream);
  const ncclRedOp_t op = nccl_op(c, d.op);
  if (d.coll == PLX_COLL_ALL_REDUCE) return ncclAllReduce(block, block, d.count, ncclFloat32, op, c.nccl(), stream);
  if (d.coll == PLX_COLL_REDUCE) return ncclReduce(block, block, d.count, ncclFloat32, op, d.root, c.nccl(), stream);
  return ncclReduceScatter(block, static_cast<float *>(const_cast<void *>(result)), d.count, ncclFloat32, op,
                           c.nccl(), stream);
}

// Issues the NCCL half of a widened reduction into f->block (allocated
// here); fills in where the result is and how to finish it.
plx_status issue_into_block(Comm &c, const plx_coll_desc &d, uint64_t in_count, PendingFinish *f,
                            ncclResult_t *result) {
  cudaMemPool_t pool = nullptr;
  if (plx_status s = c.widen_pool().get(&pool)) return s;
  const uint64_t at = d.coll == PLX_COLL_REDUCE_SCATTER ? static_cast<uint64_t>(c.rank()) * d.count : 0;
  const bool gathered = f->finish == Finish::reduce_gathered;
  const uint64_t bytes = gathered ? in_count * static_cast<uint64_t>(c.nranks()) * 2 : in_count * sizeof(float);
  PLX_CUDA_CHECK(cudaMallocFromPoolAsync(&f->block, bytes, pool, f->stream));
  if (gathered) {
    f->result = static_cast<const uint16_t *>(f->block) + at;
    *result = ncclAllGather(d.send, f->block, in_count, nccl_half(f->dtype), c.nccl(), f->stream);
    return PLX_OK;
  }
  f->result = static_cast<const float *>(f->block) + at;
  if (const cudaError_t e = kernels::launch_widen(d.send, static_cast<float *>(f->block), in_count, f->dtype, f->stream);
      e != cudaSuccess) {
    (void)cudaFreeAsync(f->block, f->stream);
    return core::fail_cuda(e, "nccl: widening the half-type input to float32");
  }
  *result = reduce_block(c, d, static_cast<float *>(f->block), f->result);
  return PLX_OK;
}

// A float32 reduction's input rounded to its wire dtype into f->block
// (allocated here); f describes the widening that follows NCCL.
plx_status narrow_into_block(Comm &c, const plx_coll_desc &d, PendingFinish *f) {
  const uint64_t n = static_cast<uint64_t>(c.nranks());
  const uint64_t in_count = d.coll == PLX_COLL_REDUCE_SCATTER ? d.count * n : d.count;
  f->finish = Finish::widen;
  f->out = d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv;
  f->count = d.count, f->op = d.op, f->nranks = c.nranks();
  f->dtype = static_cast<plx_dtype>(d.options->wire_dtype), f->stream = static_cast<cudaStream_t>(d.stream);
  cudaMemPool_t pool = nullptr;
  if (plx_status s = c.widen_pool().get(&pool)) return s;
  PLX_CUDA_CHECK(cudaMallocFromPoolAsync(&f->block, in_count * 2, pool, f->stream));
  const uint64_t at = d.coll == PLX_COLL_REDUCE_SCATTER ? static_cast<uint64_t>(c.rank()) * d.count : 0;
  f->result = static_cast<const uint16_t *>(f->block) + at;
  const auto *in = static_cast<const float *>(d.send);
  const cudaError_t e = kernels::launch_narrow(in, f->block, in_count, f->dtype, f->stream);
  if (e == cudaSuccess) return PLX_OK;
  (void)cudaFreeAsync(f->block, f->stream);
  return core::fail_cuda(e, "nccl: rounding the float32 input to its wire dtype");
}

// After NCCL took the block: finish now, or at the group's end; NCCL's own
// error (which the caller maps) only frees the block.
plx_status finish_now_or_at_group_end(Comm &c, const PendingFinish &f, ncclResult_t result) {
  if (result != ncclSuccess) {
    (void)cudaFreeAsync(f.block, f.stream);
    return PLX_OK;
  }
  if (c.group_depth > 0) return c.pending_finishes.push_back(f), PLX_OK;
  return finish_and_free(f);
}
#endif

}  // namespace

bool needs_widening(const Comm &c, const plx_coll_desc &d) {
  const int32_t mode = c.params().widen_half;
  if (mode == 0 || (mode == 1 && c.nranks() <= 2)) return false;
  if (d.dtype != PLX_FLOAT16 && d.dtype != PLX_BFLOAT16) return false;
  if (d.op == PLX_MIN || d.op == PLX_MAX) return false;  // picks an input: exact in any precision
  return d.coll == PLX_COLL_ALL_REDUCE || d.coll == PLX_COLL_REDUCE || d.coll == PLX_COLL_REDUCE_SCATTER;
}

#if PLEXUS_NCCL_WIDEN
plx_status issue_widened(Comm &c, const plx_coll_desc &d, ncclResult_t *result) {
  core::ScopedDevice device(c.device());  // the pool and the kernels are the comm's device's
  if (device.status() != PLX_OK) return device.status();
  const uint64_t in_count = d.coll == PLX_COLL_REDUCE_SCATTER ? d.count * static_cast<uint64_t>(c.nranks()) : d.count;
  PendingFinish f;
  f.out = d.coll == PLX_COLL_REDUCE && c.rank() != d.root ? nullptr : d.recv;
  f.count = d.count, f.stride = in_count, f.op = d.op, f.nranks = c.nranks();
  f.dtype = static_cast<plx_dtype>(d.dtype), f.stream = static_cast<cudaStream_t>(d.stream);
  f.finish = in_count * 2 <= c.params().widen_gather_max_bytes ? Finish::reduce_gathered : Finish::narrow;
  if (plx_status s = issue_into_block(c, d, in_count, &f, result)) return s;
  return finish_now_or_at_group_end(c, f, *result);
}

plx_status issue_on_wire(Comm &c, const plx_coll_desc &d, ncclResult_t *result) {
  core::ScopedDevice device(c.device());
  if (device.status() != PLX_OK) return device.status();
  PendingFinish f;
  if (plx_status s = narrow_into_block(c, d, &f)) return s;
  auto *block = static_cast<uint16_t *>(f.block);
  const ncclDataType_t half = nccl_half(f.dtype);
  const ncclRedOp_t op = nccl_op(c, d.op);
  if (d.coll == PLX_COLL_ALL_REDUCE) *result = ncclAllReduce(block, block, d.count, half, op, c.nccl(), f.stream);
  else if (d.coll == PLX_COLL_REDUCE) *result = ncclReduce(block, block, d.count, half, op, d.root, c.nccl(), f.stream);
  else *result = ncclReduceScatter(block, const_cast<void *>(f.result), d.count, half, op, c.nccl(), f.stream);
  return finish_now_or_at_group_end(c, f, *result);
}

plx_status finish_group_reductions(Comm &c, bool launched) {
  plx_status first = PLX_OK;
  for (const PendingFinish &f : c.pending_finishes) {
    if (!launched) {
      (void)cudaFreeAsync(f.block, f.stream);
      continue;
    }
    if (plx_status s = finish_and_free(f); first == PLX_OK) first = s;
  }
  c.pending_finishes.clear();
  return first;
}
#else
plx_status issue_on_wire(Comm &, const plx_coll_desc &, ncclResult_t *) {
  return core::fail(PLX_ERR_UNSUPPORTED, "nccl: this build has no conversion kernels (built without nvcc), "
                    "so float32 reductions travel as float32 only");
}

plx_status issue_widened(Comm &, const plx_coll_desc &, ncclResult_t *) {
  return core::fail(PLX_ERR_UNSUPPORTED, "nccl: float16/bfloat16 sum, prod and avg over more than 2 ranks "
                    "accumulate in float32 through kernels of their own, and this build has none (built "
                    "without nvcc); set PLEXUS_NCCL_WIDEN_HALF=0 for NCCL's own half-precision sums");
}

plx_status finish_group_reductions(Comm &, bool) { return PLX_OK; }
#endif

}  // namespace plexus::nccl

// Half-type reductions that accumulate in float32 (PLX-P-8). NCCL adds a
// float16/bfloat16 partial sum in float but rounds it back to the half type
// at every hop of its ring or tree, so with more than 2 ranks a sum is off
// by up to nranks-1 roundings (2 ulp and more measured at 4 ranks). Here the
// input is widened to float32 in a block of the comm's own stream-ordered
// pool, NCCL reduces float32 in place there, and the result is rounded once
// into the caller's buffer: twice the bytes on the wire, the same numerics
// as every other plugin. With 2 ranks NCCL adds the two inputs once and
// rounds once, which is already that, so nothing is widened.
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
constexpr ncclRedOp_t float_ops[PLX_REDUCE_OP_COUNT] = {ncclSum, ncclProd, ncclMin, ncclMax, ncclAvg};

plx_status narrow_and_free(const PendingNarrow &n) {
  const cudaError_t narrowed =
      n.out ? kernels::launch_narrow(n.result, n.out, n.count, n.dtype, n.stream) : cudaSuccess;
  const cudaError_t freed = cudaFreeAsync(n.block, n.stream);
  PLX_CUDA_CHECK(narrowed);
  PLX_CUDA_CHECK(freed);
  return PLX_OK;
}

// The NCCL call on the float32 block; a reduce-scatter is NCCL's in-place
// form (this rank's part of the block receives the result).
ncclResult_t reduce_block(Comm &c, const plx_coll_desc &d, float *block, const float *result) {
  auto *stream = static_cast<cudaStream_t>(d.stream);
  const ncclRedOp_t op = float_ops[d.op];
  if (d.coll == PLX_COLL_ALL_REDUCE) return ncclAllReduce(block, block, d.count, ncclFloat32, op, c.nccl(), stream);
  if (d.coll == PLX_COLL_REDUCE) return ncclReduce(block, block, d.count, ncclFloat32, op, d.root, c.nccl(), stream);
  return ncclReduceScatter(block, const_cast<float *>(result), d.count, ncclFloat32, op, c.nccl(), stream);
}
#endif

}  // namespace

bool needs_widening(const Comm &c, const plx_coll_desc &d) {
  if (!c.params().widen_half || c.nranks() <= 2) return false;
  if (d.dtype != PLX_FLOAT16 && d.dtype != PLX_BFLOAT16) return false;
  if (d.op == PLX_MIN || d.op == PLX_MAX) return false;  // picks an input: exact in any precision
  return d.coll == PLX_COLL_ALL_REDUCE || d.coll == PLX_COLL_REDUCE || d.coll == PLX_COLL_REDUCE_SCATTER;
}

#if PLEXUS_NCCL_WIDEN
plx_status issue_widened(Comm &c, const plx_coll_desc &d, ncclResult_t *result) {
  core::ScopedDevice device(c.device());  // the pool and the kernels are the comm's device's
  if (device.status() != PLX_OK) return device.status();
  auto *stream = static_cast<cudaStream_t>(d.stream);
  const bool scatter = d.coll == PLX_COLL_REDUCE_SCATTER;
  const uint64_t in_count = scatter ? d.count * static_cast<uint64_t>(c.nranks()) : d.count;
  cudaMemPool_t pool = nullptr;
  if (plx_status s = c.widen_pool(&pool)) return s;
  PendingNarrow n{nullptr, nullptr, d.recv, d.count, static_cast<plx_dtype>(d.dtype), stream};
  PLX_CUDA_CHECK(cudaMallocFromPoolAsync(reinterpret_cast<void **>(&n.block), in_count * sizeof(float), pool, stream));
  n.result = scatter ? n.block + static_cast<uint64_t>(c.rank()) * d.count : n.block;
  if (d.coll == PLX_COLL_REDUCE && c.rank() != d.root) n.out = nullptr;
  if (const cudaError_t e = kernels::launch_widen(d.send, n.block, in_count, n.dtype, stream); e != cudaSuccess) {
    (void)cudaFreeAsync(n.block, stream);
    return core::fail_cuda(e, "nccl: widening the half-type input to float32");
  }
  *result = reduce_block(c, d, n.block, n.result);
  if (*result != ncclSuccess) {  // the caller maps NCCL's error
    (void)cudaFreeAsync(n.block, stream);
    return PLX_OK;
  }
  if (c.group_depth > 0) return c.pending_narrows.push_back(n), PLX_OK;
  return narrow_and_free(n);
}

plx_status finish_group_narrows(Comm &c, bool launched) {
  plx_status first = PLX_OK;
  for (const PendingNarrow &n : c.pending_narrows) {
    if (!launched) {
      (void)cudaFreeAsync(n.block, n.stream);
      continue;
    }
    if (plx_status s = narrow_and_free(n); first == PLX_OK) first = s;
  }
  c.pending_narrows.clear();
  return first;
}
#else
plx_status issue_widened(Comm &, const plx_coll_desc &, ncclResult_t *) {
  return core::fail(PLX_ERR_UNSUPPORTED, "nccl: float16/bfloat16 sum, prod and avg over more than 2 ranks "
                    "accumulate in float32 through widening kernels, and this build has none (built "
                    "without nvcc); set PLEXUS_NCCL_WIDEN_HALF=0 for NCCL's own half-precision sums");
}

plx_status finish_group_narrows(Comm &, bool) { return PLX_OK; }
#endif

plx_status Comm::widen_pool(cudaMemPool_t *out) {
  if (widen_pool_ == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device();
    PLX_CUDA_CHECK(cudaMemPoolCreate(&widen_pool_, &props));
    // Kept between calls: a decode loop reuses the same sizes, and memory
    // given back at every synchronisation would be mapped again each time.
    uint64_t keep = UINT64_MAX;
    PLX_CUDA_CHECK(cudaMemPoolSetAttribute(widen_pool_, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  *out = widen_pool_;
  return PLX_OK;
}

uint64_t Comm::trim_widen_pool() {
  if (widen_pool_ == nullptr) return 0;
  uint64_t before = 0, after = 0;
  (void)cudaMemPoolGetAttribute(widen_pool_, cudaMemPoolAttrReservedMemCurrent, &before);
  (void)cudaMemPoolTrimTo(widen_pool_, 0);
  (void)cudaMemPoolGetAttribute(widen_pool_, cudaMemPoolAttrReservedMemCurrent, &after);
  return before > after ? before - after : 0;
}

}  // namespace plexus::nccl

// The plugins' stream-ordered scratch pool (scratch_pool.hpp).
#include "core/scratch_pool.hpp"

#include "core/cuda_status.hpp"

namespace plexus::core {

ScratchPool::~ScratchPool() {
  if (pool_ != nullptr) (void)cudaMemPoolDestroy(pool_);
}

plx_status ScratchPool::get(cudaMemPool_t *out) {
  if (pool_ == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device_;
    PLX_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
    uint64_t keep = UINT64_MAX;
    PLX_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  *out = pool_;
  return PLX_OK;
}

uint64_t ScratchPool::trim() {
  if (pool_ == nullptr) return 0;
  uint64_t before = 0, after = 0;
  (void)cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &before);
  (void)cudaMemPoolTrimTo(pool_, 0);
  (void)cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &after);
  return before > after ? before - after : 0;
}

}  // namespace plexus::core

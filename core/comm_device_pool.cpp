#include "core/comm_device_pool.hpp"

#include <cstring>

#include "core/status.hpp"

namespace plexus::core {

plx_status CommDevicePool::get(DevicePool **out) {
  if (DevicePool *pool = existing()) {
    *out = pool;
    return PLX_OK;
  }
  std::lock_guard lock(mutex_);
  if (!pool_) {
    DevicePoolConfig config;
    config.device = device_;
    config.defrag_threshold = defrag_threshold_;
    if (plx_status s = DevicePool::create(config, &pool_)) return s;
    ptr_.store(pool_.get(), std::memory_order_release);
  }
  *out = pool_.get();
  return PLX_OK;
}

void CommDevicePool::reset() {
  std::lock_guard lock(mutex_);
  ptr_.store(nullptr, std::memory_order_release);
  pool_.reset();
}

plx_status CommDevicePool::allocate(const plx_mem_alloc_params *params, void **ptr) {
  DevicePool *pool = nullptr;
  if (plx_status s = get(&pool)) return s;
  return pool->allocate(params->bytes, params->alignment, params->tag, ptr);
}

plx_status CommDevicePool::free(void *ptr) {
  DevicePool *pool = existing();
  if (pool == nullptr)
    return fail(PLX_ERR_INVALID_ARGUMENT, "{}: plx_mem_free: {} is not a block of this "
                "communicator (it has allocated nothing)", plugin_, ptr);
  return pool->free(ptr);
}

plx_status CommDevicePool::pin(const void *ptr) {
  DevicePool *pool = existing();
  if (pool == nullptr || !pool->owns(ptr)) return PLX_ERR_NOT_FOUND;  // not ours: no message needed
  return pool->pin_segment(ptr);
}

plx_status CommDevicePool::stats(int32_t kind, uint32_t tag, plx_mem_stats *stats) {
  DevicePool *pool = existing();
  if (pool != nullptr) return pool->stats(tag, stats);
  const uint32_t size = stats->struct_size;  // nothing allocated yet: all zero
  std::memset(stats, 0, sizeof(*stats));
  stats->struct_size = size;
  stats->kind = kind;
  return PLX_OK;
}

plx_status CommDevicePool::defragment(uint64_t *released) {
  if (DevicePool *pool = existing()) return pool->defragment(released);
  if (released) *released = 0;
  return PLX_OK;
}

plx_status CommDevicePool::trim(uint64_t keep_bytes, uint64_t *released) {
  if (DevicePool *pool = existing()) return pool->trim(keep_bytes, released);
  if (released) *released = 0;
  return PLX_OK;
}

plx_status CommDevicePool::pressure(plx_pressure *level) {
  DevicePool *pool = nullptr;
  if (plx_status s = get(&pool)) return s;
  *level = pool->pressure();
  return PLX_OK;
}

}  // namespace plexus::core

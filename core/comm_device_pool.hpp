// A communicator's pool of PLX_MEM_DEVICE for plx_mem_alloc, made on first
// use on the communicator's device, and the memory slots of a device
// plugin on top of it: the same behaviour in every CUDA plugin (a question
// about an untouched pool answers zero and makes no pool). Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "core/device_pool.hpp"
#include "plexus/plugin.h"

namespace plexus::core {

class CommDevicePool {
 public:
  // `plugin` names the plugin in messages ("nccl").
  CommDevicePool(const char *plugin, int device, double defrag_threshold)
      : plugin_(plugin), device_(device), defrag_threshold_(defrag_threshold) {}

  // The pool, made now if it does not exist yet.
  plx_status get(DevicePool **out);
  // Frees the pool (every block); callers have synchronised their streams.
  void reset();

  // The vtable's memory slots for this communicator.
  plx_status allocate(const plx_mem_alloc_params *params, void **ptr);
  plx_status free(void *ptr);
  // DevicePool::pin_segment for a block of this pool; PLX_ERR_NOT_FOUND
  // (no message) when ptr is not one.
  plx_status pin(const void *ptr);
  plx_status stats(int32_t kind, uint32_t tag, plx_mem_stats *stats);
  plx_status defragment(uint64_t *released);
  plx_status trim(uint64_t keep_bytes, uint64_t *released);
  plx_status pressure(plx_pressure *level);

 private:
  DevicePool *existing() const { return ptr_.load(std::memory_order_acquire); }

  const char *plugin_;
  int device_;
  double defrag_threshold_;
  std::mutex mutex_;
  std::unique_ptr<DevicePool> pool_;
  std::atomic<DevicePool *> ptr_{nullptr};
};

}  // namespace plexus::core

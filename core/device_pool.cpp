// DevicePool: HostPool's bookkeeping (which never touches the memory it
// manages) over device segments. Everything but growing, releasing,
// exporting and pressure() is host bookkeeping, so allocate and free cost
// what HostPool costs (tens of ns) and never enter CUDA.
#include "core/device_pool.hpp"

#include "core/cuda_status.hpp"
#include "core/device_segments.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {

// The source is declared first, so it outlives the pool that releases into it.
struct DevicePool::Impl {
  DevicePoolConfig config;
  size_t device_bytes = 0;  // the device's memory, for pressure without a budget
  std::unique_ptr<DeviceSegmentSource> source;
  std::unique_ptr<HostPool> pool;
};

namespace {

plx_status device_memory(int device, size_t *free_bytes, size_t *total_bytes) {
  DeviceContext context(device);
  if (context.status() != PLX_OK) return context.status();
  PLX_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
  return PLX_OK;
}

plx_status resolve_device(int requested, int *device) {
  int count = 0;
  if (const plx_status status = require_cuda_device(&count); status != PLX_OK) return status;
  *device = requested;
  if (requested < 0) PLX_CUDA_CHECK(cudaGetDevice(device));
  if (*device >= count)
    return fail(PLX_ERR_INVALID_ARGUMENT, "device pool: device {} does not exist ({} visible)", *device, count);
  return PLX_OK;
}

size_t round_up_to(size_t value, size_t step) { return (value + step - 1) / step * step; }

HostPoolConfig pool_config(const DevicePoolConfig &config, size_t granularity, size_t device_bytes) {
  HostPoolConfig pool;
  pool.segment_granularity = granularity;
  pool.min_segment_bytes = round_up_to(std::max(config.min_segment_bytes, granularity), granularity);
  pool.max_bytes = config.max_bytes != 0 ? config.max_bytes : device_bytes;
  pool.growth_factor = 1.5;
  pool.alignment = 256;
  pool.defrag_threshold = config.defrag_threshold;
  pool.cache_max_block_bytes = config.cache_max_block_bytes;
  pool.kind = PLX_MEM_DEVICE;
  return pool;
}

}  // namespace

DevicePool::DevicePool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DevicePool::~DevicePool() = default;

plx_status DevicePool::create(const DevicePoolConfig &config, std::unique_ptr<DevicePool> *out) {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "device pool: out is NULL");
  out->reset();
  if (config.api != DeviceMemoryApi::cuda_malloc && config.api != DeviceMemoryApi::vmm)
    return fail(PLX_ERR_INVALID_ARGUMENT, "device pool: unknown api {}", static_cast<int>(config.api));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  plx_status status = resolve_device(config.device, &impl->config.device);
  size_t free_bytes = 0;
  if (status == PLX_OK) status = device_memory(impl->config.device, &free_bytes, &impl->device_bytes);
  if (status == PLX_OK)
    status = config.api == DeviceMemoryApi::vmm ? make_vmm_source(impl->config.device, &impl->source)
                                                : make_cuda_malloc_source(impl->config.device, &impl->source);
  if (status != PLX_OK) return status;
  const HostPoolConfig host = pool_config(impl->config, impl->source->granularity(), impl->device_bytes);
  impl->pool = std::make_unique<HostPool>(*impl->source, host);
  log_debug("device pool on device {} ({}): segments from {} bytes in {}-byte granules, budget {} bytes",
            impl->config.device, config.api == DeviceMemoryApi::vmm ? "vmm" : "cuda_malloc", host.min_segment_bytes,
            host.segment_granularity, host.max_bytes);
  out->reset(new DevicePool(std::move(impl)));
  return PLX_OK;
}

plx_status DevicePool::allocate(size_t bytes, size_t alignment, uint32_t tag, void **out) {
  return impl_->pool->allocate(bytes, alignment, tag, out);
}

plx_status DevicePool::free(void *ptr) { return impl_->pool->free(ptr); }

plx_status DevicePool::stats(uint32_t tag, plx_mem_stats *out) const { return impl_->pool->stats(tag, out); }

plx_status DevicePool::defragment(uint64_t *released) { return impl_->pool->defragment(released); }

plx_status DevicePool::trim(uint64_t keep_bytes, uint64_t *released) {
  return impl_->pool->trim(keep_bytes, released);
}

// Free device memory says what the pool and everyone else on the device use;
// the pool's own in-use bytes stand in when CUDA cannot answer.
plx_pressure DevicePool::pressure() const {
  if (impl_->config.max_bytes != 0) return impl_->pool->pressure();
  size_t free_bytes = 0, total_bytes = 0;
  if (device_memory(impl_->config.device, &free_bytes, &total_bytes) == PLX_OK && total_bytes > 0)
    return pressure_from_used_fraction(1.0 - static_cast<double>(free_bytes) / static_cast<double>(total_bytes));
  plx_mem_stats stats{};
  (void)impl_->pool->stats(PLX_MEM_TAG_ALL, &stats);
  return pressure_from_used_fraction(static_cast<double>(stats.bytes_in_use) /
                                     static_cast<double>(std::max<size_t>(impl_->device_bytes, 1)));
}

bool DevicePool::owns(const void *ptr) const { return impl_->pool->owns(ptr); }
plx_status DevicePool::pin_segment(const void *ptr) { return impl_->pool->pin_segment(ptr); }
int DevicePool::device() const { return impl_->config.device; }
DeviceMemoryApi DevicePool::api() const { return impl_->config.api; }
size_t DevicePool::segment_granularity() const { return impl_->source->granularity(); }

plx_status DevicePool::export_segment(const void *ptr, DeviceSegmentExport *out) {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "device pool export: out is NULL");
  *out = DeviceSegmentExport{};
  void *base = nullptr;
  size_t offset = 0;
  uint64_t handle = 0;
  size_t bytes = 0;
  if (const plx_status status = impl_->pool->segment_of(ptr, &base, &offset, &handle, &bytes); status != PLX_OK)
    return status;
  if (const plx_status status = impl_->source->export_segment(base, bytes, handle, out); status != PLX_OK)
    return status;
  out->offset = offset;
  return PLX_OK;
}

}  // namespace plexus::core

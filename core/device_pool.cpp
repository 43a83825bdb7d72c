// Placeholder until the device pool lands (being written now).
#include "core/device_pool.hpp"

#include "core/status.hpp"

namespace plexus::core {

struct DevicePool::Impl {};
DevicePool::DevicePool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DevicePool::~DevicePool() = default;
plx_status DevicePool::create(const DevicePoolConfig &, std::unique_ptr<DevicePool> *) {
  return fail(PLX_ERR_UNSUPPORTED, "device pool not built yet");
}
plx_status DevicePool::allocate(size_t, size_t, uint32_t, void **) { return PLX_ERR_UNSUPPORTED; }
plx_status DevicePool::free(void *) { return PLX_ERR_UNSUPPORTED; }
plx_status DevicePool::stats(uint32_t, plx_mem_stats *) const { return PLX_ERR_UNSUPPORTED; }
plx_status DevicePool::defragment(uint64_t *) { return PLX_ERR_UNSUPPORTED; }
plx_status DevicePool::trim(uint64_t, uint64_t *) { return PLX_ERR_UNSUPPORTED; }
plx_pressure DevicePool::pressure() const { return PLX_PRESSURE_LOW; }
bool DevicePool::owns(const void *) const { return false; }
int DevicePool::device() const { return -1; }
DeviceMemoryApi DevicePool::api() const { return DeviceMemoryApi::cuda_malloc; }
plx_status DevicePool::export_segment(const void *, DeviceSegmentExport *) { return PLX_ERR_UNSUPPORTED; }
plx_status ImportedSegment::open(const DeviceSegmentExport &, int, std::unique_ptr<ImportedSegment> *) {
  return PLX_ERR_UNSUPPORTED;
}
ImportedSegment::~ImportedSegment() = default;

}  // namespace plexus::core

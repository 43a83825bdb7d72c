// Internals of the device pool (not a public header): the driver API entries
// of the VMM path, and the two segment sources behind DevicePool.
#pragma once

#include <cuda.h>  // types only: every driver call goes through VmmDriver

#include <cstddef>
#include <memory>
#include <string_view>

#include "core/device_pool.hpp"
#include "core/host_pool.hpp"

namespace plexus::core {

// Looked up once per process through driver_entry (plexus never links
// libcuda, so a machine without a driver still loads us).
struct VmmDriver {
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetAttribute) device_attribute = nullptr;
  decltype(&::cuMemGetAllocationGranularity) granularity = nullptr;
  decltype(&::cuMemCreate) create = nullptr;
  decltype(&::cuMemRelease) release = nullptr;
  decltype(&::cuMemAddressReserve) address_reserve = nullptr;
  decltype(&::cuMemAddressFree) address_free = nullptr;
  decltype(&::cuMemMap) map = nullptr;
  decltype(&::cuMemUnmap) unmap = nullptr;
  decltype(&::cuMemSetAccess) set_access = nullptr;
  decltype(&::cuMemExportToShareableHandle) export_handle = nullptr;
  decltype(&::cuMemImportFromShareableHandle) import_handle = nullptr;
  decltype(&::cuGetErrorName) error_name = nullptr;
};
plx_status vmm_driver(const VmmDriver **out);

// PLX_ERR_DEVICE (OUT_OF_MEMORY for CUDA_ERROR_OUT_OF_MEMORY) with
// "<what>: <CUDA_ERROR_...>".
plx_status fail_cu(CUresult result, std::string_view what);

// `device` current on this thread with its primary context, for the scope.
// Unlike ScopedDevice it always calls cudaSetDevice: since CUDA 12 that also
// makes the primary context current, which driver calls need and a thread
// that never used the runtime lacks (cudaGetDevice still answers 0 there).
class DeviceContext {
 public:
  explicit DeviceContext(int device);
  ~DeviceContext();
  DeviceContext(const DeviceContext &) = delete;
  DeviceContext &operator=(const DeviceContext &) = delete;
  plx_status status() const { return status_; }

 private:
  int previous_ = -1;
  plx_status status_ = PLX_OK;
};

// The properties of POSIX-fd-shareable device memory on `device`
// (a driver ordinal, equal to the runtime's under one CUDA_VISIBLE_DEVICES).
CUmemAllocationProp vmm_properties(int device, bool rdma_capable);

// A segment source that can also describe a segment to a peer.
class DeviceSegmentSource : public SegmentSource {
 public:
  // Segment sizes are multiples of this (the VMM granule, at least 2 MiB).
  virtual size_t granularity() const = 0;
  // Fills handle/fd, segment_id and segment_bytes; not the offset.
  virtual plx_status export_segment(void *base, size_t bytes, uint64_t handle, DeviceSegmentExport *out) = 0;
};

// UNSUPPORTED for vmm when the device lacks VMM or POSIX fd handles.
plx_status make_cuda_malloc_source(int device, std::unique_ptr<DeviceSegmentSource> *out);
plx_status make_vmm_source(int device, std::unique_ptr<DeviceSegmentSource> *out);

}  // namespace plexus::core

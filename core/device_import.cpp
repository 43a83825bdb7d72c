// A peer's device segment mapped here: a legacy IPC handle opened, or a VMM
// fd imported, reserved, mapped and opened to this device. About 0.1-0.5 ms
// per segment (allocator-lessons §3), so callers open each segment once.
#include <unistd.h>

#include <cstring>

#include "core/cuda_status.hpp"
#include "core/device_pool.hpp"
#include "core/device_segments.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

plx_status open_legacy(const DeviceSegmentExport &exported, int device, void **base) {
  DeviceContext context(device);
  if (context.status() != PLX_OK) return context.status();
  cudaIpcMemHandle_t ipc{};
  std::memcpy(&ipc, exported.handle, sizeof ipc);
  PLX_CUDA_CHECK(cudaIpcOpenMemHandle(base, ipc, cudaIpcMemLazyEnablePeerAccess));
  return PLX_OK;
}

// Consumes `fd` (the driver keeps its own reference once imported).
plx_status import_vmm(int fd, int device, uint64_t bytes, CUmemGenericAllocationHandle *memory, void **base) {
  const VmmDriver *d = nullptr;
  plx_status status = vmm_driver(&d);
  DeviceContext context(device);
  if (status == PLX_OK) status = context.status();
  CUresult r = CUDA_SUCCESS;
  if (status == PLX_OK) {
    r = d->import_handle(memory, reinterpret_cast<void *>(static_cast<uintptr_t>(fd)),
                         CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (r != CUDA_SUCCESS) status = fail_cu(r, fmt::format("cuMemImportFromShareableHandle(fd {})", fd));
  }
  close(fd);
  if (status != PLX_OK) return status;
  CUdeviceptr address = 0;
  r = d->address_reserve(&address, bytes, 0, 0, 0);
  if (r == CUDA_SUCCESS) {
    r = d->map(address, bytes, 0, *memory, 0);
    if (r == CUDA_SUCCESS) {
      CUmemAccessDesc access{};
      access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
      access.location.id = device;
      access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
      r = d->set_access(address, bytes, &access, 1);
      if (r == CUDA_SUCCESS) {
        *base = reinterpret_cast<void *>(address);
        return PLX_OK;
      }
      d->unmap(address, bytes);
    }
    d->address_free(address, bytes);
  }
  d->release(*memory);
  return fail_cu(r, fmt::format("mapping an imported {}-byte VMM segment on device {}", bytes, device));
}

plx_status check_export(const DeviceSegmentExport &exported) {
  if (exported.segment_bytes == 0) return fail(PLX_ERR_INVALID_ARGUMENT, "segment import: segment_bytes is 0");
  if (exported.api == DeviceMemoryApi::vmm && exported.fd < 0)
    return fail(PLX_ERR_INVALID_ARGUMENT, "segment import: a VMM export needs its fd (got {})", exported.fd);
  if (exported.api != DeviceMemoryApi::vmm && exported.api != DeviceMemoryApi::cuda_malloc)
    return fail(PLX_ERR_INVALID_ARGUMENT, "segment import: unknown api {}", static_cast<int>(exported.api));
  return PLX_OK;
}

}  // namespace

plx_status ImportedSegment::open(const DeviceSegmentExport &exported, int device,
                                 std::unique_ptr<ImportedSegment> *out) {
  plx_status status = out != nullptr ? check_export(exported)
                                     : fail(PLX_ERR_INVALID_ARGUMENT, "segment import: out is NULL");
  if (status == PLX_OK) status = require_cuda_device(nullptr);
  if (status == PLX_OK && device < 0) {
    if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) status = fail_cuda(err, "cudaGetDevice");
  }
  if (status != PLX_OK) {
    if (exported.fd >= 0) close(exported.fd);  // ours on every path
    return status;
  }
  auto segment = std::unique_ptr<ImportedSegment>(new ImportedSegment());
  segment->api_ = exported.api;
  segment->bytes_ = exported.segment_bytes;
  segment->device_ = device;
  if (exported.api == DeviceMemoryApi::vmm) {
    CUmemGenericAllocationHandle memory = 0;
    status = import_vmm(exported.fd, device, exported.segment_bytes, &memory, &segment->base_);
    segment->handle_ = memory;
  } else {
    if (exported.fd >= 0) close(exported.fd);
    status = open_legacy(exported, device, &segment->base_);
  }
  if (status != PLX_OK) return status;  // nothing mapped: base_ is still NULL
  *out = std::move(segment);
  return PLX_OK;
}

ImportedSegment::~ImportedSegment() {
  if (base_ == nullptr) return;
  DeviceContext context(device_);
  if (api_ == DeviceMemoryApi::cuda_malloc) {
    if (const cudaError_t err = cudaIpcCloseMemHandle(base_); err != cudaSuccess)
      log_warn("imported segment {}: cudaIpcCloseMemHandle: {}", base_, cudaGetErrorName(err));
    return;
  }
  const VmmDriver *d = nullptr;
  if (vmm_driver(&d) != PLX_OK) return;
  // As for the exporter: unmapping a range that queued work still uses is
  // undefined, so this device finishes its work first.
  (void)cudaDeviceSynchronize();
  const auto address = reinterpret_cast<CUdeviceptr>(base_);
  d->unmap(address, bytes_);
  d->address_free(address, bytes_);
  d->release(handle_);
}

}  // namespace plexus::core

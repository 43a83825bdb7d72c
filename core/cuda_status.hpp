// CUDA helpers shared by the CUDA plugins and tools: CUDA errors as plexus
// statuses, the "is there a usable GPU" check every CUDA plugin starts with,
// a scoped current device, pointer classification, and the driver API
// reached through the runtime (plugins never link libcuda, so they load on
// machines without a driver and decline with "no CUDA device").
#pragma once

#include <cuda_runtime_api.h>

#include <string_view>

#include "core/status.hpp"
#include "plexus/types.h"

namespace plexus::core {

// PLX_ERR_DEVICE (PLX_ERR_OUT_OF_MEMORY for cudaErrorMemoryAllocation) with
// "<what>: <cudaErrorName>: <CUDA's message>". Clears CUDA's sticky
// last-error so the next call does not report it again.
plx_status fail_cuda(cudaError_t err, std::string_view what);

#define PLX_CUDA_CHECK(call)                                              \
  do {                                                                    \
    const cudaError_t plx_cuda_err_ = (call);                             \
    if (plx_cuda_err_ != cudaSuccess)                                     \
      return ::plexus::core::fail_cuda(plx_cuda_err_, #call);             \
  } while (0)

// PLX_OK with *count >= 1 when a CUDA device can be used; otherwise
// PLX_ERR_UNSUPPORTED with "no CUDA device: <why>" (no driver, a driver
// older than the runtime, CUDA_VISIBLE_DEVICES hides all). Probed once per
// process and cached; never hangs.
plx_status require_cuda_device(int *count);

// `device` current for the scope; the previous device again at its end.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice &) = delete;
  ScopedDevice &operator=(const ScopedDevice &) = delete;
  plx_status status() const { return status_; }

 private:
  int previous_ = -1;
  plx_status status_ = PLX_OK;
};

// What memory `ptr` points to: PLX_MEM_DEVICE (with its device ordinal),
// PLX_MEM_PINNED_HOST (registered or cudaHostAlloc'ed, device -1) or
// PLX_MEM_HOST (unregistered, device -1). Never fails for a host pointer.
plx_status pointer_kind(const void *ptr, plx_mem_kind *kind, int *device);

// The driver entry point `name` ("cuMemCreate") of the ABI of CUDA
// `cuda_version` (12000: 12.0; later calls need their version), through
// cudaGetDriverEntryPointByVersion. UNSUPPORTED when the driver lacks it.
plx_status driver_entry(const char *name, void **fn, int cuda_version = 12000);

template <typename Fn>
plx_status driver_entry(const char *name, Fn **fn, int cuda_version = 12000) {
  void *raw = nullptr;
  const plx_status status = driver_entry(name, &raw, cuda_version);
  *fn = reinterpret_cast<Fn *>(raw);
  return status;
}

// "CUDA runtime 13.0, driver 13.0" for load reports and logs.
std::string cuda_version_text();

}  // namespace plexus::core

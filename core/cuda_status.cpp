#include "core/cuda_status.hpp"

#include <mutex>
#include <string>

namespace plexus::core {

plx_status fail_cuda(cudaError_t err, std::string_view what) {
  (void)cudaGetLastError();  // clear the non-sticky last error
  const plx_status status =
      err == cudaErrorMemoryAllocation ? PLX_ERR_OUT_OF_MEMORY : PLX_ERR_DEVICE;
  return fail(status, "{}: {}: {}", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

namespace {

struct DeviceProbe {
  cudaError_t error = cudaSuccess;
  int count = 0;
};

const DeviceProbe &probe_devices() {
  static DeviceProbe probe;
  static std::once_flag once;
  std::call_once(once, [] {
    probe.error = cudaGetDeviceCount(&probe.count);
    (void)cudaGetLastError();
    if (probe.error != cudaSuccess) probe.count = 0;
  });
  return probe;
}

}  // namespace

plx_status require_cuda_device(int *count) {
  const DeviceProbe &probe = probe_devices();
  if (count != nullptr) *count = probe.count;
  if (probe.error != cudaSuccess)
    return fail(PLX_ERR_UNSUPPORTED, "no CUDA device: {} ({})", cudaGetErrorString(probe.error),
                cudaGetErrorName(probe.error));
  if (probe.count < 1)
    return fail(PLX_ERR_UNSUPPORTED, "no CUDA device: the driver sees none (CUDA_VISIBLE_DEVICES?)");
  return PLX_OK;
}

ScopedDevice::ScopedDevice(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (device < 0 || device == previous_) return;
  const cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) status_ = fail_cuda(err, fmt::format("cudaSetDevice({})", device));
}

ScopedDevice::~ScopedDevice() {
  int now = -1;
  if (previous_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous_)
    (void)cudaSetDevice(previous_);
}

plx_status pointer_kind(const void *ptr, plx_mem_kind *kind, int *device) {
  cudaPointerAttributes attributes{};
  const cudaError_t err = cudaPointerGetAttributes(&attributes, ptr);
  *kind = PLX_MEM_HOST;
  *device = -1;
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // unregistered host memory on old runtimes
    return PLX_OK;
  }
  if (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged) {
    *kind = PLX_MEM_DEVICE;
    *device = attributes.device;
  } else if (attributes.type == cudaMemoryTypeHost) {
    *kind = PLX_MEM_PINNED_HOST;
  }
  return PLX_OK;
}

plx_status driver_entry(const char *name, void **fn, int cuda_version) {
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t err =
      cudaGetDriverEntryPointByVersion(name, fn, static_cast<unsigned>(cuda_version), cudaEnableDefault, &found);
  if (err != cudaSuccess) return fail_cuda(err, fmt::format("cudaGetDriverEntryPoint({})", name));
  if (found != cudaDriverEntryPointSuccess || *fn == nullptr)
    return fail(PLX_ERR_UNSUPPORTED, "the CUDA driver has no {}", name);
  return PLX_OK;
}

std::string cuda_version_text() {
  int runtime = 0;
  int driver = 0;
  (void)cudaRuntimeGetVersion(&runtime);
  if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
  (void)cudaGetLastError();
  return fmt::format("CUDA runtime {}.{}, driver {}.{}", runtime / 1000, runtime % 1000 / 10,
                     driver / 1000, driver % 1000 / 10);
}

}  // namespace plexus::core

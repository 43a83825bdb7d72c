#include "loader/cuda_driver.hpp"

#include <dlfcn.h>

#include "core/status.hpp"

namespace plexus::loader::cuda_driver {
namespace {

// The driver API's types and values used here (cuda.h), spelled out so the
// loader builds without the toolkit. They are part of the driver ABI.
using CUresult = int;
using CUdevice = int;
using CUcontext = void *;
constexpr int attribute_memory_type = 2;  // CU_POINTER_ATTRIBUTE_MEMORY_TYPE
constexpr unsigned memory_type_host = 1;  // CU_MEMORYTYPE_HOST; DEVICE 2, ARRAY 3, UNIFIED 4

struct Driver {
  CUresult (*pointer_attribute)(void *, int, unsigned long long) = nullptr;
  CUresult (*device_get)(CUdevice *, int) = nullptr;
  CUresult (*retain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*release)(CUdevice) = nullptr;
  CUresult (*push)(CUcontext) = nullptr;
  CUresult (*pop)(CUcontext *) = nullptr;
  CUresult (*synchronize)() = nullptr;
  bool ok = false;
};

template <typename Fn>
bool resolve(void *lib, const char *name, Fn *fn) {
  *fn = reinterpret_cast<Fn>(dlsym(lib, name));
  return *fn != nullptr;
}

Driver load() {
  Driver d;
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (lib == nullptr) lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);  // never closed
  if (lib == nullptr) return d;
  d.ok = resolve(lib, "cuPointerGetAttribute", &d.pointer_attribute) &&
         resolve(lib, "cuDeviceGet", &d.device_get) && resolve(lib, "cuDevicePrimaryCtxRetain", &d.retain) &&
         resolve(lib, "cuDevicePrimaryCtxRelease_v2", &d.release) &&
         resolve(lib, "cuCtxPushCurrent_v2", &d.push) && resolve(lib, "cuCtxPopCurrent_v2", &d.pop) &&
         resolve(lib, "cuCtxSynchronize", &d.synchronize);
  return d;
}

const Driver &driver() {
  static const Driver d = load();
  return d;
}

}  // namespace

bool available() { return driver().ok; }

bool is_device_pointer(const void *ptr) {
  const Driver &d = driver();
  unsigned type = 0;
  if (!d.ok || d.pointer_attribute(&type, attribute_memory_type, reinterpret_cast<uintptr_t>(ptr)) != 0)
    return false;  // memory CUDA does not know: plain host memory
  return type != memory_type_host;
}

plx_status synchronize(int32_t device) {
  const Driver &d = driver();
  if (!d.ok) return core::fail(PLX_ERR_UNSUPPORTED, "auto: no CUDA driver to wait for device {}", device);
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  if (const CUresult r = d.device_get(&dev, device); r != 0)
    return core::fail(PLX_ERR_DEVICE, "auto: cuDeviceGet({}) failed with CUDA error {}", device, r);
  if (const CUresult r = d.retain(&ctx, dev); r != 0)
    return core::fail(PLX_ERR_DEVICE, "auto: cuDevicePrimaryCtxRetain({}) failed with CUDA error {}", device, r);
  CUresult r = d.push(ctx);
  if (r == 0) {
    r = d.synchronize();
    CUcontext popped = nullptr;
    (void)d.pop(&popped);
  }
  (void)d.release(dev);
  return r == 0 ? PLX_OK : core::fail(PLX_ERR_DEVICE, "auto: cuCtxSynchronize on device {} failed with CUDA error {}", device, r);
}

}  // namespace plexus::loader::cuda_driver

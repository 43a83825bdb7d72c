#include "core/kernel_loading.hpp"

#include <cuda.h>  // types only: every driver call goes through ModuleDriver
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

// The driver calls of CUDA 12.4 that enumerate and load a module's kernels.
struct ModuleDriver {
  CUresult (*function_module)(CUmodule *, CUfunction) = nullptr;
  CUresult (*function_count)(unsigned *, CUmodule) = nullptr;
  CUresult (*enumerate)(CUfunction *, unsigned, CUmodule) = nullptr;
  CUresult (*is_loaded)(CUfunctionLoadingState *, CUfunction) = nullptr;
  CUresult (*load)(CUfunction) = nullptr;
  CUresult (*attribute)(int *, CUfunction_attribute, CUfunction) = nullptr;
};

constexpr int kEnumerationVersion = 12040;

plx_status find_driver(ModuleDriver *d) {
  plx_status s = driver_entry("cuFuncGetModule", &d->function_module);
  if (s == PLX_OK) s = driver_entry("cuModuleGetFunctionCount", &d->function_count, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuModuleEnumerateFunctions", &d->enumerate, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuFuncIsLoaded", &d->is_loaded, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuFuncLoad", &d->load, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuFuncGetAttribute", &d->attribute);
  return s;
}

// Looked up once per process; NULL when the driver lacks a call.
const ModuleDriver *module_driver() {
  static const ModuleDriver *driver = [] {
    static ModuleDriver d;
    if (find_driver(&d) == PLX_OK) return &d;
    log_debug("kernels load lazily, at their first launch: {}", last_message());
    return static_cast<ModuleDriver *>(nullptr);
  }();
  return driver;
}

plx_status driver_failed(CUresult r, const char *call) {
  return fail(PLX_ERR_DEVICE, "loading the kernels: {} failed (CUresult {})", call, static_cast<int>(r));
}

// The kernels of the module holding `anchor`, in the current context.
plx_status module_kernels(const ModuleDriver &d, const void *anchor, std::vector<CUfunction> *kernels) {
  cudaFunction_t function = nullptr;
  PLX_CUDA_CHECK(cudaGetFuncBySymbol(&function, anchor));
  CUmodule module = nullptr;
  if (CUresult r = d.function_module(&module, reinterpret_cast<CUfunction>(function)))
    return driver_failed(r, "cuFuncGetModule");
  unsigned count = 0;
  if (CUresult r = d.function_count(&count, module)) return driver_failed(r, "cuModuleGetFunctionCount");
  kernels->assign(count, nullptr);
  if (CUresult r = d.enumerate(kernels->data(), count, module)) return driver_failed(r, "cuModuleEnumerateFunctions");
  return PLX_OK;
}

// Counts the kernels not loaded yet, loading them when `load`, and takes
// the most local memory a thread of a loaded one needs (an unloaded one is
// not asked: asking would load it).
plx_status visit_kernels(const ModuleDriver &d, const std::vector<CUfunction> &kernels, bool load, KernelCount *count) {
  for (CUfunction k : kernels) {
    CUfunctionLoadingState state = CU_FUNCTION_LOADING_STATE_UNLOADED;
    if (CUresult r = d.is_loaded(&state, k)) return driver_failed(r, "cuFuncIsLoaded");
    if (state != CU_FUNCTION_LOADING_STATE_LOADED) {
      ++count->unloaded;
      if (!load) continue;
      if (CUresult r = d.load(k)) return driver_failed(r, "cuFuncLoad");
    }
    int local_bytes = 0;
    if (CUresult r = d.attribute(&local_bytes, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, k))
      return driver_failed(r, "cuFuncGetAttribute");
    count->local_bytes_max = std::max(count->local_bytes_max, static_cast<size_t>(local_bytes));
  }
  return PLX_OK;
}

plx_status visit_modules(const ModuleDriver &d, std::span<const void *const> anchors, bool load, KernelCount *count) {
  std::vector<CUfunction> kernels;
  for (const void *anchor : anchors) {
    if (plx_status s = module_kernels(d, anchor, &kernels)) return s;
    count->total += static_cast<int>(kernels.size());
    if (plx_status s = visit_kernels(d, kernels, load, count)) return s;
  }
  return PLX_OK;
}

// Raises the context's stack limit to the most local memory a thread of
// these kernels needs. The context reserves local memory for the limit (1
// KiB a thread by default); a launch needing more resizes it, and the resize
// waits for every kernel running in the context: on an H200 a launch needing
// 2 KiB returned only when a spinning kernel ended, 1.5 s later. A spinning
// collective kernel waits for a peer, so that is the lazy load's hang again
// (docs/performance.md, session 28). At init no kernel of ours waits yet.
// NCCL does the same at init when NCCL_SET_STACK_SIZE=1 (off by default).
plx_status reserve_local_memory(size_t local_bytes_max, std::string_view who) {
  size_t limit = 0;
  PLX_CUDA_CHECK(cudaDeviceGetLimit(&limit, cudaLimitStackSize));
  if (local_bytes_max <= limit) return PLX_OK;
  PLX_CUDA_CHECK(cudaDeviceSetLimit(cudaLimitStackSize, local_bytes_max));
  log_debug("{}: stack limit raised from {} to {} bytes a thread, the most local memory one of its kernels needs",
            who, limit, local_bytes_max);
  return PLX_OK;
}

// The device memory in use now, for the debug log's cost of loading.
uint64_t device_bytes_used() {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return (void)cudaGetLastError(), 0;
  return total - free;
}

}  // namespace

plx_status load_kernels(std::span<const void *const> anchors, std::string_view who) {
  const ModuleDriver *d = module_driver();
  if (d == nullptr) return PLX_OK;
  const auto start = std::chrono::steady_clock::now();
  const uint64_t used_before = device_bytes_used();
  KernelCount count;
  if (plx_status s = visit_modules(*d, anchors, true, &count)) return s;
  if (plx_status s = reserve_local_memory(count.local_bytes_max, who)) return s;
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  const double grew_mib = (static_cast<double>(device_bytes_used()) - static_cast<double>(used_before)) / (1 << 20);
  log_debug("{}: loaded {} of its {} kernels (the others were loaded already) in {:.1f} ms; device memory in "
            "use {:+.1f} MiB", who, count.unloaded, count.total, took.count(), grew_mib);
  return PLX_OK;
}

plx_status count_kernels(std::span<const void *const> anchors, KernelCount *count) {
  *count = KernelCount{};
  const ModuleDriver *d = module_driver();
  if (d == nullptr)
    return fail(PLX_ERR_UNSUPPORTED, "this CUDA driver cannot enumerate a module's kernels (CUDA 12.4 or later)");
  return visit_modules(*d, anchors, false, count);
}

}  // namespace plexus::core

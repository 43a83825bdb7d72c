#include "core/kernel_loading.hpp"

#include <cuda.h>  // types only: every driver call goes through ModuleDriver
#include <cuda_runtime_api.h>

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
};

constexpr int kEnumerationVersion = 12040;

plx_status find_driver(ModuleDriver *d) {
  plx_status s = driver_entry("cuFuncGetModule", &d->function_module);
  if (s == PLX_OK) s = driver_entry("cuModuleGetFunctionCount", &d->function_count, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuModuleEnumerateFunctions", &d->enumerate, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuFuncIsLoaded", &d->is_loaded, kEnumerationVersion);
  if (s == PLX_OK) s = driver_entry("cuFuncLoad", &d->load, kEnumerationVersion);
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

// Each kernel not loaded yet: loaded when `load`, else counted.
plx_status visit_unloaded(const ModuleDriver &d, const std::vector<CUfunction> &kernels, bool load, int *unloaded) {
  for (CUfunction k : kernels) {
    CUfunctionLoadingState state = CU_FUNCTION_LOADING_STATE_UNLOADED;
    if (CUresult r = d.is_loaded(&state, k)) return driver_failed(r, "cuFuncIsLoaded");
    if (state == CU_FUNCTION_LOADING_STATE_LOADED) continue;
    if (CUresult r = load ? d.load(k) : CUDA_SUCCESS) return driver_failed(r, "cuFuncLoad");
    ++*unloaded;
  }
  return PLX_OK;
}

plx_status visit_modules(const ModuleDriver &d, std::span<const void *const> anchors, bool load, KernelCount *count) {
  std::vector<CUfunction> kernels;
  for (const void *anchor : anchors) {
    if (plx_status s = module_kernels(d, anchor, &kernels)) return s;
    count->total += static_cast<int>(kernels.size());
    if (plx_status s = visit_unloaded(d, kernels, load, &count->unloaded)) return s;
  }
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

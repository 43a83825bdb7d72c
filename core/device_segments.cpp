// The device pool's two segment sources: cudaMalloc (legacy IPC handles) and
// CUDA's virtual memory API (POSIX fd handles). Both run only when the pool
// grows, releases or exports: never on the allocate/free hot path.
#include "core/device_segments.hpp"

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

constexpr size_t kMinGranularity = size_t{2} << 20;  // the 2 MiB huge page, VMM's granule on Hopper

template <typename Fn>
plx_status load(const char *name, Fn **fn, plx_status status) {
  return status != PLX_OK ? status : driver_entry(name, fn);
}

plx_status load_driver(VmmDriver *d) {
  plx_status s = PLX_OK;
  s = load("cuDeviceGet", &d->device_get, s);
  s = load("cuDeviceGetAttribute", &d->device_attribute, s);
  s = load("cuMemGetAllocationGranularity", &d->granularity, s);
  s = load("cuMemCreate", &d->create, s);
  s = load("cuMemRelease", &d->release, s);
  s = load("cuMemAddressReserve", &d->address_reserve, s);
  s = load("cuMemAddressFree", &d->address_free, s);
  s = load("cuMemMap", &d->map, s);
  s = load("cuMemUnmap", &d->unmap, s);
  s = load("cuMemSetAccess", &d->set_access, s);
  s = load("cuMemExportToShareableHandle", &d->export_handle, s);
  s = load("cuMemImportFromShareableHandle", &d->import_handle, s);
  s = load("cuGetErrorName", &d->error_name, s);
  return s;
}

// A multiple of both the driver's granule and 2 MiB.
size_t segment_granularity(size_t driver_granularity) {
  if (driver_granularity == 0) return kMinGranularity;
  return (kMinGranularity + driver_granularity - 1) / driver_granularity * driver_granularity;
}

// ---------------------------------------------------------------------------
// cudaMalloc segments

class CudaMallocSource final : public DeviceSegmentSource {
 public:
  explicit CudaMallocSource(int device) : device_(device) {}

  size_t granularity() const override { return kMinGranularity; }

  plx_status acquire(size_t bytes, void **base, uint64_t *handle) override {
    DeviceContext context(device_);
    if (context.status() != PLX_OK) return context.status();
    const cudaError_t err = cudaMalloc(base, bytes);
    if (err != cudaSuccess) return fail_cuda(err, fmt::format("cudaMalloc of a {}-byte pool segment on device {}", bytes, device_));
    *handle = next_id_.fetch_add(1, std::memory_order_relaxed);
    return PLX_OK;
  }

  // cudaFree waits for the device itself before it frees.
  void release(void *base, size_t bytes, uint64_t) override {
    DeviceContext context(device_);
    const cudaError_t err = cudaFree(base);
    if (err != cudaSuccess) {
      (void)fail_cuda(err, "cudaFree of a pool segment");
      log_warn("device pool: {}-byte segment {} not freed: {}", bytes, base, last_message());
    }
  }

  plx_status export_segment(void *base, size_t bytes, uint64_t handle, DeviceSegmentExport *out) override {
    DeviceContext context(device_);
    if (context.status() != PLX_OK) return context.status();
    cudaIpcMemHandle_t ipc{};
    static_assert(sizeof ipc <= sizeof out->handle, "a cudaIpcMemHandle_t fits the export");
    PLX_CUDA_CHECK(cudaIpcGetMemHandle(&ipc, base));
    std::memcpy(out->handle, &ipc, sizeof ipc);
    out->api = DeviceMemoryApi::cuda_malloc;
    out->segment_id = handle;
    out->segment_bytes = bytes;
    out->fd = -1;
    return PLX_OK;
  }

 private:
  const int device_;
  std::atomic<uint64_t> next_id_{1};
};

// ---------------------------------------------------------------------------
// VMM segments: one physical allocation, mapped once, per segment (mapping
// many small handles costs 76x more, allocator-lessons §0).

class VmmSource final : public DeviceSegmentSource {
 public:
  VmmSource(const VmmDriver &driver, int device, const CUmemAllocationProp &prop, size_t granularity,
            std::vector<CUmemAccessDesc> access)
      : d_(driver), device_(device), prop_(prop), granularity_(granularity), access_(std::move(access)) {}

  ~VmmSource() override {
    if (!memory_.empty()) log_warn("device pool: {} VMM segments outlive their source", memory_.size());
  }

  size_t granularity() const override { return granularity_; }

  plx_status acquire(size_t bytes, void **base, uint64_t *handle) override {
    if (bytes % granularity_ != 0)
      return fail(PLX_ERR_INTERNAL, "VMM segment of {} bytes is no multiple of the {}-byte granule", bytes, granularity_);
    DeviceContext context(device_);
    if (context.status() != PLX_OK) return context.status();
    CUmemGenericAllocationHandle memory = 0;
    CUresult r = d_.create(&memory, bytes, &prop_, 0);
    if (r != CUDA_SUCCESS) return fail_cu(r, fmt::format("cuMemCreate of {} bytes on device {}", bytes, device_));
    CUdeviceptr address = 0;
    if (const plx_status status = map_new(memory, bytes, &address); status != PLX_OK) {
      d_.release(memory);
      return status;
    }
    std::lock_guard lock(mutex_);
    *handle = next_id_++;
    memory_[*handle] = memory;
    *base = reinterpret_cast<void *>(address);
    return PLX_OK;
  }

  void release(void *base, size_t bytes, uint64_t handle) override {
    CUmemGenericAllocationHandle memory = 0;
    {
      std::lock_guard lock(mutex_);
      const auto it = memory_.find(handle);
      if (it == memory_.end()) return log_warn("device pool: release of unknown VMM segment {}", handle);
      memory = it->second;
      memory_.erase(it);
    }
    DeviceContext context(device_);
    // Unmapping memory that queued work still reads or writes is undefined
    // (unlike cudaFree, cuMemUnmap does not wait), so wait for the device.
    if (const cudaError_t err = cudaDeviceSynchronize(); err != cudaSuccess)
      log_warn("device pool: cudaDeviceSynchronize before unmapping: {}", cudaGetErrorName(err));
    const auto address = reinterpret_cast<CUdeviceptr>(base);
    const CUresult unmapped = d_.unmap(address, bytes);
    const CUresult released = d_.release(memory);
    const CUresult freed = d_.address_free(address, bytes);
    if (unmapped != CUDA_SUCCESS || released != CUDA_SUCCESS || freed != CUDA_SUCCESS)
      log_warn("device pool: VMM segment {} ({} bytes) released with errors {}/{}/{}", base, bytes,
               static_cast<int>(unmapped), static_cast<int>(released), static_cast<int>(freed));
  }

  plx_status export_segment(void *, size_t bytes, uint64_t handle, DeviceSegmentExport *out) override {
    CUmemGenericAllocationHandle memory = 0;
    {
      std::lock_guard lock(mutex_);
      const auto it = memory_.find(handle);
      if (it == memory_.end()) return fail(PLX_ERR_NOT_FOUND, "device pool: no VMM segment {}", handle);
      memory = it->second;
    }
    DeviceContext context(device_);
    if (context.status() != PLX_OK) return context.status();
    int fd = -1;
    const CUresult r = d_.export_handle(&fd, memory, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
    if (r != CUDA_SUCCESS) return fail_cu(r, "cuMemExportToShareableHandle (POSIX fd)");
    out->api = DeviceMemoryApi::vmm;
    out->segment_id = handle;
    out->segment_bytes = bytes;
    out->fd = fd;
    return PLX_OK;
  }

 private:
  // Reserve, map and open the range to this device and its peers; nothing
  // is left behind on failure (the caller releases `memory`).
  plx_status map_new(CUmemGenericAllocationHandle memory, size_t bytes, CUdeviceptr *out) {
    CUdeviceptr address = 0;
    CUresult r = d_.address_reserve(&address, bytes, granularity_, 0, 0);
    if (r != CUDA_SUCCESS) return fail_cu(r, fmt::format("cuMemAddressReserve of {} bytes", bytes));
    r = d_.map(address, bytes, 0, memory, 0);
    if (r == CUDA_SUCCESS) {
      r = d_.set_access(address, bytes, access_.data(), access_.size());
      if (r == CUDA_SUCCESS) {
        *out = address;
        return PLX_OK;
      }
      d_.unmap(address, bytes);
      d_.address_free(address, bytes);
      return fail_cu(r, fmt::format("cuMemSetAccess for {} devices", access_.size()));
    }
    d_.address_free(address, bytes);
    return fail_cu(r, fmt::format("cuMemMap of {} bytes", bytes));
  }

  const VmmDriver &d_;
  const int device_;
  const CUmemAllocationProp prop_;
  const size_t granularity_;
  const std::vector<CUmemAccessDesc> access_;
  std::mutex mutex_;
  std::map<uint64_t, CUmemGenericAllocationHandle> memory_;  // by segment id
  uint64_t next_id_ = 1;
};

// Read/write for `device` and every device that can reach it as a peer:
// cudaDeviceEnablePeerAccess does not cover cuMem memory.
std::vector<CUmemAccessDesc> access_for(int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = device + 1;
  std::vector<CUmemAccessDesc> access;
  for (int peer = 0; peer < count; ++peer) {
    int can = peer == device;
    if (peer != device && cudaDeviceCanAccessPeer(&can, peer, device) != cudaSuccess) can = 0;
    if (!can) continue;
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = peer;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    access.push_back(desc);
  }
  (void)cudaGetLastError();
  return access;
}

plx_status device_flag(const VmmDriver &d, int device, CUdevice_attribute attribute, const char *name, int *value) {
  CUdevice handle = 0;
  CUresult r = d.device_get(&handle, device);
  if (r == CUDA_SUCCESS) r = d.device_attribute(value, attribute, handle);
  return r == CUDA_SUCCESS ? PLX_OK : fail_cu(r, fmt::format("cuDeviceGetAttribute({}) of device {}", name, device));
}

// UNSUPPORTED, saying which, unless the device has VMM and POSIX fd handles.
plx_status check_vmm_support(const VmmDriver &d, int device, bool *rdma) {
  int vmm = 0, posix_fd = 0, rdma_flag = 0;
  plx_status s = device_flag(d, device, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, "VMM", &vmm);
  if (s == PLX_OK) s = device_flag(d, device, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
                                   "POSIX fd handles", &posix_fd);
  if (s != PLX_OK) return s;
  if (!vmm) return fail(PLX_ERR_UNSUPPORTED, "device {} does not support CUDA virtual memory management (VMM)", device);
  if (!posix_fd)
    return fail(PLX_ERR_UNSUPPORTED, "device {} cannot export VMM memory as POSIX file descriptors", device);
  *rdma = device_flag(d, device, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED, "RDMA", &rdma_flag) ==
              PLX_OK && rdma_flag != 0;
  return PLX_OK;
}

}  // namespace

plx_status vmm_driver(const VmmDriver **out) {
  static VmmDriver driver;
  static plx_status status = PLX_OK;
  static std::string message;
  static std::once_flag once;
  std::call_once(once, [] {
    status = load_driver(&driver);
    if (status != PLX_OK) message = last_message();
  });
  *out = &driver;
  return status == PLX_OK ? PLX_OK : fail(status, "CUDA driver API for VMM: {}", message);
}

plx_status fail_cu(CUresult result, std::string_view what) {
  const char *name = nullptr;
  const VmmDriver *d = nullptr;
  if (vmm_driver(&d) != PLX_OK || d->error_name(result, &name) != CUDA_SUCCESS || name == nullptr)
    name = "CUDA_ERROR_<unknown>";
  const plx_status status = result == CUDA_ERROR_OUT_OF_MEMORY ? PLX_ERR_OUT_OF_MEMORY : PLX_ERR_DEVICE;
  return fail(status, "{}: {} ({})", what, name, static_cast<int>(result));
}

DeviceContext::DeviceContext(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  const cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) status_ = fail_cuda(err, fmt::format("cudaSetDevice({})", device));
}

DeviceContext::~DeviceContext() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

CUmemAllocationProp vmm_properties(int device, bool rdma_capable) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  prop.allocFlags.gpuDirectRDMACapable = rdma_capable ? 1 : 0;
  return prop;
}

plx_status make_cuda_malloc_source(int device, std::unique_ptr<DeviceSegmentSource> *out) {
  *out = std::make_unique<CudaMallocSource>(device);
  return PLX_OK;
}

plx_status make_vmm_source(int device, std::unique_ptr<DeviceSegmentSource> *out) {
  const VmmDriver *d = nullptr;
  if (const plx_status status = vmm_driver(&d); status != PLX_OK) return status;
  DeviceContext context(device);
  if (context.status() != PLX_OK) return context.status();
  bool rdma = false;
  if (const plx_status status = check_vmm_support(*d, device, &rdma); status != PLX_OK) return status;
  const CUmemAllocationProp prop = vmm_properties(device, rdma);
  size_t granule = 0;
  const CUresult r = d->granularity(&granule, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
  if (r != CUDA_SUCCESS) return fail_cu(r, "cuMemGetAllocationGranularity");
  *out = std::make_unique<VmmSource>(*d, device, prop, segment_granularity(granule), access_for(device));
  return PLX_OK;
}

}  // namespace plexus::core

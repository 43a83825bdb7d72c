// The GPU topology probe: CUDA for the GPUs and peer access, gpu_pci for
// where they sit and how PCIe joins them, NVML (gpu_nvml) for NVLink. The
// text and JSON half is gpu_topology_text.cpp.
#include "core/gpu_topology.hpp"

#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "core/cuda_status.hpp"
#include "core/gpu_nvml.hpp"
#include "core/gpu_pci.hpp"
#include "core/log.hpp"
#include "core/random.hpp"

namespace plexus::core {
namespace {

// Large enough to go through the copy engines in several pieces, small
// enough to cost a few ms a pair (2 H100s: the whole probe in about 1 s).
constexpr size_t peer_check_bytes = size_t{4} << 20;

// The note for a failed CUDA call; clears CUDA's last error so the next
// call does not report it again.
std::string cuda_note(cudaError_t err, std::string_view what) {
  (void)cudaGetLastError();
  return fmt::format("{}: {}: {}", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

plx_status read_gpu_info(int ordinal, GpuInfo *gpu) {
  cudaDeviceProp prop{};
  cudaError_t err = cudaGetDeviceProperties(&prop, ordinal);
  if (err != cudaSuccess) return fail_cuda(err, fmt::format("cudaGetDeviceProperties({})", ordinal));
  char bus_id[64] = {};
  err = cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), ordinal);
  if (err != cudaSuccess) return fail_cuda(err, fmt::format("cudaDeviceGetPCIBusId({})", ordinal));
  PciAddress address{static_cast<uint32_t>(prop.pciDomainID), static_cast<uint32_t>(prop.pciBusID),
                     static_cast<uint32_t>(prop.pciDeviceID), 0};
  (void)parse_pci_address(bus_id, &address);  // the properties above when it does not parse
  gpu->ordinal = ordinal;
  gpu->name = prop.name;
  gpu->pci_bus_id = pci_bus_id_text(address);
  gpu->uuid = gpu_uuid_text(prop.uuid.bytes);
  gpu->memory_bytes = prop.totalGlobalMem;
  gpu->compute_major = prop.major;
  gpu->compute_minor = prop.minor;
  return PLX_OK;
}

std::vector<PciAddress> addresses_of(const std::vector<GpuInfo> &gpus) {
  std::vector<PciAddress> addresses(gpus.size());
  for (size_t i = 0; i < gpus.size(); ++i) (void)parse_pci_address(gpus[i].pci_bus_id, &addresses[i]);
  return addresses;
}

void fill_pcie_paths(GpuTopology *topology) {
  const std::vector<PciAddress> addresses = addresses_of(topology->gpus);
  std::vector<std::string> paths;
  for (const PciAddress &address : addresses) paths.push_back(sysfs_device_path(address));
  for (size_t i = 0; i < paths.size(); ++i)
    for (size_t j = 0; j < paths.size(); ++j)
      topology->links[i][j].pcie = i == j ? PciePath::same_device
                                          : classify_pcie_path(paths[i], paths[j], topology->gpus[i].numa_node,
                                                               topology->gpus[j].numa_node);
}

void fill_nvlinks(GpuTopology *topology) {
  const std::vector<PciAddress> addresses = addresses_of(topology->gpus);
  const NvmlLinks nvml = read_nvlinks(addresses);
  topology->nvml = nvml.description;
  if (!nvml.used) return;
  const std::vector<std::vector<NvlinkPair>> pairs = count_nvlinks(addresses, nvml.active);
  for (size_t i = 0; i < pairs.size(); ++i)
    for (size_t j = 0; j < pairs.size(); ++j) {
      topology->links[i][j].nvlinks = pairs[i][j].links;
      topology->links[i][j].nvlink_version = pairs[i][j].version;
    }
}

plx_status can_access_peer(int device, int peer, bool *can) {
  int answer = 0;
  const cudaError_t err = cudaDeviceCanAccessPeer(&answer, device, peer);
  if (err != cudaSuccess) return fail_cuda(err, fmt::format("cudaDeviceCanAccessPeer(GPU{}, GPU{})", device, peer));
  *can = answer != 0;
  return PLX_OK;
}

// cudaDeviceCanAccessPeer both ways; the note names a direction refused.
plx_status fill_reported_peer_access(GpuTopology *topology) {
  const size_t n = topology->gpus.size();
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      bool forward = false, backward = false;
      const int a = static_cast<int>(i), b = static_cast<int>(j);
      if (const plx_status s = can_access_peer(a, b, &forward); s != PLX_OK) return s;
      if (const plx_status s = can_access_peer(b, a, &backward); s != PLX_OK) return s;
      GpuLink &link = topology->links[i][j];
      link.p2p_reported = link.p2p_works = forward && backward;
      if (!forward || !backward)
        link.note = fmt::format("CUDA reports no peer access from GPU{} to GPU{}", forward ? b : a, forward ? a : b);
      topology->links[j][i] = link;
    }
  return PLX_OK;
}

// Peer access from `device` to `peer` for the object's lifetime; what was
// enabled before (by the caller, by an earlier probe) stays enabled.
class PeerAccess {
 public:
  std::string enable(int device, int peer) {
    const ScopedDevice scope(device);
    if (scope.status() != PLX_OK) return last_message();
    const cudaError_t err = cudaDeviceEnablePeerAccess(peer, 0);
    if (err == cudaErrorPeerAccessAlreadyEnabled) {
      (void)cudaGetLastError();  // not ours to disable later
      return "";
    }
    if (err != cudaSuccess) return cuda_note(err, fmt::format("cudaDeviceEnablePeerAccess(GPU{} -> GPU{})", device, peer));
    device_ = device;
    peer_ = peer;
    return "";
  }
  ~PeerAccess() {
    if (device_ < 0) return;
    const ScopedDevice scope(device_);
    if (cudaDeviceDisablePeerAccess(peer_) != cudaSuccess) (void)cudaGetLastError();
  }

 private:
  int device_ = -1;
  int peer_ = -1;
};

class DeviceBuffer {
 public:
  std::string allocate(int device, size_t bytes) {
    const ScopedDevice scope(device);
    if (scope.status() != PLX_OK) return last_message();
    void *ptr = nullptr;
    const cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err != cudaSuccess) return cuda_note(err, fmt::format("cudaMalloc({} bytes) on GPU{}", bytes, device));
    ptr_ = ptr;
    device_ = device;
    return "";
  }
  ~DeviceBuffer() {
    if (ptr_ == nullptr) return;
    const ScopedDevice scope(device_);
    if (cudaFree(ptr_) != cudaSuccess) (void)cudaGetLastError();
  }
  void *get() const { return ptr_; }
  int device() const { return device_; }

 private:
  void *ptr_ = nullptr;
  int device_ = -1;
};

// A pattern no earlier check left behind: splitmix64 from a fresh seed.
void fill_pattern(std::vector<unsigned char> *pattern) {
  uint64_t state = 0;
  if (random_bytes(&state, sizeof(state)) != PLX_OK) state = reinterpret_cast<uintptr_t>(pattern->data());
  for (size_t at = 0; at < pattern->size(); at += sizeof(uint64_t)) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(pattern->data() + at, &z, std::min(sizeof(z), pattern->size() - at));
  }
}

// "" when every byte came back, else where the first difference is.
std::string compare_bytes(const std::vector<unsigned char> &sent, const std::vector<unsigned char> &got, int from, int to) {
  size_t first = sent.size(), differing = 0;
  for (size_t i = 0; i < sent.size(); ++i)
    if (sent[i] != got[i]) first = std::min(first, i), ++differing;
  if (differing == 0) return "";
  return fmt::format("peer copy GPU{} -> GPU{} came back wrong: {} of {} bytes differ, the first at byte {}", from, to,
                     differing, sent.size(), first);
}

// Host buffers shared by every pair's check.
struct CheckBuffers {
  std::vector<unsigned char> pattern = std::vector<unsigned char>(peer_check_bytes);
  std::vector<unsigned char> readback = std::vector<unsigned char>(peer_check_bytes);
};

// Runs `call` with `device` current; "" or the note naming what failed.
template <typename Call>
std::string on_device(int device, std::string_view what, const Call &call) {
  const ScopedDevice scope(device);
  if (scope.status() != PLX_OK) return last_message();
  const cudaError_t err = call();
  return err == cudaSuccess ? "" : cuda_note(err, fmt::format("{} on GPU{}", what, device));
}

// The pattern onto `src`, a peer copy to `dst` (cleared first, so a copy
// that does nothing cannot pass), back to the host, compared.
std::string check_one_way(const DeviceBuffer &src, const DeviceBuffer &dst, CheckBuffers *host) {
  const int from = src.device(), to = dst.device();
  void *const src_ptr = src.get(), *const dst_ptr = dst.get();
  fill_pattern(&host->pattern);
  std::string note = on_device(to, "cudaMemset", [&] { return cudaMemset(dst_ptr, 0, peer_check_bytes); });
  if (note.empty())
    note = on_device(from, "cudaMemcpy from the host", [&] {
      return cudaMemcpy(src_ptr, host->pattern.data(), peer_check_bytes, cudaMemcpyHostToDevice);
    });
  if (note.empty())
    note = on_device(from, fmt::format("cudaMemcpyPeer to GPU{}", to), [&] {
      const cudaError_t err = cudaMemcpyPeer(dst_ptr, to, src_ptr, from, peer_check_bytes);
      return err != cudaSuccess ? err : cudaDeviceSynchronize();
    });
  if (note.empty())
    note = on_device(to, "cudaMemcpy to the host", [&] {
      const cudaError_t err = cudaDeviceSynchronize();
      return err != cudaSuccess ? err : cudaMemcpy(host->readback.data(), dst_ptr, peer_check_bytes, cudaMemcpyDeviceToHost);
    });
  return note.empty() ? compare_bytes(host->pattern, host->readback, from, to) : note;
}

// Enables peer access both ways (undone at the end where it was not on
// before), then a checked copy each way; every buffer is freed on return.
std::string check_pair(int a, int b, CheckBuffers *host) {
  PeerAccess a_to_b, b_to_a;
  DeviceBuffer on_a, on_b;
  std::string note = a_to_b.enable(a, b);
  if (note.empty()) note = b_to_a.enable(b, a);
  if (note.empty()) note = on_a.allocate(a, peer_check_bytes);
  if (note.empty()) note = on_b.allocate(b, peer_check_bytes);
  if (note.empty()) note = check_one_way(on_a, on_b, host);
  if (note.empty()) note = check_one_way(on_b, on_a, host);
  return note;
}

void run_peer_copy_checks(GpuTopology *topology) {
  CheckBuffers host;
  const size_t n = topology->gpus.size();
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      GpuLink &link = topology->links[i][j];
      if (!link.p2p_reported) continue;
      link.note = check_pair(static_cast<int>(i), static_cast<int>(j), &host);
      link.p2p_works = link.note.empty();
      if (!link.p2p_works) log_warn("GPU{} and GPU{} report peer access, but: {}", i, j, link.note);
      topology->links[j][i] = link;
    }
}

}  // namespace

namespace {

plx_status probe_once(GpuTopology *out, bool check_peer_copies) {
  int count = 0;
  if (const plx_status s = require_cuda_device(&count); s != PLX_OK) return s;
  const ScopedDevice keep_current(-1);  // the checks switch devices; put the caller's back
  GpuTopology topology;
  topology.gpus.resize(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i)
    if (const plx_status s = read_gpu_info(i, &topology.gpus[static_cast<size_t>(i)]); s != PLX_OK) return s;
  fill_gpu_locality(&topology.gpus);
  topology.links.assign(topology.gpus.size(), std::vector<GpuLink>(topology.gpus.size()));
  fill_pcie_paths(&topology);
  fill_nvlinks(&topology);
  if (const plx_status s = fill_reported_peer_access(&topology); s != PLX_OK) return s;
  if (check_peer_copies) run_peer_copy_checks(&topology);
  topology.peer_copies_checked = check_peer_copies;
  *out = std::move(topology);
  return PLX_OK;
}

}  // namespace

// The machine's GPUs do not change while a process runs, and a probe costs
// contexts on every GPU, NVML and a copy per pair (and each probe left a
// descriptor open in the driver: a second backend open must not): probed
// once per process and variant, then copied.
plx_status probe_gpu_topology(GpuTopology *out, bool check_peer_copies) {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "probe_gpu_topology: out is NULL");
  static std::mutex mutex;
  static std::optional<GpuTopology> probed[2];
  std::lock_guard lock(mutex);
  std::optional<GpuTopology> &cached = probed[check_peer_copies ? 1 : 0];
  if (!cached) {
    GpuTopology topology;
    if (const plx_status s = probe_once(&topology, check_peer_copies); s != PLX_OK) return s;
    cached = std::move(topology);
  }
  *out = *cached;
  return PLX_OK;
}

}  // namespace plexus::core

// The parts of the GPU topology probe that need no GPU: PCI addresses and
// their spellings, where a PCI device sits (sysfs, hwloc), the PCIe path
// between two devices from their sysfs paths, and NVLink pair counts from
// each GPU's list of active links. Kept apart from the CUDA half so that CI
// tests them on fixtures.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/gpu_topology.hpp"

namespace plexus::core {

struct PciAddress {
  uint32_t domain = 0;
  uint32_t bus = 0;
  uint32_t device = 0;
  uint32_t function = 0;
  bool operator==(const PciAddress &) const = default;
};

// "0000:18:00.0", "00000000:18:00.0" (NVML) or "18:00.0" (domain 0), in
// either case; false for anything else.
bool parse_pci_address(std::string_view text, PciAddress *out);
// "00000000:18:00.0": the 8-digit domain NVML writes, in lower case, so one
// spelling fits every domain (VMD domains need five digits).
std::string pci_bus_id_text(const PciAddress &address);
// "0000:18:00.0": the device's name under /sys/bus/pci/devices.
std::string sysfs_pci_name(const PciAddress &address);
// "GPU-8f2c1a3e-..." (8-4-4-4-12 hex digits) from the 16 bytes of a
// cudaUUID_t, as nvidia-smi -L prints it.
std::string gpu_uuid_text(const char (&bytes)[16]);

// The device's path in sysfs with every link resolved
// ("/sys/devices/pci0000:17/0000:17:01.0/0000:18:00.0"); "" when sysfs does
// not have it (a VM, a container without /sys).
std::string sysfs_device_path(const PciAddress &address);
// The device's NUMA node (sysfs numa_node), -1 when unknown.
int sysfs_numa_node(const PciAddress &address);
// The CPUs close to the device (sysfs local_cpulist), "" when unknown.
std::string sysfs_local_cpus(const PciAddress &address);

// NUMA node and close CPUs of every GPU: hwloc (with I/O discovery) when
// built with it, sysfs for whatever hwloc leaves open.
void fill_gpu_locality(std::vector<GpuInfo> *gpus);

// The PCIe path between two devices from their resolved sysfs paths: the
// bridges below the host bridge are compared (see the definition for the
// rules). unknown when either path is empty or not below a PCI host bridge.
PciePath classify_pcie_path(std::string_view sysfs_a, std::string_view sysfs_b, int numa_a, int numa_b);

// What the far end of an active NVLink is.
enum class NvlinkRemote { gpu, nvswitch, other, unknown };

struct NvlinkEndpoint {
  PciAddress remote;       // the PCI address NVML gives for the far end
  NvlinkRemote kind = NvlinkRemote::unknown;  // unknown: the driver does not say
  int version = 0;         // NVLink generation (nvlink_generation), 0 unknown
};

// The NVLink generation (4 on Hopper) from nvmlDeviceGetNvLinkVersion's
// value, an nvmlNvlinkVersion_t: 1 = 1.0, 2 = 2.0, 3 = 2.2, 4 = 3.0,
// 5 = 3.1, 6 = 4.0, 7 = 5.0, ... (driver 580 on an H100 gives 6). 0 unknown.
int nvlink_generation(unsigned nvml_version);

struct NvlinkPair {
  int links = 0;
  int version = 0;
};

// pairs[i][j]: the NVLinks between GPUs i and j, from active[i], the active
// links of GPU i (addresses[i] its PCI address). A link whose far end is one
// of the GPUs counts for that pair. Links to NVSwitches connect every pair of
// GPUs that both reach a switch, with the fewer of the two GPUs' switch
// links (an HGX H100 board: 18 each, so NV18 everywhere). A far end of kind
// unknown that is none of the GPUs is taken for a switch (drivers without
// nvmlDeviceGetNvLinkRemoteDeviceType); a GPU hidden by CUDA_VISIBLE_DEVICES
// is known as kind gpu and counts for no pair. The diagonal stays 0.
std::vector<std::vector<NvlinkPair>> count_nvlinks(const std::vector<PciAddress> &addresses,
                                                   const std::vector<std::vector<NvlinkEndpoint>> &active);

}  // namespace plexus::core

// The GPUs of this host as the CUDA plugins see them: each GPU's PCI id,
// NUMA node and CPU set (hwloc, sysfs), each pair's link (NVLink count and
// generation from NVML, else the PCIe path), and whether peer access works,
// proven per pair with a real copy and compare (some drivers report peer
// access that returns zeros). Probed once and cached by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "plexus/types.h"

namespace plexus::core {

struct GpuInfo {
  int ordinal = -1;            // CUDA ordinal under CUDA_VISIBLE_DEVICES
  std::string name;            // "NVIDIA H200"
  std::string pci_bus_id;      // "00000000:18:00.0": lower case, 8-digit domain (NVML's spelling)
  std::string uuid;            // "GPU-8f2c..."
  int numa_node = -1;          // -1 when the platform does not say
  std::string cpus;            // the CPUs close to it: "0-47,96-143"
  uint64_t memory_bytes = 0;
  int compute_major = 0;       // 9 for Hopper
  int compute_minor = 0;
};

// How the PCIe path between two GPUs runs, as nvidia-smi topo -m names it.
enum class PciePath { same_device, pix, pxb, phb, node, sys, unknown };

struct GpuLink {
  int nvlinks = 0;             // active NVLinks between the pair (0: none)
  int nvlink_version = 0;      // NVLink generation (4 on Hopper), 0 when none or unknown
  PciePath pcie = PciePath::unknown;
  bool p2p_reported = false;   // cudaDeviceCanAccessPeer both ways
  bool p2p_works = false;      // a real copy both ways came back intact
  std::string note;            // why p2p_works is false, when it is
};

struct GpuTopology {
  std::vector<GpuInfo> gpus;
  // links[i][j] for i != j; links[i][i] has pcie == same_device.
  std::vector<std::vector<GpuLink>> links;
  std::string nvml;            // "NVML <driver version>", or why NVML was not used (never starting "NVML ")
  bool peer_copies_checked = false;
};

// Every visible GPU. With check_peer_copies, each pair that reports peer
// access gets a real copy both ways (a few MiB, a few ms per pair);
// without, p2p_works mirrors p2p_reported. UNSUPPORTED ("no CUDA device")
// without a usable GPU; DEVICE for CUDA failures.
plx_status probe_gpu_topology(GpuTopology *out, bool check_peer_copies = true);

// "gpus": [{ordinal, name, pci_bus_id, uuid, numa_node, cpus, memory_bytes,
// compute_capability}], "links": [{a, b, nvlinks, nvlink_version, pcie,
// p2p_reported, p2p_works, note}], "nvml", "peer_copies_checked" — written
// as fields into an object the caller has opened.
void write_gpu_topology_json(const GpuTopology &topology, JsonWriter &json);

// A matrix like `nvidia-smi topo -m`: one row and column per GPU, cells
// NV<n> / PIX / PXB / PHB / NODE / SYS, a "p2p" mark where peer access
// failed its check, then CPU affinity and NUMA node per GPU and a legend.
std::string gpu_topology_matrix(const GpuTopology &topology);

// "NV18", "PIX", "SYS", "X" for the diagonal, "?" for an unknown PCIe path.
std::string link_label(const GpuLink &link);

// "X", "PIX", "PXB", "PHB", "NODE", "SYS", "unknown": the JSON "pcie" values.
const char *pcie_path_name(PciePath path);

// The GPUs one a line (name, bus id, memory, compute capability, NUMA node,
// UUID), the NVML line, how peer access was checked, then the matrix: what
// plexus-info prints.
std::string gpu_topology_text(const GpuTopology &topology);

// Whether the NVLink counts came from NVML (nvml reads "NVML <version>").
bool nvml_was_used(const GpuTopology &topology);

// The GPU half of plx_topology_info: gpu_count, p2p_all_pairs (1 when every
// pair's copy check passed; 1 for one GPU, -1 for none), nvlink_all_pairs
// (-1 without NVML or GPUs). The other fields are left as they are.
void fill_gpu_topology_info(const GpuTopology &topology, plx_topology_info *out);

}  // namespace plexus::core

#include "core/gpu_pci.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "plexus_config.h"

#if PLEXUS_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace plexus::core {
namespace {

bool is_hex(std::string_view text) {
  return !text.empty() && text.size() <= 8 &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

uint32_t hex_value(std::string_view text) {
  return static_cast<uint32_t>(std::strtoul(std::string(text).c_str(), nullptr, 16));
}

std::string first_line(const std::string &path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string sysfs_attribute(const PciAddress &address, const char *name) {
  return first_line(fmt::format("/sys/bus/pci/devices/{}/{}", sysfs_pci_name(address), name));
}

// The components of a resolved sysfs path from its first PCI host bridge
// ("pci0000:17") on: {"pci0000:17", "0000:17:01.0", "0000:18:00.0"}. Empty
// when the path runs through no host bridge.
std::vector<std::string_view> pci_chain(std::string_view path) {
  std::vector<std::string_view> chain;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!chain.empty() || (part.size() > 3 && part.substr(0, 3) == "pci")) chain.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  while (!chain.empty() && chain.back().empty()) chain.pop_back();
  return chain;
}

#if PLEXUS_HAVE_HWLOC
std::string hwloc_list(hwloc_const_bitmap_t set) {
  char *text = nullptr;
  if (set == nullptr || hwloc_bitmap_iszero(set) || hwloc_bitmap_list_asprintf(&text, set) < 0) return "";
  std::string list(text);
  std::free(text);
  return list;
}

// The CPUs and (when it is one) the NUMA node of the first non-I/O object
// above the device: the package or NUMA node its root complex hangs off.
void hwloc_locality(hwloc_topology_t topology, const PciAddress &a, GpuInfo *gpu) {
  const hwloc_obj_t pci = hwloc_get_pcidev_by_busid(topology, a.domain, a.bus, a.device, a.function);
  if (pci == nullptr) return;
  const hwloc_obj_t near = hwloc_get_non_io_ancestor_obj(topology, pci);
  if (near == nullptr) return;
  gpu->cpus = hwloc_list(near->cpuset);
  if (near->nodeset != nullptr && hwloc_bitmap_weight(near->nodeset) == 1)
    gpu->numa_node = hwloc_bitmap_first(near->nodeset);
}

// hwloc_get_pcidev_by_busid needs a topology with the PCI devices in it,
// which hwloc leaves out unless asked.
void fill_from_hwloc(std::vector<GpuInfo> *gpus) {
  hwloc_topology_t topology = nullptr;
  if (hwloc_topology_init(&topology) != 0) return;
  hwloc_topology_set_io_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_load(topology) == 0) {
    for (GpuInfo &gpu : *gpus) {
      PciAddress address;
      if (parse_pci_address(gpu.pci_bus_id, &address)) hwloc_locality(topology, address, &gpu);
    }
  }
  hwloc_topology_destroy(topology);
}
#endif

}  // namespace

bool parse_pci_address(std::string_view text, PciAddress *out) {
  const size_t dot = text.rfind('.');
  if (dot == std::string_view::npos || text.size() - dot != 2 || !is_hex(text.substr(dot + 1))) return false;
  std::vector<std::string_view> parts;
  std::string_view rest = text.substr(0, dot);
  for (size_t colon; (colon = rest.find(':')) != std::string_view::npos; rest.remove_prefix(colon + 1))
    parts.push_back(rest.substr(0, colon));
  parts.push_back(rest);
  if (parts.size() == 2) parts.insert(parts.begin(), "0");
  if (parts.size() != 3 || !is_hex(parts[0]) || !is_hex(parts[1]) || !is_hex(parts[2])) return false;
  if (parts[1].size() > 2 || parts[2].size() > 2) return false;
  PciAddress address{hex_value(parts[0]), hex_value(parts[1]), hex_value(parts[2]), hex_value(text.substr(dot + 1))};
  if (address.device > 0x1f || address.function > 7) return false;
  *out = address;
  return true;
}

std::string pci_bus_id_text(const PciAddress &a) {
  return fmt::format("{:08x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.device, a.function);
}

std::string sysfs_pci_name(const PciAddress &a) {
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.device, a.function);
}

std::string gpu_uuid_text(const char (&bytes)[16]) {
  std::string text = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", static_cast<unsigned char>(bytes[i]));
  }
  return text;
}

std::string sysfs_device_path(const PciAddress &address) {
  const std::string link = "/sys/bus/pci/devices/" + sysfs_pci_name(address);
  char resolved[PATH_MAX];
  if (realpath(link.c_str(), resolved) == nullptr) return "";
  return resolved;
}

int sysfs_numa_node(const PciAddress &address) {
  const std::string text = sysfs_attribute(address, "numa_node");
  if (text.empty()) return -1;
  char *end = nullptr;
  const long node = std::strtol(text.c_str(), &end, 10);
  return end != text.c_str() && node >= 0 && node < INT_MAX ? static_cast<int>(node) : -1;
}

std::string sysfs_local_cpus(const PciAddress &address) { return sysfs_attribute(address, "local_cpulist"); }

void fill_gpu_locality(std::vector<GpuInfo> *gpus) {
#if PLEXUS_HAVE_HWLOC
  fill_from_hwloc(gpus);
#endif
  for (GpuInfo &gpu : *gpus) {
    PciAddress address;
    if (!parse_pci_address(gpu.pci_bus_id, &address)) continue;
    if (gpu.numa_node < 0) gpu.numa_node = sysfs_numa_node(address);
    if (gpu.cpus.empty()) gpu.cpus = sysfs_local_cpus(address);
  }
}

// Both chains start at their host bridge and end at the device; what lies
// between are bridges: a root port, then per PCIe switch its upstream and
// one downstream port. Different host bridges: NODE on one NUMA node (both
// unknown counts as one node: single-socket machines often say -1), else SYS.
// Same host bridge: PHB when no bridge below it is shared (they meet in the
// root complex); PIX when below the last shared bridge each side has at most
// one more (the downstream ports of one switch); PXB when a side has more
// (a further switch).
PciePath classify_pcie_path(std::string_view sysfs_a, std::string_view sysfs_b, int numa_a, int numa_b) {
  const std::vector<std::string_view> a = pci_chain(sysfs_a);
  const std::vector<std::string_view> b = pci_chain(sysfs_b);
  if (a.size() < 2 || b.size() < 2) return PciePath::unknown;
  if (a == b) return PciePath::same_device;
  if (a.front() != b.front()) return numa_a == numa_b ? PciePath::node : PciePath::sys;
  const size_t bridges_a = a.size() - 2;  // without host bridge and device
  const size_t bridges_b = b.size() - 2;
  size_t shared = 0;
  while (shared < bridges_a && shared < bridges_b && a[shared + 1] == b[shared + 1]) ++shared;
  if (shared == 0) return PciePath::phb;
  return bridges_a - shared <= 1 && bridges_b - shared <= 1 ? PciePath::pix : PciePath::pxb;
}

int nvlink_generation(unsigned nvml_version) {
  constexpr int generations[] = {0, 1, 2, 2, 3, 3};  // 0 invalid, then 1.0, 2.0, 2.2, 3.0, 3.1
  if (nvml_version < std::size(generations)) return generations[nvml_version];
  return nvml_version < 64 ? static_cast<int>(nvml_version) - 2 : 0;  // 4.0 on, one value per generation
}

namespace {

// Each GPU's direct links per peer and its links to switches.
struct LinkTally {
  std::vector<std::vector<NvlinkPair>> direct;
  std::vector<NvlinkPair> to_switch;
};

LinkTally tally_links(const std::vector<PciAddress> &addresses, const std::vector<std::vector<NvlinkEndpoint>> &active) {
  const size_t n = addresses.size();
  LinkTally tally{std::vector<std::vector<NvlinkPair>>(n, std::vector<NvlinkPair>(n)), std::vector<NvlinkPair>(n)};
  for (size_t i = 0; i < n && i < active.size(); ++i) {
    for (const NvlinkEndpoint &link : active[i]) {
      const auto peer = std::find(addresses.begin(), addresses.end(), link.remote);
      NvlinkPair *slot = nullptr;
      if (peer != addresses.end() && static_cast<size_t>(peer - addresses.begin()) != i)
        slot = &tally.direct[i][static_cast<size_t>(peer - addresses.begin())];
      else if (peer == addresses.end() && (link.kind == NvlinkRemote::nvswitch || link.kind == NvlinkRemote::unknown))
        slot = &tally.to_switch[i];
      if (slot == nullptr) continue;
      slot->links += 1;
      slot->version = std::max(slot->version, link.version);
    }
  }
  return tally;
}

}  // namespace

std::vector<std::vector<NvlinkPair>> count_nvlinks(const std::vector<PciAddress> &addresses,
                                                   const std::vector<std::vector<NvlinkEndpoint>> &active) {
  const LinkTally tally = tally_links(addresses, active);
  const size_t n = addresses.size();
  std::vector<std::vector<NvlinkPair>> pairs(n, std::vector<NvlinkPair>(n));
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      // Each side counts its own ends; they agree unless NVML failed on one.
      const NvlinkPair &ij = tally.direct[i][j], &ji = tally.direct[j][i];
      const NvlinkPair &si = tally.to_switch[i], &sj = tally.to_switch[j];
      const int switched = std::min(si.links, sj.links);
      const int version = std::max(ij.version, ji.version);
      pairs[i][j].links = std::max(ij.links, ji.links) + switched;
      pairs[i][j].version = switched > 0 ? std::max({version, si.version, sj.version}) : version;
    }
  }
  return pairs;
}

}  // namespace plexus::core

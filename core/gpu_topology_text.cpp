// The CPU half of the GPU topology: JSON, the nvidia-smi style matrix and
// the plx_topology_info summary. No CUDA here, so CI tests it on fixtures.
#include <fmt/format.h>

#include <algorithm>

#include "core/gpu_topology.hpp"

namespace plexus::core {
namespace {

// "" when the copy check passed, "*" when peer access was reported but its
// copy failed, "-" when CUDA reports no peer access at all.
const char *p2p_mark(const GpuLink &link) {
  if (link.p2p_works) return "";
  return link.p2p_reported ? "*" : "-";
}

std::string cell(const GpuTopology &topology, size_t i, size_t j) {
  const GpuLink &link = topology.links[i][j];
  return i == j ? "X" : link_label(link) + p2p_mark(link);
}

// A row per GPU needs links to be n x n; anything else (a hand-made or
// half-filled topology) prints as unknown rather than reading past the end.
bool links_complete(const GpuTopology &topology) {
  const size_t n = topology.gpus.size();
  return topology.links.size() == n &&
         std::all_of(topology.links.begin(), topology.links.end(), [n](const auto &row) { return row.size() == n; });
}

struct Widths {
  size_t name = 8;
  size_t cell = 7;
  size_t cpus = 14;
};

Widths column_widths(const GpuTopology &topology) {
  Widths w;
  const size_t n = topology.gpus.size();
  for (size_t i = 0; i < n; ++i) {
    w.name = std::max(w.name, fmt::format("GPU{}", i).size() + 2);
    w.cpus = std::max(w.cpus, topology.gpus[i].cpus.size() + 2);
    for (size_t j = 0; j < n; ++j) w.cell = std::max(w.cell, cell(topology, i, j).size() + 2);
  }
  return w;
}

std::string matrix_header(size_t n, const Widths &w) {
  std::string line = fmt::format("{:<{}}", "", w.name);
  for (size_t j = 0; j < n; ++j) line += fmt::format("{:<{}}", fmt::format("GPU{}", j), w.cell);
  return line + fmt::format("{:<{}}NUMA Affinity\n", "CPU Affinity", w.cpus);
}

std::string matrix_row(const GpuTopology &topology, size_t i, const Widths &w) {
  const GpuInfo &gpu = topology.gpus[i];
  std::string line = fmt::format("{:<{}}", fmt::format("GPU{}", i), w.name);
  for (size_t j = 0; j < topology.gpus.size(); ++j) line += fmt::format("{:<{}}", cell(topology, i, j), w.cell);
  const std::string node = gpu.numa_node >= 0 ? fmt::format("{}", gpu.numa_node) : "N/A";
  return line + fmt::format("{:<{}}{}\n", gpu.cpus.empty() ? "N/A" : gpu.cpus, w.cpus, node);
}

// Why each pair that reported peer access failed its copy check.
std::string failed_checks(const GpuTopology &topology) {
  std::string text;
  for (size_t i = 0; i < topology.gpus.size(); ++i)
    for (size_t j = i + 1; j < topology.gpus.size(); ++j) {
      const GpuLink &link = topology.links[i][j];
      if (link.p2p_reported && !link.p2p_works) text += fmt::format("  GPU{}-GPU{}: {}\n", i, j, link.note);
    }
  return text.empty() ? text : "\nPeer access reported but failing:\n" + text;
}

constexpr const char *matrix_legend =
    "\nLegend:\n"
    "  X    = the same GPU\n"
    "  NV#  = # active NVLinks (through NVSwitches: the fewer of the two GPUs' links to them)\n"
    "  PIX  = PCIe through at most one PCIe switch\n"
    "  PXB  = PCIe through several PCIe switches, not through a host bridge\n"
    "  PHB  = PCIe through a PCIe host bridge (one CPU's root complex)\n"
    "  NODE = PCIe across host bridges within one NUMA node\n"
    "  SYS  = PCIe across the interconnect between NUMA nodes\n"
    "  ?    = PCIe path unknown (no sysfs, as in many VMs)\n"
    "  *    = peer access reported, but a copy through it failed its check\n"
    "  -    = no peer access reported by CUDA\n";

std::string gib(uint64_t bytes) { return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1u << 30)); }

void write_gpu(const GpuInfo &gpu, JsonWriter &json) {
  json.begin_object().field("ordinal", int32_t{gpu.ordinal}).field("name", std::string_view(gpu.name));
  json.field("pci_bus_id", std::string_view(gpu.pci_bus_id)).field("uuid", std::string_view(gpu.uuid));
  json.field("numa_node", int32_t{gpu.numa_node}).field("cpus", std::string_view(gpu.cpus));
  json.field("memory_bytes", gpu.memory_bytes);
  json.field("compute_capability", std::string_view(fmt::format("{}.{}", gpu.compute_major, gpu.compute_minor)));
  json.end_object();
}

void write_link(size_t a, size_t b, const GpuLink &link, JsonWriter &json) {
  json.begin_object().field("a", static_cast<uint64_t>(a)).field("b", static_cast<uint64_t>(b));
  json.field("nvlinks", int32_t{link.nvlinks}).field("nvlink_version", int32_t{link.nvlink_version});
  json.field("pcie", pcie_path_name(link.pcie)).field("p2p_reported", link.p2p_reported);
  json.field("p2p_works", link.p2p_works).field("note", std::string_view(link.note)).end_object();
}

}  // namespace

const char *pcie_path_name(PciePath path) {
  switch (path) {
    case PciePath::same_device: return "X";
    case PciePath::pix: return "PIX";
    case PciePath::pxb: return "PXB";
    case PciePath::phb: return "PHB";
    case PciePath::node: return "NODE";
    case PciePath::sys: return "SYS";
    case PciePath::unknown: break;
  }
  return "unknown";
}

std::string link_label(const GpuLink &link) {
  if (link.pcie == PciePath::same_device) return "X";
  if (link.nvlinks > 0) return fmt::format("NV{}", link.nvlinks);
  return link.pcie == PciePath::unknown ? "?" : pcie_path_name(link.pcie);
}

// Each pair once (a < b): the links are symmetric.
void write_gpu_topology_json(const GpuTopology &topology, JsonWriter &json) {
  json.key("gpus").begin_array();
  for (const GpuInfo &gpu : topology.gpus) write_gpu(gpu, json);
  json.end_array().key("links").begin_array();
  if (links_complete(topology))
    for (size_t a = 0; a < topology.gpus.size(); ++a)
      for (size_t b = a + 1; b < topology.gpus.size(); ++b) write_link(a, b, topology.links[a][b], json);
  json.end_array().field("nvml", std::string_view(topology.nvml));
  json.field("peer_copies_checked", topology.peer_copies_checked);
}

std::string gpu_topology_matrix(const GpuTopology &topology) {
  if (topology.gpus.empty()) return "no GPUs\n";
  if (!links_complete(topology)) return "GPU links unknown\n";
  const Widths widths = column_widths(topology);
  std::string text = matrix_header(topology.gpus.size(), widths);
  for (size_t i = 0; i < topology.gpus.size(); ++i) text += matrix_row(topology, i, widths);
  return text + failed_checks(topology) + matrix_legend;
}

std::string gpu_topology_text(const GpuTopology &topology) {
  std::string text;
  for (const GpuInfo &gpu : topology.gpus)
    text += fmt::format("GPU{}: {}, {}, {}, compute {}.{}, NUMA node {}, {}\n", gpu.ordinal, gpu.name, gpu.pci_bus_id,
                        gib(gpu.memory_bytes), gpu.compute_major, gpu.compute_minor,
                        gpu.numa_node >= 0 ? fmt::format("{}", gpu.numa_node) : "unknown", gpu.uuid);
  text += fmt::format("NVLink: {}\n", topology.nvml.empty() ? "not probed" : topology.nvml);
  text += fmt::format("peer access: {}\n\n", topology.peer_copies_checked
                                                 ? "checked per pair with a copy each way"
                                                 : "as CUDA reports it (not checked with copies)");
  return text + gpu_topology_matrix(topology);
}

bool nvml_was_used(const GpuTopology &topology) { return topology.nvml.rfind("NVML ", 0) == 0; }

void fill_gpu_topology_info(const GpuTopology &topology, plx_topology_info *out) {
  const size_t n = topology.gpus.size();
  out->gpu_count = static_cast<int32_t>(n);
  if (n == 0 || !links_complete(topology)) {
    out->p2p_all_pairs = -1;
    out->nvlink_all_pairs = -1;
    return;
  }
  bool p2p = true, nvlink = true;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      p2p = p2p && topology.links[i][j].p2p_works;
      nvlink = nvlink && topology.links[i][j].nvlinks > 0;
    }
  out->p2p_all_pairs = p2p ? 1 : 0;
  out->nvlink_all_pairs = nvml_was_used(topology) ? (nvlink ? 1 : 0) : -1;
}

}  // namespace plexus::core

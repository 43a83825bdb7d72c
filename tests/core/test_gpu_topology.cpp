// The CPU half of the GPU topology on fixture machines: PCI spellings, the
// PCIe path rules, NVLink counting (direct and through NVSwitches), the
// matrix, the JSON (read back with plexus-info's reader) and the summary.
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>

#include "core/gpu_pci.hpp"
#include "core/gpu_topology.hpp"
#include "tools/plexus-info/json_value.hpp"

using namespace plexus::core;

namespace {

GpuInfo gpu(int ordinal, const char *bus_id, int node, const char *cpus) {
  GpuInfo g;
  g.ordinal = ordinal;
  g.name = "NVIDIA H200";
  g.pci_bus_id = bus_id;
  g.uuid = "GPU-00000000-0000-0000-0000-00000000000" + std::to_string(ordinal);
  g.numa_node = node;
  g.cpus = cpus;
  g.memory_bytes = uint64_t{150754820096};
  g.compute_major = 9;
  return g;
}

GpuTopology with_links(std::vector<GpuInfo> gpus) {
  GpuTopology t;
  t.gpus = std::move(gpus);
  t.links.assign(t.gpus.size(), std::vector<GpuLink>(t.gpus.size()));
  for (size_t i = 0; i < t.gpus.size(); ++i) t.links[i][i].pcie = PciePath::same_device;
  t.nvml = "NVML 580.159.04";
  t.peer_copies_checked = true;
  return t;
}

void set_link(GpuTopology *t, size_t a, size_t b, GpuLink link) {
  t->links[a][b] = link;
  t->links[b][a] = link;
}

// Two H200s joined by 18 NVLinks (NVLink 4), peer access checked.
GpuTopology h200_pair() {
  GpuTopology t = with_links({gpu(0, "00000000:18:00.0", 0, "0-47,96-143"), gpu(1, "00000000:2a:00.0", 0, "0-47,96-143")});
  set_link(&t, 0, 1, GpuLink{18, 4, PciePath::sys, true, true, ""});
  return t;
}

// Four PCIe GPUs on two sockets: 0-1 under one switch, 2 on socket 0's
// root complex, 3 on socket 1; the 0-2 copy came back wrong.
GpuTopology pcie_box() {
  GpuTopology t = with_links({gpu(0, "00000000:03:00.0", 0, "0-23"), gpu(1, "00000000:04:00.0", 0, "0-23"),
                              gpu(2, "00000000:41:00.0", 0, "0-23"), gpu(3, "00000000:c1:00.0", 1, "24-47")});
  set_link(&t, 0, 1, GpuLink{0, 0, PciePath::pix, true, true, ""});
  set_link(&t, 0, 2, GpuLink{0, 0, PciePath::phb, true, false, "peer copy GPU0 -> GPU2 came back wrong: 4194304 of 4194304 bytes differ, the first at byte 0"});
  set_link(&t, 1, 2, GpuLink{0, 0, PciePath::phb, true, true, ""});
  for (size_t a : {0, 1, 2}) set_link(&t, a, 3, GpuLink{0, 0, PciePath::sys, false, false, "CUDA reports no peer access from GPU0 to GPU3"});
  return t;
}

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The matrix rows: lines that start with "GPU<n>" and a blank.
std::vector<std::string> matrix_rows(const std::string &text) {
  std::vector<std::string> rows;
  for (const std::string &line : lines_of(text))
    if (line.rfind("GPU", 0) == 0 && line.size() > 3 && std::isdigit(static_cast<unsigned char>(line[3])) &&
        line.find(' ') != std::string::npos && line.find(':') == std::string::npos)
      rows.push_back(line);
  return rows;
}

std::vector<std::string> words(const std::string &line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

plexus::info::JsonValue json_of(const GpuTopology &t) {
  JsonWriter json;
  json.begin_object();
  write_gpu_topology_json(t, json);
  json.end_object();
  const auto doc = plexus::info::parse_json(json.str());
  REQUIRE_MESSAGE(doc.has_value(), json.str());
  return *doc;
}

}  // namespace

TEST_CASE("core.gpu_topology.pci_address_spellings") {
  PciAddress a;
  REQUIRE(parse_pci_address("0000:1A:00.0", &a));
  CHECK(a == PciAddress{0, 0x1a, 0, 0});
  CHECK(pci_bus_id_text(a) == "00000000:1a:00.0");
  CHECK(sysfs_pci_name(a) == "0000:1a:00.0");
  REQUIRE(parse_pci_address("00000000:c1:1f.7", &a));
  CHECK(a == PciAddress{0, 0xc1, 0x1f, 7});
  REQUIRE(parse_pci_address("18:00.1", &a));
  CHECK(a == PciAddress{0, 0x18, 0, 1});
  REQUIRE(parse_pci_address("10000:e0:00.0", &a));  // a VMD domain
  CHECK(pci_bus_id_text(a) == "00010000:e0:00.0");
  CHECK(sysfs_pci_name(a) == "10000:e0:00.0");
  for (const char *bad : {"", "0000:18:00", "zz:00.0", "0000:18:00.8", "0000:118:00.0", "0000:18:20.0",
                          "1:2:3:4.0", "000000000:18:00.0", "0000:18:00.0x", ".0", "::.0"})
    CHECK_MESSAGE(!parse_pci_address(bad, &a), bad);
}

TEST_CASE("core.gpu_topology.uuid_text") {
  const char bytes[16] = {'\x8f', '\x2c', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, '\xff'};
  CHECK(gpu_uuid_text(bytes) == "GPU-8f2c0001-0203-0405-0607-08090a0b0cff");
}

TEST_CASE("core.gpu_topology.pcie_paths_from_sysfs") {
  const std::string root0 = "/sys/devices/pci0000:00/0000:00:01.0", root1 = "/sys/devices/pci0000:80/0000:80:01.0";
  const std::string sw = root0 + "/0000:01:00.0";  // a switch's upstream port
  const std::string a = sw + "/0000:02:08.0/0000:03:00.0", b = sw + "/0000:02:10.0/0000:04:00.0";
  const std::string deep = sw + "/0000:02:18.0/0000:05:00.0/0000:06:00.0/0000:07:00.0";
  const std::string c = "/sys/devices/pci0000:00/0000:00:03.0/0000:41:00.0";
  const std::string other_bridge = "/sys/devices/pci0000:40/0000:40:01.0/0000:42:00.0";
  const std::string d = root1 + "/0000:81:00.0";
  CHECK(classify_pcie_path(a, a, 0, 0) == PciePath::same_device);
  CHECK(classify_pcie_path(a, b, 0, 0) == PciePath::pix);
  CHECK(classify_pcie_path(a, deep, 0, 0) == PciePath::pxb);
  CHECK(classify_pcie_path(a, c, 0, 0) == PciePath::phb);
  CHECK(classify_pcie_path(c, other_bridge, 0, 0) == PciePath::node);
  CHECK(classify_pcie_path(c, other_bridge, -1, -1) == PciePath::node);
  CHECK(classify_pcie_path(a, d, 0, 1) == PciePath::sys);
  CHECK(classify_pcie_path(a, d, 0, -1) == PciePath::sys);
  CHECK(classify_pcie_path("", a, 0, 0) == PciePath::unknown);
  CHECK(classify_pcie_path("/sys/devices/virtual/foo", a, 0, 0) == PciePath::unknown);
  CHECK(classify_pcie_path(a + "/", b, 0, 0) == PciePath::pix);  // a trailing slash
}

TEST_CASE("core.gpu_topology.sysfs_of_a_missing_device") {
  const PciAddress nowhere{0xfffe, 0xff, 0x1f, 7};
  CHECK(sysfs_device_path(nowhere).empty());
  CHECK(sysfs_numa_node(nowhere) == -1);
  CHECK(sysfs_local_cpus(nowhere).empty());
  std::vector<GpuInfo> gpus = {gpu(0, "00000000:ff:1f.7", -1, ""), gpu(1, "not an address", -1, "")};
  gpus[0].numa_node = gpus[1].numa_node = -1;
  gpus[0].cpus = gpus[1].cpus = "";
  fill_gpu_locality(&gpus);  // hwloc and sysfs find nothing: unknown, no crash
  CHECK(gpus[1].numa_node == -1);
  CHECK(gpus[1].cpus.empty());
}

TEST_CASE("core.gpu_topology.nvlink_generation_from_nvml") {
  CHECK(nvlink_generation(0) == 0);
  CHECK(nvlink_generation(3) == 2);  // NVLink 2.2
  CHECK(nvlink_generation(4) == 3);  // 3.0, A100
  CHECK(nvlink_generation(6) == 4);  // 4.0, what driver 580 says for an H100
  CHECK(nvlink_generation(7) == 5);  // 5.0, Blackwell
  CHECK(nvlink_generation(1000) == 0);
}

TEST_CASE("core.gpu_topology.nvlinks_direct") {
  const std::vector<PciAddress> gpus = {{0, 0x18, 0, 0}, {0, 0x2a, 0, 0}};
  std::vector<std::vector<NvlinkEndpoint>> active(2);
  for (int l = 0; l < 18; ++l) {
    active[0].push_back({gpus[1], NvlinkRemote::gpu, 4});
    active[1].push_back({gpus[0], NvlinkRemote::gpu, 4});
  }
  active[0].push_back({{0, 0x99, 0, 0}, NvlinkRemote::gpu, 4});  // a GPU CUDA_VISIBLE_DEVICES hides
  const auto pairs = count_nvlinks(gpus, active);
  CHECK(pairs[0][1].links == 18);
  CHECK(pairs[1][0].links == 18);
  CHECK(pairs[0][1].version == 4);
  CHECK(pairs[0][0].links == 0);
}

TEST_CASE("core.gpu_topology.nvlinks_through_nvswitches") {
  const std::vector<PciAddress> gpus = {{0, 0x18, 0, 0}, {0, 0x2a, 0, 0}, {0, 0x3a, 0, 0}, {0, 0x5d, 0, 0}};
  std::vector<std::vector<NvlinkEndpoint>> active(4);
  for (size_t g = 0; g < 3; ++g)
    for (uint32_t l = 0; l < 18; ++l) active[g].push_back({{0, 0xe0 + l % 4, 0, 0}, NvlinkRemote::nvswitch, 4});
  for (uint32_t l = 0; l < 12; ++l)  // an old driver: the far end's kind unknown
    active[3].push_back({{0, 0xe0 + l % 4, 0, 0}, NvlinkRemote::unknown, 4});
  const auto pairs = count_nvlinks(gpus, active);
  CHECK(pairs[0][1].links == 18);
  CHECK(pairs[1][2].links == 18);
  CHECK(pairs[0][3].links == 12);
  CHECK(pairs[3][0].version == 4);
  CHECK(pairs[2][2].links == 0);
  CHECK(count_nvlinks(gpus, {}).size() == 4);  // NVML gave nothing: zeros, no crash
}

TEST_CASE("core.gpu_topology.labels") {
  CHECK(link_label(GpuLink{18, 4, PciePath::sys, true, true, ""}) == "NV18");
  CHECK(link_label(GpuLink{0, 0, PciePath::pix, true, true, ""}) == "PIX");
  CHECK(link_label(GpuLink{0, 0, PciePath::pxb, true, true, ""}) == "PXB");
  CHECK(link_label(GpuLink{0, 0, PciePath::phb, true, true, ""}) == "PHB");
  CHECK(link_label(GpuLink{0, 0, PciePath::node, true, true, ""}) == "NODE");
  CHECK(link_label(GpuLink{0, 0, PciePath::sys, false, false, ""}) == "SYS");
  CHECK(link_label(GpuLink{0, 0, PciePath::unknown, false, false, ""}) == "?");
  CHECK(link_label(GpuLink{0, 0, PciePath::same_device, false, false, ""}) == "X");
  CHECK(std::string(pcie_path_name(PciePath::unknown)) == "unknown");
}

TEST_CASE("core.gpu_topology.matrix_of_an_h200_pair") {
  const std::string text = gpu_topology_matrix(h200_pair());
  const auto rows = matrix_rows(text);
  REQUIRE(rows.size() == 2);
  CHECK(words(rows[0]) == std::vector<std::string>{"GPU0", "X", "NV18", "0-47,96-143", "0"});
  CHECK(words(rows[1]) == std::vector<std::string>{"GPU1", "NV18", "X", "0-47,96-143", "0"});
  CHECK(text.find("CPU Affinity") != std::string::npos);
  CHECK(text.find("Legend:") != std::string::npos);
  CHECK(text.find("failing") == std::string::npos);
}

TEST_CASE("core.gpu_topology.matrix_of_a_pcie_box") {
  const std::string text = gpu_topology_matrix(pcie_box());
  const auto rows = matrix_rows(text);
  REQUIRE(rows.size() == 4);
  CHECK(words(rows[0]) == std::vector<std::string>{"GPU0", "X", "PIX", "PHB*", "SYS-", "0-23", "0"});
  CHECK(words(rows[2]) == std::vector<std::string>{"GPU2", "PHB*", "PHB", "X", "SYS-", "0-23", "0"});
  CHECK(words(rows[3]) == std::vector<std::string>{"GPU3", "SYS-", "SYS-", "SYS-", "X", "24-47", "1"});
  CHECK(text.find("GPU0-GPU2: peer copy GPU0 -> GPU2 came back wrong") != std::string::npos);
  for (const char *legend : {"PIX  =", "PXB  =", "PHB  =", "NODE =", "SYS  =", "NV#  =", "*    =", "-    ="})
    CHECK_MESSAGE(text.find(legend) != std::string::npos, legend);
  const std::string full = gpu_topology_text(pcie_box());
  CHECK(full.find("GPU3: NVIDIA H200, 00000000:c1:00.0, 140.4 GiB, compute 9.0, NUMA node 1") != std::string::npos);
  CHECK(full.find("NVLink: NVML 580.159.04") != std::string::npos);
  CHECK(matrix_rows(full).size() == 4);
}

TEST_CASE("core.gpu_topology.json_reads_back") {
  const GpuTopology t = pcie_box();
  const plexus::info::JsonValue doc = json_of(t);
  const plexus::info::JsonValue *gpus = doc.get("gpus");
  const plexus::info::JsonValue *links = doc.get("links");
  REQUIRE(gpus != nullptr);
  REQUIRE(links != nullptr);
  REQUIRE(gpus->items.size() == 4);
  REQUIRE(links->items.size() == 6);  // each pair once
  for (size_t i = 0; i < 4; ++i) {
    const auto &g = gpus->items[i];
    CHECK(g.get("ordinal")->as_text() == std::to_string(i));
    CHECK(g.get("pci_bus_id")->as_text() == t.gpus[i].pci_bus_id);
    CHECK(g.get("uuid")->as_text() == t.gpus[i].uuid);
    CHECK(g.get("numa_node")->as_text() == std::to_string(t.gpus[i].numa_node));
    CHECK(g.get("cpus")->as_text() == t.gpus[i].cpus);
    CHECK(g.get("memory_bytes")->as_text() == std::to_string(t.gpus[i].memory_bytes));
    CHECK(g.get("compute_capability")->as_text() == "9.0");
    CHECK(g.get("name")->as_text() == "NVIDIA H200");
  }
  const auto &l02 = links->items[1];
  CHECK(l02.get("a")->as_text() == "0");
  CHECK(l02.get("b")->as_text() == "2");
  CHECK(l02.get("pcie")->as_text() == "PHB");
  CHECK(l02.get("nvlinks")->as_text() == "0");
  CHECK(l02.get("p2p_reported")->boolean);
  CHECK(!l02.get("p2p_works")->boolean);
  CHECK(l02.get("note")->as_text() == t.links[0][2].note);
  CHECK(links->items[0].get("pcie")->as_text() == "PIX");
  CHECK(doc.get("nvml")->as_text() == "NVML 580.159.04");
  CHECK(doc.get("peer_copies_checked")->boolean);
  CHECK(json_of(h200_pair()).get("links")->items[0].get("nvlink_version")->as_text() == "4");
}

TEST_CASE("core.gpu_topology.topology_info") {
  plx_topology_info info{};
  info.numa_node_count = 2;
  fill_gpu_topology_info(h200_pair(), &info);
  CHECK(info.gpu_count == 2);
  CHECK(info.p2p_all_pairs == 1);
  CHECK(info.nvlink_all_pairs == 1);
  CHECK(info.numa_node_count == 2);  // the host half is left alone
  fill_gpu_topology_info(pcie_box(), &info);
  CHECK(info.gpu_count == 4);
  CHECK(info.p2p_all_pairs == 0);
  CHECK(info.nvlink_all_pairs == 0);
  GpuTopology no_nvml = h200_pair();
  no_nvml.nvml = "not used: libnvidia-ml.so.1 could not be loaded (not found)";
  fill_gpu_topology_info(no_nvml, &info);
  CHECK(info.nvlink_all_pairs == -1);
  fill_gpu_topology_info(with_links({gpu(0, "00000000:18:00.0", 0, "0-7")}), &info);
  CHECK(info.gpu_count == 1);
  CHECK(info.p2p_all_pairs == 1);
  fill_gpu_topology_info(GpuTopology{}, &info);
  CHECK(info.gpu_count == 0);
  CHECK(info.p2p_all_pairs == -1);
  CHECK(info.nvlink_all_pairs == -1);
}

TEST_CASE("core.gpu_topology.half_filled_topology_does_not_crash") {
  GpuTopology t = h200_pair();
  t.links.pop_back();
  CHECK(gpu_topology_matrix(t) == "GPU links unknown\n");
  CHECK(json_of(t).get("links")->items.empty());
  plx_topology_info info{};
  fill_gpu_topology_info(t, &info);
  CHECK(info.p2p_all_pairs == -1);
  CHECK(gpu_topology_matrix(GpuTopology{}) == "no GPUs\n");
}

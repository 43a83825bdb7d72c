// auto's choice (loader/auto_select.hpp) on fixture machines: GPU
// topologies built as the probe builds them (core::GpuTopology) and
// summarised by the same function the plugins use, plus what each shipped
// plugin answered at init and what the launcher says about hosts.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "core/gpu_topology.hpp"
#include "loader/auto_select.hpp"

using plexus::core::GpuLink;
using plexus::core::GpuTopology;
using plexus::core::PciePath;
using namespace plexus::loader;

namespace {

GpuLink itself() {
  GpuLink l;
  l.pcie = PciePath::same_device;
  return l;
}

GpuLink link(int nvlinks, PciePath pcie, bool p2p, const char *note) {
  GpuLink l;
  l.nvlinks = nvlinks, l.nvlink_version = nvlinks ? 4 : 0, l.pcie = pcie;
  l.p2p_reported = l.p2p_works = p2p;
  l.note = note;
  return l;
}

// n GPUs; link(i, j) says how a pair is joined.
template <typename LinkOf>
GpuTopology machine(int n, const LinkOf &link_of) {
  GpuTopology t;
  t.gpus.resize(n);
  t.nvml = "NVML 580.0";  // NVLink counts are known
  t.links.assign(n, std::vector<GpuLink>(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t.links[i][j] = i == j ? itself() : link_of(i, j);
  return t;
}

GpuLink nvlink(int links) { return link(links, PciePath::sys, true, ""); }
GpuLink pcie_p2p() { return link(0, PciePath::pxb, true, ""); }
GpuLink pcie_no_p2p() { return link(0, PciePath::sys, false, "CUDA reports no peer access"); }

AutoTopology summary(const GpuTopology &t) {
  plx_topology_info info{};
  plexus::core::fill_gpu_topology_info(t, &info);
  return AutoTopology{info.gpu_count, info.p2p_all_pairs, info.nvlink_all_pairs, "fixture"};
}

// Every shipped plugin available, unless listed with the note it gave.
std::vector<AutoPlugin> plugins(const std::map<std::string, std::string> &unavailable = {}) {
  std::vector<AutoPlugin> out;
  for (const char *name : auto_plugins) {
    const auto it = unavailable.find(name);
    out.push_back(AutoPlugin{name, it == unavailable.end(), it == unavailable.end() ? "" : it->second});
  }
  return out;
}

AutoChoice choose(const AutoTopology &topology, const std::vector<AutoPlugin> &p, int hosts = 1) {
  AutoHosts h;
  h.hosts = hosts, h.known = true, h.source = "fixture";
  return choose_backends(AutoInputs{topology, h, p});
}

using Members = std::vector<std::string>;

std::function<const char *(const char *)> env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char *name) -> const char * {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST_CASE("Loader.AutoSelect.all_nvlink_picks_p2p_tree_beside_nccl") {
  for (int n : {2, 4, 8}) {
    CAPTURE(n);
    const AutoChoice c = choose(summary(machine(n, [](int, int) { return nvlink(18); })), plugins());
    REQUIRE(c.status == PLX_OK);
    CHECK(c.members == Members{"p2p-tree", "nccl", "shm-native"});
    CHECK(c.reason.find("peer access works between every pair, NVLink between every pair") != std::string::npos);
    CHECK(c.reason.find("nccl beside it") != std::string::npos);
  }
}

TEST_CASE("Loader.AutoSelect.pcie_without_peer_access_picks_pinned_host") {
  const AutoChoice c = choose(summary(machine(4, [](int, int) { return pcie_no_p2p(); })), plugins());
  REQUIRE(c.status == PLX_OK);
  CHECK(c.members == Members{"pinned-host", "nccl", "shm-native"});
  CHECK(c.reason.find("peer access fails between some pair") != std::string::npos);
}

TEST_CASE("Loader.AutoSelect.pcie_with_peer_access_is_p2p") {
  const AutoChoice c = choose(summary(machine(2, [](int, int) { return pcie_p2p(); })), plugins());
  CHECK(c.members == Members{"p2p-tree", "nccl", "shm-native"});
  CHECK(c.reason.find("not all pairs on NVLink") != std::string::npos);
}

TEST_CASE("Loader.AutoSelect.mixed_islands_without_peer_access_between_them") {
  // Two NVLink islands of four; the islands reach each other over the CPUs without P2P.
  const auto islands = [](int i, int j) { return i / 4 == j / 4 ? nvlink(12) : pcie_no_p2p(); };
  const AutoChoice c = choose(summary(machine(8, islands)), plugins());
  CHECK(c.members == Members{"pinned-host", "nccl", "shm-native"});
  // The same with one pair's copy check failing although CUDA reported access.
  auto broken = [](int i, int j) {
    GpuLink l = nvlink(18);
    if (i + j == 1) l.p2p_works = false, l.note = "peer copy came back wrong";
    return l;
  };
  CHECK(choose(summary(machine(4, broken)), plugins()).members == Members{"pinned-host", "nccl", "shm-native"});
}

TEST_CASE("Loader.AutoSelect.a_missing_or_declining_plugin_moves_on") {
  const AutoTopology nv = summary(machine(2, [](int, int) { return nvlink(18); }));
  SUBCASE("p2p-tree declines: nccl leads, and the report says why") {
    const AutoChoice c = choose(nv, plugins({{"p2p-tree", "declined at init: PLEXUS_P2P_TREE_ENABLE is 0"}}));
    CHECK(c.members == Members{"nccl", "pinned-host", "shm-native"});
    CHECK(c.reason.find("p2p-tree would lead but is not available (p2p-tree: declined at init: "
                        "PLEXUS_P2P_TREE_ENABLE is 0)") != std::string::npos);
  }
  SUBCASE("no pinned-host without peer access: nccl alone on the device") {
    const AutoTopology no_p2p = summary(machine(2, [](int, int) { return pcie_no_p2p(); }));
    const AutoChoice c = choose(no_p2p, plugins({{"pinned-host", ""}}));
    CHECK(c.members == Members{"nccl", "shm-native"});
    CHECK(c.reason.find("pinned-host: not installed") != std::string::npos);
  }
  SUBCASE("no GPU plugin accepts: host memory only") {
    const AutoChoice c = choose(nv, plugins({{"p2p-tree", "x"}, {"pinned-host", "y"}, {"nccl", "z"}}));
    CHECK(c.members == Members{"shm-native"});
    CHECK(c.reason.find("no GPU backend is available; p2p-tree: x; nccl: z") != std::string::npos);
  }
  SUBCASE("excluded host plugin: device memory only") {
    const AutoChoice c = choose(nv, plugins({{"shm-native", "excluded by '^' in the spec"}}));
    CHECK(c.members == Members{"p2p-tree", "nccl"});
    CHECK(c.reason.find("host memory is not served") != std::string::npos);
  }
}

TEST_CASE("Loader.AutoSelect.several_hosts_take_nccl_alone") {
  const AutoTopology nv = summary(machine(8, [](int, int) { return nvlink(18); }));
  const AutoChoice c = choose(nv, plugins(), 2);
  CHECK(c.members == Members{"nccl"});
  CHECK(c.reason.find("spans 2 hosts") != std::string::npos);
  const AutoChoice without = choose(nv, plugins({{"nccl", "declined at init: no NCCL"}}), 2);
  CHECK(without.status == PLX_ERR_UNSUPPORTED);
  CHECK(without.members.empty());
  CHECK(without.reason.find("nccl, the only backend across hosts, is not available (nccl: declined") != std::string::npos);
}

TEST_CASE("Loader.AutoSelect.no_gpu_is_shm_native") {
  const AutoChoice c = choose(AutoTopology{0, -1, -1, "p2p-tree declined: no CUDA device"}, plugins());
  CHECK(c.members == Members{"shm-native"});
  CHECK(c.reason.rfind("no GPU (p2p-tree declined: no CUDA device): shm-native", 0) == 0);
  const AutoChoice none = choose(AutoTopology{}, plugins({{"shm-native", "excluded by '^' in the spec"}}));
  CHECK(none.status == PLX_ERR_UNSUPPORTED);
  CHECK(none.reason.find("shm-native is not available (shm-native: excluded") != std::string::npos);
}

TEST_CASE("Loader.AutoSelect.hosts_from_the_launcher") {
  CHECK_FALSE(hosts_from_environment(env_of({})).known);
  CHECK(hosts_from_environment(env_of({})).hosts == 1);
  const AutoHosts ompi = hosts_from_environment(env_of({{"OMPI_COMM_WORLD_SIZE", "16"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "8"}}));
  CHECK(ompi.known);
  CHECK(ompi.hosts == 2);
  CHECK(ompi.source == "OMPI_COMM_WORLD_SIZE=16, OMPI_COMM_WORLD_LOCAL_SIZE=8");
  CHECK(hosts_from_environment(env_of({{"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "4"}})).hosts == 1);
  CHECK(hosts_from_environment(env_of({{"PMI_SIZE", "12"}, {"MPI_LOCALNRANKS", "8"}})).hosts == 2);
  CHECK(hosts_from_environment(env_of({{"SLURM_STEP_NUM_NODES", "3"}})).hosts == 3);
  // The explicit setting wins; nonsense in any of them is ignored.
  CHECK(hosts_from_environment(env_of({{"PLEXUS_AUTO_HOSTS", "1"}, {"SLURM_STEP_NUM_NODES", "3"}})).hosts == 1);
  CHECK_FALSE(hosts_from_environment(env_of({{"WORLD_SIZE", "x"}, {"LOCAL_WORLD_SIZE", "4"}})).known);
  CHECK_FALSE(hosts_from_environment(env_of({{"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "4"}})).known);
}

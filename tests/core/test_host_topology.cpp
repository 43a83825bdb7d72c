#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/host_topology.hpp"

using namespace plexus::core;

namespace {

HostTopology probed() {
  HostTopology topology;
  REQUIRE(probe_host_topology(&topology) == PLX_OK);
  return topology;
}

}  // namespace

TEST_CASE("Core.HostTopology.probe_sees_this_machine") {
  const HostTopology topology = probed();
  CHECK(!topology.hostname.empty());
  CHECK(topology.packages >= 1);
  CHECK(topology.cores >= 1);
  CHECK(topology.pus >= topology.cores);
  CHECK(topology.numa_nodes >= 1);
  REQUIRE(topology.nodes.size() == static_cast<size_t>(topology.numa_nodes));
  uint64_t memory = 0;
  for (const NumaNode &node : topology.nodes) {
    CHECK(node.id >= 0);
    CHECK(node.free_bytes <= node.memory_bytes);
    memory += node.memory_bytes;
  }
  CHECK(memory > 0);
  CHECK(!topology.nodes.front().cpus.empty());
  CHECK((topology.source == "hwloc" || topology.source == "proc"));
}

TEST_CASE("Core.HostTopology.json_has_every_key") {
  const HostTopology topology = probed();
  JsonWriter json;
  write_host_topology_json(topology, json);
  const std::string &text = json.str();
  for (const char *key : {"\"hostname\":", "\"numa_nodes\":[{", "\"id\":", "\"cpus\":", "\"memory_bytes\":",
                          "\"free_bytes\":", "\"packages\":", "\"cores\":", "\"pus\":", "\"cpu_model\":",
                          "\"source\":"})
    CHECK_MESSAGE(text.find(key) != std::string::npos, key);
  CHECK(text.front() == '{');
  CHECK(text.back() == '}');
}

TEST_CASE("Core.HostTopology.text_and_info_summarise_the_probe") {
  const HostTopology topology = probed();
  const std::string text = host_topology_text(topology);
  CHECK(text.find(topology.hostname) != std::string::npos);
  CHECK(text.find("node ") != std::string::npos);
  plx_topology_info info{};
  fill_topology_info(topology, &info);
  CHECK(info.struct_size == sizeof(plx_topology_info));
  CHECK(info.numa_node_count == topology.numa_nodes);
  CHECK(info.pu_count == topology.pus);
  CHECK(info.gpu_count == 0);
  CHECK(info.p2p_all_pairs == -1);
}

TEST_CASE("Core.HostTopology.current_node_is_one_of_the_nodes") {
  const HostTopology topology = probed();
  const int current = current_numa_node();
  bool known = false;
  for (const NumaNode &node : topology.nodes) known = known || node.id == current;
  CHECK(known);
}

// The last node with room, so that on a machine of several nodes the pages
// land away from where this thread would have put them anyway.
TEST_CASE("Core.HostTopology.bound_memory_lands_on_its_node") {
  int node = current_numa_node();
  for (const NumaNode &candidate : probed().nodes)
    if (candidate.free_bytes > (uint64_t{64} << 20)) node = candidate.id;
  const size_t bytes = 4 * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void *memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(memory != MAP_FAILED);
  CHECK(bind_memory_to_node(memory, bytes, node) == PLX_OK);
  std::memset(memory, 1, bytes);  // the policy applies at first fault
  const int where = memory_node_of(memory);
  CHECK_MESSAGE((where == node || where == -1), "page on node ", where, ", bound to ", node);
  munmap(memory, bytes);
}

TEST_CASE("Core.HostTopology.bad_bind_arguments_are_rejected") {
  char page[64];
  CHECK(bind_memory_to_node(nullptr, 4096, 0) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(bind_memory_to_node(page, 0, 0) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(bind_memory_to_node(page, sizeof(page), -1) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(probe_host_topology(nullptr) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(memory_node_of(nullptr) == -1);
}

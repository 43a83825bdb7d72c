// The host as hwloc and libnuma see it: packages, cores, hardware threads
// and NUMA nodes with their CPUs and memory, plus NUMA placement of memory.
// Plugins use it to put shared slots on their rank's node and to show the
// machine in their topology report. Without hwloc and libnuma the host is
// read from /proc and sysconf as a single node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "plexus/types.h"

namespace plexus::core {

struct NumaNode {
  int id = 0;
  std::string cpus;  // a list as the kernel writes it: "0-15,32-47"
  uint64_t memory_bytes = 0;
  uint64_t free_bytes = 0;
};

struct HostTopology {
  std::string hostname;
  int numa_nodes = 0;
  int packages = 0;
  int cores = 0;  // physical
  int pus = 0;    // hardware threads
  std::vector<NumaNode> nodes;
  std::string cpu_model;
  std::string source;  // "hwloc", or "proc" for the /proc, sysfs and sysconf fallback
};

// hwloc when built with it (falling back to /proc if it fails at run time);
// free memory per node from libnuma, else sysfs, else /proc/meminfo.
plx_status probe_host_topology(HostTopology *out);

// {"hostname", "numa_nodes": [{"id", "cpus", "memory_bytes", "free_bytes"}],
//  "packages", "cores", "pus", "cpu_model", "source"}
void write_host_topology_json(const HostTopology &topology, JsonWriter &json);
// A few lines for people (plexus-info, logs).
std::string host_topology_text(const HostTopology &topology);
// The host half of plx_topology_info; the GPU fields say "none, not probed".
void fill_topology_info(const HostTopology &topology, plx_topology_info *out);

// The NUMA node of the CPU the calling thread runs on (0 when unknown).
int current_numa_node();

enum class NumaPolicy {
  preferred,  // the node while it has room, elsewhere after: never a SIGBUS
  bind,       // the node only
};
// Places the pages of [addr, addr + bytes) on `node` (mbind with
// MPOL_MF_MOVE). A policy only takes effect when a page is first faulted, and
// the kernel ignores it for MAP_SHARED mappings other than SysV shm: bind in
// the creating process, then touch every page before peers map it. Without
// libnuma, on a kernel without NUMA or where mbind is not permitted (a
// container's seccomp), it is a no-op that logs at debug and returns PLX_OK.
plx_status bind_memory_to_node(void *addr, size_t bytes, int node, NumaPolicy policy = NumaPolicy::preferred);
// The node the page at `addr` lives on, or -1 when unknown (no libnuma, not
// permitted). Touch (write) the page first: the kernel answers for an
// untouched private page with the node of the shared zero page.
int memory_node_of(const void *addr);

}  // namespace plexus::core

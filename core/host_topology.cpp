#include "core/host_topology.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <utility>

#include "plexus_config.h"

#if PLEXUS_HAVE_HWLOC
#include <hwloc.h>
#endif
#if PLEXUS_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::core {
namespace {

std::string trimmed(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const size_t end = text.find_last_not_of(" \t\n");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// "<key> <n> kB" from a meminfo-style file (/proc/meminfo, a sysfs node's
// meminfo), in bytes; 0 when absent.
uint64_t meminfo_bytes(const std::string &path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.find(key);
    if (at != std::string::npos) return std::strtoull(line.c_str() + at + key.size(), nullptr, 10) * 1024;
  }
  return 0;
}

// Where a node's MemTotal and MemFree are (what libnuma reads too); a lone
// node falls back to /proc/meminfo where sysfs is missing.
std::string node_meminfo_path(int node, size_t node_count) {
  std::string path = fmt::format("/sys/devices/system/node/node{}/meminfo", node);
  if (node_count > 1 || std::ifstream(path).good()) return path;
  return "/proc/meminfo";
}

uint64_t node_free_bytes(int node, size_t node_count) {
#if PLEXUS_HAVE_NUMA
  long long free_bytes = 0;
  if (numa_available() >= 0 && numa_node_size64(node, &free_bytes) >= 0) return static_cast<uint64_t>(free_bytes);
#endif
  return meminfo_bytes(node_meminfo_path(node, node_count), "MemFree:");
}

// "0-3,8,10-11", as the kernel and hwloc write CPU lists.
std::string cpu_list(const cpu_set_t &set) {
  std::string list;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    list += (list.empty() ? "" : ",") + (last == cpu ? fmt::format("{}", cpu) : fmt::format("{}-{}", cpu, last));
    cpu = last;
  }
  return list;
}

struct CpuInfo {
  std::string model;
  int packages = 0;
  int cores = 0;
};

// Packages and cores among the CPUs this process may run on (a container's
// /proc/cpuinfo lists the whole host).
CpuInfo read_cpuinfo(const cpu_set_t &allowed) {
  std::ifstream in("/proc/cpuinfo");
  std::set<int> packages;
  std::set<std::pair<int, int>> cores;
  CpuInfo info;
  int processor = -1, package = 0;
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trimmed(std::string_view(line).substr(0, colon));
    const std::string value = trimmed(std::string_view(line).substr(colon + 1));
    if (key == "processor") processor = std::atoi(value.c_str());
    const bool counted = processor >= 0 && processor < CPU_SETSIZE && CPU_ISSET(processor, &allowed);
    if (key == "model name" && info.model.empty()) info.model = value;
    if (key == "physical id") package = std::atoi(value.c_str());
    if (key == "physical id" && counted) packages.insert(package);
    if (key == "core id" && counted) cores.emplace(package, std::atoi(value.c_str()));
  }
  info.packages = static_cast<int>(packages.size());
  info.cores = static_cast<int>(cores.size());
  return info;
}

// No hwloc: one node holding every CPU this process may use (as nproc).
void probe_with_proc(HostTopology *topology) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) == 0)
    for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN) && cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &allowed);
  const CpuInfo cpu = read_cpuinfo(allowed);
  topology->pus = std::max(1, CPU_COUNT(&allowed));
  topology->cores = cpu.cores > 0 ? std::min(cpu.cores, topology->pus) : topology->pus;
  topology->packages = std::max(1, cpu.packages);
  topology->cpu_model = cpu.model;
  topology->nodes = {NumaNode{0, cpu_list(allowed), meminfo_bytes(node_meminfo_path(0, 1), "MemTotal:"), 0}};
  topology->source = "proc";
}

#if PLEXUS_HAVE_HWLOC
std::string hwloc_cpu_list(hwloc_const_bitmap_t set) {
  char *text = nullptr;
  if (set == nullptr || hwloc_bitmap_list_asprintf(&text, set) < 0) return "";
  std::string list(text);
  std::free(text);
  return list;
}

void read_hwloc_objects(hwloc_topology_t hwloc, HostTopology *topology) {
  topology->packages = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_PACKAGE);
  topology->cores = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_CORE);
  topology->pus = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_PU);
  const int count = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < count; ++i) {
    const hwloc_obj_t obj = hwloc_get_obj_by_type(hwloc, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    topology->nodes.push_back(NumaNode{static_cast<int>(obj->os_index), hwloc_cpu_list(obj->cpuset),
                                       obj->attr->numanode.local_memory, 0});
  }
  const hwloc_obj_t package = hwloc_get_obj_by_type(hwloc, HWLOC_OBJ_PACKAGE, 0);
  const char *model = package != nullptr ? hwloc_obj_get_info_by_name(package, "CPUModel") : nullptr;
  topology->cpu_model = model != nullptr ? model : "";
}

bool probe_with_hwloc(HostTopology *topology) {
  hwloc_topology_t hwloc = nullptr;
  if (hwloc_topology_init(&hwloc) != 0) return false;
  const bool loaded = hwloc_topology_load(hwloc) == 0;
  if (loaded) read_hwloc_objects(hwloc, topology);
  hwloc_topology_destroy(hwloc);
  topology->source = "hwloc";
  return loaded && topology->pus > 0 && !topology->nodes.empty();
}
#endif

// What the prober left open: free memory per node, and sane minimums where
// hwloc reports no package or core objects (some VMs, some ARM boards).
void complete(HostTopology *topology) {
  for (NumaNode &node : topology->nodes) node.free_bytes = node_free_bytes(node.id, topology->nodes.size());
  topology->numa_nodes = static_cast<int>(topology->nodes.size());
  topology->packages = std::max(1, topology->packages);
  if (topology->cores <= 0) topology->cores = topology->pus;
  if (topology->cpu_model.empty()) {
    cpu_set_t none;
    CPU_ZERO(&none);
    topology->cpu_model = read_cpuinfo(none).model;
  }
}

#if PLEXUS_HAVE_NUMA
// mbind over the whole pages holding [addr, addr + bytes); 0 or the errno.
int mbind_pages(void *addr, size_t bytes, int node, NumaPolicy policy) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(addr) & ~(page - 1);
  bitmask *nodes = numa_allocate_nodemask();
  numa_bitmask_setbit(nodes, static_cast<unsigned>(node));
  const long rc = mbind(reinterpret_cast<void *>(start), reinterpret_cast<uintptr_t>(addr) + bytes - start,
                        policy == NumaPolicy::bind ? MPOL_BIND : MPOL_PREFERRED, nodes->maskp, nodes->size + 1,
                        MPOL_MF_MOVE);
  const int err = rc == 0 ? 0 : errno;
  numa_free_nodemask(nodes);
  return err;
}
#endif

std::string gib(uint64_t bytes) { return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1u << 30)); }

}  // namespace

plx_status probe_host_topology(HostTopology *out) {
  if (out == nullptr) return fail(PLX_ERR_INVALID_ARGUMENT, "probe_host_topology: out is NULL");
  HostTopology topology;
  bool probed = false;
#if PLEXUS_HAVE_HWLOC
  probed = probe_with_hwloc(&topology);
  if (!probed) {
    log_debug("hwloc could not load the host topology; reading /proc instead");
    topology = HostTopology{};
  }
#endif
  if (!probed) probe_with_proc(&topology);
  topology.hostname = host_name();
  complete(&topology);
  *out = std::move(topology);
  return PLX_OK;
}

void write_host_topology_json(const HostTopology &topology, JsonWriter &json) {
  json.begin_object().field("hostname", std::string_view(topology.hostname)).key("numa_nodes").begin_array();
  for (const NumaNode &node : topology.nodes) {
    json.begin_object().field("id", int32_t{node.id}).field("cpus", std::string_view(node.cpus));
    json.field("memory_bytes", node.memory_bytes).field("free_bytes", node.free_bytes).end_object();
  }
  json.end_array().field("packages", int32_t{topology.packages}).field("cores", int32_t{topology.cores});
  json.field("pus", int32_t{topology.pus}).field("cpu_model", std::string_view(topology.cpu_model));
  json.field("source", std::string_view(topology.source)).end_object();
}

std::string host_topology_text(const HostTopology &topology) {
  std::string text = fmt::format("host {}: {} package(s), {} cores, {} hardware threads, {} NUMA node(s) ({})\n",
                                 topology.hostname, topology.packages, topology.cores, topology.pus,
                                 topology.numa_nodes, topology.source);
  if (!topology.cpu_model.empty()) text += fmt::format("  cpu: {}\n", topology.cpu_model);
  for (const NumaNode &node : topology.nodes)
    text += fmt::format("  node {}: cpus {}, {} ({} free)\n", node.id, node.cpus.empty() ? "none" : node.cpus,
                        gib(node.memory_bytes), gib(node.free_bytes));
  return text;
}

void fill_topology_info(const HostTopology &topology, plx_topology_info *out) {
  *out = plx_topology_info{};
  out->struct_size = sizeof(plx_topology_info);
  out->numa_node_count = topology.numa_nodes;
  out->core_count = topology.cores;
  out->pu_count = topology.pus;
  out->p2p_all_pairs = -1;
  out->nvlink_all_pairs = -1;
}

// getcpu's node is the kernel's own answer; libnuma's CPU-to-node table
// agrees with it and is kept for kernels whose getcpu leaves node unset.
int current_numa_node() {
  unsigned cpu = 0, node = 0;
  if (getcpu(&cpu, &node) != 0) return 0;
#if PLEXUS_HAVE_NUMA
  if (numa_available() >= 0) {
    // libnuma fills its per-node CPU-mask cache on first use without a lock:
    // thread ranks arriving together raced there and leaked its buffers
    // (ThreadSanitizer and LeakSanitizer, shm-native tests).
    static std::mutex libnuma_cache;
    std::lock_guard lock(libnuma_cache);
    const int numa_node = numa_node_of_cpu(static_cast<int>(cpu));
    if (numa_node >= 0) return numa_node;
  }
#endif
  return static_cast<int>(node);
}

plx_status bind_memory_to_node(void *addr, size_t bytes, int node, NumaPolicy policy) {
  if (addr == nullptr || bytes == 0) return fail(PLX_ERR_INVALID_ARGUMENT, "bind_memory_to_node: empty range");
  if (node < 0) return fail(PLX_ERR_INVALID_ARGUMENT, "bind_memory_to_node: node {} is negative", node);
#if PLEXUS_HAVE_NUMA
  if (numa_available() < 0) {
    log_debug("no NUMA support in this kernel: {} bytes at {} left where they are", bytes, addr);
    return PLX_OK;
  }
  if (node > numa_max_node())
    return fail(PLX_ERR_INVALID_ARGUMENT, "bind_memory_to_node: node {} does not exist (highest {})", node,
                numa_max_node());
  const int err = mbind_pages(addr, bytes, node, policy);
  if (err == 0) return PLX_OK;
  if (err != EPERM && err != ENOSYS)
    return fail_errno(err, fmt::format("mbind of {} bytes at {} to node {}", bytes, addr, node));
  log_debug("mbind is not permitted here ({}): {} bytes at {} left where they are", std::strerror(err), bytes, addr);
  return PLX_OK;
#else
  log_debug("built without libnuma: {} bytes at {} not placed on node {}", bytes, addr, node);
  (void)policy;
  return PLX_OK;
#endif
}

int memory_node_of(const void *addr) {
#if PLEXUS_HAVE_NUMA
  int node = -1;
  if (addr == nullptr || numa_available() < 0) return -1;
  if (get_mempolicy(&node, nullptr, 0, const_cast<void *>(addr), MPOL_F_NODE | MPOL_F_ADDR) != 0) return -1;
  return node;
#else
  (void)addr;
  return -1;
#endif
}

}  // namespace plexus::core

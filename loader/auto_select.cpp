#include "loader/auto_select.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/params.hpp"

namespace plexus::loader {
namespace {

const AutoPlugin *find(const AutoInputs &in, const std::string &name) {
  for (const AutoPlugin &p : in.plugins)
    if (p.name == name) return &p;
  return nullptr;
}

bool available(const AutoInputs &in, const std::string &name) {
  const AutoPlugin *p = find(in, name);
  return p && p->available;
}

std::string why_not(const AutoInputs &in, const std::string &name) {
  const AutoPlugin *p = find(in, name);
  return fmt::format("{}: {}", name, p && !p->note.empty() ? p->note : "not installed");
}

std::string hosts_text(const AutoHosts &h) {
  if (!h.known) return fmt::format("one host assumed ({})", h.source);
  return h.hosts == 1 ? fmt::format("one host ({})", h.source) : fmt::format("{} hosts ({})", h.hosts, h.source);
}

std::string gpu_text(const AutoTopology &t) {
  const char *p2p = t.p2p_all_pairs == 1 ? "peer access works between every pair"
                    : t.p2p_all_pairs == 0 ? "peer access fails between some pair"
                                           : "peer access not probed";
  const char *nvlink = t.nvlink_all_pairs == 1 ? ", NVLink between every pair"
                       : t.nvlink_all_pairs == 0 ? ", not all pairs on NVLink" : "";
  return fmt::format("{} GPU{}, {}{} ({})", t.gpu_count, t.gpu_count == 1 ? "" : "s", p2p, nvlink, t.source);
}

AutoChoice unsupported(std::string reason) {
  AutoChoice c;
  c.status = PLX_ERR_UNSUPPORTED;
  c.reason = std::move(reason);
  return c;
}

AutoChoice choose_multi_host(const AutoInputs &in) {
  const std::string hosts = hosts_text(in.hosts);
  if (!available(in, "nccl"))
    return unsupported(fmt::format("the job spans {} and nccl, the only backend across hosts, is "
                                   "not available ({})", hosts, why_not(in, "nccl")));
  AutoChoice c;
  c.members = {"nccl"};
  c.reason = fmt::format("the job spans {}: nccl, the only backend across hosts, for device memory; "
                         "host memory is not served (shm-native is one host only)", hosts);
  return c;
}

AutoChoice choose_host_only(const AutoInputs &in, const std::string &why) {
  if (!available(in, "shm-native"))
    return unsupported(fmt::format("{}, and shm-native is not available ({})", why, why_not(in, "shm-native")));
  AutoChoice c;
  c.members = {"shm-native"};
  c.reason = fmt::format("{}: shm-native, for host memory; {}", why, hosts_text(in.hosts));
  return c;
}

// With peer access everywhere p2p-tree leads and nccl goes beside it (the
// table picks the faster by size); without, pinned-host leads.
std::vector<std::string> device_order(const AutoTopology &t) {
  if (t.p2p_all_pairs == 1) return {"p2p-tree", "nccl", "pinned-host"};
  return {"pinned-host", "nccl"};
}

std::string skipped_text(const AutoInputs &in, const std::vector<std::string> &order,
                         const std::vector<std::string> &chosen) {
  std::string text;
  for (const std::string &name : order) {
    if (std::find(chosen.begin(), chosen.end(), name) != chosen.end()) break;
    text += fmt::format("; {} would lead but is not available ({})", name, why_not(in, name));
  }
  return text;
}

std::string members_text(const std::vector<std::string> &device, bool host) {
  std::string text = fmt::format("{} for device memory", device[0]);
  if (device.size() > 1) text += fmt::format(", {} beside it (each collective to the faster by size)", device[1]);
  return text + (host ? ", shm-native for host memory" : "; host memory is not served (shm-native not available)");
}

AutoChoice choose_gpu(const AutoInputs &in) {
  const std::vector<std::string> order = device_order(in.topology);
  std::vector<std::string> device;
  for (const std::string &name : order)
    if (available(in, name) && device.size() < 2) device.push_back(name);
  if (device.empty()) {
    std::string notes;
    for (const std::string &name : order) notes += "; " + why_not(in, name);
    return choose_host_only(in, gpu_text(in.topology) + " but no GPU backend is available" + notes);
  }
  AutoChoice c;
  c.members = device;
  const bool host = available(in, "shm-native");
  if (host) c.members.push_back("shm-native");
  c.reason = fmt::format("{}: {}{}; {}", gpu_text(in.topology), members_text(device, host),
                         skipped_text(in, order, device), hosts_text(in.hosts));
  return c;
}

std::optional<int64_t> positive(const char *text) {
  const auto v = text ? core::parse_int(text) : std::nullopt;
  return v && *v > 0 ? v : std::nullopt;
}

// A launcher's world size and this host's share of it.
std::optional<AutoHosts> from_pair(const std::function<const char *(const char *)> &env,
                                   const char *world_var, const char *local_var) {
  const auto world = positive(env(world_var)), local = positive(env(local_var));
  if (!world || !local || *local > *world) return std::nullopt;
  AutoHosts h;
  h.known = true;
  h.hosts = static_cast<int32_t>((*world + *local - 1) / *local);
  h.source = fmt::format("{}={}, {}={}", world_var, *world, local_var, *local);
  return h;
}

}  // namespace

const char *const auto_plugins[4] = {"p2p-tree", "pinned-host", "nccl", "shm-native"};

AutoChoice choose_backends(const AutoInputs &in) {
  if (in.hosts.hosts > 1) return choose_multi_host(in);
  if (in.topology.gpu_count <= 0) return choose_host_only(in, fmt::format("no GPU ({})", in.topology.source));
  return choose_gpu(in);
}

AutoHosts hosts_from_environment(const std::function<const char *(const char *)> &env) {
  AutoHosts h;
  if (const auto n = positive(env("PLEXUS_AUTO_HOSTS"))) {
    h.known = true, h.hosts = static_cast<int32_t>(std::min<int64_t>(*n, INT32_MAX));
    h.source = fmt::format("PLEXUS_AUTO_HOSTS={}", *n);
    return h;
  }
  for (const auto &[world, local] : {std::pair{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                     std::pair{"PMI_SIZE", "MPI_LOCALNRANKS"},
                                     std::pair{"WORLD_SIZE", "LOCAL_WORLD_SIZE"}})
    if (auto found = from_pair(env, world, local)) return *found;
  if (const auto nodes = positive(env("SLURM_STEP_NUM_NODES"))) {
    h.known = true, h.hosts = static_cast<int32_t>(std::min<int64_t>(*nodes, INT32_MAX));
    h.source = fmt::format("SLURM_STEP_NUM_NODES={}", *nodes);
    return h;
  }
  h.source = "no launcher says otherwise; PLEXUS_AUTO_HOSTS sets it";
  return h;
}

}  // namespace plexus::loader

#include "plugins/p2p-tree/p2p_backend.hpp"

#include <cstring>
#include <vector>

#include "core/cuda_status.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::p2p_tree {
namespace {

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

// Declines (PLX-P-6) a machine where peer access does not connect the
// visible GPUs: p2p-tree's kernels write into the peers' memory directly,
// and a pair without it is served through other GPUs (trees, a ring) only
// when some path of working pairs joins them.
plx_status check_peer_access(const core::GpuTopology &t) {
  const size_t n = t.gpus.size();
  std::vector<bool> seen(n, n == 0);
  std::vector<size_t> queue{0};
  if (n > 0) seen[0] = true;
  for (size_t head = 0; head < queue.size(); ++head)
    for (size_t j = 0; j < n; ++j)
      if (!seen[j] && t.links[queue[head]][j].p2p_works) seen[j] = true, queue.push_back(j);
  for (size_t j = 0; j < n; ++j) {
    if (seen[j]) continue;
    const core::GpuLink &link = t.links[0][j];
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: GPUs 0 ({}) and {} ({}) have no working peer "
                      "access, not even through other GPUs{}{}; pinned-host or nccl serve this machine",
                      t.gpus[0].pci_bus_id, j, t.gpus[j].pci_bus_id, link.note.empty() ? "" : ": ", link.note);
  }
  return PLX_OK;
}

plx_status check_payload(const uint8_t *payload, IdPayload *id) {
  std::memcpy(id, payload, sizeof(*id));
  if (id->magic != id_magic || id->version != id_version)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: the unique id carries no p2p-tree id (magic "
                      "{:#x}, version {}; want {:#x}, version {}): it was corrupted or made by another "
                      "plugin", id->magic, id->version, id_magic, id_version);
  const core::RendezvousId &r = id->rendezvous;
  if (std::memchr(r.name, '\0', sizeof(r.name)) == nullptr || std::strncmp(r.name, "/plexus-", 8) != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: the unique id names no plexus rendezvous");
  return PLX_OK;
}

plx_status resolve_device(const Backend &b, const plx_comm_config &config, int *device) {
  *device = config.cuda_device;
  if (*device < 0) PLX_CUDA_CHECK(cudaGetDevice(device));
  if (*device >= b.device_count)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: config->cuda_device is {}, but this process "
                      "sees {} CUDA device(s) (CUDA_VISIBLE_DEVICES?)", *device, b.device_count);
  return PLX_OK;
}

// The CUDA ordinals NVML saw NVLink to from `device` (bit d), for LL128;
// none when NVML was not used or the topology lacks the device.
uint32_t nvlinked_ordinals(const core::GpuTopology &t, int device) {
  uint32_t mask = 0;
  if (!core::nvml_was_used(t)) return 0;
  for (size_t i = 0; i < t.gpus.size() && i < t.links.size(); ++i) {
    if (t.gpus[i].ordinal != device) continue;
    for (size_t j = 0; j < t.gpus.size() && j < t.links[i].size(); ++j)
      if (j != i && t.links[i][j].nvlinks > 0 && t.gpus[j].ordinal >= 0 && t.gpus[j].ordinal < 32)
        mask |= 1u << t.gpus[j].ordinal;
  }
  return mask;
}

}  // namespace

plx_status backend_init(const plx_host_info *host, void **backend) {
  core::set_services(host->services, "p2p-tree");
  auto b = std::make_unique<Backend>();
  if (plx_status s = core::require_cuda_device(&b->device_count)) return s;
  if (plx_status s = read_params(*host->services, &b->params)) return s;
  // A way to keep auto off it without excluding it by name everywhere.
  if (!b->params.enable)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: disabled by PLEXUS_P2P_TREE_ENABLE=0");
  core::log_debug("p2p-tree: probing {} GPU(s){}", b->device_count,
                  b->params.probe_peer_copies ? " with a peer copy per pair" : "");
  if (plx_status s = core::probe_gpu_topology(&b->gpus, b->params.probe_peer_copies)) return s;
  if (plx_status s = check_peer_access(b->gpus)) return s;
  *backend = b.release();
  return PLX_OK;
}

plx_status backend_finalize(void *backend) {
  delete static_cast<Backend *>(backend);
  return PLX_OK;
}

plx_status backend_topology(void *backend, plx_topology_info *info, char *json, size_t capacity,
                            size_t *needed) {
  Backend &b = *static_cast<Backend *>(backend);
  std::lock_guard lock(b.topology_mutex);
  if (!b.host) {
    core::HostTopology host;
    if (plx_status s = core::probe_host_topology(&host)) return s;
    b.host = std::move(host);
  }
  core::fill_topology_info(*b.host, info);
  core::fill_gpu_topology_info(b.gpus, info);
  core::JsonWriter w;
  w.begin_object().field("backend", "p2p-tree").key("host");
  core::write_host_topology_json(*b.host, w);
  core::write_gpu_topology_json(b.gpus, w);
  w.end_object();
  return core::copy_text_out(w.str(), json, capacity, needed);
}

plx_status backend_unique_id(void *, uint8_t *payload) {
  IdPayload id{};
  id.magic = id_magic;
  id.version = id_version;
  if (plx_status s = core::make_rendezvous_id(&id.rendezvous)) return s;
  std::memcpy(payload, &id, sizeof(id));
  return PLX_OK;
}

plx_status comm_init(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                     const plx_comm_config *config, void **comm) {
  const Backend &b = *static_cast<Backend *>(backend);
  IdPayload id;
  if (plx_status s = check_payload(payload, &id)) return s;
  if (nranks > kernels::kMaxRanks)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: {} ranks asked for; this version serves at most "
                      "{} (one host's GPUs)", nranks, kernels::kMaxRanks);
  CommSetup setup{rank, nranks, 0, config->timeout_ms, config->init_timeout_ms, config->name ? config->name : ""};
  if (plx_status s = resolve_device(b, *config, &setup.device)) return s;
  setup.nvlinked_ordinals = nvlinked_ordinals(b.gpus, setup.device);
  std::unique_ptr<Comm> c;
  if (plx_status s = Comm::create(id.rendezvous, setup, b.params, &c)) return s;
  *comm = c.release();
  return PLX_OK;
}

plx_status comm_destroy(void *comm) {
  delete static_cast<Comm *>(comm);
  return PLX_OK;
}

plx_status comm_abort(void *comm) {
  Comm &c = as_comm(comm);
  c.set_failure(PLX_ERR_ABORTED, fmt::format("p2p-tree: rank {} of {} aborted the communicator "
                "(plx_comm_abort)", c.rank(), c.nranks()));
  return PLX_OK;
}

// Kernels that time out or fail record it in host-mapped memory, read
// here as well as by the watchdog; a healthy communicator answers PLX_OK.
plx_status comm_async_status(void *comm, plx_status *status) {
  Comm &c = as_comm(comm);
  c.poll_failures();
  *status = c.failure() != PLX_OK ? c.report_failure() : PLX_OK;
  return PLX_OK;
}

plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device) {
  *rank = as_comm(comm).rank();
  *size = as_comm(comm).nranks();
  *cuda_device = as_comm(comm).device();
  return PLX_OK;
}

plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats) {
  as_comm(comm).stats(coll, stats);
  return PLX_OK;
}

}  // namespace plexus::p2p_tree

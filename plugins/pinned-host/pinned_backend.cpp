#include "plugins/pinned-host/pinned_backend.hpp"

#include <cstring>

#include "core/cuda_status.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::pinned_host {
namespace {

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

plx_status check_payload(const uint8_t *payload, IdPayload *id) {
  std::memcpy(id, payload, sizeof(*id));
  if (id->magic != id_magic || id->version != id_version)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: the unique id carries no pinned-host id (magic "
                      "{:#x}, version {}; want {:#x}, version {}): it was corrupted or made by another plugin",
                      id->magic, id->version, id_magic, id_version);
  const core::RendezvousId &r = id->rendezvous;
  if (std::memchr(r.name, '\0', sizeof(r.name)) == nullptr || std::strncmp(r.name, "/plexus-", 8) != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: the unique id names no plexus rendezvous");
  return PLX_OK;
}

plx_status resolve_device(const Backend &b, const plx_comm_config &config, int *device) {
  *device = config.cuda_device;
  if (*device < 0) PLX_CUDA_CHECK(cudaGetDevice(device));
  if (*device >= b.device_count)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "pinned-host: config->cuda_device is {}, but this process sees "
                      "{} CUDA device(s) (CUDA_VISIBLE_DEVICES?)", *device, b.device_count);
  return PLX_OK;
}

// The GPUs (peer access checked with a real copy: where it works, p2p-tree
// serves better) and the host, probed on the first topology call.
plx_status probe(Backend &b) {
  if (!b.host) {
    core::HostTopology host;
    if (plx_status s = core::probe_host_topology(&host)) return s;
    b.host = std::move(host);
  }
  if (!b.gpus) {
    core::GpuTopology gpus;
    if (plx_status s = core::probe_gpu_topology(&gpus, true)) return s;
    b.gpus = std::move(gpus);
  }
  return PLX_OK;
}

}  // namespace

plx_status backend_init(const plx_host_info *host, void **backend) {
  core::set_services(host->services, "pinned-host");
  auto b = std::make_unique<Backend>();
  if (plx_status s = core::require_cuda_device(&b->device_count)) return s;
  if (plx_status s = read_params(*host->services, &b->params)) return s;
  if (!b->params.enable)
    return core::fail(PLX_ERR_UNSUPPORTED, "pinned-host: not enabled: PLEXUS_PINNED_HOST_ENABLE=0");
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
  if (plx_status s = probe(b)) return s;
  core::fill_topology_info(*b.host, info);
  core::fill_gpu_topology_info(*b.gpus, info);
  core::JsonWriter w;
  w.begin_object().field("backend", "pinned-host").key("host");
  core::write_host_topology_json(*b.host, w);
  core::write_gpu_topology_json(*b.gpus, w);
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
  if (nranks > kp::kMaxRanks)
    return core::fail(PLX_ERR_UNSUPPORTED, "pinned-host: {} ranks asked for; this version serves at most {} "
                      "(one host's GPUs)", nranks, kp::kMaxRanks);
  CommSetup setup{rank, nranks, 0, config->timeout_ms, config->init_timeout_ms, config->name ? config->name : ""};
  if (plx_status s = resolve_device(b, *config, &setup.device)) return s;
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
  c.set_failure(PLX_ERR_ABORTED, fmt::format("pinned-host: rank {} of {} aborted the communicator "
                                             "(plx_comm_abort)", c.rank(), c.nranks()));
  return PLX_OK;
}

// Kernels that time out or fail report through the watchdog; nothing else
// is tracked, so a healthy communicator answers PLX_OK.
plx_status comm_async_status(void *comm, plx_status *status) {
  Comm &c = as_comm(comm);
  c.poll_failures();  // a kernel's timeout record is read here too, not only by the watchdog
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

}  // namespace plexus::pinned_host

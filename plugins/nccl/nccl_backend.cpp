#include "plugins/nccl/nccl_backend.hpp"

#include <chrono>
#include <cstring>
#include <thread>

#include "core/cuda_status.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/params.hpp"
#include "core/status.hpp"

namespace plexus::nccl {
namespace {

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

// An integer parameter within [lo, hi]; a bad value is an error naming the
// variable, not a silent default.
plx_status int_param(const plx_host_services &s, const char *name, int64_t lo, int64_t hi, int32_t *out) {
  const char *text = s.param_get("nccl", name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_int(text);
  if (!v || *v < lo || *v > hi)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: PLEXUS_NCCL_{}={} must be an integer from {} to {}",
                      name, text, lo, hi);
  *out = static_cast<int32_t>(*v);
  return PLX_OK;
}

plx_status bool_param(const plx_host_services &s, const char *name, bool *out) {
  const char *text = s.param_get("nccl", name);
  if (text == nullptr) return PLX_OK;
  const auto v = core::parse_bool(text);
  if (!v) return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: PLEXUS_NCCL_{}={} must be 0 or 1", name, text);
  *out = *v;
  return PLX_OK;
}

plx_status read_params(const plx_host_services &s, Params *p) {
  if (plx_status st = bool_param(s, "WARMUP", &p->warmup)) return st;
  if (plx_status st = bool_param(s, "BLOCKING_TWIN", &p->blocking_twin)) return st;
  if (plx_status st = int_param(s, "WATCHDOG_POLL_MS", 1, 10000, &p->watchdog_poll_ms)) return st;
  if (plx_status st = int_param(s, "EVENT_EVERY", 1, 1 << 20, &p->event_every)) return st;
  if (plx_status st = int_param(s, "WIDEN_HALF", 0, 2, &p->widen_half)) return st;
  if (const char *text = s.param_get("nccl", "WIDEN_GATHER_MAX_BYTES")) {
    const auto v = core::parse_size(text);
    if (!v || *v > (uint64_t{1} << 30))
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: PLEXUS_NCCL_WIDEN_GATHER_MAX_BYTES={} must be a "
                        "size (bytes, K, M or G) up to 1G", text);
    p->widen_gather_max_bytes = *v;
  }
  if (const char *text = s.param_get(nullptr, "DEFRAG_THRESHOLD")) {
    const auto v = core::parse_double(text);
    if (!v || !(*v >= 0.0 && *v <= 1.0))
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: PLEXUS_DEFRAG_THRESHOLD={} must be a "
                        "fraction between 0 and 1", text);
    p->defrag_threshold = *v;
  }
  return PLX_OK;
}

plx_status check_payload(const uint8_t *payload, IdPayload *id) {
  std::memcpy(id, payload, sizeof(*id));
  if (id->magic != id_magic || id->version != id_version)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: the unique id carries no nccl id (magic {:#x}, "
                      "version {}; want {:#x}, version {}): it was corrupted or made by another plugin",
                      id->magic, id->version, id_magic, id_version);
  int local = 0;
  if (ncclGetVersion(&local) == ncclSuccess && local != id->nccl_version)
    core::log_warn("nccl: the unique id was made with NCCL {} and this rank runs NCCL {}; NCCL "
                   "versions must match across ranks", id->nccl_version, local);
  return PLX_OK;
}

plx_status resolve_device(const Backend &b, const plx_comm_config &config, int *device) {
  *device = config.cuda_device;
  if (*device < 0) PLX_CUDA_CHECK(cudaGetDevice(device));
  if (*device >= b.device_count)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: config->cuda_device is {}, but this process "
                      "sees {} CUDA device(s) (CUDA_VISIBLE_DEVICES?)", *device, b.device_count);
  return PLX_OK;
}

// Probes host and GPUs once; a failed probe is tried again next time.
plx_status probe_topology(Backend &b) {
  if (!b.host) {
    core::HostTopology host;
    if (plx_status s = core::probe_host_topology(&host)) return s;
    b.host = std::move(host);
  }
  if (!b.gpus) {
    core::GpuTopology gpus;
    if (plx_status s = core::probe_gpu_topology(&gpus)) return s;
    b.gpus = std::move(gpus);
  }
  return PLX_OK;
}

ncclConfig_t nonblocking_config() {
  // Nonblocking, so that init and split can be given up after the init
  // timeout (ncclCommAbort needs the handle, which a blocking init only
  // returns once every rank has arrived). The collectives run on a
  // blocking twin split off it (Comm::split_blocking_twin).
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

}  // namespace

plx_status backend_init(const plx_host_info *host, void **backend) {
  core::set_services(host->services, "nccl");
  auto b = std::make_unique<Backend>();
  if (plx_status s = core::require_cuda_device(&b->device_count)) return s;
  if (plx_status s = read_params(*host->services, &b->params)) return s;
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
  if (plx_status s = probe_topology(b)) return s;
  core::fill_topology_info(*b.host, info);
  core::fill_gpu_topology_info(*b.gpus, info);
  core::JsonWriter w;
  w.begin_object().field("backend", "nccl").key("host");
  core::write_host_topology_json(*b.host, w);
  core::write_gpu_topology_json(*b.gpus, w);
  w.end_object();
  return core::copy_text_out(w.str(), json, capacity, needed);
}

plx_status backend_unique_id(void *, uint8_t *payload) {
  IdPayload id{};
  id.magic = id_magic;
  id.version = id_version;
  (void)ncclGetVersion(&id.nccl_version);
  // Starts NCCL's bootstrap root in this process: it must live until every
  // rank has joined.
  if (plx_status s = make_domain_key(&id.domain)) return s;
  if (const ncclResult_t r = ncclGetUniqueId(&id.nccl_id); r != ncclSuccess)
    return fail_nccl(r, nullptr, "ncclGetUniqueId", NcclPhase::setup);
  std::memcpy(payload, &id, sizeof(id));
  return PLX_OK;
}

plx_status comm_init(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                     const plx_comm_config *config, void **comm) {
  Backend &b = *static_cast<Backend *>(backend);
  IdPayload id;
  if (plx_status s = check_payload(payload, &id)) return s;
  CommSetup setup{rank, nranks, 0, config->timeout_ms, config->init_timeout_ms,
                  config->name ? config->name : "", id.domain};
  if (plx_status s = resolve_device(b, *config, &setup.device)) return s;
  core::ScopedDevice device(setup.device);
  if (device.status() != PLX_OK) return device.status();
  ncclConfig_t nccl_config = nonblocking_config();
  ncclComm_t nccl = nullptr;
  const ncclResult_t r = ncclCommInitRankConfig(&nccl, nranks, id.nccl_id, rank, &nccl_config);
  if (r != ncclSuccess && r != ncclInProgress) {
    const plx_status s = fail_nccl(r, nccl, "ncclCommInitRankConfig", NcclPhase::setup);
    if (nccl != nullptr) (void)ncclCommAbort(nccl);
    return s;
  }
  std::unique_ptr<Comm> c;
  if (plx_status s = Comm::create(nccl, setup, b.params, &c)) return s;
  *comm = c.release();
  return PLX_OK;
}

// ncclCommSplit on the parent's nonblocking control communicator, then the
// child is made ready and warmed up like any new communicator.
plx_status comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out) {
  Comm &parent = as_comm(comm);
  GateHold hold(parent.gate());
  if (parent.failure() != PLX_OK) return parent.report_failure();
  if (parent.group_depth > 0)
    return core::fail(PLX_ERR_INVALID_USAGE, "nccl: plx_comm_split inside plx_group_start/end");
  if (config->cuda_device >= 0 && config->cuda_device != parent.device())
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "nccl: config->cuda_device is {}, but a split "
                      "communicator stays on its parent's device {}", config->cuda_device, parent.device());
  core::ScopedDevice device(parent.device());
  // Counted on every rank that reaches NCCL, so all compute the same child key.
  const DomainKey child_domain = child_domain_key(parent.setup().domain, parent.split_seq++, color);
  ncclConfig_t nccl_config = nonblocking_config();
  ncclComm_t child = nullptr;
  if (plx_status s = parent.split_control(color == PLX_SPLIT_NO_COLOR ? NCCL_SPLIT_NOCOLOR : color, key,
                                          &nccl_config, config->init_timeout_ms, "ncclCommSplit", &child))
    return s;
  *out = nullptr;
  if (child == nullptr) return PLX_OK;  // PLX_SPLIT_NO_COLOR
  CommSetup setup{-1, -1, parent.device(), config->timeout_ms, config->init_timeout_ms,
                  config->name ? config->name : parent.setup().name, child_domain};
  std::unique_ptr<Comm> c;
  if (plx_status st = Comm::create(child, setup, parent.params(), &c)) return st;
  *out = c.release();
  return PLX_OK;
}

plx_status comm_destroy(void *comm) {
  delete static_cast<Comm *>(comm);
  return PLX_OK;
}

plx_status comm_abort(void *comm) {
  Comm &c = as_comm(comm);
  c.fail_and_abort(PLX_ERR_ABORTED, fmt::format("nccl: rank {} of {} aborted the communicator "
                   "(plx_comm_abort)", c.rank(), c.nranks()), 0);
  return PLX_OK;
}

plx_status comm_async_status(void *comm, plx_status *status) {
  Comm &c = as_comm(comm);
  GateHold hold(c.gate());
  *status = c.failure() != PLX_OK ? c.report_failure() : c.async_state();
  return PLX_OK;
}

plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device) {
  *rank = as_comm(comm).rank();
  *size = as_comm(comm).nranks();
  *cuda_device = as_comm(comm).device();
  return PLX_OK;
}

plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats) {
  const uint64_t calls = as_comm(comm).calls[coll].load(std::memory_order_relaxed);
  stats->last_algorithm = calls > 0 ? PLX_ALGO_LIBRARY : PLX_ALGO_AUTO;
  stats->algorithm_calls[PLX_ALGO_LIBRARY] = calls;
  return PLX_OK;
}

}  // namespace plexus::nccl

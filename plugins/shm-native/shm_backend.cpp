#include "plugins/shm-native/shm_backend.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "core/coll_options.hpp"
#include "core/host_topology.hpp"
#include "core/params.hpp"
#include "core/status.hpp"
#include "plugins/shm-native/shm_coll.hpp"
#include "plugins/shm-native/shm_queue.hpp"
#include "plugins/shm-native/stream_copy.hpp"

namespace plexus::shm_native {
namespace {

struct Backend {
  Params params;
  std::shared_ptr<StagingReport> staging;
};

// Leaves *value as it is when the variable is not set. With `automatic`
// the word "auto" is a value too, standing for *automatic (ROTATE_MIN_BYTES:
// by rank count; STREAM_MIN_BYTES: by CPU).
plx_status size_param(const plx_host_services &s, const char *name, uint64_t *value,
                      const uint64_t *automatic = nullptr) {
  const char *text = s.param_get("shm-native", name);
  if (text == nullptr) return PLX_OK;
  if (automatic != nullptr && std::string_view(text) == "auto") {
    *value = *automatic;
    return PLX_OK;
  }
  const auto v = core::parse_size(text);
  if (!v)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: PLEXUS_SHM_NATIVE_{}={} is {}", name, text,
                      automatic ? "neither a size (bytes, or a number with K, M or G) nor auto"
                                : "not a size (bytes, or a number with K, M or G)");
  *value = *v;
  return PLX_OK;
}

int32_t int_param(const plx_host_services &s, const char *name, int32_t fallback) {
  const char *text = s.param_get("shm-native", name);
  const auto v = text ? core::parse_int(text) : std::nullopt;
  return v && *v >= 0 && *v < (1 << 30) ? static_cast<int32_t>(*v) : fallback;
}

// Reads the parameters once per backend; a bad value is an error that names
// the variable, not a silent default.
plx_status read_params(const plx_host_services &s, Params *p) {
  for (auto [name, value] : {std::pair{"SLOT_BYTES", &p->slot_bytes}, std::pair{"SLOT_MIN_BYTES", &p->slot_min_bytes},
                              std::pair{"ONESHOT_MAX_BYTES", &p->oneshot_max_bytes},
                              std::pair{"THREADS_MIN_BYTES", &p->threads_min_bytes},
                              std::pair{"LL_MAX_BYTES", &p->ll_max_bytes}})
    if (plx_status status = size_param(s, name, value)) return status;
  if (plx_status status = size_param(s, "ROTATE_MIN_BYTES", &p->rotate_min_bytes, &rotate_min_by_ranks)) return status;
  if (plx_status status = size_param(s, "STREAM_MIN_BYTES", &p->stream_min_bytes, &stream_min_by_cpu)) return status;
  if (p->stream_min_bytes == stream_min_by_cpu) p->stream_min_bytes = auto_stream_min_bytes(cpu_vendor());
  p->spin_iterations = int_param(s, "SPIN", p->spin_iterations);
  p->yield_iterations = int_param(s, "YIELD", p->yield_iterations);
  p->sleep_after_us = int_param(s, "SLEEP_AFTER_US", p->sleep_after_us);
  p->read_in_place = int_param(s, "READ_IN_PLACE", 1) != 0;
  p->threads = int_param(s, "THREADS", 0);
  p->threads_poll_us = int_param(s, "THREADS_POLL_US", p->threads_poll_us);
  if (const char *text = s.param_get(nullptr, "DEFRAG_THRESHOLD")) {
    const auto v = core::parse_double(text);
    if (!v || !(*v >= 0.0 && *v <= 1.0))
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: PLEXUS_DEFRAG_THRESHOLD={} must be "
                        "a fraction between 0 and 1", text);
    p->defrag_threshold = *v;
  }
  if (p->slot_bytes < 4096 || p->slot_bytes > (1ull << 30) || p->slot_bytes % 64)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: PLEXUS_SHM_NATIVE_SLOT_BYTES={} must "
                      "be a multiple of 64 between 4K and 1G", p->slot_bytes);
  if (p->slot_min_bytes < 4096 || p->slot_min_bytes > (1ull << 30) || p->slot_min_bytes % 64)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: PLEXUS_SHM_NATIVE_SLOT_MIN_BYTES={} must "
                      "be a multiple of 64 between 4K and 1G", p->slot_min_bytes);
  if (p->ll_max_bytes > ll_max_lines * ll_payload_bytes)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: PLEXUS_SHM_NATIVE_LL_MAX_BYTES={} is more "
                      "than the LL lines hold ({} bytes)", p->ll_max_bytes, ll_max_lines * ll_payload_bytes);
  return PLX_OK;
}

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

// What a rank tells the others in a split.
struct SplitEntry {
  int32_t color, key, rank, pad;
  core::RendezvousId id;
};

}  // namespace

plx_status backend_init(const plx_host_info *host, void **backend) {
  core::set_services(host->services, "shm-native");
  auto b = std::make_unique<Backend>();
  if (plx_status s = read_params(*host->services, &b->params)) return s;
  b->staging = std::make_shared<StagingReport>(std::min(b->params.slot_min_bytes, b->params.slot_bytes),
                                               b->params.slot_bytes);
  *backend = b.release();
  return PLX_OK;
}

plx_status backend_finalize(void *backend) {
  delete static_cast<Backend *>(backend);
  return PLX_OK;
}

plx_status backend_topology(void *backend, plx_topology_info *info, char *json, size_t capacity, size_t *needed) {
  core::HostTopology topology;
  if (plx_status s = core::probe_host_topology(&topology)) return s;
  core::fill_topology_info(topology, info);
  info->gpu_count = 0, info->p2p_all_pairs = -1, info->nvlink_all_pairs = -1;
  core::JsonWriter w;
  w.begin_object().field("backend", "shm-native").key("host");
  core::write_host_topology_json(topology, w);
  w.key("slot_numa_node").value(static_cast<int64_t>(core::current_numa_node())).key("staging");
  static_cast<Backend *>(backend)->staging->write_json(w);
  w.end_object();
  return core::copy_text_out(w.str(), json, capacity, needed);
}

plx_status backend_unique_id(void *, uint8_t *payload) {
  core::RendezvousId id{};
  if (plx_status s = core::make_rendezvous_id(&id)) return s;
  std::memcpy(payload, &id, sizeof(id));
  return PLX_OK;
}

plx_status comm_init(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                     const plx_comm_config *config, void **comm) {
  core::RendezvousId id;
  std::memcpy(&id, payload, sizeof(id));
  if (std::memchr(id.name, '\0', sizeof(id.name)) == nullptr || std::strncmp(id.name, "/plexus-", 8) != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: the unique id names no plexus rendezvous");
  std::unique_ptr<Comm> c;
  const Backend &b = *static_cast<Backend *>(backend);
  if (plx_status s = Comm::create(id, nranks, rank, *config, b.params, b.staging, &c)) return s;
  *comm = c.release();
  return PLX_OK;
}

// Every rank proposes an id; each color uses the one of its lowest (key,
// rank) member, and members are ranked by (key, old rank).
plx_status comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out) {
  Comm &c = as_comm(comm);
  SplitEntry mine{color, key, c.rank(), 0, {}};
  if (plx_status s = core::make_rendezvous_id(&mine.id)) return s;
  std::vector<SplitEntry> all(c.nranks());
  if (plx_status s = c.rendezvous().allgather(&mine, sizeof(mine), all.data(), c.timeout_ms())) return s;
  *out = nullptr;
  if (color == PLX_SPLIT_NO_COLOR) return PLX_OK;
  std::vector<SplitEntry> group;
  for (const SplitEntry &e : all)
    if (e.color == color) group.push_back(e);
  std::stable_sort(group.begin(), group.end(), [](auto &a, auto &b) { return a.key < b.key; });
  const auto me = std::find_if(group.begin(), group.end(), [&](auto &e) { return e.rank == c.rank(); });
  std::unique_ptr<Comm> child;
  if (plx_status s = Comm::create(group.front().id, static_cast<int32_t>(group.size()),
                                  static_cast<int32_t>(me - group.begin()), *config, c.params(),
                                  c.staging_report(), &child))
    return s;
  *out = child.release();
  return PLX_OK;
}

plx_status comm_destroy(void *comm) {
  delete static_cast<Comm *>(comm);
  return PLX_OK;
}

plx_status comm_abort(void *comm) {
  Comm &c = as_comm(comm);
  c.rendezvous().post_failure(PLX_ERR_ABORTED, fmt::format("shm-native: rank {} aborted the communicator", c.rank()));
  return PLX_OK;
}

plx_status comm_async_status(void *comm, plx_status *status) {
  std::string message;
  *status = as_comm(comm).rendezvous().failure(&message);
  return PLX_OK;
}

plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device) {
  *rank = as_comm(comm).rank();
  *size = as_comm(comm).nranks();
  *cuda_device = -1;
  return PLX_OK;
}

plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats) {
  Comm &c = as_comm(comm);
  for (int32_t a = 0; a < PLX_ALGO_COUNT; ++a) stats->algorithm_calls[a] = c.algorithm_calls[coll][a].load();
  stats->last_algorithm = c.last_algorithm[coll].load();
  return PLX_OK;
}

plx_status collective(void *comm, const plx_coll_desc *desc) {
  if (!core::wire_dtype_honoured(desc->coll, desc->dtype, desc->options->wire_dtype)) [[unlikely]]
    return core::refuse_wire_dtype("shm-native", *desc);
  if (narrows_on_wire(*desc)) [[unlikely]] return run_on_wire(as_comm(comm), *desc);
  return run_collective(as_comm(comm), *desc);
}

// Pool slots: shm-native has one pool per communicator, of
// PLX_MEM_SHARED_HOST (the loader checks the kind against alloc_kind_mask).
plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr) {
  return as_comm(comm).pool().pool().allocate(params->bytes, params->alignment, params->tag, ptr);
}

plx_status mem_free(void *comm, void *ptr) { return as_comm(comm).pool().pool().free(ptr); }

plx_status mem_stats(void *comm, int32_t, uint32_t tag, plx_mem_stats *stats) {
  return as_comm(comm).pool().pool().stats(tag, stats);
}

plx_status mem_defragment(void *comm, int32_t, uint64_t *released) {
  return as_comm(comm).pool().pool().defragment(released);
}

// The wire dtype's two buffers (shm_coll.cpp) hold nothing between calls:
// a trim gives them back too, on top of what the pool releases.
plx_status mem_trim(void *comm, int32_t, uint64_t keep_bytes, uint64_t *released) {
  Comm &c = as_comm(comm);
  if (plx_status s = c.pool().pool().trim(keep_bytes, released)) return s;
  const uint64_t wire = (c.wire_input().capacity() + c.wire_result().capacity()) * sizeof(uint16_t);
  std::vector<uint16_t>().swap(c.wire_input());
  std::vector<uint16_t>().swap(c.wire_result());
  if (released != nullptr) *released += wire;
  return PLX_OK;
}

plx_status mem_pressure(void *comm, int32_t, plx_pressure *level) {
  *level = as_comm(comm).pool().pool().pressure();
  return PLX_OK;
}

plx_status queue_create(void *comm, const plx_queue_config *config, void **queue) {
  std::unique_ptr<Queue> q;
  if (plx_status s = Queue::create(as_comm(comm), *config, &q)) return s;
  *queue = q.release();
  return PLX_OK;
}

plx_status queue_enqueue(void *queue, const void *msg, uint64_t bytes, int32_t timeout_ms) {
  return static_cast<Queue *>(queue)->enqueue(msg, bytes, timeout_ms);
}

plx_status queue_dequeue(void *queue, void *buf, uint64_t capacity, uint64_t *bytes, int32_t timeout_ms) {
  return static_cast<Queue *>(queue)->dequeue(buf, capacity, bytes, timeout_ms);
}

plx_status queue_destroy(void *queue) {
  delete static_cast<Queue *>(queue);
  return PLX_OK;
}

}  // namespace plexus::shm_native

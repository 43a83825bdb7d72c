// The communicator family of plexus.h. The loader keeps a communicator's
// sticky failure itself (PLX-L-14), so every plugin fails fast the same way.
#include <memory>

#include "loader/composite.hpp"
#include "loader/errors.hpp"
#include "loader/objects.hpp"
#include "loader/retired.hpp"
#include "loader/services.hpp"
#include "loader/tick_clock.hpp"
#include "loader/unique_id.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

constexpr uint32_t comm_config_v1_size = 32;
constexpr uint32_t op_stats_v1_size = 168;
static_assert(sizeof(plx_comm_config) == comm_config_v1_size);
static_assert(sizeof(plx_op_stats) == op_stats_v1_size);

// The config a plugin sees: complete, timeouts resolved from the
// environment where the caller left 0.
plx_status resolve_config(const char *fn, const plx_comm_config *given, plx_comm_config *out) {
  *out = PLX_COMM_CONFIG_INIT;
  if (given != nullptr) {
    if (given->struct_size < comm_config_v1_size)
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->struct_size is {}, smaller than "
                        "sizeof(plx_comm_config) v1 ({})", fn, given->struct_size, comm_config_v1_size);
    *out = *given;
    out->struct_size = sizeof(plx_comm_config);
  }
  if (out->flags != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->flags {:#x} has unknown bits", fn, out->flags);
  if (out->cuda_device < -1 || out->timeout_ms < -1 || out->init_timeout_ms < -1)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->cuda_device, timeout_ms and "
                      "init_timeout_ms must be -1 or more", fn);
  if (out->timeout_ms == 0) out->timeout_ms = default_timeout_ms();
  if (out->init_timeout_ms == 0) out->init_timeout_ms = default_init_timeout_ms();
  return PLX_OK;
}

plx_status wrap_comm(const char *fn, plx_backend *backend, void *state, plx_comm_h *out) {
  auto comm = std::make_unique<plx_comm>();
  comm->backend = backend;
  comm->state = state;
  const plx_status s = PLX_CALL_SLOT(fn, backend, comm_query, state, &comm->rank, &comm->size, &comm->device);
  if (s != PLX_OK) {
    PLX_CALL_SLOT(fn, backend, comm_destroy, state);
    return s;
  }
  backend->live_objects.fetch_add(1);
  *out = comm.release();
  return PLX_OK;
}

plx_status check_int_out(const char *fn, plx_comm *comm, const void *p, const char *arg) {
  if (comm == nullptr) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL", fn);
  if (comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is not a live communicator", fn);
  return check_not_null(fn, arg, p);
}

}  // namespace

namespace plexus::loader {

plx_status check_comm(const char *fn, plx_comm *c) {
  if (c == nullptr) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL", fn);
  if (c->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is not a live communicator "
                      "(destroyed already, or not a plx_comm_h)", fn);
  const plx_status sticky = c->sticky.load(std::memory_order_acquire);
  if (sticky == PLX_OK) return PLX_OK;
  std::lock_guard lock(c->sticky_mutex);
  return core::fail(sticky, "{}: the communicator failed earlier and must be destroyed: {}", fn,
                    c->sticky_message);
}

void mark_sticky(plx_comm *c, plx_status status, const std::string &message) {
  std::lock_guard lock(c->sticky_mutex);
  if (c->sticky.load() != PLX_OK) return;  // the first failure is the one reported
  c->sticky_message = message;
  c->sticky.store(status, std::memory_order_release);
}

plx_status note_result(plx_comm *c, plx_status status) {
  if (core::is_sticky(status)) mark_sticky(c, status, plx_last_error());
  return status;
}

// A queue's timeout is the caller's own wait running out (no message yet,
// no room yet), not a peer that failed the communicator: only a lost peer
// or an abort makes it sticky.
plx_status note_queue_result(plx_comm *c, plx_status status) {
  return status == PLX_ERR_TIMEOUT ? status : note_result(c, status);
}

}  // namespace plexus::loader

extern "C" {

plx_status plx_comm_init(plx_backend_h backend, const plx_unique_id *id, int32_t nranks,
                         int32_t rank, const plx_comm_config *config, plx_comm_h *out) {
  const char *fn = "plx_comm_init";
  if (plx_status s = check_backend(fn, backend)) return s;
  if (plx_status s = check_not_null(fn, "id", id)) return s;
  if (plx_status s = check_not_null(fn, "out", out)) return s;
  if (nranks < 1) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: nranks is {}; it must be at least 1", fn, nranks);
  if (rank < 0 || rank >= nranks)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: rank {} is out of range for {} ranks (0..{})", fn, rank, nranks, nranks - 1);
  plx_comm_config resolved;
  if (plx_status s = resolve_config(fn, config, &resolved)) return s;
  // auto's composite checks and reads all 256 bytes itself (composite_id.hpp).
  const bool whole = is_composite(backend);
  if (!whole)
    if (plx_status s = check_unique_id(fn, id, backend->lib->info->name)) return s;
  void *state = nullptr;
  const plx_status s = PLX_CALL_SLOT(fn, backend, comm_init, backend->state,
                                     whole ? id->bytes : unique_id_payload(id), nranks, rank, &resolved, &state);
  return s != PLX_OK ? s : wrap_comm(fn, backend, state, out);
}

plx_status plx_comm_split(plx_comm_h comm, int32_t color, int32_t key, const plx_comm_config *config,
                          plx_comm_h *out) {
  const char *fn = "plx_comm_split";
  if (plx_status s = check_comm(fn, comm)) return s;
  if (plx_status s = check_not_null(fn, "out", out)) return s;
  if (color < PLX_SPLIT_NO_COLOR)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: color {} is negative; use a color >= 0 or "
                      "PLX_SPLIT_NO_COLOR (-1)", fn, color);
  plx_comm_config resolved;
  if (plx_status s = resolve_config(fn, config, &resolved)) return s;
  void *state = nullptr;
  const plx_status s = note_result(comm, PLX_CALL_SLOT(fn, comm->backend, comm_split, comm->state,
                                                       color, key, &resolved, &state));
  if (s != PLX_OK) return s;
  if (state == nullptr) {
    *out = nullptr;
    return PLX_OK;
  }
  return wrap_comm(fn, comm->backend, state, out);
}

plx_status plx_comm_destroy(plx_comm_h comm) {
  const char *fn = "plx_comm_destroy";
  if (comm == nullptr || comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL or not a live communicator", fn);
  if (const int32_t queues = comm->live_queues.load())
    return core::fail(PLX_ERR_INVALID_USAGE, "{}: {} queue(s) of this communicator are still open; "
                      "destroy them first", fn, queues);
  const plx_status s = PLX_CALL_SLOT(fn, comm->backend, comm_destroy, comm->state);
  comm->backend->live_objects.fetch_sub(1);
  retire(comm);
  return s;
}

plx_status plx_comm_abort(plx_comm_h comm) {
  const char *fn = "plx_comm_abort";
  if (comm == nullptr || comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL or not a live communicator", fn);
  // No CallGuard: abort must get through while another thread waits inside
  // a collective, so comm_abort has to be callable from any thread.
  const plx_plugin_vtable *vt = comm->backend->lib->vtable;
  const plx_status s = PLX_VTABLE_HAS(vt, comm_abort) ? vt->comm_abort(comm->state)
                                                      : missing_slot(fn, comm->backend, "comm_abort");
  mark_sticky(comm, PLX_ERR_ABORTED, "this rank called plx_comm_abort");
  return s;
}

plx_status plx_comm_async_status(plx_comm_h comm, plx_status *status) {
  const char *fn = "plx_comm_async_status";
  if (plx_status s = check_int_out(fn, comm, status, "status")) return s;
  if (const plx_status sticky = comm->sticky.load()) {
    *status = sticky;
    return PLX_OK;
  }
  plx_status state = PLX_OK;
  if (PLX_VTABLE_HAS(comm->backend->lib->vtable, comm_async_status)) {
    const plx_status s = PLX_CALL_SLOT(fn, comm->backend, comm_async_status, comm->state, &state);
    if (s != PLX_OK) return s;
    note_result(comm, state);
  }
  *status = state;
  return PLX_OK;
}

plx_status plx_comm_rank(plx_comm_h comm, int32_t *rank) {
  if (plx_status s = check_int_out("plx_comm_rank", comm, rank, "rank")) return s;
  *rank = comm->rank;
  return PLX_OK;
}

plx_status plx_comm_size(plx_comm_h comm, int32_t *size) {
  if (plx_status s = check_int_out("plx_comm_size", comm, size, "size")) return s;
  *size = comm->size;
  return PLX_OK;
}

plx_status plx_comm_device(plx_comm_h comm, int32_t *cuda_device) {
  if (plx_status s = check_int_out("plx_comm_device", comm, cuda_device, "cuda_device")) return s;
  *cuda_device = comm->device;
  return PLX_OK;
}

plx_status plx_comm_stats(plx_comm_h comm, plx_coll_kind coll, plx_op_stats *stats) {
  const char *fn = "plx_comm_stats";
  if (plx_status s = check_int_out(fn, comm, stats, "stats")) return s;
  if (coll_name(coll) == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: coll {} is not a plx_coll_kind", fn, coll);
  if (stats->struct_size < op_stats_v1_size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: stats->struct_size is {}, smaller than "
                      "sizeof(plx_op_stats) v1 ({})", fn, stats->struct_size, op_stats_v1_size);
  plx_op_stats full{};
  full.struct_size = sizeof(full);
  if (PLX_VTABLE_HAS(comm->backend->lib->vtable, comm_stats))
    PLX_CALL_SLOT(fn, comm->backend, comm_stats, comm->state, coll, &full);
  full.struct_size = stats->struct_size;
  full.coll = coll;
  full.calls = comm->counters[coll].calls.load();
  full.bytes = comm->counters[coll].bytes.load();
  full.time_ns = ticks_to_ns(comm->counters[coll].time_ticks.load());
  *stats = full;
  return PLX_OK;
}

}  // extern "C"

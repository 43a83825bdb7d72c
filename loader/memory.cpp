// The memory family of plexus.h: pools, registration, statistics,
// defragmentation, pressure (DESIGN §5).
#include "loader/errors.hpp"
#include "loader/objects.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

constexpr uint32_t alloc_params_v1_size = 32;
constexpr uint32_t mem_stats_v1_size = 96;
static_assert(sizeof(plx_mem_alloc_params) == alloc_params_v1_size);
static_assert(sizeof(plx_mem_stats) == mem_stats_v1_size);

plx_status check_kind(const char *fn, plx_comm *comm, plx_mem_kind kind, bool allow_host) {
  if (kind < 0 || kind >= PLX_MEM_KIND_COUNT || (!allow_host && kind == PLX_MEM_HOST))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: kind {} is not a pool kind (PLX_MEM_SHARED_HOST, "
                      "PLX_MEM_PINNED_HOST or PLX_MEM_DEVICE)", fn, kind);
  const plx_plugin_info &info = *comm->backend->lib->info;
  if (!(info.alloc_kind_mask & PLX_BIT(kind)))
    return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' has no pool of memory kind {}", fn, info.name, kind);
  return PLX_OK;
}

plx_status check_alloc_params(const char *fn, const plx_mem_alloc_params *p) {
  if (p->struct_size < alloc_params_v1_size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: params->struct_size is {}, smaller than "
                      "sizeof(plx_mem_alloc_params) v1 ({})", fn, p->struct_size, alloc_params_v1_size);
  if (p->bytes == 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: params->bytes is 0", fn);
  if (p->alignment & (p->alignment - 1))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: params->alignment {} is not a power of two", fn, p->alignment);
  if (p->tag >= PLX_MEM_TAG_COUNT)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: params->tag {} is not below {}", fn, p->tag, PLX_MEM_TAG_COUNT);
  if (p->flags != 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: params->flags must be 0", fn);
  return PLX_OK;
}

// Communicator and kind checks shared by the pool queries.
plx_status begin_pool_call(const char *fn, plx_comm *comm, plx_mem_kind kind) {
  if (plx_status s = check_comm(fn, comm)) return s;
  return check_kind(fn, comm, kind, false);
}

}  // namespace

extern "C" {

plx_status plx_mem_alloc(plx_comm_h comm, const plx_mem_alloc_params *params, void **ptr) {
  const char *fn = "plx_mem_alloc";
  if (plx_status s = check_comm(fn, comm)) return s;
  if (plx_status s = check_not_null(fn, "params", params)) return s;
  if (plx_status s = check_not_null(fn, "ptr", ptr)) return s;
  if (plx_status s = check_alloc_params(fn, params)) return s;
  if (plx_status s = check_kind(fn, comm, params->kind, false)) return s;
  plx_mem_alloc_params full = *params;
  full.struct_size = sizeof(full);
  const plx_status s = note_result(comm, PLX_CALL_SLOT(fn, comm->backend, mem_alloc, comm->state, &full, ptr));
  if (s == PLX_OK) comm->blocks.add(*ptr, params->bytes);
  if (s == PLX_ERR_OUT_OF_MEMORY) return name_failure(fn, "params->bytes", s);
  return s == PLX_ERR_INVALID_ARGUMENT ? name_failure(fn, "params", s) : s;
}

plx_status plx_mem_free(plx_comm_h comm, void *ptr) {
  const char *fn = "plx_mem_free";
  if (comm == nullptr || comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL or not a live communicator", fn);
  if (ptr == nullptr) return PLX_OK;
  // Freeing works on a failed communicator too: memory is released, not moved.
  const plx_status s = PLX_CALL_SLOT(fn, comm->backend, mem_free, comm->state, ptr);
  if (s == PLX_OK) comm->blocks.remove(ptr);
  return name_failure(fn, "ptr", s);
}

plx_status plx_mem_register(plx_comm_h comm, void *ptr, uint64_t bytes, plx_mem_reg_h *handle) {
  const char *fn = "plx_mem_register";
  if (plx_status s = check_comm(fn, comm)) return s;
  if (plx_status s = check_not_null(fn, "ptr", ptr)) return s;
  if (plx_status s = check_not_null(fn, "handle", handle)) return s;
  if (bytes == 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: bytes is 0", fn);
  void *h = nullptr;
  const plx_status s = note_result(comm, PLX_CALL_SLOT(fn, comm->backend, mem_register, comm->state, ptr, bytes, &h));
  if (s == PLX_OK) *handle = static_cast<plx_mem_reg_h>(h);
  return s;
}

plx_status plx_mem_deregister(plx_comm_h comm, plx_mem_reg_h handle) {
  const char *fn = "plx_mem_deregister";
  if (comm == nullptr || comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL or not a live communicator", fn);
  if (plx_status s = check_not_null(fn, "handle", handle)) return s;
  return PLX_CALL_SLOT(fn, comm->backend, mem_deregister, comm->state, handle);
}

plx_status plx_mem_stats_get(plx_comm_h comm, plx_mem_kind kind, uint32_t tag, plx_mem_stats *stats) {
  const char *fn = "plx_mem_stats_get";
  if (plx_status s = begin_pool_call(fn, comm, kind)) return s;
  if (plx_status s = check_not_null(fn, "stats", stats)) return s;
  if (stats->struct_size < mem_stats_v1_size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: stats->struct_size is {}, smaller than "
                      "sizeof(plx_mem_stats) v1 ({})", fn, stats->struct_size, mem_stats_v1_size);
  if (tag >= PLX_MEM_TAG_COUNT && tag != PLX_MEM_TAG_ALL)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: tag {} is neither below {} nor PLX_MEM_TAG_ALL", fn, tag, PLX_MEM_TAG_COUNT);
  plx_mem_stats full{};
  full.struct_size = sizeof(full);
  const plx_status s = PLX_CALL_SLOT(fn, comm->backend, mem_stats, comm->state, kind, tag, &full);
  if (s == PLX_OK) {
    full.struct_size = stats->struct_size;
    *stats = full;
  }
  return s;
}

plx_status plx_mem_defragment(plx_comm_h comm, plx_mem_kind kind, uint64_t *released) {
  const char *fn = "plx_mem_defragment";
  if (plx_status s = begin_pool_call(fn, comm, kind)) return s;
  uint64_t bytes = 0;
  const plx_status s = PLX_CALL_SLOT(fn, comm->backend, mem_defragment, comm->state, kind, &bytes);
  if (s == PLX_OK && released) *released = bytes;
  return s;
}

plx_status plx_mem_trim(plx_comm_h comm, plx_mem_kind kind, uint64_t keep_bytes, uint64_t *released) {
  const char *fn = "plx_mem_trim";
  if (plx_status s = begin_pool_call(fn, comm, kind)) return s;
  uint64_t bytes = 0;
  const plx_status s = PLX_CALL_SLOT(fn, comm->backend, mem_trim, comm->state, kind, keep_bytes, &bytes);
  if (s == PLX_OK && released) *released = bytes;
  return s;
}

plx_status plx_mem_pressure(plx_comm_h comm, plx_mem_kind kind, plx_pressure *level) {
  const char *fn = "plx_mem_pressure";
  if (plx_status s = begin_pool_call(fn, comm, kind)) return s;
  if (plx_status s = check_not_null(fn, "level", level)) return s;
  return PLX_CALL_SLOT(fn, comm->backend, mem_pressure, comm->state, kind, level);
}

}  // extern "C"

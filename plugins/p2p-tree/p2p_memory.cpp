// The memory slots: one DevicePool of PLX_MEM_DEVICE per communicator,
// created on first use on the communicator's device (the loader has checked
// the kind against alloc_kind_mask). Pool calls are thread-safe.
#include <cstring>

#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"

namespace plexus::p2p_tree {
namespace {

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

}  // namespace

plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr) {
  core::DevicePool *pool = nullptr;
  if (plx_status s = as_comm(comm).pool(&pool)) return s;
  return pool->allocate(params->bytes, params->alignment, params->tag, ptr);
}

plx_status mem_free(void *comm, void *ptr) {
  core::DevicePool *pool = as_comm(comm).existing_pool();
  if (pool == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: plx_mem_free: {} is not a block of this "
                      "communicator (it has allocated nothing)", ptr);
  return pool->free(ptr);
}

plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats) {
  core::DevicePool *pool = as_comm(comm).existing_pool();
  if (pool == nullptr) {  // nothing allocated yet: all zero, no pool made for a question
    const uint32_t size = stats->struct_size;
    std::memset(stats, 0, sizeof(*stats));
    stats->struct_size = size;
    stats->kind = kind;
    return PLX_OK;
  }
  return pool->stats(tag, stats);
}

plx_status mem_defragment(void *comm, int32_t, uint64_t *released) {
  core::DevicePool *pool = as_comm(comm).existing_pool();
  if (pool == nullptr) {
    if (released) *released = 0;
    return PLX_OK;
  }
  return pool->defragment(released);
}

plx_status mem_trim(void *comm, int32_t, uint64_t keep_bytes, uint64_t *released) {
  core::DevicePool *pool = as_comm(comm).existing_pool();
  if (pool == nullptr) {
    if (released) *released = 0;
    return PLX_OK;
  }
  return pool->trim(keep_bytes, released);
}

plx_status mem_pressure(void *comm, int32_t, plx_pressure *level) {
  core::DevicePool *pool = nullptr;
  if (plx_status s = as_comm(comm).pool(&pool)) return s;
  *level = pool->pressure();
  return PLX_OK;
}

}  // namespace plexus::p2p_tree

// The memory slots: the communicator's core::CommDevicePool (made on first
// use on its device; the loader has checked the kind against
// alloc_kind_mask).
#include "plugins/nccl/nccl_backend.hpp"

namespace plexus::nccl {
namespace {

core::CommDevicePool &pool_of(void *comm) { return static_cast<Comm *>(comm)->user_pool(); }

}  // namespace

plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr) {
  return pool_of(comm).allocate(params, ptr);
}
plx_status mem_free(void *comm, void *ptr) { return pool_of(comm).free(ptr); }
plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats) {
  return pool_of(comm).stats(kind, tag, stats);
}
plx_status mem_defragment(void *comm, int32_t, uint64_t *released) {
  return pool_of(comm).defragment(released);
}
// The widen pool (nccl_widen.cpp) holds only transient float32 blocks, so
// a trim gives back all it keeps, on top of what the user pool releases.
plx_status mem_trim(void *comm, int32_t, uint64_t keep_bytes, uint64_t *released) {
  if (plx_status s = pool_of(comm).trim(keep_bytes, released)) return s;
  const uint64_t widened = static_cast<Comm *>(comm)->widen_pool().trim();
  if (released != nullptr) *released += widened;
  return PLX_OK;
}
plx_status mem_pressure(void *comm, int32_t, plx_pressure *level) { return pool_of(comm).pressure(level); }

}  // namespace plexus::nccl

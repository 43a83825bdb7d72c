// The memory slots: PLX_MEM_DEVICE from the communicator's device pool, as
// in the other CUDA plugins (core/comm_device_pool.hpp). The shared segment
// is the plugin's own and never shows in these statistics.
#include "plugins/pinned-host/pinned_backend.hpp"

namespace plexus::pinned_host {
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
plx_status mem_defragment(void *comm, int32_t, uint64_t *released) { return pool_of(comm).defragment(released); }
plx_status mem_trim(void *comm, int32_t, uint64_t keep_bytes, uint64_t *released) {
  return pool_of(comm).trim(keep_bytes, released);
}
plx_status mem_pressure(void *comm, int32_t, plx_pressure *level) { return pool_of(comm).pressure(level); }

}  // namespace plexus::pinned_host

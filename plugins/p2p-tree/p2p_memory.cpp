// The memory slots: the communicator's core::CommDevicePool (made on first
// use on its device; the loader has checked the kind against
// alloc_kind_mask), and registration (p2p_registry.hpp). A pool segment is
// registered on a block's first use as a two-shot output, so plx_mem_alloc
// buffers are used in place with no call from the caller.
#include <cuda_runtime_api.h>

#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"

namespace plexus::p2p_tree {
namespace {

Comm &comm_of(void *comm) { return *static_cast<Comm *>(comm); }
core::CommDevicePool &pool_of(void *comm) { return comm_of(comm).user_pool(); }

}  // namespace

// A pool block's segment is registered on its first use, also inside a
// graph capture: the launch carries the registration, and the kernel posts
// it from the first replay after every peer mapped it. Exporting the IPC
// handle is no stream operation, so the capture mode is relaxed for it.
void Comm::post_output(const void *out, uint64_t bytes, kernels::ReduceArgs *args) {
  args->out_reg = 0;
  if (out == nullptr || registry_.post_for(out, bytes, args)) return;
  if (user_pool_.pin(out) != PLX_OK) return;  // not a plx_mem_alloc block
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  const plx_status added = registry_.add_allocation(out);
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  if (added != PLX_OK)
    core::log_debug("p2p-tree: rank {}: the pool segment of {} is not registered: {}", setup_.rank, out,
                    core::last_message());
  else (void)registry_.post_for(out, bytes, args);
}

plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr) {
  return pool_of(comm).allocate(params, ptr);
}
plx_status mem_free(void *comm, void *ptr) { return pool_of(comm).free(ptr); }
plx_status mem_register(void *comm, void *ptr, uint64_t bytes, void **handle) {
  uint64_t id = 0;
  if (plx_status s = comm_of(comm).registry().add(ptr, bytes, &id)) return s;
  *handle = reinterpret_cast<void *>(static_cast<uintptr_t>(id));
  return PLX_OK;
}
plx_status mem_deregister(void *comm, void *handle) {
  Comm &c = comm_of(comm);
  return c.registry().remove(reinterpret_cast<uintptr_t>(handle), c.setup().timeout_ms);
}
plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats) {
  return pool_of(comm).stats(kind, tag, stats);
}
plx_status mem_defragment(void *comm, int32_t, uint64_t *released) {
  return pool_of(comm).defragment(released);
}
// The wire pool (p2p_coll.cpp) holds only transient blocks, so a trim gives
// back all it keeps, on top of what the user pool releases.
plx_status mem_trim(void *comm, int32_t, uint64_t keep_bytes, uint64_t *released) {
  if (plx_status s = pool_of(comm).trim(keep_bytes, released)) return s;
  const uint64_t wire = comm_of(comm).wire_pool().trim();
  if (released != nullptr) *released += wire;
  return PLX_OK;
}
plx_status mem_pressure(void *comm, int32_t, plx_pressure *level) { return pool_of(comm).pressure(level); }

}  // namespace plexus::p2p_tree

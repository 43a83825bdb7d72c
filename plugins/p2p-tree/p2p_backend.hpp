// The vtable slots of the p2p-tree plugin and the backend they share.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>

#include "core/gpu_topology.hpp"
#include "core/host_topology.hpp"
#include "plexus/plugin.h"
#include "plugins/p2p-tree/p2p_comm.hpp"

namespace plexus::p2p_tree {

struct Backend {
  Params params;
  int device_count = 0;
  core::GpuTopology gpus;  // probed at init (peer access checked per pair)
  std::mutex topology_mutex;
  std::optional<core::HostTopology> host;
};

// p2p_backend.cpp
plx_status backend_init(const plx_host_info *host, void **backend);
plx_status backend_finalize(void *backend);
plx_status backend_topology(void *backend, plx_topology_info *info, char *json, size_t capacity,
                            size_t *needed);
plx_status backend_unique_id(void *backend, uint8_t *payload);
plx_status comm_init(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                     const plx_comm_config *config, void **comm);
plx_status comm_destroy(void *comm);
plx_status comm_abort(void *comm);
plx_status comm_async_status(void *comm, plx_status *status);
plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device);
plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats);

// p2p_params.cpp: PLEXUS_P2P_TREE_* into Params; INVALID_ARGUMENT naming
// the variable for a bad value.
plx_status read_params(const plx_host_services &services, Params *params);

// p2p_coll.cpp
plx_status collective(void *comm, const plx_coll_desc *desc);

// p2p_copy_engine.cpp: an all-reduce by the copy engines (kernels/ce.hpp),
// enqueued on `stream` and side streams that join it again.
cudaError_t copy_engine_all_reduce(Comm &c, const plx_coll_desc &d, cudaStream_t stream);

// p2p_memory.cpp
plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr);
plx_status mem_free(void *comm, void *ptr);
plx_status mem_register(void *comm, void *ptr, uint64_t bytes, void **handle);
plx_status mem_deregister(void *comm, void *handle);
plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats);
plx_status mem_defragment(void *comm, int32_t kind, uint64_t *released);
plx_status mem_trim(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released);
plx_status mem_pressure(void *comm, int32_t kind, plx_pressure *level);

}  // namespace plexus::p2p_tree

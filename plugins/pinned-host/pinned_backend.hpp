// The vtable slots of the pinned-host plugin and the backend they share.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>

#include "core/gpu_topology.hpp"
#include "core/host_topology.hpp"
#include "plexus/plugin.h"
#include "plugins/pinned-host/pinned_comm.hpp"

namespace plexus::pinned_host {

struct Backend {
  Params params;
  int device_count = 0;
  std::mutex topology_mutex;  // the probes below run on the first topology call
  std::optional<core::HostTopology> host;
  std::optional<core::GpuTopology> gpus;
};

// pinned_backend.cpp
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

// pinned_coll.cpp
plx_status collective(void *comm, const plx_coll_desc *desc);

// pinned_copy_engine.cpp: an all-reduce or reduce through the copy engines
// (*err: the CUDA error of a failed enqueue); whether a stream is capturing.
plx_status copy_engine_reduction(Comm &c, const plx_coll_desc &d, cudaStream_t stream, cudaError_t *err);
bool capturing(cudaStream_t stream);

// pinned_memory.cpp
plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr);
plx_status mem_free(void *comm, void *ptr);
plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats);
plx_status mem_defragment(void *comm, int32_t kind, uint64_t *released);
plx_status mem_trim(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released);
plx_status mem_pressure(void *comm, int32_t kind, plx_pressure *level);

}  // namespace plexus::pinned_host

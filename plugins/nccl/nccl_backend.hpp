// The vtable slots of the nccl plugin and the backend they share.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>

#include "core/gpu_topology.hpp"
#include "core/host_topology.hpp"
#include "plexus/plugin.h"
#include "plugins/nccl/nccl_comm.hpp"

namespace plexus::nccl {

struct Backend {
  Params params;
  int device_count = 0;
  // The machine as probed the first time plx_backend_topology asked.
  std::mutex topology_mutex;
  std::optional<core::HostTopology> host;
  std::optional<core::GpuTopology> gpus;
};

// The unique id payload: a header this plugin checks, NCCL's id, and the
// key of the communicator's failure domain (nccl_domain.hpp).
struct IdPayload {
  uint32_t magic;         // id_magic
  uint16_t version;       // id_version
  uint16_t reserved0;
  int32_t nccl_version;   // ncclGetVersion of the rank that made it
  uint32_t reserved1;
  ncclUniqueId nccl_id;
  DomainKey domain;
};
constexpr uint32_t id_magic = 0x4e43584cu;  // "LXCN"
constexpr uint16_t id_version = 2;          // 2: with the domain key
static_assert(std::is_trivially_copyable_v<IdPayload>);
static_assert(offsetof(IdPayload, nccl_id) == 16 && sizeof(ncclUniqueId) == 128);
static_assert(offsetof(IdPayload, domain) == 144 && sizeof(IdPayload) == 168);
static_assert(sizeof(IdPayload) <= PLX_UNIQUE_ID_PAYLOAD_BYTES, "the id fits the plugin's payload");

plx_status backend_init(const plx_host_info *host, void **backend);
plx_status backend_finalize(void *backend);
plx_status backend_topology(void *backend, plx_topology_info *info, char *json, size_t capacity,
                            size_t *needed);
plx_status backend_unique_id(void *backend, uint8_t *payload);

plx_status comm_init(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                     const plx_comm_config *config, void **comm);
plx_status comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out);
plx_status comm_destroy(void *comm);
plx_status comm_abort(void *comm);
plx_status comm_async_status(void *comm, plx_status *status);
plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device);
plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats);

// nccl_coll.cpp
plx_status collective(void *comm, const plx_coll_desc *desc);
// NCCL's operator for plexus op `op` (a valid PLX_* op) on this communicator.
ncclRedOp_t nccl_op(const Comm &c, int32_t op);
// nccl_widen.cpp: half-type reductions over more than 2 ranks run in float32
// (PLX-P-8); float32 reductions travel as opts->wire_dtype (float16 or
// bfloat16). Neither issue_* checks anything: the caller has checked the
// buffers and the wire dtype.
bool needs_widening(const Comm &c, const plx_coll_desc &d);
plx_status issue_widened(Comm &c, const plx_coll_desc &d, ncclResult_t *result);
plx_status issue_on_wire(Comm &c, const plx_coll_desc &d, ncclResult_t *result);
// At a group's end: finishes what the group widened once NCCL has
// launched, else only frees the pool blocks; the first error.
plx_status finish_group_reductions(Comm &c, bool launched);
plx_status group_start(void *comm);
plx_status group_end(void *comm);

// nccl_memory.cpp
plx_status mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr);
plx_status mem_free(void *comm, void *ptr);
plx_status mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats);
plx_status mem_defragment(void *comm, int32_t kind, uint64_t *released);
plx_status mem_trim(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released);
plx_status mem_pressure(void *comm, int32_t kind, plx_pressure *level);

}  // namespace plexus::nccl

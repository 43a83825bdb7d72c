// example-shm: the entry point (plx_plugin_query), what the plugin declares,
// and the vtable. A template for a third-party plexus plugin: it is built
// against the installed headers only (pkg-config plexus) and passes
// plexus-conformance. Host-memory collectives between the processes (or
// threads) of one machine, through POSIX shared memory (comm.hpp,
// collectives.hpp).
//
// What it declares is exactly what it does, because the loader and the
// conformance kit both take it at its word: the loader refuses a
// collective, dtype or operator that is not declared (PLX-L-21, PLX-L-26)
// and the kit tests every one that is (PLX-P-8). Slots left NULL (pools,
// queues, topology, groups, send/recv) answer PLX_ERR_UNSUPPORTED.
#include <plexus/plugin.h>

#include <cstring>
#include <new>

#include "collectives.hpp"
#include "comm.hpp"
#include "host.hpp"

namespace example_shm {
namespace {

#define EXAMPLE_SHM_STR2(x) #x
#define EXAMPLE_SHM_STR(x) EXAMPLE_SHM_STR2(x)

// No exception may cross the C ABI: every slot that allocates runs here.
template <typename Body>
plx_status guarded(Body body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(PLX_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (...) {
    return fail(PLX_ERR_INTERNAL, "unexpected C++ exception");
  }
}

Comm &as_comm(void *comm) { return *static_cast<Comm *>(comm); }

struct Backend {};  // nothing is shared between this backend's communicators

plx_status init(const plx_host_info *host, void **backend) {
  set_services(host->services);
  return guarded([&] { return *backend = new Backend, PLX_OK; });
}

plx_status finalize(void *backend) {
  delete static_cast<Backend *>(backend);
  return PLX_OK;
}

plx_status get_unique_id(void *, uint8_t *payload) {
  UniqueId id;
  if (plx_status s = make_unique_id(&id)) return s;
  std::memcpy(payload, &id, sizeof(id));
  return PLX_OK;
}

// config is complete: the loader has resolved PLEXUS_TIMEOUT_MS and
// PLEXUS_INIT_TIMEOUT_MS into it.
plx_status comm_init(void *, const uint8_t *payload, int32_t nranks, int32_t rank, const plx_comm_config *config,
                     void **out) {
  UniqueId id;
  std::memcpy(&id, payload, sizeof(id));
  return guarded([&] {
    return Comm::join(id, nranks, rank, config->init_timeout_ms, config->timeout_ms, reinterpret_cast<Comm **>(out));
  });
}

plx_status comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out) {
  return guarded([&] { return split(as_comm(comm), color, key, *config, reinterpret_cast<Comm **>(out)); });
}

// Never waits for peers: the segment's name is gone since the join, and
// unmapping is all that is left, also after a failure or a dead peer.
plx_status comm_destroy(void *comm) {
  delete static_cast<Comm *>(comm);
  return PLX_OK;
}

// Any thread, even while another waits in a collective of this communicator.
plx_status comm_abort(void *comm) {
  as_comm(comm).post_failure(PLX_ERR_ABORTED, "the communicator was aborted");
  return PLX_OK;
}

plx_status comm_async_status(void *comm, plx_status *status) {
  *status = as_comm(comm).failure_status();
  return PLX_OK;
}

plx_status comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device) {
  *rank = as_comm(comm).rank(), *size = as_comm(comm).nranks(), *cuda_device = -1;
  return PLX_OK;
}

// The loader counts calls, bytes and time; a plugin adds its algorithms.
plx_status comm_stats(void *comm, int32_t coll, plx_op_stats *stats) {
  stats->last_algorithm = PLX_ALGO_ONE_SHOT;
  stats->algorithm_calls[PLX_ALGO_ONE_SHOT] = as_comm(comm).calls(coll);
  return PLX_OK;
}

plx_status collective(void *comm, const plx_coll_desc *desc) {
  return guarded([&] { return run_collective(as_comm(comm), *desc); });
}

const plx_plugin_vtable vtable = [] {
  plx_plugin_vtable v{};
  v.struct_size = sizeof(v);  // the size this plugin was built with (PLX-P-4)
  v.abi_major = PLX_PLUGIN_ABI_MAJOR, v.abi_minor = PLX_PLUGIN_ABI_MINOR;
  v.init = init, v.finalize = finalize, v.get_unique_id = get_unique_id;
  v.comm_init = comm_init, v.comm_split = comm_split, v.comm_destroy = comm_destroy;
  v.comm_abort = comm_abort, v.comm_async_status = comm_async_status, v.comm_query = comm_query;
  v.comm_stats = comm_stats, v.collective = collective;
  return v;
}();

// PLEXUS_EXAMPLE_SHM_SLOT_BYTES; plexus-info --params lists it (PLX-P-16).
const plx_param_decl params[] = {
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "SLOT_BYTES", "1M",
     "Bytes each rank moves per step of a collective (one slot per rank in shared memory); rank 0's "
     "value holds for the whole communicator."},
};

constexpr uint64_t kCollectives =
    PLX_CAP_COLL(PLX_COLL_ALL_REDUCE) | PLX_CAP_COLL(PLX_COLL_REDUCE) | PLX_CAP_COLL(PLX_COLL_BROADCAST) |
    PLX_CAP_COLL(PLX_COLL_ALL_GATHER) | PLX_CAP_COLL(PLX_COLL_GATHER) | PLX_CAP_COLL(PLX_COLL_REDUCE_SCATTER) |
    PLX_CAP_COLL(PLX_COLL_BARRIER);
constexpr uint64_t kCapabilities =
    kCollectives | PLX_CAP_SPLIT | PLX_CAP_ABORT | PLX_CAP_ASYNC_STATUS | PLX_CAP_THREAD_RANKS;

const plx_plugin_info info = {
    sizeof(plx_plugin_info),
    PLX_PLUGIN_ABI_MAJOR,
    PLX_PLUGIN_ABI_MINOR,
    kName,
    // Shown in the load report, so a version skew is visible.
    "C++20, plexus headers " EXAMPLE_SHM_STR(PLX_VERSION_MAJOR) "." EXAMPLE_SHM_STR(PLX_VERSION_MINOR) "." EXAMPLE_SHM_STR(
        PLX_VERSION_PATCH),
    0, 1, 0,  // the plugin's own version
    PLX_THREAD_PER_COMM,
    kCapabilities,
    PLX_BIT(PLX_MEM_HOST),  // collectives take host memory
    0,                      // mem_alloc offers nothing (no pools)
    PLX_BIT(PLX_DTYPE_COUNT) - 1u,
    PLX_BIT(PLX_REDUCE_OP_COUNT) - 1u,
    params,
    sizeof(params) / sizeof(params[0]),
    0,
    &vtable,
};

}  // namespace
}  // namespace example_shm

// The one exported symbol (PLX-P-1). It only answers (PLX-P-2): no
// allocation, no threads.
extern "C" PLX_PLUGIN_EXPORT plx_status plx_plugin_query(const plx_host_info *host, const plx_plugin_info **out) {
  if (host == nullptr || out == nullptr || host->struct_size < sizeof(plx_host_info)) return PLX_ERR_INVALID_ARGUMENT;
  example_shm::set_services(host->services);
  // This plugin speaks ABI 1; a host whose range leaves 1 out gets a reason.
  if (host->abi_major < PLX_PLUGIN_ABI_MAJOR || host->min_abi_major > PLX_PLUGIN_ABI_MAJOR)
    return host->services->set_error(PLX_ERR_INCOMPATIBLE_ABI, "example-shm speaks plugin ABI 1 only");
  *out = &example_shm::info;
  return PLX_OK;
}

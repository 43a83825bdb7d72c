// nccl: the entry point (plx_plugin_query), its parameters and the vtable.
// A thin layer over NCCL for device memory: the multi-node path of plexus;
// see nccl_comm.hpp (communicators, failure, watchdog) and nccl_coll.cpp.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdio>

#include "plugins/nccl/nccl_backend.hpp"

namespace plexus::nccl {
namespace {

const plx_param_decl params[] = {
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "WARMUP", "1",
     "1: plx_comm_init runs one small all-reduce so NCCL connects the ranks there, not inside "
     "the first real collective; 0: connect lazily."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "BLOCKING_TWIN", "1",
     "1: collectives run on a blocking communicator split off the nonblocking one made at init "
     "(NCCL starts a thread for every call on a nonblocking one: ~150 us each); 0: on the "
     "nonblocking one."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "WATCHDOG_POLL_MS", "5",
     "How often (ms) each communicator's watchdog checks NCCL's async error and the progress of "
     "its collectives against the timeout."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "EVENT_EVERY", "1",
     "Record a progress event after every Nth collective (and whenever none is pending); 1 "
     "watches every call, larger values save the event record but may miss a hang in an "
     "unrecorded call the host then waits on."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "WIDEN_HALF", "1",
     "1: float16/bfloat16 sum, prod and avg over more than 2 ranks accumulate in float32 "
     "(PLX-P-8): small ones all-gather the inputs and reduce them in rank order, larger ones are "
     "widened to float32, reduced by NCCL and rounded once (twice the bytes); 0: NCCL's own, "
     "which rounds partial sums to the half type at every hop (faster, not conformant beyond 2 "
     "ranks); 2: as 1 at any rank count (2 ranks included: for tests)."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "WIDEN_GATHER_MAX_BYTES", "64K",
     "Half-type reductions (WIDEN_HALF) whose input is at most this many bytes all-gather the "
     "inputs (nranks x the bytes) and reduce them locally: one kernel after NCCL instead of two "
     "around it."},
};

constexpr uint32_t all_dtypes = (1u << PLX_DTYPE_COUNT) - 1;  // every plx dtype; NCCL has them all
constexpr uint32_t all_ops = (1u << PLX_REDUCE_OP_COUNT) - 1;  // sum prod min max avg (ncclAvg)
constexpr uint64_t capabilities =
    PLX_CAP_COLL(PLX_COLL_ALL_REDUCE) | PLX_CAP_COLL(PLX_COLL_REDUCE) |
    PLX_CAP_COLL(PLX_COLL_BROADCAST) | PLX_CAP_COLL(PLX_COLL_ALL_GATHER) |
    PLX_CAP_COLL(PLX_COLL_GATHER) | PLX_CAP_COLL(PLX_COLL_REDUCE_SCATTER) |
    PLX_CAP_COLL(PLX_COLL_BARRIER) | PLX_CAP_COLL(PLX_COLL_SEND) | PLX_CAP_COLL(PLX_COLL_RECV) |
    PLX_CAP_SPLIT | PLX_CAP_ABORT | PLX_CAP_ASYNC_STATUS | PLX_CAP_STREAM_ORDERED |
    PLX_CAP_GRAPH_CAPTURE | PLX_CAP_MEM_ALLOC | PLX_CAP_DEFRAGMENT | PLX_CAP_TOPOLOGY |
    PLX_CAP_THREAD_RANKS | PLX_CAP_GROUP | PLX_CAP_MULTI_NODE | PLX_CAP_NO_CONTRIBUTION |
    (PLEXUS_NCCL_WIDEN ? PLX_CAP_WIRE_PRECISION : 0);

const plx_plugin_vtable vtable = [] {
  plx_plugin_vtable v{};
  v.struct_size = sizeof(v);
  v.abi_major = PLX_PLUGIN_ABI_MAJOR;
  v.abi_minor = PLX_PLUGIN_ABI_MINOR;
  v.init = backend_init;
  v.finalize = backend_finalize;
  v.topology = backend_topology;
  v.get_unique_id = backend_unique_id;
  v.comm_init = comm_init;
  v.comm_split = comm_split;
  v.comm_destroy = comm_destroy;
  v.comm_abort = comm_abort;
  v.comm_async_status = comm_async_status;
  v.comm_query = comm_query;
  v.comm_stats = comm_stats;
  v.collective = collective;
  v.group_start = group_start;
  v.group_end = group_end;
  v.mem_alloc = mem_alloc;
  v.mem_free = mem_free;
  v.mem_stats = mem_stats;
  v.mem_defragment = mem_defragment;
  v.mem_trim = mem_trim;
  v.mem_pressure = mem_pressure;
  return v;
}();

// "CUDA 13.0, NCCL 2.28.9", plus the NCCL found at run time when it
// differs from the headers. Static storage: the query may not allocate.
const char *build_info() {
  static char text[96];
  static const bool filled = [] {
    char built[16], running[16];
    format_nccl_version(NCCL_VERSION_CODE, built, sizeof(built));
    int code = 0;
    const bool known = ncclGetVersion(&code) == ncclSuccess;
    format_nccl_version(code, running, sizeof(running));
    const int n = std::snprintf(text, sizeof(text), "CUDA %d.%d, NCCL %s", CUDART_VERSION / 1000,
                                CUDART_VERSION % 1000 / 10, built);
    if (known && code != NCCL_VERSION_CODE && n > 0)
      std::snprintf(text + n, sizeof(text) - n, " (running NCCL %s)", running);
    return true;
  }();
  (void)filled;
  return text;
}

const plx_plugin_info &plugin_info() {
  static const plx_plugin_info info = {
      sizeof(plx_plugin_info), PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR, "nccl", build_info(),
      0, 1, 0, PLX_THREAD_PER_COMM, capabilities, PLX_BIT(PLX_MEM_DEVICE), PLX_BIT(PLX_MEM_DEVICE),
      all_dtypes, all_ops, params, sizeof(params) / sizeof(*params), 0, &vtable};
  return info;
}

}  // namespace
}  // namespace plexus::nccl

extern "C" PLX_PLUGIN_EXPORT plx_status plx_plugin_query(const plx_host_info *host,
                                                         const plx_plugin_info **out) {
  if (host == nullptr || out == nullptr || host->struct_size < sizeof(plx_host_info))
    return PLX_ERR_INVALID_ARGUMENT;
  if (host->abi_major < PLX_PLUGIN_ABI_MAJOR || host->min_abi_major > PLX_PLUGIN_ABI_MAJOR)
    return host->services->set_error(PLX_ERR_INCOMPATIBLE_ABI, "nccl speaks plugin ABI 1");
  *out = &plexus::nccl::plugin_info();
  return PLX_OK;
}

// pinned-host: the entry point (plx_plugin_query), its parameters and the
// vtable. GPU collectives through shared host memory registered with CUDA,
// for GPUs without peer access; see pinned_comm.hpp, kernels/pinned.hpp and
// docs/plugins/pinned-host.md.
#include <cuda_runtime_api.h>

#include <cstdio>

#include "plugins/pinned-host/pinned_backend.hpp"

namespace plexus::pinned_host {
namespace {

const plx_param_decl params[] = {
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "LL_MAX_BYTES", "128K",
     "Collectives whose payload per rank is at most this take the low-latency path (data and tag in one "
     "store, no flags); it also sizes the LL area (twice, 16 bytes per 8). 0 keeps data off it. Every "
     "rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "ONESHOT_MAX_BYTES", "512K",
     "Larger all-reduces and reduces run two-shot (each rank reduces one part, then all copy the parts) "
     "instead of one-shot (every rank reduces everything). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "CPU_MIN_BYTES", "0",
     "All-reduces and reduces from this size up are reduced by a CPU helper thread per rank (SIMD) between "
     "the GPUs' upload and download; 0: never (unless ALGO=cpu). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "COPY_MIN_BYTES", "0",
     "All-reduces and reduces from this size up move their data with the copy engines (cudaMemcpyAsync in "
     "COPY_CHUNK_BYTES chunks on a second stream) instead of SM loads and stores; never inside a graph "
     "capture. 0: never (unless ALGO=copy). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "COPY_CHUNK_BYTES", "4M",
     "Bytes of one copy-engine chunk (64K .. 256M, a multiple of 4096). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "COPY_STAGES", "4",
     "Chunks of each rank's copy area (2 .. 16), allocated only when the copy-engine path is on. Every rank "
     "must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "ALGO", "auto",
     "auto, ll, one_shot, two_shot, cpu or copy: force the algorithm wherever it applies (every rank must set "
     "the same)."},
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "WIRE", "native",
     "native, bf16 or fp16: the dtype float32 reductions travel as when opts->wire_dtype is -1 (bf16 halves "
     "the bytes; every contribution and the result are rounded to it). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "STAGE_BYTES", "256K",
     "Bytes of one stage of each rank's ring in shared host memory (64K .. 64M, a multiple of 4096). "
     "Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "STAGES", "16",
     "Stages in each rank's ring (2 .. 64): steps in flight. The segment holds nranks x STAGES x STAGE_BYTES "
     "plus the LL areas. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "MAX_BLOCKS", "16",
     "Most thread blocks (SMs) one collective kernel uses, 1 to 64 (bulk kernels also at most STAGES). "
     "Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "LL_BLOCKS", "16",
     "Most thread blocks of a low-latency launch, 1 to 64: one 8-byte line per thread up to LL_BLOCKS x 512 "
     "lines, batches of 4 lines per thread beyond; also at most MAX_BLOCKS. Ranks may differ."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "WATCHDOG_POLL_MS", "5",
     "How often (ms) each communicator's watchdog reads its kernels' timeout record, the peers' posted "
     "failures and (every 50 ms) whether the peers' processes live."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "ENABLE", "1",
     "1: accept machines with a CUDA device; 0: the plugin declines every machine (UNSUPPORTED), so auto "
     "never picks it."},
};

constexpr uint32_t all_dtypes = (1u << PLX_DTYPE_COUNT) - 1;
constexpr uint32_t all_ops = (1u << PLX_REDUCE_OP_COUNT) - 1;
constexpr uint64_t capabilities =
    PLX_CAP_COLL(PLX_COLL_ALL_REDUCE) | PLX_CAP_COLL(PLX_COLL_REDUCE) | PLX_CAP_COLL(PLX_COLL_BROADCAST) |
    PLX_CAP_COLL(PLX_COLL_ALL_GATHER) | PLX_CAP_COLL(PLX_COLL_GATHER) | PLX_CAP_COLL(PLX_COLL_REDUCE_SCATTER) |
    PLX_CAP_COLL(PLX_COLL_BARRIER) | PLX_CAP_ABORT | PLX_CAP_ASYNC_STATUS | PLX_CAP_STREAM_ORDERED |
    PLX_CAP_GRAPH_CAPTURE | PLX_CAP_MEM_ALLOC | PLX_CAP_DEFRAGMENT | PLX_CAP_TOPOLOGY | PLX_CAP_THREAD_RANKS |
    PLX_CAP_WIRE_PRECISION | PLX_CAP_NO_CONTRIBUTION;

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
  v.comm_destroy = comm_destroy;
  v.comm_abort = comm_abort;
  v.comm_async_status = comm_async_status;
  v.comm_query = comm_query;
  v.comm_stats = comm_stats;
  v.collective = collective;
  v.mem_alloc = mem_alloc;
  v.mem_free = mem_free;
  v.mem_stats = mem_stats;
  v.mem_defragment = mem_defragment;
  v.mem_trim = mem_trim;
  v.mem_pressure = mem_pressure;
  return v;
}();

const char *build_info() {
  static char text[48];
  static const bool filled = [] {
    std::snprintf(text, sizeof(text), "CUDA %d.%d", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    return true;
  }();
  (void)filled;
  return text;
}

const plx_plugin_info &plugin_info() {
  static const plx_plugin_info info = {
      sizeof(plx_plugin_info), PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR, "pinned-host", build_info(),
      0, 1, 0, PLX_THREAD_PER_COMM, capabilities, PLX_BIT(PLX_MEM_DEVICE), PLX_BIT(PLX_MEM_DEVICE),
      all_dtypes, all_ops, params, sizeof(params) / sizeof(*params), 0, &vtable};
  return info;
}

}  // namespace
}  // namespace plexus::pinned_host

extern "C" PLX_PLUGIN_EXPORT plx_status plx_plugin_query(const plx_host_info *host,
                                                         const plx_plugin_info **out) {
  if (host == nullptr || out == nullptr || host->struct_size < sizeof(plx_host_info))
    return PLX_ERR_INVALID_ARGUMENT;
  if (host->abi_major < PLX_PLUGIN_ABI_MAJOR || host->min_abi_major > PLX_PLUGIN_ABI_MAJOR)
    return host->services->set_error(PLX_ERR_INCOMPATIBLE_ABI, "pinned-host speaks plugin ABI 1");
  *out = &plexus::pinned_host::plugin_info();
  return PLX_OK;
}

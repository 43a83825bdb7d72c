// shm-native: the entry point (plx_plugin_query), its parameters and the
// vtable. Collectives over POSIX shared memory between the processes (or
// threads) of one host; see shm_comm.hpp and shm_coll.hpp.
#include "plugins/shm-native/shm_backend.hpp"

namespace plexus::shm_native {
namespace {

const plx_param_decl params[] = {
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "SLOT_BYTES", "1M",
     "Largest size of a data slot; every rank maps two per rank of the communicator. Slots grow "
     "to it by 1.5x from SLOT_MIN_BYTES when a collective moves more bytes a step. Every rank must "
     "set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "SLOT_MIN_BYTES", "64K",
     "First size of a data slot (at most SLOT_BYTES); slots stay this small until a collective "
     "needs more (a reduction of ROTATE_MIN_BYTES or more: SLOT_BYTES, to rotate through them). "
     "Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "ONESHOT_MAX_BYTES", "64K",
     "Reductions up to this x 2/n for n ranks (2 ranks: x 2; beyond 4 ranks: x 4/n^2) run one-shot "
     "(every rank reduces all inputs); larger ones reduce-scatter then all-gather. Every rank must "
     "set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "SPIN", "2000",
     "Most polls of a peer's counter before yielding the core (the budget adapts below it); 0 when "
     "the ranks outnumber the CPUs they may run on."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "YIELD", "200",
     "sched_yield calls after spinning, before sleeping on a futex."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "SLEEP_AFTER_US", "1000",
     "Microseconds a wait stays awake (polling, then yielding) before it sleeps on a futex, when "
     "every rank has a CPU of its own (when they outnumber their CPUs: 0, after YIELD yields). "
     "0: sleep after YIELD yields."},
    // A size or "auto", a string as ROTATE_MIN_BYTES below.
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "STREAM_MIN_BYTES", "auto",
     "A size (bytes, K, M or G) or auto: two-shot reductions whose messages, summed over the ranks, "
     "reach this size write the result with streaming (non-temporal) stores; auto: 12M on Intel "
     "CPUs, 1G on others."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "THREADS", "0",
     "Threads per rank (the caller and helpers) that split the copies and reductions of large "
     "reduction steps; 0: the CPUs of the ranks' affinity masks shared out evenly, at most 8, 1 "
     "when the ranks outnumber them."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "THREADS_MIN_BYTES", "64K",
     "The smallest two-shot step (bytes of the message per step) that the helper threads split."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "THREADS_POLL_US", "200",
     "Microseconds an idle helper thread polls for the next step before it sleeps: back-to-back "
     "large steps find it awake; an idle rank stops taking CPU time that much later."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "LL_MAX_BYTES", "0",
     "All-reduces from 57 bytes up to this (at most 33600) run the low-latency two-shot, whose "
     "cache lines carry their own signal (no arrive/done waits), as PLX_ALGO_LOW_LATENCY asks; 0: "
     "none, and the ranks map no LL lines. Every rank must set the same."},
    // A size or "auto", so a string: PLX_PARAM_SIZE promises a size.
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "ROTATE_MIN_BYTES", "auto",
     "A size (bytes, K, M or G) or auto: reduction steps that write at least this into the slots "
     "take the region after the previous step's, so that peers' caches no longer hold the lines "
     "they overwrite; auto: 8K up to 4 ranks, 16K beyond. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "READ_IN_PLACE", "1",
     "1: peers read a PLX_MEM_SHARED_HOST send buffer in place (one-shot all-reduce, broadcast); "
     "0: it is copied through the slots like any host buffer. Every rank must set the same."},
};

constexpr uint32_t all_dtypes = (1u << PLX_DTYPE_COUNT) - 1;
constexpr uint32_t all_ops = (1u << PLX_REDUCE_OP_COUNT) - 1;
constexpr uint64_t capabilities =
    PLX_CAP_COLL(PLX_COLL_ALL_REDUCE) | PLX_CAP_COLL(PLX_COLL_REDUCE) |
    PLX_CAP_COLL(PLX_COLL_BROADCAST) | PLX_CAP_COLL(PLX_COLL_ALL_GATHER) |
    PLX_CAP_COLL(PLX_COLL_GATHER) | PLX_CAP_COLL(PLX_COLL_REDUCE_SCATTER) |
    PLX_CAP_COLL(PLX_COLL_BARRIER) | PLX_CAP_SPLIT | PLX_CAP_ABORT | PLX_CAP_ASYNC_STATUS |
    PLX_CAP_TOPOLOGY | PLX_CAP_THREAD_RANKS | PLX_CAP_QUEUE | PLX_CAP_NO_CONTRIBUTION | PLX_CAP_WIRE_PRECISION |
    PLX_CAP_MEM_ALLOC | PLX_CAP_DEFRAGMENT;
// Pool blocks are host memory too: collectives take both kinds.
constexpr uint32_t mem_kinds = PLX_BIT(PLX_MEM_HOST) | PLX_BIT(PLX_MEM_SHARED_HOST);

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
  v.mem_alloc = mem_alloc;
  v.mem_free = mem_free;
  v.mem_stats = mem_stats;
  v.mem_defragment = mem_defragment;
  v.mem_trim = mem_trim;
  v.mem_pressure = mem_pressure;
  v.queue_create = queue_create;
  v.queue_enqueue = queue_enqueue;
  v.queue_dequeue = queue_dequeue;
  v.queue_destroy = queue_destroy;
  return v;
}();

const plx_plugin_info info = {
    sizeof(plx_plugin_info), PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR, "shm-native",
    "host memory, C++20", 0, 1, 0, PLX_THREAD_PER_COMM, capabilities, mem_kinds,
    PLX_BIT(PLX_MEM_SHARED_HOST), all_dtypes, all_ops, params, sizeof(params) / sizeof(*params), 0, &vtable};

}  // namespace
}  // namespace plexus::shm_native

extern "C" PLX_PLUGIN_EXPORT plx_status plx_plugin_query(const plx_host_info *host,
                                                         const plx_plugin_info **out) {
  if (host == nullptr || out == nullptr || host->struct_size < sizeof(plx_host_info))
    return PLX_ERR_INVALID_ARGUMENT;
  if (host->abi_major < PLX_PLUGIN_ABI_MAJOR || host->min_abi_major > PLX_PLUGIN_ABI_MAJOR)
    return host->services->set_error(PLX_ERR_INCOMPATIBLE_ABI, "shm-native speaks plugin ABI 1");
  *out = &plexus::shm_native::info;
  return PLX_OK;
}

// p2p-tree: the entry point (plx_plugin_query), its parameters and the
// vtable. Direct GPU-to-GPU collectives between the processes of one host,
// with plexus's own kernels (kernels/); see p2p_comm.hpp and
// docs/plugins/p2p-tree.md.
#include <cuda_runtime_api.h>

#include <cstdio>

#include "plugins/p2p-tree/p2p_backend.hpp"

namespace plexus::p2p_tree {
namespace {

const plx_param_decl params[] = {
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "ONESHOT_MAX_BYTES", "512K",
     "All-reduces up to this many bytes times 2 / nranks run one-shot (every rank writes its whole "
     "input into every peer as LL or LL128 lines); larger ones two-shot (reduce-scatter, then all-gather). "
     "Also sizes the LL slots (2 x this per rank and half). Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "BULK_MAX_BYTES", "4M",
     "All-reduces above the LL one-shot and up to this many bytes times 2 / (nranks (nranks - 1)) run the bulk "
     "one-shot (every rank pushes its whole input into every peer's input area, one exchange); "
     "larger ones two-shot. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "ALGO", "auto",
     "auto, one_shot (LL lines where they fit, else bulk), one_shot_bulk, two_shot, ll128_two_shot (two-shot "
     "otherwise where LL128 is off), copy (the copy-engine two-shot; all-reduce only), ring, tree (binary) or kary_tree: force the all-reduce algorithm whatever the size; ring and the trees also serve "
     "reduce, the trees broadcast (every rank must set the same)."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "TREE_ARITY", "4",
     "Children per rank of the k-ary tree (kary_tree, and the tree small messages take on a partly "
     "connected machine), 2 to 7. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_STRING, "UNLINK", "",
     "Pairs of ranks treated as not linked, as a-b,c-d (e.g. 0-1,2-3): emulates a partly connected "
     "machine on a fully connected one, for tests. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "SLOT_BYTES", "64M",
     "Bytes of one exchange area; each rank's exchange block holds four (two epochs of input and "
     "result). Larger messages go as several launches. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "MAX_BLOCKS", "0",
     "Most thread blocks one collective kernel uses, 1 to 128; 0: one per SM of the device (at most "
     "128). The communicator uses the smallest value of its ranks. The kernels wait on the GPU, so the "
     "blocks of every communicator running at once on a GPU must fit it together (2 per SM)."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "PDL", "1",
     "1: launch the kernels with programmatic dependent launch on GPUs of compute capability 9.0 "
     "and up, so that a kernel's launch overlaps the end of the previous kernel on the stream "
     "(each kernel still waits for it before touching memory; 1.1-1.2 us less per call on 2 H200); "
     "0: ordinary launches."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "LL_THREADS", "128",
     "Fewest threads per block of the LL one-shot, 32 to 512 (a multiple of 32): one 16-byte vector "
     "per thread, so small blocks spread a message over more SMs; blocks grow to 512 threads when "
     "MAX_BLOCKS blocks of this size are too few."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "COPY_BLOCKS", "128",
     "Thread blocks, 0 to 128 (at most one per worker), that copy a two-shot's gathered chunks from "
     "the exchange area into the output beside its workers, round by round as the peers deliver them, "
     "while the workers still push and reduce; only two-shots of two rounds or more have them. 0: "
     "each worker copies its share after its last round. Copy blocks wait for the peers' workers, "
     "never the other way round, so they are not counted in MAX_BLOCKS."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "ROUNDS", "4",
     "Most rounds, 1 to 8, of the two-shot's reduction where a block copies 256 KiB or more out (its "
     "share of a chunk times the peers: 64 MiB and up on 2 and 4 ranks with 128 blocks): each block "
     "signals its share in rounds of at least 32 KiB, so that copy blocks copy one round while the "
     "next is reduced. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "LL128", "1",
     "1: one-shots of LL128_MIN_BYTES and more send LL128 lines (128-byte lines with 120 data bytes "
     "and the flag, half the bytes of LL lines) where NVML reports NVLink between every pair of ranks; "
     "0: LL lines always. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "LL128_MIN_BYTES", "0",
     "The smallest one-shot all-reduce (bytes) that LL128 lines carry; smaller ones take LL lines. "
     "Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "LL128_TWO_SHOT_MAX_BYTES", "4M",
     "On 3 ranks and more, all-reduces above the one-shot's limit and up to this many bytes run the "
     "LL128 two-shot (reduce-scatter and all-gather as LL128 lines) where LL128 is on; 0: never. Also "
     "sizes the LL slots. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_SIZE, "COPY_MIN_BYTES", "128M",
     "On 2 ranks, all-reduces of at least this many bytes go by the copy engines (PLX_ALGO_COPY: "
     "cudaMemcpyAsync pushes each chunk to its reducer and each reduced chunk back, kernels reduce and "
     "copy out); off: never by size. ALGO=copy or the call's hint PLX_ALGO_COPY asks for them at any "
     "size and rank count. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "COPY_PIECES", "2",
     "Pieces, 1 to 7, each launch of the copy-engine all-reduce is cut into, so that one piece's "
     "reduction overlaps the next one's copies. Every rank must set the same."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "COPY_STREAMS", "1",
     "Scatter streams, and as many gather streams, that the copy-engine all-reduce's copies to "
     "the peers share (peer j on stream j mod this), 0 to 7; 0: one of each per peer."},
    {sizeof(plx_param_decl), PLX_PARAM_INT, "WATCHDOG_POLL_MS", "5",
     "How often (ms) each communicator's watchdog reads its kernels' timeout record, the peers' "
     "posted failures and (every 50 ms) whether the peers' processes live."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "ENABLE", "1",
     "0: the plugin declines every machine (UNSUPPORTED), so auto never picks it; 1: use it "
     "where peer access links every GPU to the others, directly or through other GPUs."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "PROBE_PEER_COPIES", "1",
     "1: plx_backend_open proves peer access per GPU pair with a real copy (and declines when one "
     "fails); 0: trusts cudaDeviceCanAccessPeer."},
    {sizeof(plx_param_decl), PLX_PARAM_BOOL, "SHARED_GPU", "0",
     "For tests on one GPU: 1 lets ranks that are threads of one process share a GPU (their kernels "
     "run side by side only while every rank's grid fits on it at once: keep (MAX_BLOCKS + COPY_BLOCKS) "
     "x ranks well under the SMs, or the waits end in PLX_ERR_TIMEOUT). Ranks of different processes never "
     "share one."},
};

constexpr uint32_t all_dtypes = (1u << PLX_DTYPE_COUNT) - 1;
constexpr uint32_t all_ops = (1u << PLX_REDUCE_OP_COUNT) - 1;
constexpr uint64_t capabilities =
    PLX_CAP_COLL(PLX_COLL_ALL_REDUCE) | PLX_CAP_COLL(PLX_COLL_REDUCE) |
    PLX_CAP_COLL(PLX_COLL_BROADCAST) | PLX_CAP_COLL(PLX_COLL_ALL_GATHER) |
    PLX_CAP_COLL(PLX_COLL_REDUCE_SCATTER) | PLX_CAP_COLL(PLX_COLL_GATHER) | PLX_CAP_COLL(PLX_COLL_BARRIER) | PLX_CAP_ABORT |
    PLX_CAP_ASYNC_STATUS | PLX_CAP_STREAM_ORDERED | PLX_CAP_GRAPH_CAPTURE | PLX_CAP_MEM_ALLOC |
    PLX_CAP_MEM_REGISTER | PLX_CAP_DEFRAGMENT | PLX_CAP_TOPOLOGY | PLX_CAP_THREAD_RANKS | PLX_CAP_NO_CONTRIBUTION |
    PLX_CAP_WIRE_PRECISION;

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
  v.mem_register = mem_register;
  v.mem_deregister = mem_deregister;
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
      sizeof(plx_plugin_info), PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR, "p2p-tree", build_info(),
      0, 1, 0, PLX_THREAD_PER_COMM, capabilities, PLX_BIT(PLX_MEM_DEVICE), PLX_BIT(PLX_MEM_DEVICE),
      all_dtypes, all_ops, params, sizeof(params) / sizeof(*params), 0, &vtable};
  return info;
}

}  // namespace
}  // namespace plexus::p2p_tree

extern "C" PLX_PLUGIN_EXPORT plx_status plx_plugin_query(const plx_host_info *host,
                                                         const plx_plugin_info **out) {
  if (host == nullptr || out == nullptr || host->struct_size < sizeof(plx_host_info))
    return PLX_ERR_INVALID_ARGUMENT;
  if (host->abi_major < PLX_PLUGIN_ABI_MAJOR || host->min_abi_major > PLX_PLUGIN_ABI_MAJOR)
    return host->services->set_error(PLX_ERR_INCOMPATIBLE_ABI, "p2p-tree speaks plugin ABI 1");
  *out = &plexus::p2p_tree::plugin_info();
  return PLX_OK;
}

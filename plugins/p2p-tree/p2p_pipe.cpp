// The ring and tree routes (p2p_pipe.hpp): which calls take them, and their
// launches. A pipelined kernel streams the whole message through the FIFOs
// of the epoch's input area, so a launch is limited only by the slices its
// message counters hold (pipe_piece_elems: gigabytes), not by SLOT_BYTES.
#include "plugins/p2p-tree/p2p_pipe.hpp"

#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/status.hpp"
#include "kernels/pipe.hpp"

namespace plexus::p2p_tree {
namespace {

// Bytes of an element in the kernels' accumulator (float for float16 and
// bfloat16): partials travel in it, and a FIFO slot holds a slice of them.
uint64_t wide_bytes(int32_t dtype) {
  return dtype == PLX_FLOAT16 || dtype == PLX_BFLOAT16 ? 4 : core::kDtypeBytes[dtype];
}

const char *algo_name(int32_t algo) {
  switch (algo) {
    case PLX_ALGO_RING: return "ring";
    case PLX_ALGO_TREE: return "tree";
    case PLX_ALGO_KARY_TREE: return "kary_tree";
    case PLX_ALGO_TWO_SHOT: return "two_shot";
    case kAlgoOneShotBulk: return "one_shot_bulk";
    case kAlgoCopy: return "copy";
    default: return "one_shot";
  }
}

[[gnu::cold]] plx_status pipe_launch_failed(Comm &c, cudaError_t err, const char *kernel) {
  core::fail_cuda(err, fmt::format("p2p-tree: rank {} (device {}): launching the {} kernel", c.rank(),
                                   c.device(), kernel));
  return c.set_failure(PLX_ERR_DEVICE, core::last_message());
}

int32_t wanted(const Comm &c, const plx_coll_desc &d) {
  if (c.params().forced_algo != PLX_ALGO_AUTO) return c.params().forced_algo;
  const int32_t hint = d.options->algorithm;
  return hint == PLX_ALGO_ONE_SHOT || hint == PLX_ALGO_TWO_SHOT || is_pipe_algo(hint) ? hint : PLX_ALGO_AUTO;
}

const Tree &tree_of(const Comm &c, int32_t algo, int32_t root) {
  return algo == PLX_ALGO_TREE ? c.routes().binary[root] : c.routes().kary[root];
}

kernels::PipeArgs pipe_args(const Comm &c, const plx_coll_desc &d) {
  const kernels::FifoGeometry g = kernels::fifo_geometry(c.params().slot_bytes, c.nranks(), c.peers().max_blocks);
  kernels::PipeArgs a;
  a.dtype = d.dtype, a.op = d.op, a.coll = d.coll;
  a.fifo_slot_bytes = g.slot_bytes;
  return a;
}

// Launches of at most pipe_piece_elems elements, each grid sized by its
// bytes over `per_block_divisor` (a ring block's share is one chunk per rank).
template <class Launch>
cudaError_t launch_pieces(const Comm &c, uint64_t count, uint64_t es, uint64_t wide, kernels::PipeArgs a,
                          const void *in, void *out, uint64_t per_block_divisor, Launch &&launch) {
  const kernels::FifoGeometry g = kernels::fifo_geometry(c.params().slot_bytes, c.nranks(), c.peers().max_blocks);
  const uint64_t piece = kernels::pipe_piece_elems(kernels::slice_elems(g.slot_bytes, wide));
  cudaError_t err = cudaSuccess;
  for (uint64_t o = 0, m = 0; err == cudaSuccess && o < count; o += m) {
    m = count - o < piece ? count - o : piece;
    a.in = in == nullptr ? nullptr : static_cast<const char *>(in) + o * es;
    a.out = out == nullptr ? nullptr : static_cast<char *>(out) + o * es;
    a.total = m;
    a.blocks = kernels::pipe_blocks(m * es / per_block_divisor, g);
    err = launch(a);
  }
  return err;
}

}  // namespace

plx_status require_full_graph(const Comm &c, int32_t coll, const char *algo) {
  if (c.routes().full) return PLX_OK;
  const Pair gap = first_unlinked(c.routes().links);
  return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: {} {}needs peer access between every pair of ranks, and "
                    "ranks {} and {} are not linked (a partly connected machine, or PLEXUS_P2P_TREE_UNLINK); "
                    "all-reduce, reduce, broadcast and barrier run over trees or the ring here",
                    coll_name(coll), algo, gap.a, gap.b);
}

plx_status pipe_reduce_algo(const Comm &c, const plx_coll_desc &d, uint64_t bytes, int32_t *algo) {
  *algo = PLX_ALGO_AUTO;
  if (c.nranks() == 1) return PLX_OK;
  const int32_t want = wanted(c, d);
  if (want == PLX_ALGO_RING && !c.routes().ring.ok) {
    const Pair gap = first_unlinked(c.routes().links);
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: {} with the ring: no ring passes every rank over "
                      "linked pairs (ranks {} and {} are not linked); use tree or kary_tree",
                      coll_name(d.coll), gap.a, gap.b);
  }
  if (is_pipe_algo(want)) *algo = want;
  if (is_pipe_algo(want) || c.routes().full) return PLX_OK;
  if (want != PLX_ALGO_AUTO)
    return require_full_graph(c, d.coll, fmt::format("with {} ", algo_name(want)).c_str());
  const bool small = bytes <= c.params().oneshot_max_bytes * 2 / static_cast<uint64_t>(c.nranks());
  *algo = small || !c.routes().ring.ok ? PLX_ALGO_KARY_TREE : PLX_ALGO_RING;
  return PLX_OK;
}

int32_t pipe_broadcast_algo(const Comm &c, const plx_coll_desc &d) {
  if (c.nranks() == 1) return PLX_ALGO_AUTO;
  const int32_t want = wanted(c, d);
  if (want == PLX_ALGO_TREE || want == PLX_ALGO_KARY_TREE) return want;
  return c.routes().full ? PLX_ALGO_AUTO : PLX_ALGO_KARY_TREE;
}

plx_status pipe_reduce(Comm &c, const plx_coll_desc &d, void *out, int32_t algo, cudaStream_t stream) {
  const uint64_t es = core::kDtypeBytes[d.dtype], wide = wide_bytes(d.dtype);
  kernels::PipeArgs a = pipe_args(c, d);
  const bool ring = algo == PLX_ALGO_RING;
  if (ring) a.ring = ring_view(c.routes().ring, c.nranks(), c.rank());
  else a.tree = tree_view(tree_of(c, algo, d.coll == PLX_COLL_REDUCE ? d.root : 0), c.rank());
  a.mode = d.coll == PLX_COLL_REDUCE ? kernels::kTreeReduce : kernels::kTreeAllReduce;
  const uint64_t divisor = ring ? static_cast<uint64_t>(c.nranks()) : 1;
  const cudaError_t err = launch_pieces(c, d.count, es, wide, a, d.send, out, divisor, [&](const kernels::PipeArgs &p) {
    return ring ? kernels::launch_ring(c.peers(), p, stream) : kernels::launch_tree(c.peers(), p, stream);
  });
  return err == cudaSuccess ? PLX_OK : pipe_launch_failed(c, err, algo_name(algo));
}

plx_status pipe_broadcast(Comm &c, const plx_coll_desc &d, int32_t algo, cudaStream_t stream) {
  kernels::PipeArgs a = pipe_args(c, d);
  a.tree = tree_view(tree_of(c, algo, d.root), c.rank());
  a.mode = kernels::kTreeBroadcast;
  const void *in = c.rank() == d.root ? d.send : nullptr;
  const cudaError_t err = launch_pieces(c, d.count * core::kDtypeBytes[d.dtype], 1, 1, a, in, d.recv, 1,
                                        [&](const kernels::PipeArgs &p) { return kernels::launch_tree(c.peers(), p, stream); });
  return err == cudaSuccess ? PLX_OK : pipe_launch_failed(c, err, "tree broadcast");
}

plx_status pipe_barrier(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  kernels::PipeArgs a = pipe_args(c, d);
  a.tree = tree_view(c.routes().kary[0], c.rank());
  a.mode = kernels::kTreeBarrier;
  const cudaError_t err = kernels::launch_tree(c.peers(), a, stream);
  return err == cudaSuccess ? PLX_OK : pipe_launch_failed(c, err, "tree barrier");
}

}  // namespace plexus::p2p_tree

// The pipelined tree kernels (kernels/pipe.hpp): all-reduce, reduce,
// broadcast and barrier over a spanning tree of linked ranks (binary or
// k-ary, built by the host: TreeView). Every thread block runs the tree
// over its share of the data, in slices; at step t it does the up half of
// slice t (children push their partials to the parent, which adds its own
// input and then its children's in their fixed order) and the down half of
// slice t - kTreeLag (the parent pushes the result to its children), so
// slices stream both ways at once. A half that carries no data in a mode
// (reduce's down, broadcast's up, both for a barrier) still sends its
// empty messages: so every rank has heard, through the root, from every
// other rank of this epoch before its kernel ends, which the two-half
// reuse rule needs (docs/plugins/p2p-tree.md).
//
// Step t's up half waits only for the children's slice t and for the
// parent's ack of slice t - kFifoSlots; its down half for the parent's
// down slice t - kTreeLag, which the root sent in its step t after all of
// slice t - kTreeLag came up: dependencies point to earlier steps or down
// the same step's up halves, so no wait closes a cycle.
#include "kernels/module_anchor.cuh"
#include "kernels/pipe_common.cuh"

namespace plexus::kernels {
namespace device {
namespace {

using pipe::Acc;
using pipe::Channel;

struct Tree {
  const Peers &p;
  const PipeArgs &a;
  uint64_t epoch;
  TreeBlock tb;
  uint64_t slice;
  Channel up, down;                     // to the parent, from the parent
  Channel from_child[kMaxRanks - 1];    // children's partials
  Channel to_child[kMaxRanks - 1];      // results to the children
  __device__ bool root() const { return a.tree.parent < 0; }
  __device__ bool up_data() const { return a.mode == kTreeAllReduce || a.mode == kTreeReduce; }
  __device__ bool down_data() const { return a.mode == kTreeAllReduce || a.mode == kTreeBroadcast; }
};

// Threads 0..nchildren-1 wait on one child each, thread 32 on the parent.
__device__ __forceinline__ bool wait_up(const Tree &t, uint64_t m) {
  bool failed = false;
  const int c = threadIdx.x;
  if (c < t.a.tree.nchildren) failed = !pipe::wait_ready(t.p, t.from_child[c], t.epoch, m, t.a.coll);
  if (threadIdx.x == 32 && !t.root()) failed = !pipe::wait_credit(t.p, t.up, t.epoch, m, t.a.coll);
  return pipe::block_wait(failed);
}

__device__ __forceinline__ bool wait_down(const Tree &t, uint64_t m) {
  bool failed = false;
  const int c = threadIdx.x;
  if (c < t.a.tree.nchildren) failed = !pipe::wait_credit(t.p, t.to_child[c], t.epoch, m, t.a.coll);
  if (threadIdx.x == 32 && !t.root()) failed = !pipe::wait_ready(t.p, t.down, t.epoch, m, t.a.coll);
  return pipe::block_wait(failed);
}

// Slice m going up: own input, then each child's partial in child order;
// the root keeps the result, the others push the partial to the parent.
template <class E, int Op>
__device__ void up_vectors(const Tree &t, uint64_t m) {
  using S = typename E::S;
  const Range e = tree_slice(t.tb, m, t.slice);
  const uint64_t n = e.end - e.begin, vecs = (n + Acc<E, Op>::V - 1) / Acc<E, Op>::V;
  uint4 *to = t.root() ? nullptr : pipe::slot(t.up, t.a, m);
  for (uint64_t j = threadIdx.x; j < vecs; j += blockDim.x) {
    Acc<E, Op> acc;
    acc.set(load_vec(static_cast<const S *>(t.a.in) + e.begin, j, n));
    for (int c = 0; c < t.a.tree.nchildren; ++c) acc.add_wire(pipe::slot(t.from_child[c], t.a, m), j);
    if (to != nullptr) acc.put_wire(to, j);
    else if (t.a.out != nullptr) store_vec(static_cast<S *>(t.a.out) + e.begin, j, n, acc.result(t.p.nranks));
  }
}

// Slice m going down: the root's result (all-reduce: what it wrote to out
// in its up half) or input (broadcast), else the parent's message; written
// out and pushed to every child.
template <class S>
__device__ void down_vectors(const Tree &t, uint64_t m) {
  const Range e = tree_slice(t.tb, m, t.slice);
  const uint64_t n = e.end - e.begin, vecs = (n + 16 / sizeof(S) - 1) / (16 / sizeof(S));
  const uint4 *from = t.root() ? nullptr : pipe::slot(t.down, t.a, m);
  const S *root_src = static_cast<const S *>(t.a.mode == kTreeBroadcast ? t.a.in : t.a.out) + e.begin;
  S *out = static_cast<S *>(t.a.out) + e.begin;
  // The all-reduce root wrote out already; a broadcast root copies in place or not.
  const bool write = t.a.out != nullptr && (from != nullptr || (t.a.mode == kTreeBroadcast && t.a.out != t.a.in));
  for (uint64_t j = threadIdx.x; j < vecs; j += blockDim.x) {
    const uint4 v = from != nullptr ? __ldcv(from + j) : load_vec(root_src, j, n);
    if (write) store_vec(out, j, n, v);
    for (int c = 0; c < t.a.tree.nchildren; ++c) pipe::slot(t.to_child[c], t.a, m)[j] = v;
  }
}

template <class E, int Op>
__device__ bool up_step(const Tree &t, uint64_t m) {
  if (!wait_up(t, m)) return false;
  if (t.up_data()) up_vectors<E, Op>(t, m);
  __syncthreads();
  const int c = threadIdx.x;
  if (c < t.a.tree.nchildren) pipe::consumed(t.from_child[c], t.epoch, m);
  if (threadIdx.x == 32 && !t.root()) pipe::post(t.up, t.epoch, m);
  return true;
}

template <class S>
__device__ bool down_step(const Tree &t, uint64_t m) {
  if (!wait_down(t, m)) return false;
  if (t.down_data()) down_vectors<S>(t, m);
  __syncthreads();
  const int c = threadIdx.x;
  if (c < t.a.tree.nchildren) pipe::post(t.to_child[c], t.epoch, m);
  if (threadIdx.x == 32 && !t.root()) pipe::consumed(t.down, t.epoch, m);
  return true;
}

__device__ void connect(Tree &t) {
  const int me = t.p.rank, parent = t.a.tree.parent;
  if (parent >= 0) {
    t.up = pipe::channel(t.p, t.a, t.epoch, me, parent);
    t.down = pipe::channel(t.p, t.a, t.epoch, parent, me);
  }
  for (int c = 0; c < t.a.tree.nchildren; ++c) {
    t.from_child[c] = pipe::channel(t.p, t.a, t.epoch, t.a.tree.child[c], me);
    t.to_child[c] = pipe::channel(t.p, t.a, t.epoch, me, t.a.tree.child[c]);
  }
}

template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) tree_kernel(Peers p, PipeArgs a) {
  constexpr uint64_t V = 16 / sizeof(typename E::S);
  const uint64_t epoch = begin_epoch(p);
  const uint64_t slice = slice_elems(a.fifo_slot_bytes, sizeof(typename E::A));
  Tree t{p, a, epoch, tree_block(a.total, V, slice, blockIdx.x, gridDim.x), slice};
  connect(t);
  bool ok = true;
  for (uint64_t s = 0; ok && s < t.tb.slices + kTreeLag; ++s) {
    if (s < t.tb.slices) ok = up_step<E, Op>(t, s);
    if (ok && s >= kTreeLag) ok = down_step<typename E::S>(t, s - kTreeLag);
  }
  end_epoch(p, epoch);
}

// Broadcast and barrier move bytes: the uint8 instance (no reduction).
struct TreeLaunch {
  const Peers &p;
  const PipeArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    return launch(tree_kernel<E, Op>, a.blocks, kThreads, p, stream, p, a);
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_tree(const Peers &peers, const PipeArgs &args, cudaStream_t stream) {
  const bool bytes = args.mode == kTreeBroadcast || args.mode == kTreeBarrier;
  return device::with_types(bytes ? PLX_UINT8 : args.dtype, bytes ? PLX_SUM : args.op,
                            device::TreeLaunch{peers, args, stream});
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(tree)

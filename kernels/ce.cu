// The copy-engine two-shot's kernels (ce.hpp): enter and exit (full
// exchanges), the reduction in rank order, the copy-out.
#include "kernels/ce.hpp"
#include "kernels/device_common.cuh"
#include "kernels/module_anchor.cuh"
#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"

namespace plexus::kernels {
namespace device {
namespace {

// Thread t < nranks stores `value` into row `row` of peer t's flags; the
// fence keeps this rank's earlier stores ahead of it.
__device__ __forceinline__ void signal_row(const Peers &p, uint32_t row, uint64_t value) {
  const int t = threadIdx.x;
  if (t >= p.nranks || t == p.rank) return;
  __threadfence_system();
  st_release_sys(flags_of(p.block[t]) + row * kMaxRanks + p.rank, value);
}

__global__ void ce_enter_kernel(Peers p, int32_t coll) {
  const uint64_t epoch = begin_epoch(p);
  if (threadIdx.x < kCeRows)  // read by the copy engines after this kernel
    reinterpret_cast<uint64_t *>(p.block[p.rank] + kCeValuesOffset)[threadIdx.x] = signal_value(epoch, threadIdx.x);
  signal_row(p, 0, signal_value(epoch, 0));
  (void)wait_peers_of(p, 0, signal_value(epoch, 0), coll, epoch);
}

__global__ void ce_exit_kernel(Peers p, uint32_t row, int32_t coll) {
  const uint64_t epoch = begin_epoch(p);
  signal_row(p, row, signal_value(epoch, row));
  (void)wait_peers_of(p, row, signal_value(epoch, row), coll, epoch);
  end_epoch(p, epoch);
}

// Block b's share of this rank's piece: its own input and every peer's
// slot of the scatter area (written by the peers' copy engines during
// this kernel's wait, so read past L1), added in rank order. area() of an
// even epoch is ce_area(p, rank, false), of an odd one ce_area(p, rank, true).
template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) ce_sum_kernel(Peers p, CeArgs a) {
  using S = typename E::S;
  constexpr uint64_t V = VecReduce<E, Op>::V;
  const uint64_t epoch = begin_epoch(p);
  const uint32_t row = ce_scatter_row(a.piece);
  if (!wait_peers_of(p, row, signal_value(epoch, row), a.coll, epoch)) return;
  const Range piece = ce_piece(a.chunk, a.total, p.rank, a.piece, a.pieces, V);
  const Range mine = share_of(piece.end - piece.begin, V, blockIdx.x, gridDim.x);
  const uint64_t at = p.rank * a.chunk + piece.begin + mine.begin, n = mine.end - mine.begin;
  const S *src[kMaxRanks];
  for (int q = 0; q < p.nranks; ++q)
    src[q] = q == p.rank ? static_cast<const S *>(a.in) + at
                         : reinterpret_cast<const S *>(area(p, p.rank, 0, false)) + q * a.chunk + piece.begin + mine.begin;
  S *out = static_cast<S *>(a.out) + at;
  for (uint64_t i = threadIdx.x; i < (n + V - 1) / V; i += blockDim.x) {
    VecReduce<E, Op> r;
    for (int q = 0; q < p.nranks; ++q) r.add(load_vec(src[q], i, n, q != p.rank), q == 0);
    store_vec(out, i, n, r.result(p.nranks));
  }
}

// Block b's share of every peer's reduced piece, from this rank's gather
// area to out (the gather area's slot q holds rank q's chunk).
__global__ void __launch_bounds__(kThreads, 2) ce_copy_out_kernel(Peers p, CeArgs a) {
  const uint64_t esize = a.esize;
  const uint64_t epoch = begin_epoch(p);
  const uint32_t row = ce_gather_row(a.pieces, a.piece);
  if (!wait_peers_of(p, row, signal_value(epoch, row), a.coll, epoch)) return;
  const char *gathered = area(p, p.rank, 1, false);  // ce_area(p, rank, true)
  for (int k = 1; k < p.nranks; ++k) {
    const int q = rotated_peer(p, k);
    const Range piece = ce_piece(a.chunk, a.total, q, a.piece, a.pieces, 16 / esize);
    const Range mine = share_of((piece.end - piece.begin) * esize, 16, blockIdx.x, gridDim.x);
    const uint64_t at = (q * a.chunk + piece.begin) * esize + mine.begin;
    copy_bytes(static_cast<char *>(a.out) + at, gathered + at, mine.end - mine.begin, true);
  }
}

// Kernels launched on streams that also carry copies: no dependent launch.
Peers plain(const Peers &p) {
  Peers q = p;
  q.dependent_launch = 0;
  return q;
}

struct SumLaunch {
  const Peers &p;
  const CeArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const Range piece = ce_piece(a.chunk, a.total, p.rank, a.piece, a.pieces, VecReduce<E, Op>::V);
    const unsigned blocks = blocks_for((piece.end - piece.begin) * sizeof(typename E::S), p.max_blocks);
    return launch(ce_sum_kernel<E, Op>, blocks, kThreads, p, stream, p, a);
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_ce_enter(const Peers &peers, int32_t coll, cudaStream_t stream) {
  const Peers p = device::plain(peers);
  return device::launch(device::ce_enter_kernel, 1, 32, p, stream, p, coll);
}

cudaError_t launch_ce_sum(const Peers &peers, const CeArgs &args, cudaStream_t stream) {
  const Peers p = device::plain(peers);
  return device::with_types(args.dtype, args.op, device::SumLaunch{p, args, stream});
}

cudaError_t launch_ce_copy_out(const Peers &peers, const CeArgs &args, cudaStream_t stream) {
  if (args.esize == 0 || 16 % args.esize != 0) return cudaErrorInvalidValue;
  const Peers p = device::plain(peers);
  const unsigned blocks = blocks_for(args.chunk * args.esize * (p.nranks - 1) / args.pieces, p.max_blocks);
  return device::launch(device::ce_copy_out_kernel, blocks, kThreads, p, stream, p, args);
}

cudaError_t launch_ce_exit(const Peers &peers, uint32_t pieces, int32_t coll, cudaStream_t stream) {
  const Peers p = device::plain(peers);
  return device::launch(device::ce_exit_kernel, 1, 32, p, stream, p, ce_exit_row(pieces), coll);
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(ce)

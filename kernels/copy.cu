// Broadcast, all-gather, gather and barrier over peer-mapped exchange blocks (the
// protocol is in kernels.hpp): bytes through the input areas, with the same
// signal/wait and epoch rules as the reductions.
#include "kernels/device_common.cuh"
#include "kernels/module_anchor.cuh"

namespace plexus::kernels {
namespace device {
namespace {

__global__ void __launch_bounds__(kThreads, 2) broadcast_kernel(Peers p, CopyArgs a) {
  const uint64_t epoch = begin_epoch(p);
  const Range r = share_of(a.bytes, 16, blockIdx.x, gridDim.x);
  const uint64_t n = r.end - r.begin;
  const bool root = p.rank == a.root;
  if (root) {
    const auto *in = static_cast<const char *>(a.in) + r.begin;
    copy_bytes(area(p, p.rank, epoch, false) + r.begin, in, n, false);
    if (a.out != a.in) copy_bytes(static_cast<char *>(a.out) + r.begin, in, n, false);
  }
  signal_peers(p, signal_value(epoch, 0));
  if (wait_peers(p, signal_value(epoch, 0), a.coll, epoch) && !root)
    copy_bytes(static_cast<char *>(a.out) + r.begin, area(p, a.root, epoch, false) + r.begin, n, true);
  end_epoch(p, epoch);
}

__global__ void __launch_bounds__(kThreads, 2) all_gather_kernel(Peers p, CopyArgs a) {
  const uint64_t epoch = begin_epoch(p);
  const Range r = share_of(a.bytes, 16, blockIdx.x, gridDim.x);
  const uint64_t n = r.end - r.begin;
  const auto *in = static_cast<const char *>(a.in) + r.begin;
  auto *out = static_cast<char *>(a.out) + r.begin;
  copy_bytes(area(p, p.rank, epoch, false) + r.begin, in, n, false);
  // My own part now: in place (in == my part of out) needs no copy, and
  // in == out (rank 0's part) is overwritten only after the slot holds it.
  char *own = out + p.rank * a.out_stride;
  if (own != in) copy_bytes(own, in, n, false);
  signal_peers(p, signal_value(epoch, 0));
  if (wait_peers(p, signal_value(epoch, 0), a.coll, epoch))
    for (int k = 1; k < p.nranks; ++k) {  // from the next rank up: one reader per peer at a time
      const int q = rotated_peer(p, k);
      copy_bytes(out + q * a.out_stride, area(p, q, epoch, false) + r.begin, n, true);
    }
  end_epoch(p, epoch);
}

// Pushed, as the two-shot's chunks (a store over NVLink is posted, a load
// a round trip); block b of every rank handles share b of every piece, so
// the root's block b waits for exactly the peers' blocks that wrote it.
__global__ void __launch_bounds__(kThreads, 2) gather_kernel(Peers p, GatherArgs a) {
  const uint64_t epoch = begin_epoch(p);
  const bool root = p.rank == a.root;
  const Range mine = share_of(a.bytes[p.rank], 16, blockIdx.x, gridDim.x);
  const char *in = static_cast<const char *>(a.in) + mine.begin;
  char *out = static_cast<char *>(a.out);
  if (!root)
    copy_bytes(area(p, a.root, epoch, false) + p.rank * a.stride + mine.begin, in, mine.end - mine.begin, false);
  else if (out + a.displ[p.rank] != a.in)
    copy_bytes(out + a.displ[p.rank] + mine.begin, in, mine.end - mine.begin, false);
  signal_peers(p, signal_value(epoch, 0));
  if (wait_peers(p, signal_value(epoch, 0), a.coll, epoch) && root)
    for (int k = 1; k < p.nranks; ++k) {
      const int q = rotated_peer(p, k);
      const Range r = share_of(a.bytes[q], 16, blockIdx.x, gridDim.x);
      copy_bytes(out + a.displ[q] + r.begin, area(p, p.rank, epoch, false) + q * a.stride + r.begin, r.end - r.begin,
                 true);
    }
  end_epoch(p, epoch);
}

__global__ void barrier_kernel(Peers p, int32_t coll) {
  const uint64_t epoch = begin_epoch(p);
  signal_peers(p, signal_value(epoch, 0));
  (void)wait_peers(p, signal_value(epoch, 0), coll, epoch);
  end_epoch(p, epoch);
}

}  // namespace
}  // namespace device

cudaError_t launch_broadcast(const Peers &peers, const CopyArgs &args, cudaStream_t stream) {
  return device::launch(device::broadcast_kernel, blocks_for(args.bytes, peers.max_blocks), kThreads, peers, stream,
                        peers, args);
}

cudaError_t launch_all_gather(const Peers &peers, const CopyArgs &args, cudaStream_t stream) {
  return device::launch(device::all_gather_kernel, blocks_for(args.bytes, peers.max_blocks), kThreads, peers, stream,
                        peers, args);
}

// Every rank launches the same grid: from the largest piece, which every rank knows.
cudaError_t launch_gather(const Peers &peers, const GatherArgs &args, cudaStream_t stream) {
  uint64_t largest = 0;
  for (int q = 0; q < peers.nranks; ++q) largest = largest > args.bytes[q] ? largest : args.bytes[q];
  return device::launch(device::gather_kernel, blocks_for(largest, peers.max_blocks), kThreads, peers, stream, peers,
                        args);
}

cudaError_t launch_barrier(const Peers &peers, int32_t coll, cudaStream_t stream) {
  return device::launch(device::barrier_kernel, 1, 32, peers, stream, peers, coll);
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(copy)

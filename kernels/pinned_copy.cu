// pinned-host's bulk copies through the rings (pinned.hpp): broadcast (the
// root stages, the others read), all-gather (everyone stages and reads
// everyone) and gather (everyone stages, the root reads). Step i moves
// bytes [i * step, ...) of every rank's part.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_common.cuh"

namespace plexus::kernels::pinned {
namespace device {
namespace {

__device__ __forceinline__ uint64_t part_len(const CopyArgs &a, int q, uint64_t off) {
  return a.bytes[q] > off ? min_u(a.plan.step, a.bytes[q] - off) : 0;
}

// The ranks whose stage this rank reads in the step at byte `off`.
__device__ uint32_t readers_mask(const Channel &c, const CopyArgs &a, uint64_t off) {
  uint32_t mask = 0;
  for (int q = 0; q < c.nranks; ++q) {
    if (q == c.rank || part_len(a, q, off) == 0) continue;
    const bool wanted = a.mode == kAllGather || (a.mode == kBroadcast && q == a.root) ||
                        (a.mode == kGather && c.rank == a.root);
    if (wanted) mask |= 1u << q;
  }
  return mask;
}

__device__ bool copy_step(const Channel &c, const CopyArgs &a, uint64_t n, uint64_t off) {
  const uint32_t s = n % c.layout.stages;
  const bool writes = a.mode != kBroadcast || c.rank == a.root;
  const uint64_t mine = writes ? part_len(a, c.rank, off) : 0;
  if (!wait_stage_free(c, n, a.coll)) return false;
  if (mine > 0 && c.nranks > 1) copy_to_host(stage(c, c.rank, s), static_cast<const char *>(a.in) + off, mine);
  publish(posted(c, c.rank, s), n + 1);
  const uint32_t mask = readers_mask(c, a, off);
  if (mask != 0) {
    uint32_t skips = 0;
    if (!wait_ranks(c, mask, n + 1, [&](int q) { return posted(c, q, s); }, a.coll, n, &skips)) return false;
    for (int q = 0; q < c.nranks; ++q)
      if ((mask >> q) & 1u)
        copy_from_host(static_cast<char *>(a.out) + a.displ[q] + off, stage(c, q, s), part_len(a, q, off));
  }
  const bool own = a.mode == kAllGather || c.rank == a.root;
  if (own && mine > 0) copy_dev(static_cast<char *>(a.out) + a.displ[c.rank] + off, static_cast<const char *>(a.in) + off, mine);
  publish(done(c, c.rank, s), n + 1);
  return true;
}

__global__ void __launch_bounds__(kThreads) copy_kernel(Channel c, CopyArgs a) {
  const uint64_t base = read_counter(&c.state->step);
  for (uint64_t i = blockIdx.x; i < a.plan.steps; i += gridDim.x)
    if (!copy_step(c, a, base + i, i * a.plan.step)) break;
  end_steps(c, base + a.plan.steps);
}

}  // namespace
}  // namespace device

cudaError_t launch_copy(const Channel &c, const CopyArgs &a, cudaStream_t stream) {
  device::copy_kernel<<<a.plan.blocks, kThreads, 0, stream>>>(c, a);
  return cudaGetLastError();
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_copy)

// pinned-host's bulk reduce-scatter through the rings (pinned.hpp): step i
// covers elements [i * step, ...) of every rank's block; each rank stages
// those of the blocks the others own (segment q of its stage for rank q),
// then reduces its own block's elements over all ranks in rank order.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_packs.cuh"

namespace plexus::kernels::pinned {
namespace device {
namespace {

template <class E, class W, int Op>
__device__ bool scatter_step(const Channel &c, const ReduceArgs &a, uint64_t n, const typename E::S *in,
                             typename E::S *out, uint64_t first, uint64_t len) {
  using K = Packs<E, W, Op>;
  using Wt = typename W::Wt;
  const uint32_t s = n % c.layout.stages;
  const uint64_t seg = a.plan.step;  // elements of one rank's segment in a stage
  if (!wait_stage_free(c, n, a.coll)) return false;
  Wt *mine = reinterpret_cast<Wt *>(stage(c, c.rank, s));
  for (int q = 0; in != nullptr && q < c.nranks; ++q)
    if (q != c.rank) K::stage_in(mine + q * seg, in + q * a.count + first, len);
  publish(posted(c, c.rank, s), (n + 1) | (in == nullptr ? kSkip : 0));
  uint32_t skips = 0;
  if (!wait_ranks(c, peers_mask(c), n + 1, [&](int q) { return posted(c, q, s); }, a.coll, n, &skips)) return false;
  K::reduce(c, len, in == nullptr ? nullptr : in + c.rank * a.count + first,
            [&](int r) { return reinterpret_cast<const Wt *>(stage(c, r, s)) + c.rank * seg; }, skips, out + first,
            nullptr);
  publish(done(c, c.rank, s), n + 1);
  return true;
}

template <class E, class W, int Op>
__global__ void __launch_bounds__(kThreads) scatter_kernel(Channel c, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t base = read_counter(&c.state->step);
  const S *in = static_cast<const S *>(a.contributes ? a.in : nullptr);
  S *out = static_cast<S *>(a.out);
  for (uint64_t i = blockIdx.x; i < a.plan.steps; i += gridDim.x) {
    const uint64_t first = i * a.plan.step, len = min_u(a.plan.step, a.count - first);
    if (!scatter_step<E, W, Op>(c, a, base + i, in, out, first, len)) break;
  }
  end_steps(c, base + a.plan.steps);
}

struct Launch {
  const Channel &c;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, class W, int Op>
  cudaError_t run() const {
    scatter_kernel<E, W, Op><<<a.plan.blocks, kThreads, 0, stream>>>(c, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_reduce_scatter(const Channel &c, const ReduceArgs &a, cudaStream_t stream) {
  return device::with_wire(a.dtype, a.wire, a.op, device::Launch{c, a, stream});
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_scatter)

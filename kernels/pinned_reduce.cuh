// pinned-host's bulk all-reduce and reduce through the rings (the bulk
// protocol of pinned.hpp). Block b runs steps b, b + grid, ...; each step
// is one stage of every rank.
//  - one-shot: every rank stages its input, then reads every peer's stage
//    and reduces in rank order (its own part from its own device input);
//  - two-shot: every rank stages the parts the others reduce, reduces its
//    own part over all ranks into its stage (the slot of its own part, which
//    nobody reads in the first phase), then copies the peers' reduced parts.
// reduce uses the same kernels with out NULL on the non-roots: they write,
// reduce their part (two-shot), and read nothing back. Included by
// pinned_one_shot.cu and pinned_two_shot.cu (compiled apart, in parallel).
#pragma once

#include "kernels/pinned_packs.cuh"

namespace plexus::kernels::pinned {
namespace device {
// Internal to each including file (each compiles its own instantiations).
namespace {

template <class E, class W, int Op>
__device__ bool one_shot_step(const Channel &c, const ReduceArgs &a, uint64_t n, const typename E::S *in,
                              typename E::S *out, uint64_t len) {
  using K = Packs<E, W, Op>;
  using Wt = typename W::Wt;
  const uint32_t s = n % c.layout.stages;
  if (!wait_stage_free(c, n, a.coll)) return false;
  Wt *mine = reinterpret_cast<Wt *>(stage(c, c.rank, s));
  if (in != nullptr && c.nranks > 1) K::stage_in(mine, in, len);  // alone, nobody reads it
  publish(posted(c, c.rank, s), (n + 1) | (in == nullptr ? kSkip : 0));
  if (out != nullptr) {
    uint32_t skips = 0;
    if (!wait_ranks(c, peers_mask(c), n + 1, [&](int q) { return posted(c, q, s); }, a.coll, n, &skips))
      return false;
    K::reduce(c, len, in, [&](int r) { return reinterpret_cast<const Wt *>(stage(c, r, s)); }, skips, out, nullptr);
  }
  publish(done(c, c.rank, s), n + 1);
  return true;
}

template <class E, class W, int Op>
__device__ bool two_shot_step(const Channel &c, const ReduceArgs &a, uint64_t n, const typename E::S *in,
                              typename E::S *out, uint64_t len) {
  using K = Packs<E, W, Op>;
  using Wt = typename W::Wt;
  const uint32_t s = n % c.layout.stages;
  const uint64_t part = part_elems(len, c.nranks, sizeof(Wt));
  if (!wait_stage_free(c, n, a.coll)) return false;
  Wt *mine = reinterpret_cast<Wt *>(stage(c, c.rank, s));
  for (int q = 0; in != nullptr && q < c.nranks; ++q) {
    const Range r = part_of(len, part, q);
    if (q != c.rank) K::stage_in(mine + r.begin, in + r.begin, r.end - r.begin);
  }
  publish(posted(c, c.rank, s), (n + 1) | (in == nullptr ? kSkip : 0));
  uint32_t skips = 0;
  if (!wait_ranks(c, peers_mask(c), n + 1, [&](int q) { return posted(c, q, s); }, a.coll, n, &skips)) return false;
  const Range m = part_of(len, part, c.rank);
  K::reduce(c, m.end - m.begin, in == nullptr ? nullptr : in + m.begin,
            [&](int r) { return reinterpret_cast<const Wt *>(stage(c, r, s)) + m.begin; }, skips,
            out == nullptr ? nullptr : out + m.begin, mine + m.begin);
  publish(reduced(c, c.rank, s), n + 1);
  if (out != nullptr) {
    if (!wait_ranks(c, peers_mask(c), n + 1, [&](int q) { return reduced(c, q, s); }, a.coll, n, &skips))
      return false;
    for (int q = 0; q < c.nranks; ++q) {
      const Range r = part_of(len, part, q);
      if (q != c.rank) K::copy_out(out + r.begin, reinterpret_cast<const Wt *>(stage(c, q, s)) + r.begin, r.end - r.begin);
    }
  }
  publish(done(c, c.rank, s), n + 1);
  return true;
}

template <class E, class W, int Op, bool TwoShot>
__global__ void __launch_bounds__(kThreads) reduce_kernel(Channel c, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t base = read_counter(&c.state->step);
  const S *in = static_cast<const S *>(a.contributes ? a.in : nullptr);
  S *out = static_cast<S *>(a.out);
  for (uint64_t i = blockIdx.x; i < a.plan.steps; i += gridDim.x) {
    const uint64_t first = i * a.plan.step, len = min_u(a.plan.step, a.count - first);
    const S *at_in = in == nullptr ? nullptr : in + first;
    S *at_out = out == nullptr ? nullptr : out + first;
    bool ok;
    if constexpr (TwoShot) ok = two_shot_step<E, W, Op>(c, a, base + i, at_in, at_out, len);
    else ok = one_shot_step<E, W, Op>(c, a, base + i, at_in, at_out, len);
    if (!ok) break;  // the abort word stops the other blocks too
  }
  end_steps(c, base + a.plan.steps);
}

template <bool TwoShot>
struct Launch {
  const Channel &c;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, class W, int Op>
  cudaError_t run() const {
    reduce_kernel<E, W, Op, TwoShot><<<a.plan.blocks, kThreads, 0, stream>>>(c, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device
}  // namespace plexus::kernels::pinned

// pinned-host's CPU-helper all-reduce and reduce (launch_cpu_star in
// pinned.hpp). The kernel stages every step (the identity when the rank
// adds nothing, so the helpers never skip and avg divides by every rank)
// and posts one CpuJob for its rank's helper thread; helper q reduces part
// q of each step over all ranks, in rank order, with core's SIMD reduction
// (the numerics of reduce_ops.cuh, bit for bit) into that part of rank q's
// stage. Every rank waits for every part (a non-root of reduce too: its
// done must also mean the helpers have read its stage) and copies them out.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_packs.cuh"

namespace plexus::kernels::pinned {
namespace device {
namespace {

// Block 0 posts job j once the helper has taken job j - kJobSlots.
__device__ bool post_job(const Channel &c, const ReduceArgs &a, uint64_t j, uint64_t base) {
  char *control = rank_base(c, c.rank);
  if (j >= kJobSlots) {
    uint64_t seen = 0;
    const auto *taken = reinterpret_cast<const uint64_t *>(control + jobs_done_offset(c.layout));
    if (!wait_flag(c, taken, j + 1 - kJobSlots, c.rank, a.coll, j, &seen)) return false;
  }
  auto *job = reinterpret_cast<volatile CpuJob *>(control + job_offset(c.layout, j));
  job->base = base, job->steps = a.plan.steps, job->count = a.count, job->step = a.plan.step;
  job->wire = a.wire, job->op = a.op, job->coll = a.coll;
  __threadfence_system();  // the helper reads the fields once it sees seq
  st_release_sys(const_cast<uint64_t *>(&job->seq), j + 1);
  return true;
}

template <class E, class W, int Op>
__device__ bool cpu_step(const Channel &c, const ReduceArgs &a, uint64_t n, const typename E::S *in,
                         typename E::S *out, uint64_t len) {
  using K = Packs<E, W, Op>;
  using Wt = typename W::Wt;
  const uint32_t s = n % c.layout.stages;
  if (!wait_stage_free(c, n, a.coll, /*self=*/true)) return false;
  Wt *mine = reinterpret_cast<Wt *>(stage(c, c.rank, s));
  if (in != nullptr) K::stage_in(mine, in, len);
  else K::stage_identity(mine, len);
  publish(posted(c, c.rank, s), n + 1);
  uint32_t skips = 0;
  const uint32_t everyone = peers_mask(c) | (1u << c.rank);
  if (!wait_ranks(c, everyone, n + 1, [&](int q) { return reduced(c, q, s); }, a.coll, n, &skips)) return false;
  const uint64_t part = part_elems(len, c.nranks, sizeof(Wt));
  for (int q = 0; out != nullptr && q < c.nranks; ++q) {
    const Range r = part_of(len, part, q);
    K::copy_out(out + r.begin, reinterpret_cast<const Wt *>(stage(c, q, s)) + r.begin, r.end - r.begin);
  }
  publish(done(c, c.rank, s), n + 1);
  return true;
}

template <class E, class W, int Op>
__global__ void __launch_bounds__(kThreads) cpu_kernel(Channel c, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t base = read_counter(&c.state->step);
  const uint64_t j = read_counter(&c.state->job);
  const S *in = static_cast<const S *>(a.contributes ? a.in : nullptr);
  S *out = static_cast<S *>(a.out);
  // A job that cannot be posted (timeout) has set the abort word: every
  // block's waits below give up.
  if (blockIdx.x == 0 && threadIdx.x == 0) (void)post_job(c, a, j, base);
  for (uint64_t i = blockIdx.x; i < a.plan.steps; i += gridDim.x) {
    const uint64_t first = i * a.plan.step, len = min_u(a.plan.step, a.count - first);
    if (!cpu_step<E, W, Op>(c, a, base + i, in == nullptr ? nullptr : in + first, out == nullptr ? nullptr : out + first, len))
      break;
  }
  if (!last_block(c.state)) return;
  *reinterpret_cast<volatile unsigned long long *>(&c.state->step) = base + a.plan.steps;
  *reinterpret_cast<volatile unsigned long long *>(&c.state->job) = j + 1;
}

struct Launch {
  const Channel &c;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, class W, int Op>
  cudaError_t run() const {
    cpu_kernel<E, W, Op><<<a.plan.blocks, kThreads, 0, stream>>>(c, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_cpu_star(const Channel &c, const ReduceArgs &a, cudaStream_t stream) {
  return device::with_wire(a.dtype, a.wire, a.op, device::Launch{c, a, stream});
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_cpu)

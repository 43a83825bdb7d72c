// pinned-host's copy-engine path (launch_ce_* in pinned.hpp): the data goes
// through the copy area by cudaMemcpyAsync, and these kernels are the
// glue: a wait for flags in host memory (one block, one thread per rank,
// bounded by the deadline and the abort word like every wait), a flag
// published after the stream's copies, and the reduction in rank order of
// the chunk's copies in device memory, whose last block publishes ce_done.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_packs.cuh"

namespace plexus::kernels::pinned {
namespace device {
namespace {

__global__ void ce_wait_kernel(Channel c, uint64_t offset, uint32_t mask, uint64_t want, int32_t coll) {
  uint32_t skips = 0;
  (void)wait_ranks(c, mask, want, [&](int q) { return flag_at(c, q, offset); }, coll, want, &skips);
}

// The copies before this kernel on its stream have completed; the fence
// makes sure nothing of this rank's reaches a peer after the flag.
__global__ void ce_post_kernel(Channel c, uint64_t offset, uint64_t value) {
  __threadfence_system();
  st_release_sys(flag_at(c, c.rank, offset), value);
}

// The ranks that posted this chunk with kSkip (they add nothing).
__device__ uint32_t ce_skips(const Channel &c, uint32_t slot) {
  __shared__ uint32_t skips;
  if (threadIdx.x == 0) {
    skips = 0;
    for (int q = 0; q < c.nranks; ++q)
      if (q != c.rank && (ld_acquire_sys(flag_at(c, q, ce_posted_offset(c.layout, slot))) & kSkip)) skips |= 1u << q;
  }
  __syncthreads();
  return skips;
}

template <class E, int Op>
__global__ void __launch_bounds__(kThreads) ce_reduce_kernel(Channel c, CeReduceArgs a) {
  using S = typename E::S;
  using K = Packs<E, WireSame<E>, Op>;
  const uint32_t slot = a.chunk % c.layout.ce_stages;
  const uint32_t skips = ce_skips(c, slot);
  // Block b reduces its share (whole 16-byte packs) of the chunk.
  const uint64_t per = round_up(div_up(a.count, gridDim.x), 16 / sizeof(S));
  const uint64_t begin = min_u(per * blockIdx.x, a.count), end = min_u(begin + per, a.count);
  const S *in = static_cast<const S *>(a.in);
  S *out = static_cast<S *>(a.out);
  if (out != nullptr && end > begin)
    K::reduce(c, end - begin, in == nullptr ? nullptr : in + begin,
              [&](int r) { return reinterpret_cast<const S *>(a.scratch + r * a.slot_bytes) + begin; }, skips,
              out + begin, nullptr);
  if (!last_block(c.state)) return;
  __threadfence_system();  // every block's reads of the copies are done
  st_release_sys(flag_at(c, c.rank, ce_done_offset(c.layout, slot)), a.chunk + 1);
}

struct Launch {
  const Channel &c;
  const CeReduceArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const uint64_t bytes = a.count * sizeof(typename E::S);
    const auto blocks = static_cast<unsigned>(min_u(kMaxBlocks, max_u(1, div_up(bytes, 64 << 10))));
    ce_reduce_kernel<E, Op><<<blocks, kThreads, 0, stream>>>(c, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_ce_wait(const Channel &c, uint64_t offset, uint32_t mask, uint64_t want, int32_t coll,
                           cudaStream_t stream) {
  device::ce_wait_kernel<<<1, 32, 0, stream>>>(c, offset, mask, want, coll);
  return cudaGetLastError();
}

cudaError_t launch_ce_post(const Channel &c, uint64_t offset, uint64_t value, cudaStream_t stream) {
  device::ce_post_kernel<<<1, 1, 0, stream>>>(c, offset, value);
  return cudaGetLastError();
}

cudaError_t launch_ce_reduce(const Channel &c, const CeReduceArgs &a, cudaStream_t stream) {
  return kernels::device::with_types(a.dtype, a.op, device::Launch{c, a, stream});
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_ce)

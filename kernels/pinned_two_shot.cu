// launch_two_shot (pinned_reduce.cuh): its 60 instantiations apart from
// one-shot's, so the two compile in parallel.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_reduce.cuh"

namespace plexus::kernels::pinned {

cudaError_t launch_two_shot(const Channel &c, const ReduceArgs &a, cudaStream_t stream) {
  return device::with_wire(a.dtype, a.wire, a.op, device::Launch<true>{c, a, stream});
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_two_shot)

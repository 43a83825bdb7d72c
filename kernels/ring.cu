// The pipelined ring all-reduce (kernels/pipe.hpp): every thread block
// runs its own ring over its share of the data, cut into nranks chunks of
// `slices` slices. For each slice index i a rank takes 2 (n - 1) steps,
// each one message on the channel to its successor and (from the second
// on) one from its predecessor:
//
//   step 0           send its input's slice of chunk pos
//   steps 1..n-1     receive chunk (pos - k)'s partial, add its own input
//                    (the partial first: chunk c is summed in ring order
//                    from position c, once); steps below n - 1 send the
//                    partial on, step n - 1 has chunk pos + 1's result:
//                    written out and sent
//   steps n..2n-2    receive a result (chunk pos + n - k), write it out,
//                    forward it unless it is the last step
//
// A message is sent one step after the previous one was received, and a
// FIFO holds kFifoSlots > 1 messages, so no rank waits on a cycle of full
// FIFOs. Partials travel as the accumulator type (float for float16 and
// bfloat16), inputs and results as the dtype. Results are bit-identical on
// every rank: each chunk's result is computed at one rank and copied.
#include "kernels/module_anchor.cuh"
#include "kernels/pipe_common.cuh"

namespace plexus::kernels {
namespace device {
namespace {

using pipe::Acc;
using pipe::Channel;

struct Ring {
  const Peers &p;
  const PipeArgs &a;
  uint64_t epoch;
  RingBlock rb;
  uint64_t slice;
  Channel in, out;         // from the predecessor, to the successor
  uint64_t received = 0;   // messages so far on each channel
  uint64_t sent = 0;
};

// Thread 0 waits for the message to receive, thread 32 for the slot to
// send into; the whole block learns whether both arrived.
__device__ __forceinline__ bool wait_step(const Ring &r, const RingStep &s) {
  bool failed = false;
  if (threadIdx.x == 0 && s.recv) failed = !pipe::wait_ready(r.p, r.in, r.epoch, r.received, r.a.coll);
  if (threadIdx.x == 32 && s.send) failed = !pipe::wait_credit(r.p, r.out, r.epoch, r.sent, r.a.coll);
  return pipe::block_wait(failed);
}

// Vector j of the step's slice (n elements at `at` of the buffers).
template <class E, int Op>
__device__ __forceinline__ void step_vector(const Ring &r, const RingStep &s, uint64_t at, uint64_t n, uint64_t j) {
  using S = typename E::S;
  const uint4 *from = pipe::slot(r.in, r.a, r.received);
  uint4 *to = pipe::slot(r.out, r.a, r.sent);
  uint4 v;
  if (s.kind == RingStep::pass) {
    v = __ldcv(from + j);
  } else {
    v = load_vec(static_cast<const S *>(r.a.in) + at, j, n);
    if (s.kind != RingStep::own) {
      Acc<E, Op> acc;
      if (s.wide_in) acc.set_wire(from, j);
      else acc.set(__ldcv(from + j));
      acc.add(v);
      if (s.kind == RingStep::partial) return acc.put_wire(to, j);
      v = acc.result(r.p.nranks);
    }
  }
  if ((s.kind == RingStep::result || s.kind == RingStep::pass) && r.a.out != nullptr)
    store_vec(static_cast<S *>(r.a.out) + at, j, n, v);
  if (s.send) to[j] = v;
}

// Step k of slice i; false when a wait gave up.
template <class E, int Op>
__device__ bool ring_step(Ring &r, uint64_t i, int k) {
  const RingStep s = ring_step_of(r.p.nranks, r.a.ring.pos, k);
  if (!wait_step(r, s)) return false;
  const Range e = ring_slice(r.rb, s.chunk, i, r.slice);
  const uint64_t n = e.end - e.begin, vecs = (n + Acc<E, Op>::V - 1) / Acc<E, Op>::V;
  for (uint64_t j = threadIdx.x; j < vecs; j += blockDim.x) step_vector<E, Op>(r, s, e.begin, n, j);
  __syncthreads();
  if (threadIdx.x == 0 && s.recv) pipe::consumed(r.in, r.epoch, r.received);
  if (threadIdx.x == 32 && s.send) pipe::post(r.out, r.epoch, r.sent);
  r.received += s.recv;
  r.sent += s.send;
  return true;
}

template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) ring_kernel(Peers p, PipeArgs a) {
  constexpr uint64_t V = 16 / sizeof(typename E::S);
  const uint64_t epoch = begin_epoch(p);
  const uint64_t slice = slice_elems(a.fifo_slot_bytes, sizeof(typename E::A));
  Ring r{p, a, epoch, ring_block(a.total, V, slice, blockIdx.x, gridDim.x, p.nranks), slice,
         pipe::channel(p, a, epoch, a.ring.pred, p.rank), pipe::channel(p, a, epoch, p.rank, a.ring.succ)};
  bool ok = true;
  for (uint64_t i = 0; ok && i < r.rb.slices; ++i)
    for (int k = 0; ok && k < 2 * p.nranks - 1; ++k) ok = ring_step<E, Op>(r, i, k);
  end_epoch(p, epoch);
}

struct RingLaunch {
  const Peers &p;
  const PipeArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    return launch(ring_kernel<E, Op>, a.blocks, kThreads, p, stream, p, a);
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_ring(const Peers &peers, const PipeArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op, device::RingLaunch{peers, args, stream});
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(ring)

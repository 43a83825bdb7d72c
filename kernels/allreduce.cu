// One-shot and two-shot all-reduce over peer-mapped exchange blocks (the
// protocol is in kernels.hpp). Also reduce (out NULL on non-roots) and
// reduce-scatter (two-shot's first half). Every rank reduces the ranks'
// data in rank order, so every rank gets the same bits.
#include "kernels/device_common.cuh"
#include "kernels/reduce_ops.cuh"

namespace plexus::kernels {
namespace device {
namespace {

// Reduces n elements at element offset `at` of every rank's input area
// (`at` a multiple of the vector width) into out (any alignment, may be
// NULL) and into also (16-byte aligned, may be NULL).
template <class E, int Op>
__device__ void reduce_range(const Peers &p, uint64_t epoch, uint64_t at, uint64_t n, typename E::S *out,
                             typename E::S *also) {
  using S = typename E::S;
  using A = typename E::A;
  constexpr int V = 16 / sizeof(S);
  union Vec {
    uint4 v;
    S e[V];
  };
  const bool out_aligned = (reinterpret_cast<uintptr_t>(out) & 15) == 0;
  const uint64_t vecs = n / V;
  for (uint64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
    A acc[V];
    Vec x;
    x.v = __ldcv(reinterpret_cast<const uint4 *>(area(p, 0, epoch, false) + at * sizeof(S)) + i);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = E::load(x.e[j]);
    for (int r = 1; r < p.nranks; ++r) {
      x.v = __ldcv(reinterpret_cast<const uint4 *>(area(p, r, epoch, false) + at * sizeof(S)) + i);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] = combine<Op>(acc[j], E::load(x.e[j]));
    }
#pragma unroll
    for (int j = 0; j < V; ++j) x.e[j] = E::store(finish<Op>(acc[j], p.nranks));
    if (also != nullptr) reinterpret_cast<uint4 *>(also)[i] = x.v;
    if (out == nullptr) continue;
    if (out_aligned) {
      reinterpret_cast<uint4 *>(out)[i] = x.v;
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) out[i * V + j] = x.e[j];
    }
  }
  for (uint64_t k = vecs * V + threadIdx.x; k < n; k += blockDim.x) {
    A acc = E::load(*reinterpret_cast<const volatile S *>(area(p, 0, epoch, false) + (at + k) * sizeof(S)));
    for (int r = 1; r < p.nranks; ++r)
      acc = combine<Op>(acc, E::load(*reinterpret_cast<const volatile S *>(area(p, r, epoch, false) +
                                                                          (at + k) * sizeof(S))));
    const S v = E::store(finish<Op>(acc, p.nranks));
    if (also != nullptr) also[k] = v;
    if (out != nullptr) out[k] = v;
  }
}

template <class E, int Op>
__global__ void __launch_bounds__(kThreads) one_shot_kernel(Peers p, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t epoch = begin_epoch(p);
  const Range r = share_of(a.total, 16 / sizeof(S), blockIdx.x, gridDim.x);
  const uint64_t n = r.end - r.begin;
  copy_bytes(area(p, p.rank, epoch, false) + r.begin * sizeof(S),
             static_cast<const char *>(a.in) + r.begin * sizeof(S), n * sizeof(S), false);
  signal_peers(p, 2 * epoch);
  if (wait_peers(p, 2 * epoch, a.coll, epoch) && n > 0)
    reduce_range<E, Op>(p, epoch, r.begin, n, a.out ? static_cast<S *>(a.out) + r.begin : nullptr, nullptr);
  end_epoch(p, epoch);
}

template <class E, int Op>
__global__ void __launch_bounds__(kThreads) two_shot_kernel(Peers p, ReduceArgs a) {
  using S = typename E::S;
  constexpr uint64_t V = 16 / sizeof(S);
  const uint64_t epoch = begin_epoch(p);
  const uint64_t stride = (a.chunk + V - 1) / V * V;  // between chunks in the input areas
  const Range r = share_of(a.chunk, V, blockIdx.x, gridDim.x);
  const auto *in = static_cast<const char *>(a.in);
  auto *out = static_cast<S *>(a.out);
  for (int c = 0; c < p.nranks; ++c) {
    const uint64_t end = min(r.end, chunk_len(a.chunk, a.total, c));
    if (end > r.begin)
      copy_bytes(area(p, p.rank, epoch, false) + (c * stride + r.begin) * sizeof(S),
                 in + (c * a.in_stride + r.begin) * sizeof(S), (end - r.begin) * sizeof(S), false);
  }
  signal_peers(p, 2 * epoch);
  bool ok = wait_peers(p, 2 * epoch, a.coll, epoch);
  const uint64_t mine_end = min(r.end, chunk_len(a.chunk, a.total, p.rank));
  if (ok && mine_end > r.begin) {
    S *own = out == nullptr ? nullptr : a.scatter_only ? out + r.begin : out + p.rank * a.chunk + r.begin;
    S *result = a.scatter_only ? nullptr : reinterpret_cast<S *>(area(p, p.rank, epoch, true)) + r.begin;
    reduce_range<E, Op>(p, epoch, p.rank * stride + r.begin, mine_end - r.begin, own, result);
  }
  if (!a.scatter_only && ok) {
    signal_peers(p, 2 * epoch + 1);
    ok = wait_peers(p, 2 * epoch + 1, a.coll, epoch);
    for (int q = 0; ok && out != nullptr && q < p.nranks; ++q) {
      const uint64_t end = min(r.end, chunk_len(a.chunk, a.total, q));
      if (q == p.rank || end <= r.begin) continue;
      copy_bytes(reinterpret_cast<char *>(out + q * a.chunk + r.begin),
                 area(p, q, epoch, true) + r.begin * sizeof(S), (end - r.begin) * sizeof(S), true);
    }
  }
  end_epoch(p, epoch);
}

struct OneShot {
  const Peers &p;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const unsigned blocks = blocks_for(a.total * sizeof(typename E::S), p.max_blocks);
    one_shot_kernel<E, Op><<<blocks, kThreads, 0, stream>>>(p, a);
    return cudaGetLastError();
  }
};

struct TwoShot {
  const Peers &p;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const unsigned blocks = blocks_for(a.chunk * sizeof(typename E::S), p.max_blocks);
    two_shot_kernel<E, Op><<<blocks, kThreads, 0, stream>>>(p, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_one_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op, device::OneShot{peers, args, stream});
}

cudaError_t launch_two_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op, device::TwoShot{peers, args, stream});
}

}  // namespace plexus::kernels

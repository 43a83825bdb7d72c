// pinned-host's low-latency kernels (the LL protocol of pinned.hpp): one
// launch writes this rank's payload as tagged lines into its LL half and
// polls the peers' lines, with no flag and no fence between data and
// signal. Reductions combine the ranks in rank order, so every rank gets
// the same bits; copies serve broadcast, all-gather, gather and barrier.
#include "kernels/module_anchor.cuh"
#include "kernels/pinned_common.cuh"

namespace plexus::kernels::pinned {
namespace device {
namespace {

__device__ __forceinline__ void st_line(uint4 *p, uint4 v) {
  asm volatile("st.volatile.global.v4.u32 [%0], {%1,%2,%3,%4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ uint4 ld_line(const uint4 *p) {
  uint4 v;
  asm volatile("ld.volatile.global.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ bool tagged(uint4 v, uint32_t tag) { return v.y == tag && v.w == tag; }

// Up to kLLBatch lines of one rank, at + j * stride (j < n), polled
// together: every load of the batch is in flight at once, and a poll round
// re-reads only the lines still without this epoch's tag, so a wait costs
// one PCIe round trip per round, not one per line.
struct Batch {
  uint4 v[kLLBatch];
  const uint4 *at = nullptr;
  uint64_t stride = 0;
  uint32_t n = 0;

  __device__ __forceinline__ void issue(const uint4 *first, uint64_t step, uint32_t lines) {
    at = first, stride = step, n = lines;
#pragma unroll
    for (int j = 0; j < kLLBatch; ++j)
      if (j < n) v[j] = ld_line(at + j * stride);
  }

  __device__ __forceinline__ bool complete(uint32_t tag) const {
    bool all = true;
#pragma unroll
    for (int j = 0; j < kLLBatch; ++j) all &= j >= n || tagged(v[j], tag);
    return all;
  }

  // Until every line carries the tag; false when the wait gave up.
  __device__ bool wait(const Channel &c, int r, uint64_t e, uint32_t tag, int32_t coll) {
    Patience patience;
    for (uint32_t spin = 1; !complete(tag); ++spin) {
      if ((spin & (kCheckSpins - 1)) == 1 && patience.give_up(c, r, coll, e)) return false;
#pragma unroll
      for (int j = 0; j < kLLBatch; ++j)
        if (j < n && !tagged(v[j], tag)) v[j] = ld_line(at + j * stride);
    }
    return true;
  }

  __device__ __forceinline__ void data(int j, uint32_t (&d)[2]) const { d[0] = v[j].x, d[1] = v[j].z; }
};

// The first rank after q in mask (nranks when none).
__device__ __forceinline__ int next_in(uint32_t mask, int q, int nranks) {
  for (int r = q + 1; r < nranks; ++r)
    if ((mask >> r) & 1u) return r;
  return nranks;
}

// Visits the ranks in rank order: other(q) for those outside mask; for
// those in it, use(q, batch) once the batch that issue(q, batch) loaded is
// complete, while the next such rank's loads are already in flight.
template <class Issue, class Use, class Other>
__device__ bool in_rank_order(const Channel &c, uint32_t mask, uint64_t e, uint32_t tag, int32_t coll, Issue issue,
                              Use use, Other other) {
  Batch cur, next;
  int q1 = next_in(mask, -1, c.nranks);
  if (q1 < c.nranks) issue(q1, cur);
  for (int q = 0; q < c.nranks; ++q) {
    if (!((mask >> q) & 1u)) {
      other(q);
      continue;
    }
    q1 = next_in(mask, q, c.nranks);
    if (q1 < c.nranks) issue(q1, next);
    if (!cur.wait(c, q, e, tag, coll)) return false;
    use(q, cur);
    cur = next;
  }
  return true;
}

// May this rank write its half of epoch e? Every peer must have finished
// reading epoch e - 2: known when this rank read all peers' e - 1, else
// asked of their ack words. Called by every thread of the block.
__device__ bool may_write(const Channel &c, uint64_t e, int32_t coll) {
  if (e < 3 || c.nranks == 1) return true;
  const uint64_t need = e - 2;
  __shared__ int known;
  if (threadIdx.x == 0) known = *reinterpret_cast<volatile unsigned long long *>(&c.state->ll_known) >= need;
  __syncthreads();
  if (known) return true;
  uint32_t skips = 0;
  const bool ok = wait_ranks(c, peers_mask(c), need, [&](int q) { return ack(c, q); }, coll, e, &skips);
  if (ok && threadIdx.x == 0) atomicMax(&c.state->ll_known, static_cast<unsigned long long>(need));
  return ok;
}

// The last block to finish acks epoch e for the peers (this rank's reads
// are done) and, when it read every peer's lines of e, notes that every peer
// has finished e - 1 (it wrote e only after that).
__device__ void end_epoch(const Channel &c, uint64_t e, bool read_all) {
  if (!last_block(c.state)) return;
  if (read_all) atomicMax(&c.state->ll_known, static_cast<unsigned long long>(e - 1));
  *reinterpret_cast<volatile unsigned long long *>(&c.state->ll_epoch) = e;
  __threadfence_system();
  st_release_sys(ack(c, c.rank), e);
}

__device__ __forceinline__ uint64_t global_thread() { return uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; }
__device__ __forceinline__ uint64_t global_threads() { return uint64_t{gridDim.x} * blockDim.x; }

// n <= 8 bytes at src (any alignment) into two words; the rest zero.
__device__ __forceinline__ void load8(uint32_t (&d)[2], const char *src, uint64_t n) {
  d[0] = d[1] = 0;
  if (n == 8 && (reinterpret_cast<uintptr_t>(src) & 7) == 0) {
    const uint2 v = *reinterpret_cast<const uint2 *>(src);
    d[0] = v.x, d[1] = v.y;
    return;
  }
  for (uint64_t j = 0; j < n; ++j) reinterpret_cast<char *>(d)[j] = src[j];
}

__device__ __forceinline__ void store8(char *dst, const uint32_t (&d)[2], uint64_t n) {
  if (n == 8 && (reinterpret_cast<uintptr_t>(dst) & 7) == 0) {
    *reinterpret_cast<uint2 *>(dst) = make_uint2(d[0], d[1]);
    return;
  }
  for (uint64_t j = 0; j < n; ++j) dst[j] = reinterpret_cast<const char *>(d)[j];
}

template <class E, class W, int Op>
struct Lines {
  using S = typename E::S;
  using Wt = typename W::Wt;
  using A = typename E::A;
  static constexpr int P = 8 / sizeof(Wt);
  union Payload {
    Wt w[P];
    uint32_t d[2];
  };

  // Line k of a segment of n elements from in (NULL: the identity).
  static __device__ void own(Payload &p, const S *in, uint64_t k, uint64_t n) {
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const uint64_t i = k * P + j;
      p.w[j] = in == nullptr ? W::round(identity<Op, A>()) : i < n ? W::encode(in[i]) : Wt(0);
    }
  }

  // Writes this rank's segments (reduce-scatter: all but its own).
  static __device__ void write(const Channel &c, const ReduceArgs &a, uint64_t e, uint32_t tag, uint64_t L) {
    const S *in = static_cast<const S *>(a.contributes ? a.in : nullptr);
    const uint64_t total = a.scatter ? L * c.nranks : L;
    for (uint64_t u = global_thread(); u < total; u += global_threads()) {
      const uint64_t g = u / L;
      if (a.scatter && g == static_cast<uint64_t>(c.rank)) continue;  // only this rank needs it
      Payload p;
      own(p, in == nullptr ? nullptr : in + g * a.count, u % L, a.count);
      st_line(ll_line(c, c.rank, e, u), make_uint4(p.d[0], tag, p.d[1], tag));
    }
  }

  static __device__ __forceinline__ void add(A (&acc)[P], const Payload &p) {
#pragma unroll
    for (int j = 0; j < P; ++j) acc[j] = kernels::device::combine<Op>(acc[j], W::decode(p.w[j]));
  }

  static __device__ __forceinline__ void store(S *out, const A (&acc)[P], uint64_t k, uint64_t n, int nranks) {
#pragma unroll
    for (int j = 0; j < P; ++j)
      if (k * P + j < n) out[k * P + j] = W::output(W::round(kernels::device::finish<Op>(acc[j], nranks)));
  }

  // Reduces the batch of lines base + i * stride of segment g over the
  // ranks, in rank order (the same bits on every rank), into out.
  static __device__ bool reduce(const Channel &c, const ReduceArgs &a, uint64_t e, uint32_t tag, uint64_t L,
                                uint64_t g, uint64_t base, uint64_t stride) {
    const S *in = static_cast<const S *>(a.contributes ? a.in : nullptr);
    const uint32_t n = ll_batch_lines(base, stride, L);
    A acc[kLLBatch][P];
#pragma unroll
    for (int i = 0; i < kLLBatch; ++i)
#pragma unroll
      for (int j = 0; j < P; ++j) acc[i][j] = identity<Op, A>();
    auto issue = [&](int q, Batch &b) { b.issue(ll_line(c, q, e, g * L + base), stride, n); };
    auto use = [&](int, const Batch &b) {
#pragma unroll
      for (int i = 0; i < kLLBatch; ++i) {
        Payload p;
        if (i < static_cast<int>(n)) b.data(i, p.d), add(acc[i], p);
      }
    };
    auto mine = [&](int q) {
#pragma unroll
      for (int i = 0; i < kLLBatch; ++i) {
        Payload p;
        if (q == c.rank && in != nullptr && i < static_cast<int>(n))
          Lines::own(p, in + g * a.count, base + i * stride, a.count), add(acc[i], p);
      }
    };
    if (!in_rank_order(c, peers_mask(c), e, tag, a.coll, issue, use, mine)) return false;
#pragma unroll
    for (int i = 0; i < kLLBatch; ++i)
      if (i < static_cast<int>(n)) store(static_cast<S *>(a.out), acc[i], base + i * stride, a.count, c.nranks);
    return true;
  }
};

// One launch: may_write, this rank's lines (every thread of every block),
// then the reduction of the lines this rank needs. The block meets between
// the two, so none of its polls, which queue with its stores on the way to
// host memory, goes out before its last store.
template <class E, class W, int Op>
__global__ void __launch_bounds__(kThreads) ll_reduce_kernel(Channel c, ReduceArgs a) {
  using L8 = Lines<E, W, Op>;
  const uint64_t e = read_counter(&c.state->ll_epoch) + 1;
  const uint32_t tag = ll_tag(e);
  const uint64_t L = div_up(a.count, L8::P);
  bool ok = may_write(c, e, a.coll);
  if (ok) L8::write(c, a, e, tag, L);
  __syncthreads();
  if (ok && a.out != nullptr) {
    const uint64_t g = a.scatter ? static_cast<uint64_t>(c.rank) : 0, G = global_threads();
    for (uint64_t base = global_thread(); ok && base < L; base += kLLBatch * G)
      ok = L8::reduce(c, a, e, tag, L, g, base, G);
  }
  end_epoch(c, e, a.out != nullptr);
}

// Ranks whose lines this rank reads.
__device__ uint32_t copy_readers_mask(const Channel &c, const CopyArgs &a) {
  uint32_t mask = 0;
  for (int q = 0; q < c.nranks; ++q) {
    if (q == c.rank) continue;
    const bool wanted = a.mode == kBarrier || a.mode == kAllGather || (a.mode == kBroadcast && q == a.root) ||
                        (a.mode == kGather && c.rank == a.root && a.bytes[q] > 0);
    if (wanted) mask |= 1u << q;
  }
  return mask;
}

// This rank's own part into out (all-gather; the root of gather and broadcast).
__device__ void copy_own(const Channel &c, const CopyArgs &a) {
  const bool own = a.mode == kAllGather || (a.mode != kBarrier && c.rank == a.root);
  const char *in = static_cast<const char *>(a.in);
  char *out = a.out == nullptr ? nullptr : static_cast<char *>(a.out) + a.displ[c.rank];
  if (!own || out == in || out == nullptr) return;
  for (uint64_t i = global_thread(); i < a.bytes[c.rank]; i += global_threads()) out[i] = in[i];
}

__device__ __forceinline__ uint64_t copy_lines(const CopyArgs &a, int q) {
  return a.mode == kBarrier ? uint64_t{1} : div_up(a.bytes[q], 8);
}

// The batch of lines base + i * stride of every rank this rank reads, into out.
__device__ bool copy_batch(const Channel &c, const CopyArgs &a, uint64_t e, uint32_t tag, uint32_t mask,
                           uint64_t base, uint64_t stride) {
  auto issue = [&](int q, Batch &b) { b.issue(ll_line(c, q, e, base), stride, ll_batch_lines(base, stride, copy_lines(a, q))); };
  auto use = [&](int q, const Batch &b) {
    if (a.mode == kBarrier) return;
    char *out = static_cast<char *>(a.out) + a.displ[q];
#pragma unroll
    for (int i = 0; i < kLLBatch; ++i) {
      uint32_t d[2];
      const uint64_t u = base + i * stride;
      if (i < static_cast<int>(b.n)) b.data(i, d), store8(out + 8 * u, d, min_u(8, a.bytes[q] - 8 * u));
    }
  };
  return in_rank_order(c, mask, e, tag, a.coll, issue, use, [](int) {});
}

__global__ void __launch_bounds__(kThreads) ll_copy_kernel(Channel c, CopyArgs a) {
  const uint64_t e = read_counter(&c.state->ll_epoch) + 1;
  const uint32_t tag = ll_tag(e);
  const bool barrier = a.mode == kBarrier;
  const bool writes = a.mode != kBroadcast || c.rank == a.root;
  bool ok = !writes || may_write(c, e, a.coll);
  const char *in = static_cast<const char *>(a.in);
  for (uint64_t u = global_thread(); ok && writes && u < copy_lines(a, c.rank); u += global_threads()) {
    uint32_t d[2] = {0, 0};
    if (!barrier) load8(d, in + 8 * u, min_u(8, a.bytes[c.rank] - 8 * u));
    st_line(ll_line(c, c.rank, e, u), make_uint4(d[0], tag, d[1], tag));
  }
  __syncthreads();  // the block's stores go out before its polls (ll_reduce_kernel)
  const uint32_t mask = copy_readers_mask(c, a);
  uint64_t most = 0;
  for (int q = 0; q < c.nranks; ++q)
    if ((mask >> q) & 1u) most = max_u(most, copy_lines(a, q));
  const uint64_t G = global_threads();
  for (uint64_t base = global_thread(); ok && base < most; base += kLLBatch * G)
    ok = copy_batch(c, a, e, tag, mask, base, G);
  if (ok) copy_own(c, a);
  end_epoch(c, e, barrier || a.mode == kAllGather);
}

struct LLReduce {
  const Channel &c;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, class W, int Op>
  cudaError_t run() const {
    const uint64_t L = div_up(a.count, 8 / sizeof(typename W::Wt));
    const uint64_t lines = a.scatter ? L * static_cast<uint64_t>(c.nranks) : L;
    ll_reduce_kernel<E, W, Op><<<ll_blocks(lines, c.ll_blocks), kThreads, 0, stream>>>(c, a);
    return cudaGetLastError();
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_ll_reduce(const Channel &c, const ReduceArgs &a, cudaStream_t stream) {
  return device::with_wire(a.dtype, a.wire, a.op, device::LLReduce{c, a, stream});
}

cudaError_t launch_ll_copy(const Channel &c, const CopyArgs &a, cudaStream_t stream) {
  uint64_t lines = 1;
  for (int q = 0; q < c.nranks; ++q) lines = max_u(lines, div_up(a.bytes[q], 8));
  device::ll_copy_kernel<<<ll_blocks(lines, c.ll_blocks), kThreads, 0, stream>>>(c, a);
  return cudaGetLastError();
}

}  // namespace plexus::kernels::pinned

PLEXUS_KERNEL_MODULE(pinned_ll)

// Device-side pieces of pinned-host's kernels: addresses in the shared
// segment, the step and epoch counters, bounded waits on flags in host
// memory, wire conversions and 16-byte packs. The protocol is in pinned.hpp.
//
// Memory ordering. Host memory is reached through PCIe, where a GPU's
// stores may sit in its L2 and its loads may be served from L1/L2. A
// writer's threads store their data, the block meets (__syncthreads), and
// one thread makes everything visible system-wide (__threadfence_system)
// before its st.release.sys of the flag. A reader's thread polls the flag
// with ld.acquire.sys, the block meets, and the data is read with
// ld.global.cv (never a stale cached line). A reader publishes done only
// after the block has met again, so its loads have returned before the
// writer may overwrite the stage.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/device_common.cuh"
#include "kernels/pinned.hpp"
#include "kernels/reduce_ops.cuh"

namespace plexus::kernels::pinned::device {

using kernels::device::global_timer_ns;
using kernels::device::ld_acquire_sys;
using kernels::device::st_release_sys;

// ---- Addresses ------------------------------------------------------------

__device__ __forceinline__ char *rank_base(const Channel &c, int r) {
  return c.seg + kHeaderBytes + static_cast<uint64_t>(r) * c.rank_bytes;
}
__device__ __forceinline__ uint64_t *flag_at(const Channel &c, int r, uint64_t offset) {
  return reinterpret_cast<uint64_t *>(rank_base(c, r) + offset);
}
__device__ __forceinline__ uint64_t *posted(const Channel &c, int r, uint32_t s) {
  return flag_at(c, r, posted_offset(s));
}
__device__ __forceinline__ uint64_t *reduced(const Channel &c, int r, uint32_t s) {
  return flag_at(c, r, reduced_offset(c.layout, s));
}
__device__ __forceinline__ uint64_t *done(const Channel &c, int r, uint32_t s) {
  return flag_at(c, r, done_offset(c.layout, s));
}
__device__ __forceinline__ uint64_t *ack(const Channel &c, int r) { return flag_at(c, r, kAckOffset); }
__device__ __forceinline__ char *stage(const Channel &c, int r, uint32_t s) {
  return rank_base(c, r) + ring_offset(c.layout) + s * c.layout.stage_bytes;
}
// Line `u` of rank r's LL half for epoch e.
__device__ __forceinline__ uint4 *ll_line(const Channel &c, int r, uint64_t e, uint64_t u) {
  char *half = rank_base(c, r) + ll_offset(c.layout) + (e & 1) * ll_half_bytes(c.layout);
  return reinterpret_cast<uint4 *>(half) + u;
}

// ---- Failure ---------------------------------------------------------------

__device__ __forceinline__ bool aborted(const Channel &c) {
  return *reinterpret_cast<const volatile uint64_t *>(c.seg + kAbortOffset) != 0;
}

// The first failed wait of this rank is recorded for its watchdog; the
// abort word then stops every rank's kernels.
static __device__ __noinline__ void record_timeout(const Channel &c, int peer, int32_t coll, uint64_t tag) {
  volatile ErrorRecord *e = reinterpret_cast<volatile ErrorRecord *>(rank_base(c, c.rank) + kErrorOffset);
  if (e->error == kErrorNone) {
    e->waited_rank = peer;
    e->coll = coll;
    e->tag = tag;
    __threadfence_system();
    e->error = kErrorTimeout;
  }
  __threadfence_system();
  *reinterpret_cast<volatile uint64_t *>(c.seg + kAbortOffset) = 1 + static_cast<uint64_t>(c.rank);
  __threadfence_system();
}

// Whether the abort word is set, read by one lane of the warp's waiting
// threads for all of them. Every read of it is a PCIe round trip to one
// and the same host word, and such reads from many warps appear to queue
// behind each other: when every LL wait read it at its first failed poll,
// the first GPU run's LL latency grew ~0.5 us per polling warp (+2.3 us
// per KiB, 76 us at 32 KiB).
__device__ __forceinline__ bool warp_aborted(const Channel &c) {
  const unsigned active = __activemask();
  const int leader = __ffs(active) - 1;
  int seen = 0;
  if (static_cast<int>(threadIdx.x & 31) == leader) seen = aborted(c);
  return __shfl_sync(active, seen, leader) != 0;
}

// The slow path of every wait: true when the wait must give up. The clock
// (globaltimer, on the SM) is cheap and checked at once; the abort word
// only after c.abort_check_ns of waiting and then every abort_check_ns, so
// a wait that ends in microseconds never reads it.
struct Patience {
  uint64_t started = 0;
  uint64_t next_abort = 0;
  __device__ __forceinline__ bool give_up(const Channel &c, int peer, int32_t coll, uint64_t tag) {
    const uint64_t now = global_timer_ns();
    if (started == 0) started = now, next_abort = now + c.abort_check_ns;
    if (now >= next_abort) {
      next_abort = now + c.abort_check_ns;
      if (warp_aborted(c)) return true;
    }
    if (c.timeout_ns < 0 || now - started <= static_cast<uint64_t>(c.timeout_ns)) return false;
    record_timeout(c, peer, coll, tag);
    return true;
  }
};

// One thread waits until *flag (without kSkip) >= want; *seen gets it.
__device__ __forceinline__ bool wait_flag(const Channel &c, const uint64_t *flag, uint64_t want, int peer,
                                          int32_t coll, uint64_t tag, uint64_t *seen) {
  Patience patience;
  for (uint32_t spin = 1;; ++spin) {
    const uint64_t v = ld_acquire_sys(flag);
    if ((v & ~kSkip) >= want) {
      *seen = v;
      return true;
    }
    if ((spin & (kCheckSpins - 1)) == 1 && patience.give_up(c, peer, coll, tag)) return false;
  }
}

// The block waits for the ranks in `mask` (thread t for rank t): true when
// all arrived. *skips gets the ranks whose flag carried kSkip.
template <class FlagOf>
__device__ bool wait_ranks(const Channel &c, uint32_t mask, uint64_t want, FlagOf flag_of, int32_t coll,
                           uint64_t tag, uint32_t *skips) {
  __shared__ uint32_t skip_bits;
  if (threadIdx.x == 0) skip_bits = 0;
  __syncthreads();
  bool failed = false;
  const int t = threadIdx.x;
  if (t < c.nranks && ((mask >> t) & 1u)) {
    uint64_t seen = 0;
    failed = !wait_flag(c, flag_of(t), want, t, coll, tag, &seen);
    if (!failed && (seen & kSkip)) atomicOr(&skip_bits, 1u << t);
  }
  const bool ok = __syncthreads_or(failed) == 0;
  *skips = skip_bits;
  __syncthreads();  // everyone has read skip_bits before the next wait clears it
  return ok;
}

__device__ __forceinline__ uint32_t peers_mask(const Channel &c) {
  return ((c.nranks >= 32 ? 0u : (1u << c.nranks)) - 1u) & ~(1u << c.rank);
}

// After the block's writes (or reads): everything visible, then the flag.
__device__ __forceinline__ void publish(uint64_t *flag, uint64_t value) {
  __syncthreads();
  if (threadIdx.x != 0) return;
  __threadfence_system();
  st_release_sys(flag, value);
}

// ---- Counters --------------------------------------------------------------

// Every block reads the counter first; the last block to finish stores the
// next value, so the next launch on this rank (or graph replay) goes on.
__device__ __forceinline__ uint64_t read_counter(const unsigned long long *counter) {
  __shared__ uint64_t value;
  if (threadIdx.x == 0) value = *reinterpret_cast<const volatile unsigned long long *>(counter);
  __syncthreads();
  const uint64_t v = value;
  __syncthreads();  // every thread has it before a second call (one variable) overwrites it
  return v;
}

// True in thread 0 of the last block to finish the launch.
__device__ __forceinline__ bool last_block(State *s) {
  __syncthreads();
  if (threadIdx.x != 0) return false;
  __threadfence();
  if (atomicAdd(&s->blocks_done, 1u) != gridDim.x - 1) return false;
  s->blocks_done = 0;
  return true;
}

__device__ __forceinline__ void end_steps(const Channel &c, uint64_t next) {
  if (!last_block(c.state)) return;
  *reinterpret_cast<volatile unsigned long long *>(&c.state->step) = next;
  __threadfence();
}

// Step n may overwrite stage n % S once every peer has read step n - S;
// with `self`, once this rank's own blocks have too (the CPU helper's path,
// where a rank reads its own stage back).
__device__ __forceinline__ bool wait_stage_free(const Channel &c, uint64_t n, int32_t coll, bool self = false) {
  const uint32_t S = c.layout.stages;
  if (n < S) return true;
  uint32_t skips = 0;
  const uint32_t mask = peers_mask(c) | (self ? 1u << c.rank : 0u);
  return wait_ranks(c, mask, n + 1 - S, [&](int q) { return done(c, q, n % S); }, coll, n, &skips);
}

// ---- Wire types ------------------------------------------------------------

// The element itself on the wire.
template <class E>
struct WireSame {
  using Wt = typename E::S;
  using A = typename E::A;
  static __device__ __forceinline__ Wt encode(typename E::S x) { return x; }
  static __device__ __forceinline__ A decode(Wt w) { return E::load(w); }
  static __device__ __forceinline__ Wt round(A a) { return E::store(a); }
  static __device__ __forceinline__ typename E::S output(Wt w) { return w; }
};

// float32 as bfloat16 (round to nearest even, canonical NaN) or float16.
template <class H>
struct WireHalf {
  using Wt = uint16_t;
  using A = float;
  static __device__ __forceinline__ Wt encode(float x) { return H::store(x); }
  static __device__ __forceinline__ A decode(Wt w) { return H::load(w); }
  static __device__ __forceinline__ Wt round(A a) { return H::store(a); }
  static __device__ __forceinline__ float output(Wt w) { return H::load(w); }
};

// The identity of Op in the accumulation type: combining with it changes
// no bits (-0.0 for sums, so -0.0 + -0.0 stays -0.0).
template <int Op, class A>
__device__ __forceinline__ A identity() {
  if constexpr (Op == PLX_PROD) return A(1);
  if constexpr (std::is_floating_point_v<A>) {
    const A inf = sizeof(A) == 4 ? A(__uint_as_float(0x7F800000u)) : A(__longlong_as_double(0x7FF0000000000000ll));
    if constexpr (Op == PLX_MIN) return inf;
    else if constexpr (Op == PLX_MAX) return -inf;
    else return -A(0);
  } else {
    if constexpr (Op == PLX_MIN) return std::numeric_limits<A>::max();
    else if constexpr (Op == PLX_MAX) return std::numeric_limits<A>::lowest();
    else return A(0);
  }
}

// Calls f.template run<E, W, Op>() for a runtime dtype, wire and op.
template <class F, class W0>
struct WithWire {
  const F &f;
  template <class E, int Op>
  cudaError_t run() const {
    if constexpr (std::is_same_v<W0, void>) return f.template run<E, WireSame<E>, Op>();
    else return f.template run<E, W0, Op>();
  }
};

template <class F>
cudaError_t with_wire(int32_t dtype, int32_t wire, int32_t op, const F &f) {
  using kernels::device::BFloat16Elem;
  using kernels::device::FloatElem;
  using kernels::device::HalfElem;
  if (wire == dtype) return kernels::device::with_types(dtype, op, WithWire<F, void>{f});
  if (dtype != PLX_FLOAT32) return cudaErrorInvalidValue;
  if (wire == PLX_BFLOAT16)
    return kernels::device::with_op<FloatElem<float>>(op, WithWire<F, WireHalf<BFloat16Elem>>{f});
  if (wire == PLX_FLOAT16)
    return kernels::device::with_op<FloatElem<float>>(op, WithWire<F, WireHalf<HalfElem>>{f});
  return cudaErrorInvalidValue;
}

// ---- Packs -----------------------------------------------------------------

// P elements of T from device memory: 16-byte vectors when aligned.
template <class T, int P>
__device__ __forceinline__ void load_dev(T (&v)[P], const T *src, bool aligned) {
  static_assert((P * sizeof(T)) % 16 == 0 || P * sizeof(T) == 8, "whole vectors");
  if (aligned && (P * sizeof(T)) % 16 == 0) {
#pragma unroll
    for (int j = 0; j < static_cast<int>(P * sizeof(T) / 16); ++j)
      reinterpret_cast<uint4 *>(v)[j] = reinterpret_cast<const uint4 *>(src)[j];
  } else {
#pragma unroll
    for (int j = 0; j < P; ++j) v[j] = src[j];
  }
}

template <class T, int P>
__device__ __forceinline__ void store_dev(T *dst, const T (&v)[P], bool aligned) {
  if (aligned && (P * sizeof(T)) % 16 == 0) {
#pragma unroll
    for (int j = 0; j < static_cast<int>(P * sizeof(T) / 16); ++j)
      reinterpret_cast<uint4 *>(dst)[j] = reinterpret_cast<const uint4 *>(v)[j];
  } else {
#pragma unroll
    for (int j = 0; j < P; ++j) dst[j] = v[j];
  }
}

// 16 bytes of host memory (a stage), past every cache.
template <class T, int P>
__device__ __forceinline__ void load_host(T (&v)[P], const T *src) {
  static_assert(P * sizeof(T) == 16, "one vector");
  reinterpret_cast<uint4 *>(v)[0] = __ldcv(reinterpret_cast<const uint4 *>(src));
}

template <class T, int P>
__device__ __forceinline__ void store_host(T *dst, const T (&v)[P]) {
  static_assert(P * sizeof(T) == 16, "one vector");
  *reinterpret_cast<uint4 *>(dst) = reinterpret_cast<const uint4 *>(v)[0];
}

__device__ __forceinline__ bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Byte copies between device memory (any alignment) and a 16-byte aligned
// stage: the host side always moves whole vectors, the slow part of PCIe.
__device__ __forceinline__ void copy_to_host(char *host, const char *dev, uint64_t n) {
  const uint64_t vecs = n / 16;
  const bool aligned = aligned16(dev);
  for (uint64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
    uint4 v;
    if (aligned) v = reinterpret_cast<const uint4 *>(dev)[i];
    else
      for (int j = 0; j < 16; ++j) reinterpret_cast<char *>(&v)[j] = dev[i * 16 + j];
    reinterpret_cast<uint4 *>(host)[i] = v;
  }
  for (uint64_t i = vecs * 16 + threadIdx.x; i < n; i += blockDim.x) host[i] = dev[i];
}

__device__ __forceinline__ void store16(char *dev, uint4 v, bool aligned) {
  if (aligned) *reinterpret_cast<uint4 *>(dev) = v;
  else
    for (int j = 0; j < 16; ++j) dev[j] = reinterpret_cast<const char *>(&v)[j];
}

// Two 16-byte loads in flight per thread: a read of host memory takes
// microseconds over PCIe.
__device__ __forceinline__ void copy_from_host(char *dev, const char *host, uint64_t n) {
  const uint64_t vecs = n / 16, stride = blockDim.x;
  const bool aligned = aligned16(dev);
  const auto *src = reinterpret_cast<const uint4 *>(host);
  for (uint64_t i = threadIdx.x; i < vecs; i += 2 * stride) {
    const bool two = i + stride < vecs;
    const uint4 v0 = __ldcv(src + i);
    const uint4 v1 = two ? __ldcv(src + i + stride) : v0;
    store16(dev + i * 16, v0, aligned);
    if (two) store16(dev + (i + stride) * 16, v1, aligned);
  }
  for (uint64_t i = vecs * 16 + threadIdx.x; i < n; i += blockDim.x)
    dev[i] = *reinterpret_cast<const volatile char *>(host + i);
}

// Device to device (a rank's own part of an all-gather or gather).
__device__ __forceinline__ void copy_dev(char *dst, const char *src, uint64_t n) {
  if (dst == src) return;
  kernels::device::copy_bytes(dst, src, n, false);
}

}  // namespace plexus::kernels::pinned::device

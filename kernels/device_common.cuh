// Device-side pieces every kernel family shares: the exchange block's
// layout, the epoch counter, signals and bounded waits, byte copies. The
// protocol is described in kernels.hpp.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "kernels/kernels.hpp"
#include "kernels/launch.cuh"

namespace plexus::kernels::device {

__device__ __forceinline__ uint64_t ld_acquire_sys(const uint64_t *p) {
  uint64_t v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void st_release_sys(uint64_t *p, uint64_t v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

__device__ __forceinline__ uint64_t ld_acquire_gpu(const uint64_t *p) {
  uint64_t v;
  asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void st_release_gpu(uint64_t *p, uint64_t v) {
  asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

__device__ __forceinline__ uint64_t global_timer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint64_t *flags_of(char *block) { return reinterpret_cast<uint64_t *>(block); }

__device__ __forceinline__ DeviceState *state_of(char *block) {
  return reinterpret_cast<DeviceState *>(block + kFlagsBytes);
}

// The posts of epoch's parity in `block` (posts[src] written by rank src).
__device__ __forceinline__ OutputPost *posts_of(char *block, uint64_t epoch) {
  return reinterpret_cast<OutputPost *>(block + kPostsOffset) + (epoch & 1) * kMaxRanks;
}

// This rank's table of the peers' registrations, written by its host.
__device__ __forceinline__ const RegSlot *reg_slots_of(const char *block) {
  return reinterpret_cast<const RegSlot *>(block + kRegTableOffset);
}

// The k-th rank this rank moves bulk data to or from (k = 0: itself, then
// the next ranks up, wrapping). With every rank starting at its successor,
// each GPU receives from one peer at a time; a loop from rank 0 up would
// have every rank write (or read) rank 0 first, three to one on 4 GPUs,
// while the other links idle. Reductions still add in rank order.
__device__ __forceinline__ int rotated_peer(const Peers &p, int k) { return (p.rank + k) % p.nranks; }

__device__ __forceinline__ char *half_of(const Peers &p, int rank, uint64_t epoch) {
  return p.block[rank] + kHeaderBytes + (epoch & 1) * half_bytes(p.nranks, p.ll_slot_bytes, p.slot_bytes);
}

// The input area (result = false) or the result area of epoch's half.
__device__ __forceinline__ char *area(const Peers &p, int rank, uint64_t epoch, bool result) {
  return half_of(p, rank, epoch) + 2 * p.nranks * p.ll_slot_bytes + (result ? p.slot_bytes : 0);
}

// Rank `rank`'s LL128 slot that rank `src` writes, in epoch's half.
__device__ __forceinline__ uint4 *ll128_slot(const Peers &p, int rank, uint64_t epoch, int src) {
  return reinterpret_cast<uint4 *>(half_of(p, rank, epoch) + (p.nranks + src) * p.ll_slot_bytes);
}

// Rank `rank`'s LL slot that rank `src` writes, in epoch's half.
__device__ __forceinline__ uint4 *ll_slot(const Peers &p, int rank, uint64_t epoch, int src) {
  return reinterpret_cast<uint4 *>(half_of(p, rank, epoch) + src * p.ll_slot_bytes);
}

__device__ __forceinline__ void st_volatile_v4(uint4 *p, uint4 v) {
  asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z),
               "r"(v.w) : "memory");
}

__device__ __forceinline__ uint4 ld_volatile_v4(const uint4 *p) {
  uint4 v;
  asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z),
               "=r"(v.w) : "l"(p) : "memory");
  return v;
}

// Programmatic dependent launch (Peers::dependent_launch): a grid may start
// while the previous kernel on its stream still runs, and waits here for
// that kernel's end and memory before it reads the epoch or any input.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel on the stream start (its blocks then wait in
// wait_for_previous_grid) once every block of this one has called it or
// exited. Called after a block's last wait: from there it needs no peer, so
// the early grid's SM slots cannot keep a peer's kernel, or another
// communicator's, from running. (Calling it at the start measured no
// faster on 2 H200: 1.1-1.2 us saved per launch either way.)
__device__ __forceinline__ void let_next_grid_start(const Peers &p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (p.dependent_launch) asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// Every block calls this first: the epoch of this launch.
__device__ __forceinline__ uint64_t begin_epoch(const Peers &p) {
  wait_for_previous_grid();
  __shared__ uint64_t epoch;
  if (threadIdx.x == 0) {
    const volatile unsigned long long *e = &state_of(p.block[p.rank])->epoch;
    epoch = *e + 1;
  }
  __syncthreads();
  return epoch;
}

// Every block calls this last (also after a failed wait): the last block to
// finish stores the epoch back for the next launch on this rank. No fence:
// the next launch on the stream sees this kernel's writes anyway.
__device__ __forceinline__ void end_epoch(const Peers &p, uint64_t epoch) {
  let_next_grid_start(p);
  __syncthreads();
  if (threadIdx.x != 0) return;
  DeviceState *s = state_of(p.block[p.rank]);
  if (atomicAdd(&s->blocks_done, 1u) == gridDim.x - 1) {
    s->blocks_done = 0;
    *reinterpret_cast<volatile unsigned long long *>(&s->epoch) = epoch;
  }
}

// The value a block signals for `step` of the launch at `epoch`. Steps stay
// below kStepsPerEpoch, so values grow across launches and steps alike:
// waits test >=, and a flag is never reset (no reset can race a reader).
constexpr uint64_t kStepsPerEpoch = 16;
__device__ __forceinline__ uint64_t signal_value(uint64_t epoch, uint32_t step) {
  return epoch * kStepsPerEpoch + step;
}

// Data written by this block (into peers' memory too), then `value` in
// flags[blockIdx.x][rank] of every peer, one thread per peer: the barrier
// orders the block's writes before the sys-scope release store, so a peer
// whose acquire load sees the flag sees the data.
__device__ __forceinline__ void signal_peers(const Peers &p, uint64_t value) {
  __syncthreads();
  const int t = threadIdx.x;
  if (t < p.nranks && t != p.rank) st_release_sys(flags_of(p.block[t]) + blockIdx.x * kMaxRanks + p.rank, value);
}

__device__ __forceinline__ bool must_stop(const Control *c) {
  const volatile Control *v = c;
  return v->host_abort != 0 || v->error != kErrorNone;
}

// The first error of this rank's kernels (kErrorTimeout, kErrorRegistry)
// and the peer it concerns, for the watchdog.
static __device__ __noinline__ void record_error(Control *c, uint32_t error, int peer, int32_t coll,
                                                 uint64_t epoch) {
  volatile Control *v = c;
  if (v->error != kErrorNone) return;
  v->waited_rank = peer;
  v->coll = coll;
  v->epoch = epoch;
  __threadfence_system();
  v->error = error;
  __threadfence_system();
}

// A wait's check, every 1024 spins: false (give up) after a host abort or
// another block's error, or past the deadline (timeout_ns after the wait's
// first check), which it records naming `peer`.
__device__ __forceinline__ bool keep_waiting(const Peers &p, uint32_t spin, uint64_t *started, int peer, int32_t coll,
                                             uint64_t epoch) {
  if ((spin & 1023u) != 0) return true;
  if (must_stop(p.control)) return false;
  if (p.timeout_ns < 0) return true;
  const uint64_t now = global_timer_ns();
  if (*started == 0) *started = now;
  if (now - *started <= static_cast<uint64_t>(p.timeout_ns)) return true;
  record_error(p.control, kErrorTimeout, peer, coll, epoch);
  return false;
}

// Thread t < nranks (t != rank) waits until flags[block][t] >= value (what
// rank t's block `block` signalled); true for the whole block when every
// peer arrived, false when a wait gave up (deadline, host abort, or another
// block's error).
__device__ __forceinline__ bool wait_peers_of(const Peers &p, unsigned block, uint64_t value, int32_t coll,
                                              uint64_t epoch) {
  bool failed = false;
  const int t = threadIdx.x;
  if (t < p.nranks && t != p.rank) {
    const uint64_t *flag = flags_of(p.block[p.rank]) + block * kMaxRanks + t;
    uint64_t started = 0;
    for (uint32_t spin = 1; !failed && ld_acquire_sys(flag) < value; ++spin)
      failed = !keep_waiting(p, spin, &started, t, coll, epoch);
  }
  return __syncthreads_or(failed) == 0;
}

// The same for this block's own index.
__device__ __forceinline__ bool wait_peers(const Peers &p, uint64_t value, int32_t coll, uint64_t epoch) {
  return wait_peers_of(p, blockIdx.x, value, coll, epoch);
}

// Copies n bytes with the block's threads: 16-byte vectors when both ends
// are aligned (four loads in flight per thread, so that reads of a peer's
// memory over NVLink are not one round trip at a time), else bytes.
// `volatile_src` reads past L1 (a peer's memory, or ours that a peer wrote).
__device__ __forceinline__ void copy_bytes(char *dst, const char *src, uint64_t n, bool volatile_src) {
  const bool aligned = ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) & 15) == 0;
  uint64_t done = 0;
  if (aligned) {
    const uint64_t vecs = n / 16, step = blockDim.x;
    auto *d = reinterpret_cast<uint4 *>(dst);
    const auto *s = reinterpret_cast<const uint4 *>(src);
    uint64_t i = threadIdx.x;
    for (; i + 3 * step < vecs; i += 4 * step) {
      uint4 v[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) v[k] = volatile_src ? __ldcv(s + i + k * step) : s[i + k * step];
#pragma unroll
      for (int k = 0; k < 4; ++k) d[i + k * step] = v[k];
    }
    for (; i < vecs; i += step) d[i] = volatile_src ? __ldcv(s + i) : s[i];
    done = vecs * 16;
  }
  for (uint64_t i = done + threadIdx.x; i < n; i += blockDim.x)
    dst[i] = volatile_src ? *reinterpret_cast<const volatile char *>(src + i) : src[i];
}

// Launches kernel<<<blocks, threads>>>(args...) on stream, with
// programmatic stream serialization when p.dependent_launch.
template <class... Expected, class... Actual>
cudaError_t launch(void (*kernel)(Expected...), unsigned blocks, unsigned threads, const Peers &p,
                   cudaStream_t stream, Actual &&...args) {
  return launch_kernel(kernel, blocks, threads, p.dependent_launch != 0, stream, std::forward<Actual>(args)...);
}

}  // namespace plexus::kernels::device

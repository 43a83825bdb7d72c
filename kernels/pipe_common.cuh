// Device pieces of the pipelined kernels (ring.cu, tree.cu): FIFO channels
// between neighbours with ready/ack counters (kernels/pipe.hpp), bounded
// waits on them, and 16-byte vectors in storage or accumulator form.
#pragma once

#include "kernels/device_common.cuh"
#include "kernels/pipe.hpp"
#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"

namespace plexus::kernels::device::pipe {

__device__ __forceinline__ uint64_t *counter(char *block, uint64_t offset, int peer) {
  return reinterpret_cast<uint64_t *>(block + offset) + blockIdx.x * kMaxRanks + peer;
}

// One direction of a link, seen from this block: the receiver's FIFO for
// (sender, block) in the epoch's half, its ready counter for the sender,
// and the sender's ack counter for the receiver.
struct Channel {
  uint4 *fifo = nullptr;
  uint64_t *ready = nullptr;
  uint64_t *ack = nullptr;
  int peer = -1;  // the rank at the other end
};

__device__ __forceinline__ Channel channel(const Peers &p, const PipeArgs &a, uint64_t epoch, int from, int to) {
  Channel c;
  const uint64_t at = fifo_offset(p.slot_bytes, p.nranks, from, blockIdx.x, a.fifo_slot_bytes);
  c.fifo = reinterpret_cast<uint4 *>(area(p, to, epoch, false) + at);
  c.ready = counter(p.block[to], kReadyOffset, from);
  c.ack = counter(p.block[from], kAckOffset, to);
  c.peer = from == p.rank ? to : from;
  return c;
}

// Message m's slot.
__device__ __forceinline__ uint4 *slot(const Channel &c, const PipeArgs &a, uint64_t m) {
  return c.fifo + (m % kFifoSlots) * (a.fifo_slot_bytes / 16);
}

// One thread spins until *at >= value, with the pattern of wait_peers:
// every 1024 spins the abort words and the deadline; a timeout is recorded
// naming `peer`. False when it gave up.
static __device__ __noinline__ bool spin_until(const Peers &p, const uint64_t *at, uint64_t value, int peer, int32_t coll,
                                               uint64_t epoch) {
  uint64_t started = 0;
  for (uint32_t spin = 1; ld_acquire_sys(at) < value; ++spin)
    if (!keep_waiting(p, spin, &started, peer, coll, epoch)) return false;
  return true;
}

// The block's waits of one step, one thread each (`mine`); true for the
// whole block when all arrived. The barrier also orders the acquire before
// every thread's reads of the slot, and the acked reads before its writes.
__device__ __forceinline__ bool block_wait(bool failed) { return __syncthreads_or(failed) == 0; }

// Message m written into the receiver's slot: data first (the barrier),
// then the release of its ready counter.
__device__ __forceinline__ void post(const Channel &c, uint64_t epoch, uint64_t m) {
  st_release_sys(c.ready, tag(epoch, m + 1));
}

// Message m read out of this rank's slot: the sender may write it again.
__device__ __forceinline__ void consumed(const Channel &c, uint64_t epoch, uint64_t m) {
  st_release_sys(c.ack, tag(epoch, m + 1));
}

// Waits a receiver does before reading message m, and a sender before
// writing message m (the slot's previous message acked).
__device__ __forceinline__ bool wait_ready(const Peers &p, const Channel &c, uint64_t epoch, uint64_t m, int32_t coll) {
  return spin_until(p, c.ready, tag(epoch, m + 1), c.peer, coll, epoch);
}
__device__ __forceinline__ bool wait_credit(const Peers &p, const Channel &c, uint64_t epoch, uint64_t m, int32_t coll) {
  return m < kFifoSlots || spin_until(p, c.ack, tag(epoch, m + 1 - kFifoSlots), c.peer, coll, epoch);
}

// The accumulators of one storage vector (V elements); on the wire as W
// uint4 (2 for float16/bfloat16, whose accumulator is float32: partial sums
// travel unrounded, so the result is rounded once), else 1.
template <class E, int Op>
struct Acc {
  using S = typename E::S;
  using A = typename E::A;
  static constexpr int V = 16 / sizeof(S);
  static constexpr int W = sizeof(A) / sizeof(S);
  union Wire {
    uint4 v[W];
    A a[V];
  };
  A acc[V];

  __device__ __forceinline__ void set(uint4 v) {
    Vec<S> x;
    x.v = v;
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = E::load(x.e[j]);
  }
  __device__ __forceinline__ void add(uint4 v) {
    Vec<S> x;
    x.v = v;
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = combine<Op>(acc[j], E::load(x.e[j]));
  }
  // The partial at wire vector i (read past L1: a peer wrote it).
  __device__ __forceinline__ void set_wire(const uint4 *w, uint64_t i) {
    Wire x;
#pragma unroll
    for (int k = 0; k < W; ++k) x.v[k] = __ldcv(w + i * W + k);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = x.a[j];
  }
  __device__ __forceinline__ void add_wire(const uint4 *w, uint64_t i) {
    Wire x;
#pragma unroll
    for (int k = 0; k < W; ++k) x.v[k] = __ldcv(w + i * W + k);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = combine<Op>(acc[j], x.a[j]);
  }
  __device__ __forceinline__ void put_wire(uint4 *w, uint64_t i) const {
    Wire x;
#pragma unroll
    for (int j = 0; j < V; ++j) x.a[j] = acc[j];
#pragma unroll
    for (int k = 0; k < W; ++k) w[i * W + k] = x.v[k];
  }
  __device__ __forceinline__ uint4 result(int nranks) const {
    Vec<S> x;
#pragma unroll
    for (int j = 0; j < V; ++j) x.e[j] = E::store(finish<Op>(acc[j], nranks));
    return x.v;
  }
};

}  // namespace plexus::kernels::device::pipe

// Probe kernels of plexus-bench-launch: what one kernel launch and one
// NVLink crossing cost on this machine, the floor under every collective
// kernel (docs/performance.md). Plain C++, no CUDA syntax.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace plexus::kernels::probe {

// An empty kernel of `blocks` x `threads` (<<<>>>, as the plugins launch).
// `dependent`: cudaLaunchKernelEx, launched with
// programmatic stream serialization (PDL, sm_90+), so it may start before
// the previous kernel on the stream ends; it waits for it (griddepcontrol)
// before returning and lets its own successor start early.
cudaError_t launch_empty(unsigned blocks, unsigned threads, bool dependent, cudaStream_t stream);

// One side of a ping-pong between two GPUs: `mine` in this GPU's memory,
// `theirs` the peer's (peer-mapped). The `serves` side waits for each
// value and answers it; the other sends first. After `rounds` round trips
// both return: round-trip time / 2 is the one-way latency of a store.
cudaError_t launch_ping(volatile uint64_t *mine, volatile uint64_t *theirs, int rounds, bool serves,
                        cudaStream_t stream);

// Copies `bytes` from srcs[k] to dsts[k] for k in [0, count) with `blocks`
// blocks of 512 threads, 16-byte loads and stores, four loads in flight
// per thread; block b copies its share of every pair in turn, as the
// two-shot's phase 1 does. A peer-mapped dst makes it a push over NVLink
// (stores), a peer-mapped src a pull (loads). Every pointer and bytes
// 16-byte aligned.
constexpr int kMaxCopyPairs = 8;
cudaError_t launch_copies(const void *const *srcs, void *const *dsts, int count, uint64_t bytes, unsigned blocks,
                          cudaStream_t stream);

// dst = srcs[0] + ... + srcs[count - 1], `bytes` of bfloat16 each, summed
// in float32 in that order and rounded once, by `blocks` blocks of 512
// threads over 16-byte vectors. Every pointer and bytes 16-byte aligned.
cudaError_t launch_sum_bf16(const void *const *srcs, int count, void *dst, uint64_t bytes, unsigned blocks,
                            cudaStream_t stream);

}  // namespace plexus::kernels::probe

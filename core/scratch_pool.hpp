// A stream-ordered CUDA memory pool for the blocks a plugin allocates and
// frees around its kernels on the caller's stream (cudaMallocFromPoolAsync
// and cudaFreeAsync; inside a graph capture they become the graph's
// allocation and free nodes): the nccl plugin's half-type and wire-dtype
// blocks, p2p-tree's wire-dtype blocks. Made on first use on the
// communicator's device; keeps what it has between calls, because a decode
// loop reuses the same sizes, and memory given back at every
// synchronisation would be mapped again each time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "plexus/types.h"

namespace plexus::core {

class ScratchPool {
 public:
  explicit ScratchPool(int device) : device_(device) {}
  // Destroys the pool; blocks still in flight are released when their frees run.
  ~ScratchPool();
  ScratchPool(const ScratchPool &) = delete;
  ScratchPool &operator=(const ScratchPool &) = delete;

  // The pool, made on the first call; PLX_ERR_DEVICE when CUDA refuses.
  plx_status get(cudaMemPool_t *out);
  // Gives the unused memory back (plx_mem_trim); the bytes released.
  uint64_t trim();

 private:
  int device_;
  cudaMemPool_t pool_ = nullptr;
};

}  // namespace plexus::core

// The device-memory pool of the CUDA plugins: HostPool's allocator (size
// classes with per-thread caches, best fit with coalescing, statistics per
// tag, defragment and trim that never move a live block) over segments of
// device memory from cudaMalloc or CUDA's virtual memory API. Segments,
// never single blocks, are exported to peers: a block travels as (segment
// export, offset). No call on the allocate/free hot path touches the device
// or synchronises; only growing (a new segment) and releasing do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/host_pool.hpp"
#include "plexus/types.h"

namespace plexus::core {

enum class DeviceMemoryApi {
  cuda_malloc,  // cudaMalloc segments, legacy CUDA IPC handles
  vmm,          // cuMemCreate + cuMemMap segments, POSIX fd handles
};

struct DevicePoolConfig {
  int device = -1;             // CUDA ordinal; -1 = the current device
  DeviceMemoryApi api = DeviceMemoryApi::cuda_malloc;
  size_t min_segment_bytes = size_t{32} << 20;
  size_t max_bytes = 0;        // budget on reserved bytes; 0 = the device's memory
  double defrag_threshold = 0.30;
  size_t cache_max_block_bytes = size_t{1} << 20;
};

// What a peer needs to map the segment holding a block: opaque bytes (a
// cudaIpcMemHandle_t, or VMM metadata with an fd sent alongside), the
// segment's size and the block's offset in it.
struct DeviceSegmentExport {
  uint64_t segment_id = 0;     // unique within the exporting pool
  uint64_t segment_bytes = 0;
  uint64_t offset = 0;         // of the block inside the segment
  DeviceMemoryApi api = DeviceMemoryApi::cuda_malloc;
  int fd = -1;                 // vmm: owned by the caller, send with SCM_RIGHTS
  unsigned char handle[64] = {};  // cuda_malloc: the cudaIpcMemHandle_t
};

class DevicePool {
 public:
  // UNSUPPORTED without a CUDA device; for vmm, also when the device cannot
  // make POSIX-fd-shareable memory (the caller may retry with cuda_malloc).
  static plx_status create(const DevicePoolConfig &config, std::unique_ptr<DevicePool> *out);
  ~DevicePool();  // frees every segment; callers synchronise their streams first

  // Host bookkeeping only, no CUDA call, unless the pool must grow (a new
  // segment: cudaMalloc, or cuMemCreate + map). Blocks are >= 256-byte
  // aligned; `alignment` (a power of two, 0 = 256) may ask for more.
  plx_status allocate(size_t bytes, size_t alignment, uint32_t tag, void **out);
  // Immediate, NOT stream-ordered: the block may be handed out again at
  // once. The caller makes sure no queued work (on any stream) still uses it
  // (record an event and wait for it, or synchronise the stream) -- the
  // contract of cudaFree without its implicit device synchronisation. No
  // CUDA call, except that an automatic defragmentation (fragmentation above
  // defrag_threshold with >= 64 MiB free, at most once a second) releases
  // whole free segments from inside free; set defrag_threshold >= 1 to keep
  // release to explicit defragment/trim calls. INVALID_ARGUMENT, with the
  // pool unchanged, for anything but the start of a live block.
  plx_status free(void *ptr);
  plx_status stats(uint32_t tag, plx_mem_stats *out) const;
  // Both give back only whole free segments (cached blocks are drained
  // first); a live block never moves. Releasing a VMM segment waits for the
  // device (cudaDeviceSynchronize) before unmapping it; cudaFree waits by
  // itself. defragment releases every whole free segment; trim releases
  // them, largest first, until reserved <= keep_bytes.
  plx_status defragment(uint64_t *released);
  plx_status trim(uint64_t keep_bytes, uint64_t *released);
  // From free device memory (cudaMemGetInfo): LOW under 30 % used, MEDIUM
  // to 80 %, HIGH above; against max_bytes when a budget is set.
  plx_pressure pressure() const;
  bool owns(const void *ptr) const;
  int device() const;
  DeviceMemoryApi api() const;
  // Segment sizes are multiples of this (the VMM granule, at least 2 MiB).
  size_t segment_granularity() const;

  // The export of the segment holding `ptr` (any byte of a live block).
  // Export once per segment and peer, not per message: a vmm export makes a
  // new fd each time (about 0.6 ms), which the caller sends and closes.
  // The exporter keeps the segment (frees no block of it that a peer uses)
  // until every importer has closed its ImportedSegment.
  plx_status export_segment(const void *ptr, DeviceSegmentExport *out);
  // HostPool::pin_segment: the segment holding ptr is never released
  // before the pool (a peer maps it through an export it cannot give back).
  plx_status pin_segment(const void *ptr);

 private:
  struct Impl;
  explicit DevicePool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A peer's segment mapped into this process, unmapped at destruction. Open
// each segment once and cache it: legacy IPC handles may be opened only
// once per context.
class ImportedSegment {
 public:
  // Takes ownership of exported.fd. `device` is where it is mapped (-1 =
  // current).
  static plx_status open(const DeviceSegmentExport &exported, int device,
                         std::unique_ptr<ImportedSegment> *out);
  ~ImportedSegment();
  void *base() const { return base_; }
  uint64_t bytes() const { return bytes_; }

 private:
  ImportedSegment() = default;
  void *base_ = nullptr;
  uint64_t bytes_ = 0;
  DeviceMemoryApi api_ = DeviceMemoryApi::cuda_malloc;
  uint64_t handle_ = 0;  // vmm: the CUmemGenericAllocationHandle
  int device_ = -1;
};

}  // namespace plexus::core

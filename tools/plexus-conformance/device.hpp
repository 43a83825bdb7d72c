// The CUDA the kit needs, behind an interface free of CUDA types:
// device_buffers.cpp implements it where the kit is built with CUDA
// (PLEXUS_CONFORMANCE_HAVE_CUDA), device_none.cpp everywhere else (every
// call then fails with "built without CUDA", and nothing plans for it).
// Streams are cudaStream_t passed as void *, as plexus.h passes them.
#pragma once

#include <cstdint>
#include <string>

#include "plexus/plexus.h"

namespace plexus::conformance::device {

// Whether this build of the kit has CUDA.
bool built();

// CUDA devices this process sees; 0 with *why set when none can be used.
int gpu_count(std::string *why);

// Makes `ordinal` this thread's current device (its primary context is
// created now, so later descriptor counts do not see it appear).
bool select(int ordinal, std::string *error);

// A new non-blocking stream of the current device; nullptr with *error set.
void *create_stream(std::string *error);
void destroy_stream(void *stream);

// Memory the kit owns: cudaMalloc (PLX_MEM_DEVICE) or portable
// cudaHostAlloc (PLX_MEM_PINNED_HOST). nullptr with *error set.
void *allocate(plx_mem_kind kind, uint64_t bytes, std::string *error);
// Frees it, unless `stream` still has work queued (a call that never
// finished): cudaFree would wait for that work, so the memory is left to the
// process's end instead. Returns false when it was left.
bool release(plx_mem_kind kind, void *ptr, void *stream);

// cudaMemcpyAsync (any direction) and cudaMemsetAsync on `stream`.
bool copy(void *dst, const void *src, uint64_t bytes, void *stream, std::string *error);
bool fill(void *dst, uint8_t value, uint64_t bytes, void *stream, std::string *error);

// cudaStreamQuery: 1 when all its work is done, 0 while some is pending,
// -1 when CUDA reports an error (*error set).
int query(void *stream, std::string *error);
// cudaStreamSynchronize; only for streams known to finish.
bool synchronize(void *stream, std::string *error);

}  // namespace plexus::conformance::device

// Copies whose destination bypasses the caches (non-temporal stores), for
// results of messages larger than the caches: an ordinary store first reads
// the destination line from memory (read for ownership), so a large copy
// costs two passes over DRAM for the destination; a streaming one costs one.
#pragma once

#include <cstddef>

namespace plexus::shm_native {

// memcpy(dst, src, bytes) with streaming stores where the CPU has them
// (x86-64: SSE2, always), ordinary memcpy elsewhere. Ends with a store fence,
// so the bytes are visible like ordinary stores once it returns.
void stream_copy(void *dst, const void *src, size_t bytes);

}  // namespace plexus::shm_native

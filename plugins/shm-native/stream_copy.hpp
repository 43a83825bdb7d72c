// Copies whose destination bypasses the caches (non-temporal stores), for
// results of messages larger than the caches: an ordinary store first reads
// the destination line from memory (read for ownership), so a large copy
// costs two passes over DRAM for the destination; a streaming one costs one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace plexus::shm_native {

// memcpy(dst, src, bytes) with streaming stores where the CPU has them
// (x86-64: SSE2, always), ordinary memcpy elsewhere. Ends with a store fence,
// so the bytes are visible like ordinary stores once it returns.
void stream_copy(void *dst, const void *src, size_t bytes);

// This CPU's vendor id from CPUID ("GenuineIntel", "AuthenticAMD", ...);
// empty where there is no CPUID.
std::string cpu_vendor();

// STREAM_MIN_BYTES "auto" (the default) on a CPU of this vendor: 12 MiB of
// messages in all on Intel, where streaming results mostly won (32 cores,
// 16 ranks, 8 MiB: 2.4-2.7 ms against 2.8-3.1; 16 cores, medians of 3-4
// alternating rounds: 4 and 8 ranks, 2-16 MiB, 8-59% faster; but 16 ranks,
// 1-4 MiB, 11-17% slower, and identical runs spread by +-20%); 1 GiB
// elsewhere: on AMD (the 2-core dev machine) it lost or tied at every size
// measured, 2-4 ranks up to 512 MiB in all (2 ranks, 8 MiB: 589-612 us
// against 458-483 without), and without CPUID stream_copy is a memcpy.
uint64_t auto_stream_min_bytes(std::string_view vendor);

}  // namespace plexus::shm_native

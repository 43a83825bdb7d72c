#include "plugins/shm-native/stream_copy.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <emmintrin.h>
#endif

namespace plexus::shm_native {

#if defined(__x86_64__)

// The head up to a 16-byte aligned destination and the tail go through
// memcpy; the body in 64-byte steps (one line of write-combining).
void stream_copy(void *dst, const void *src, size_t bytes) {
  auto *d = static_cast<uint8_t *>(dst);
  const auto *s = static_cast<const uint8_t *>(src);
  const size_t head = std::min(bytes, (16 - reinterpret_cast<uintptr_t>(d) % 16) % 16);
  std::memcpy(d, s, head);
  d += head, s += head, bytes -= head;
  for (; bytes >= 64; d += 64, s += 64, bytes -= 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i *>(d), a);
    _mm_stream_si128(reinterpret_cast<__m128i *>(d + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i *>(d + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i *>(d + 48), e);
  }
  std::memcpy(d, s, bytes);
  _mm_sfence();
}

#else

void stream_copy(void *dst, const void *src, size_t bytes) { std::memcpy(dst, src, bytes); }

#endif

std::string cpu_vendor() {
#if defined(__x86_64__)
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return {};
  char id[12];  // CPUID leaf 0 spells the vendor in EBX, EDX, ECX
  std::memcpy(id, &ebx, 4), std::memcpy(id + 4, &edx, 4), std::memcpy(id + 8, &ecx, 4);
  return std::string(id, sizeof(id));
#else
  return {};
#endif
}

uint64_t auto_stream_min_bytes(std::string_view vendor) {
  return vendor == "GenuineIntel" ? uint64_t{12} << 20 : uint64_t{1} << 30;
}

}  // namespace plexus::shm_native

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

bool can_demote() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 25));
  }();
  return has;
}

// The assembler's mnemonic needs no -mcldemote; the encoding is a reserved
// NOP on CPUs without it, and can_demote() keeps those out of the loop.
void demote_lines(const void *p, size_t bytes) {
  if (bytes == 0 || !can_demote()) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = first; line < end; line += 64)
    asm volatile("cldemote %0" : : "m"(*reinterpret_cast<const char *>(line)));
}

#else

void stream_copy(void *dst, const void *src, size_t bytes) { std::memcpy(dst, src, bytes); }
bool can_demote() { return false; }
void demote_lines(const void *, size_t) {}

#endif

}  // namespace plexus::shm_native

// stream_copy (stream_copy.hpp): the bytes of memcpy for every alignment of
// the destination's head and every tail length, and nothing written outside
// [dst, dst + bytes); STREAM_MIN_BYTES "auto" by CPU vendor.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "plugins/shm-native/stream_copy.hpp"

using plexus::shm_native::auto_stream_min_bytes;
using plexus::shm_native::cpu_vendor;
using plexus::shm_native::stream_copy;

TEST_CASE("ShmNative.StreamCopy.every_head_offset_and_tail_length_copies_exactly") {
  constexpr size_t guard = 64, largest = 4096 + 200;
  std::mt19937 rng(7);
  std::vector<uint8_t> src(largest + 64);
  for (uint8_t &b : src) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> dst(guard + largest + 64 + guard);
  for (size_t dst_offset = 0; dst_offset < 16; ++dst_offset)
    for (size_t src_offset : {size_t{0}, size_t{3}})
      for (size_t bytes : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{63}, size_t{64}, size_t{65},
                           size_t{127}, size_t{200}, size_t{4096}, largest}) {
        CAPTURE(dst_offset);
        CAPTURE(src_offset);
        CAPTURE(bytes);
        std::memset(dst.data(), 0xA5, dst.size());
        uint8_t *at = dst.data() + guard + dst_offset;
        stream_copy(at, src.data() + src_offset, bytes);
        CHECK(std::memcmp(at, src.data() + src_offset, bytes) == 0);
        bool outside_untouched = true;
        for (size_t i = 0; i < dst.size(); ++i)
          if ((dst.data() + i < at || dst.data() + i >= at + bytes) && dst[i] != 0xA5) outside_untouched = false;
        CHECK(outside_untouched);
      }
}

// Streaming stores from 12 MiB of messages on Intel, where they won; from
// 1 GiB elsewhere (AMD, where they lost; no CPUID: no streaming stores).
TEST_CASE("ShmNative.StreamCopy.auto_threshold_follows_the_cpu_vendor") {
  CHECK(auto_stream_min_bytes("GenuineIntel") == uint64_t{12} << 20);
  CHECK(auto_stream_min_bytes("AuthenticAMD") == uint64_t{1} << 30);
  CHECK(auto_stream_min_bytes("") == uint64_t{1} << 30);
#if defined(__x86_64__)
  const std::string vendor = cpu_vendor();
  CAPTURE(vendor);
  CHECK(vendor.size() == 12);
#endif
}

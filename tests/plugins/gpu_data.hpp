// What the GPU plugins' tests share about data: byte buffers, a
// non-blocking stream, random inputs that keep every reduction finite, the
// reference that core's scalar CPU reduction computes (the numerics the
// kernels promise bit for bit), and byte-for-byte comparison.
#pragma once

#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plexus/plexus.h"

namespace plexus::test {

using Bytes = std::vector<uint8_t>;

// What the shared checks do before every collective they launch: nothing,
// unless ranks that are threads on one GPU (p2p-tree's SHARED_GPU test) set
// a barrier here. A rank that synchronises the device (cudaFree, an upload)
// while a peer's kernel waits for this rank's kernel would wait forever; met
// before each launch, every rank has done its synchronising first.
inline std::function<void()> &before_collective() {
  static std::function<void()> hook;
  return hook;
}

inline void meet_peers() {
  if (before_collective()) before_collective()();
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess); }
  ~Stream() { cudaStreamDestroy(s); }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;
  void sync() const { REQUIRE(cudaStreamSynchronize(s) == cudaSuccess); }
};

// `count` elements from the generator seeded with `seed`: floats finite and
// of moderate size (products of 2-8 stay finite), any bits for integers.
inline Bytes random_input(uint64_t seed, plx_dtype dtype, uint64_t count) {
  std::mt19937_64 gen(seed);
  const size_t es = plx_dtype_size(dtype);
  Bytes v(count * es);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t r = gen();
    uint8_t *at = v.data() + i * es;
    if (dtype == PLX_FLOAT16) {
      const uint16_t h = uint16_t((r & 0x8000) | ((12 + (r >> 16) % 6) << 10) | ((r >> 24) & 0x3FF));
      std::memcpy(at, &h, 2);
    } else if (dtype == PLX_BFLOAT16) {
      const uint16_t b = uint16_t((r & 0x8000) | ((124 + (r >> 16) % 6) << 7) | ((r >> 24) & 0x7F));
      std::memcpy(at, &b, 2);
    } else if (dtype == PLX_FLOAT32) {
      const float f = static_cast<float>(static_cast<int64_t>(r % 2001) - 1000) / 256.0f;
      std::memcpy(at, &f, 4);
    } else if (dtype == PLX_FLOAT64) {
      const double d = static_cast<double>(static_cast<int64_t>(r % 200001) - 100000) / 4096.0;
      std::memcpy(at, &d, 8);
    } else {
      std::memcpy(at, &r, es);
    }
  }
  return v;
}

// An output's bytes before the call (no result ever looks like them).
inline Bytes poison_bytes(size_t n) { return Bytes(n, 0xA5); }

// A call's status, with the library's message when it is not PLX_OK.
inline void require_ok(plx_status s, const std::string &what) {
  INFO(what, ": ", std::string(plx_last_error()));
  REQUIRE(s == PLX_OK);
}

// Compares every byte; on a difference fails naming the first differing
// element (of `es` bytes) and `what`.
inline void check_same(const Bytes &got, const Bytes &want, size_t es, const std::string &what) {
  REQUIRE(got.size() == want.size());
  if (std::memcmp(got.data(), want.data(), got.size()) == 0) return;
  size_t i = 0;
  while (i < got.size() && got[i] == want[i]) ++i;
  FAIL(what, ": first differing element ", i / es, " (byte ", i, ") of ", got.size() / es);
}

// The inputs reduced in rank order by core's scalar path.
inline Bytes reference(plx_dtype dtype, plx_reduce_op op, const std::vector<Bytes> &inputs, uint64_t count) {
  Bytes out(count * plx_dtype_size(dtype));
  std::vector<const void *> srcs;
  for (const Bytes &b : inputs) srcs.push_back(b.data());
  REQUIRE(plexus::core::reduce_into(dtype, op, out.data(), srcs.data(), static_cast<int>(srcs.size()), count,
                                    plexus::core::CpuIsa::scalar) == PLX_OK);
  return out;
}

// float32 to bfloat16 or float16, round to nearest even (inputs are finite).
inline uint16_t narrow_to(plx_dtype wire, float f) {
  if (wire == PLX_FLOAT16) {
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    return bits;
  }
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline float widen_from(plx_dtype wire, uint16_t bits) {
  if (wire == PLX_FLOAT16) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
  }
  const uint32_t wide = uint32_t{bits} << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

// float32 inputs sent as `wire` (bfloat16 or float16): every input and the
// result rounded to it, accumulated in float32 in rank order.
inline Bytes wire_reference(plx_dtype wire, plx_reduce_op op, const std::vector<Bytes> &inputs, uint64_t count) {
  std::vector<Bytes> narrowed;
  for (const Bytes &in : inputs) {
    Bytes n(count * 2);
    for (uint64_t i = 0; i < count; ++i) {
      float f;
      std::memcpy(&f, in.data() + i * 4, 4);
      const uint16_t h = narrow_to(wire, f);
      std::memcpy(n.data() + i * 2, &h, 2);
    }
    narrowed.push_back(std::move(n));
  }
  const Bytes reduced = reference(wire, op, narrowed, count);
  Bytes out(count * 4);
  for (uint64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, reduced.data() + i * 2, 2);
    const float f = widen_from(wire, h);
    std::memcpy(out.data() + i * 4, &f, 4);
  }
  return out;
}

}  // namespace plexus::test

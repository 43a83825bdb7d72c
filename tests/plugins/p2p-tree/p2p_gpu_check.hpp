// The p2p-tree GPU tests' shared checks: streams and raw device buffers,
// inputs per rank and dtype, core::reduce_into as the reference, byte
// comparison, and polling for a communicator's failure.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_ranks.hpp"

namespace plexus::test::p2p {

using Bytes = std::vector<uint8_t>;

#define PLX_OK_OR_FAIL(call) do { const plx_status s_ = (call); const std::string e_ = plx_last_error(); INFO(#call, ": ", e_); REQUIRE(s_ == PLX_OK); } while (0)

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess); }
  ~Stream() { cudaStreamDestroy(s); }
  void sync() const { REQUIRE(cudaStreamSynchronize(s) == cudaSuccess); }
};

// Raw device bytes (plus one spare element, so a buffer can start unaligned).
struct Device {
  uint8_t *p = nullptr;
  size_t bytes;
  explicit Device(size_t n) : bytes(n) { REQUIRE(cudaMalloc(reinterpret_cast<void **>(&p), n + 64) == cudaSuccess); }
  ~Device() { cudaFree(p); }
  // cudaMemcpy from pageable memory may return before the DMA lands, and the
  // collectives run on a non-blocking stream that does not wait for it.
  void put(size_t at, const Bytes &v) {
    REQUIRE(cudaMemcpy(p + at, v.data(), v.size(), cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  }
  Bytes get(size_t at, size_t n) const {
    Bytes v(n);
    REQUIRE(cudaMemcpy(v.data(), p + at, n, cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
};

// Finite values of moderate size for floats (products of 2-8 stay finite),
// any bits for integers.
inline Bytes input_of(int rank, plx_dtype dtype, uint64_t count, uint32_t salt = 0) {
  std::mt19937_64 gen(0x9e37u * (rank + 1) + 131u * dtype + salt);
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

inline Bytes reference(plx_dtype dtype, plx_reduce_op op, const std::vector<Bytes> &inputs, uint64_t count) {
  Bytes out(count * plx_dtype_size(dtype));
  std::vector<const void *> srcs;
  for (const Bytes &b : inputs) srcs.push_back(b.data());
  REQUIRE(plexus::core::reduce_into(dtype, op, out.data(), srcs.data(), static_cast<int>(srcs.size()), count,
                                    plexus::core::CpuIsa::scalar) == PLX_OK);
  return out;
}

inline void check_same(const Bytes &got, const Bytes &want, size_t es, const std::string &what) {
  REQUIRE(got.size() == want.size());
  if (std::memcmp(got.data(), want.data(), got.size()) == 0) return;
  size_t i = 0;
  while (i < got.size() && got[i] == want[i]) ++i;
  FAIL(what, ": first differing element ", i / es, " (byte ", i, ")");
}

// Polls the async status until it leaves PLX_OK/IN_PROGRESS (bounded).
inline plx_status wait_for_failure(plx_comm_h comm, std::chrono::seconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  plx_status state = PLX_OK;
  while (std::chrono::steady_clock::now() < end) {
    REQUIRE(plx_comm_async_status(comm, &state) == PLX_OK);
    if (state != PLX_OK && state != PLX_IN_PROGRESS) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return state;
}

inline bool two_gpus() {
  if (cuda_devices() >= 2) return true;
  MESSAGE("fewer than two GPUs: the two-rank test is skipped");
  return false;
}

}  // namespace plexus::test::p2p

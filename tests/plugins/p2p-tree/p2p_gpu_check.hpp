// The p2p-tree GPU tests' shared checks: streams and raw device buffers,
// inputs per rank and dtype, core::reduce_into as the reference, byte
// comparison, and polling for a communicator's failure.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/gpu_skip.hpp"
#include "tests/plugins/gpu_data.hpp"
#include "tests/plugins/p2p-tree/p2p_ranks.hpp"

namespace plexus::test::p2p {

using test::Bytes;
using test::check_same;
using test::reference;
using test::Stream;

#define PLX_OK_OR_FAIL(call) do { const plx_status s_ = (call); const std::string e_ = plx_last_error(); INFO(#call, ": ", e_); REQUIRE(s_ == PLX_OK); } while (0)

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

// Rank `rank`'s input; `salt` varies it between calls of one test.
inline Bytes input_of(int rank, plx_dtype dtype, uint64_t count, uint32_t salt = 0) {
  return random_input(0x9e37u * (rank + 1) + 131u * dtype + salt, dtype, count);
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
  skip_case("fewer than two GPUs for a two-rank test");
  return false;
}

}  // namespace plexus::test::p2p

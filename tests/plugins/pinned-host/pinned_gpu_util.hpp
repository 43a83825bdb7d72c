// What pinned-host's GPU tests share: its ranks (tests/plugins/gpu_ranks
// opening pinned-host), streams, raw device buffers that start poisoned and
// carry a guard after their end, random inputs, references made with core's
// CPU reduction (the numerics the kernels promise bit for bit), and a
// comparison that names the first differing element.
#pragma once

#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/gpu_data.hpp"
#include "tests/plugins/gpu_ranks.hpp"

#define PLX_OK_OR_FAIL(call)                          \
  do {                                                \
    const plx_status s_ = (call);                     \
    const std::string e_ = plx_last_error();          \
    INFO(#call, ": ", e_);                            \
    REQUIRE(s_ == PLX_OK);                            \
  } while (0)

namespace plexus::test::pinned {

using test::Bytes;
using test::check_same;
using test::wire_reference;
using test::cuda_devices;
using test::reference;
using test::Stream;
using test::join;

constexpr uint8_t kPoison = 0xA5;
constexpr size_t kGuard = 64;

void run_pinned_ranks(const char *test_case, int nranks,
                      const std::function<void(plx_backend_h, const plx_unique_id &, int)> &body,
                      int killed_rank = -1);
bool two_gpus();

// Device bytes: `bytes` usable plus kGuard; poison() fills all of it.
struct Device {
  uint8_t *p = nullptr;
  size_t bytes;
  explicit Device(size_t n);
  ~Device() { cudaFree(p); }
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;
  void poison() const;
  void put(size_t at, const Bytes &v) const;
  Bytes get(size_t at, size_t n) const;
  // Whether [at, at + n) still holds the poison.
  bool poisoned(size_t at, size_t n) const;
};

// count elements of dtype, the same for a (rank, salt) on every rank:
// finite floats of moderate size (products of a few stay finite), any
// bits for integers.
Bytes input_of(int rank, plx_dtype dtype, uint64_t count, uint32_t salt = 0);
// Every rank's inputs for one call.
std::vector<Bytes> inputs_of(int nranks, plx_dtype dtype, uint64_t count, uint32_t salt);

const char *algo_text(int32_t algo);
plx_status wait_for_failure(plx_comm_h comm, int seconds);
// /dev/shm names this process's pinned-host segments would carry.
int leftover_segments();

}  // namespace plexus::test::pinned

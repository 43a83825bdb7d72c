// Ranks of the GPU plugins' tests: rank 0 is this process, the others are this
// test binary run again (exec of /proc/self/exe, so no CUDA state crosses a
// fork) with only the calling test case selected and the rank and unique id
// in the environment. Plus device buffers for the checks.
#pragma once

#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "plexus/plexus.h"

namespace plexus::test {

int cuda_devices();

// Runs body(backend, id, rank) on `nranks` ranks (rank r on CUDA device
// r % devices). In a child it runs only its own rank and returns; in the
// parent it runs rank 0, then waits (bounded) for the children and checks
// that each exited 0; a child rank equal to `killed_rank` must instead
// have died of SIGKILL (a test of a lost peer kills it).
// The backend is opened with `backend_spec`; one that declines the machine
// (UNSUPPORTED) ends the test quietly when skip_when_declined.
void run_gpu_ranks(const char *backend_spec, const char *test_case, int nranks,
                   const std::function<void(plx_backend_h, const plx_unique_id &, int)> &body,
                   int killed_rank = -1, bool skip_when_declined = false);

// Runs body in a fresh process: this test binary again with only
// test_case selected, so a CUDA context that no earlier case touched (no
// kernel loaded yet, say). The child runs body; the parent waits (bounded)
// for it and checks it exited 0, or reports the case skipped when every
// case of the child was (exit 77).
void run_in_fresh_process(const char *test_case, const std::function<void()> &body);

// A communicator of `nranks` on the rank's device with these timeouts.
plx_comm_h join(plx_backend_h backend, const plx_unique_id &id, int nranks, int rank,
                int timeout_ms = 20000, int init_timeout_ms = 30000);

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { REQUIRE(cudaMalloc(reinterpret_cast<void **>(&ptr_), bytes() ? bytes() : 1) == cudaSuccess); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  T *get() const { return ptr_; }
  size_t bytes() const { return n_ * sizeof(T); }
  // cudaMemcpy from pageable memory may return before the DMA lands, and
  // collectives on a non-blocking stream do not wait for it: synchronise.
  void upload(const std::vector<T> &v) {
    REQUIRE(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    REQUIRE(cudaMemcpy(v.data(), ptr_, bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
  void fill(T value) { upload(std::vector<T>(n_, value)); }

 private:
  T *ptr_ = nullptr;
  size_t n_;
};

}  // namespace plexus::test

#include "tests/plugins/pinned-host/pinned_gpu_util.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "core/cpu_reduce.hpp"
#include "tests/gpu_skip.hpp"

namespace plexus::test::pinned {

void run_pinned_ranks(const char *test_case, int nranks,
                      const std::function<void(plx_backend_h, const plx_unique_id &, int)> &body,
                      int killed_rank) {
  // Declining means PLEXUS_PINNED_HOST_ENABLE is not set (meson sets it).
  run_gpu_ranks("pinned-host", test_case, nranks, body, killed_rank, /*skip_when_declined=*/true);
}

bool two_gpus() {
  if (cuda_devices() >= 2) return true;
  plexus::test::skip_case("fewer than two GPUs for a multi-rank test");
  return false;
}

Device::Device(size_t n) : bytes(n) {
  REQUIRE(cudaMalloc(reinterpret_cast<void **>(&p), n + kGuard) == cudaSuccess);
  poison();
}

// cudaMemset of device memory may return before it lands, and collectives on
// a non-blocking stream do not wait for it.
void Device::poison() const {
  REQUIRE(cudaMemset(p, kPoison, bytes + kGuard) == cudaSuccess);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
}

void Device::put(size_t at, const Bytes &v) const {
  REQUIRE(at + v.size() <= bytes);
  REQUIRE(cudaMemcpy(p + at, v.data(), v.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  // From pageable memory cudaMemcpy may return before the DMA (and the
  // poison's cudaMemset) lands; collectives on a non-blocking stream would
  // not wait for them.
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
}

Bytes Device::get(size_t at, size_t n) const {
  Bytes v(n);
  REQUIRE(cudaMemcpy(v.data(), p + at, n, cudaMemcpyDeviceToHost) == cudaSuccess);
  return v;
}

bool Device::poisoned(size_t at, size_t n) const {
  const Bytes v = get(at, n);
  for (uint8_t b : v)
    if (b != kPoison) return false;
  return true;
}

Bytes input_of(int rank, plx_dtype dtype, uint64_t count, uint32_t salt) {
  return random_input(0x9e37u * (rank + 1) + 131u * dtype + 7919u * salt, dtype, count);
}

std::vector<Bytes> inputs_of(int nranks, plx_dtype dtype, uint64_t count, uint32_t salt) {
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, salt));
  return inputs;
}

const char *algo_text(int32_t algo) {
  switch (algo) {
    case PLX_ALGO_LOW_LATENCY: return "low-latency";
    case PLX_ALGO_ONE_SHOT: return "one-shot";
    case PLX_ALGO_TWO_SHOT: return "two-shot";
    default: return "auto";
  }
}

plx_status wait_for_failure(plx_comm_h comm, int seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  plx_status state = PLX_OK;
  while (std::chrono::steady_clock::now() < end) {
    REQUIRE(plx_comm_async_status(comm, &state) == PLX_OK);
    if (state != PLX_OK && state != PLX_IN_PROGRESS) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return state;
}

int leftover_segments() {
  const std::string prefix = "plexus-" + std::to_string(::geteuid()) + "-" + std::to_string(::getpid()) + "-pinned-host";
  int found = 0;
  DIR *dir = opendir("/dev/shm");
  if (dir == nullptr) return 0;
  while (const dirent *e = readdir(dir))
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) ++found;
  closedir(dir);
  return found;
}

}  // namespace plexus::test::pinned

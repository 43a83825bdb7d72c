// plexus-bench-h2d: how fast the copy engines move data between pinned host
// memory and the GPUs, host to device, device to host, and both at once,
// for every GPU alone and for all of them together (they share the host's
// memory and root ports). pinned-host's bus bandwidth is reported as a
// fraction of these numbers, measured in the same run. Exits 77 (skipped)
// without a CUDA device.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Gpu {
  int device = 0;
  void *host = nullptr, *host2 = nullptr, *dev = nullptr, *dev2 = nullptr;
  cudaStream_t up = nullptr, down = nullptr;
};

bool ok(cudaError_t err, const char *what) {
  if (err == cudaSuccess) return true;
  std::fprintf(stderr, "plexus-bench-h2d: %s: %s\n", what, cudaGetErrorString(err));
  return false;
}

bool make(Gpu &g, size_t bytes) {
  return ok(cudaSetDevice(g.device), "cudaSetDevice") &&
         ok(cudaHostAlloc(&g.host, bytes, cudaHostAllocPortable), "cudaHostAlloc") &&
         ok(cudaHostAlloc(&g.host2, bytes, cudaHostAllocPortable), "cudaHostAlloc") &&
         ok(cudaMalloc(&g.dev, bytes), "cudaMalloc") && ok(cudaMalloc(&g.dev2, bytes), "cudaMalloc") &&
         ok(cudaStreamCreateWithFlags(&g.up, cudaStreamNonBlocking), "cudaStreamCreate") &&
         ok(cudaStreamCreateWithFlags(&g.down, cudaStreamNonBlocking), "cudaStreamCreate");
}

void release(Gpu &g) {
  cudaSetDevice(g.device);
  cudaFreeHost(g.host), cudaFreeHost(g.host2), cudaFree(g.dev), cudaFree(g.dev2);
  cudaStreamDestroy(g.up), cudaStreamDestroy(g.down);
}

// Enqueues `iters` copies in the asked directions on every GPU of `gpus`.
bool enqueue(std::vector<Gpu> &gpus, size_t bytes, int iters, bool h2d, bool d2h) {
  for (Gpu &g : gpus) {
    if (!ok(cudaSetDevice(g.device), "cudaSetDevice")) return false;
    for (int i = 0; i < iters; ++i) {
      if (h2d && !ok(cudaMemcpyAsync(g.dev, g.host, bytes, cudaMemcpyHostToDevice, g.up), "copy to device")) return false;
      if (d2h && !ok(cudaMemcpyAsync(g.host2, g.dev2, bytes, cudaMemcpyDeviceToHost, g.down), "copy to host"))
        return false;
    }
  }
  return true;
}

bool sync(std::vector<Gpu> &gpus) {
  for (Gpu &g : gpus)
    if (!ok(cudaSetDevice(g.device), "cudaSetDevice") || !ok(cudaDeviceSynchronize(), "synchronize")) return false;
  return true;
}

// GB/s per GPU and direction (10^9 bytes per second).
double measure(std::vector<Gpu> &gpus, size_t bytes, int iters, bool h2d, bool d2h) {
  if (!enqueue(gpus, bytes, 2, h2d, d2h) || !sync(gpus)) return -1;
  const auto start = std::chrono::steady_clock::now();
  if (!enqueue(gpus, bytes, iters, h2d, d2h) || !sync(gpus)) return -1;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(bytes) * iters / s / 1e9;
}

void report(std::FILE *csv, const std::string &who, size_t bytes, const char *mode, double gbs) {
  fmt::print("{:<10} {:>6} MiB  {:<14} {:8.2f} GB/s\n", who, bytes >> 20, mode, gbs);
  if (csv != nullptr) std::fprintf(csv, "%s,%zu,%s,%.3f\n", who.c_str(), bytes, mode, gbs);
}

void run(std::vector<Gpu> &gpus, const std::string &who, size_t bytes, int iters, std::FILE *csv) {
  report(csv, who, bytes, "host_to_device", measure(gpus, bytes, iters, true, false));
  report(csv, who, bytes, "device_to_host", measure(gpus, bytes, iters, false, true));
  report(csv, who, bytes, "both_each_way", measure(gpus, bytes, iters, true, true));
}

}  // namespace

int main(int argc, char **argv) {
  const char *csv_path = nullptr;
  int iters = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv_path = argv[++i];
    else if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = std::atoi(argv[++i]);
    else return std::fprintf(stderr, "usage: plexus-bench-h2d [--iters N] [--csv FILE]\n"), 2;
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) return std::printf("SKIP: no CUDA device\n"), 77;
  std::FILE *csv = csv_path ? std::fopen(csv_path, "w") : nullptr;
  if (csv != nullptr) std::fprintf(csv, "gpus,bytes,mode,gb_per_s\n");
  const size_t most = size_t{256} << 20;
  std::vector<Gpu> all(static_cast<size_t>(count));
  for (int d = 0; d < count; ++d) {
    all[d].device = d;
    if (!make(all[d], most)) return 1;
  }
  for (size_t bytes : {size_t{8} << 20, size_t{64} << 20, most}) {
    for (Gpu &g : all) {
      std::vector<Gpu> one{g};
      run(one, fmt::format("gpu{}", g.device), bytes, iters, csv);
    }
    if (count > 1) run(all, fmt::format("all{}", count), bytes, iters, csv);
  }
  for (Gpu &g : all) release(g);
  if (csv != nullptr) std::fclose(csv);
  return 0;
}

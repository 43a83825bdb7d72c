// Which CUDA calls wait for a kernel running in the same context? The
// question behind core/kernel_loading.cpp and the shared-GPU tests: a
// collective kernel spins until its peers' kernels run, so a call that waits
// for it while keeping a peer from launching hangs both.
//
//   nvcc -O2 -gencode=arch=compute_90,code=sm_90 scripts/context-wait-probe.cu -o context-wait-probe
//   CUDA_MODULE_LOADING=EAGER ./context-wait-probe OP [BYTES] [STACK_LIMIT]
//
// A one-warp kernel spins on stream 1 until a host thread sets its flag,
// 1500 ms later; meanwhile the host makes one call (OP, on BYTES, default
// 64 MiB) and runs a small kernel on stream 2. Printed: how long the call
// took and when stream 2's work ended (about 1500 ms: it waited).
//   local         launch a kernel whose 264x1024 threads need BYTES of local
//                 memory (0, 512, 832, 1024, 2048 or 16384), after setting the
//                 stack limit to STACK_LIMIT when given
//   pool_create   cudaMemPoolCreate;  pool_first: a new pool's first
//                 cudaMallocFromPoolAsync;  pool_grow: one warmed with 1 MiB;
//                 pool_reuse: one warmed with BYTES
//   malloc_async, malloc, free (of a cudaMalloc made before the spin),
//   host_register, event_create, stream_create, none
// Results on an H200: docs/perf/2026-11-29-h200-s28-stack-limit.txt.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

__global__ void spinner(volatile int *flag, unsigned long long budget_ns) {
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (*flag == 0 && now - start < budget_ns);
}

__global__ void touch(char *p, size_t n) {
  if (p != nullptr && threadIdx.x == 0 && n != 0) p[0] = 1;
}

// Local memory of N bytes a thread that the compiler cannot keep in registers.
template <int N>
__global__ void local_user(int *out, int seed) {
  volatile char buf[N > 0 ? N : 1];
  const int n = N > 0 ? N : 1;
  for (int i = 0; i < N; i += 64) buf[(i + threadIdx.x) % n] = static_cast<char>(i ^ seed);
  if (N > 0 && buf[(seed + threadIdx.x) % n] == 123 && out != nullptr) out[threadIdx.x] = 1;
}

static bool launch_local(size_t bytes, cudaStream_t s, size_t *local_size) {
  cudaFuncAttributes a{};
  switch (bytes) {
#define PROBE_LOCAL(N) \
  case N: cudaFuncGetAttributes(&a, local_user<N>); local_user<N><<<264, 1024, 0, s>>>(nullptr, 7); break;
    PROBE_LOCAL(0) PROBE_LOCAL(512) PROBE_LOCAL(832) PROBE_LOCAL(1024) PROBE_LOCAL(2048) PROBE_LOCAL(16384)
#undef PROBE_LOCAL
    default: return false;
  }
  *local_size = a.localSizeBytes;
  return true;
}

static cudaMemPool_t make_pool() {
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = 0;
  cudaMemPool_t pool = nullptr;
  cudaMemPoolCreate(&pool, &props);
  uint64_t keep = UINT64_MAX;  // as core::ScratchPool
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  return pool;
}

struct Probe {
  std::string op;
  size_t bytes;
  cudaStream_t s2;
  cudaMemPool_t pool = nullptr;
  char *before = nullptr, *p = nullptr;
  void *host = nullptr;
  size_t local_size = 0;

  void prepare() {  // what the call needs, made before the spin
    if (op == "pool_grow" || op == "pool_reuse") {
      pool = make_pool();
      cudaMallocFromPoolAsync(reinterpret_cast<void **>(&before), op == "pool_reuse" ? bytes : 1 << 20, pool, s2);
      cudaFreeAsync(before, s2);
      cudaStreamSynchronize(s2);
    }
    if (op == "free") cudaMalloc(reinterpret_cast<void **>(&before), bytes);
    if (op == "host_register") host = malloc(bytes);
  }

  cudaError_t call() {
    if (op == "local") return launch_local(bytes, s2, &local_size) ? cudaSuccess : cudaErrorInvalidValue;
    if (op == "pool_create") return pool = make_pool(), cudaSuccess;
    if (op == "pool_first") pool = make_pool();
    if (pool != nullptr) return cudaMallocFromPoolAsync(reinterpret_cast<void **>(&p), bytes, pool, s2);
    if (op == "malloc_async") return cudaMallocAsync(reinterpret_cast<void **>(&p), bytes, s2);
    if (op == "malloc") return cudaMalloc(reinterpret_cast<void **>(&p), bytes);
    if (op == "free") return cudaFree(before);
    if (op == "host_register") return cudaHostRegister(host, bytes, cudaHostRegisterDefault);
    cudaEvent_t event;
    if (op == "event_create") return cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    cudaStream_t stream;
    if (op == "stream_create") return cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    return op == "none" ? cudaSuccess : cudaErrorInvalidValue;
  }
};

static double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char **argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: %s OP [BYTES] [STACK_LIMIT]\n", argv[0]), 2;
  cudaSetDevice(0);
  if (argc > 3) cudaDeviceSetLimit(cudaLimitStackSize, strtoull(argv[3], nullptr, 0));
  cudaFree(nullptr);
  int *flag = nullptr;
  cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped);
  *flag = 0;
  cudaStream_t s1, s2;
  cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking);
  touch<<<1, 32, 0, s2>>>(nullptr, 0);  // loaded before the spin, whatever CUDA_MODULE_LOADING says
  spinner<<<1, 32, 0, s2>>>(flag, 0);
  Probe probe{argv[1], argc > 2 ? strtoull(argv[2], nullptr, 0) : size_t{64} << 20, s2};
  probe.prepare();
  cudaDeviceSynchronize();
  size_t limit_before = 0, free_before = 0, free_after = 0, total = 0, limit_after = 0;
  cudaDeviceGetLimit(&limit_before, cudaLimitStackSize);
  cudaMemGetInfo(&free_before, &total);
  spinner<<<1, 32, 0, s1>>>(flag, 3000000000ull);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread releaser([flag] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    *reinterpret_cast<volatile int *>(flag) = 1;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const cudaError_t called = probe.call();
  const double call_ms = ms_since(t0);
  touch<<<1, 32, 0, s2>>>(probe.p, probe.bytes);
  if (probe.pool != nullptr && probe.p != nullptr) cudaFreeAsync(probe.p, s2);
  const cudaError_t done = cudaStreamSynchronize(s2);
  const double done_ms = ms_since(t0);
  releaser.join();
  cudaDeviceSynchronize();
  cudaDeviceGetLimit(&limit_after, cudaLimitStackSize);
  cudaMemGetInfo(&free_after, &total);
  std::printf("%-13s bytes=%zu local_size=%zu stack_limit=%zu->%zu call_ms=%.2f stream2_done_ms=%.2f "
              "device_memory_added_MiB=%.1f %s/%s\n", probe.op.c_str(), probe.bytes, probe.local_size, limit_before,
              limit_after, call_ms, done_ms, (static_cast<double>(free_before) - free_after) / (1 << 20),
              cudaGetErrorString(called), cudaGetErrorString(done));
  return called == cudaSuccess && done == cudaSuccess ? 0 : 1;
}

// Does a launch that needs more local memory than the context reserved wait
// for a kernel running in that context? (core/kernel_loading.cpp's question;
// docs/perf/2026-11-29-h200-s28-stack-limit.txt has the answer on an H200.)
//   nvcc -O2 -gencode=arch=compute_90,code=sm_90 scripts/lmem-probe.cu -o lmem-probe
//   CUDA_MODULE_LOADING=EAGER ./lmem-probe BYTES SPIN [STACK_LIMIT]
// BYTES (0, 512, 832, 1024, 2048, 16384): local memory a thread of the
// launched kernel uses; SPIN 1: a one-warp kernel spins on a host flag,
// set 1500 ms later, while it is launched; STACK_LIMIT: set first. Prints the
// launch call's time (1500 ms: it waited) and the device memory it added.
#include <cuda_runtime.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

__global__ void spinner(volatile int *flag, unsigned long long budget_ns) {
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  while (*flag == 0) {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    if (now - start > budget_ns) break;
  }
}

template <int N>
__global__ void local_user(int *out, int seed) {
  volatile char buf[N > 0 ? N : 1];
  for (int i = 0; i < N; i += 64) buf[(i + threadIdx.x) % (N > 0 ? N : 1)] = (char)(i ^ seed);
  if (N > 0 && buf[(seed + threadIdx.x) % (N > 0 ? N : 1)] == 123 && out) out[threadIdx.x] = 1;
}

static size_t used() { size_t f, t; cudaMemGetInfo(&f, &t); return t - f; }

template <int N>
int run(bool spin) {
  size_t limit = 0; cudaDeviceGetLimit(&limit, cudaLimitStackSize);
  cudaFuncAttributes attr{}; cudaFuncGetAttributes(&attr, local_user<N>);
  cudaFuncAttributes sattr{}; cudaFuncGetAttributes(&sattr, spinner);
  int *flag = nullptr; cudaHostAlloc(&flag, 4, cudaHostAllocMapped); *flag = 0;
  cudaStream_t s1, s2; cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking); cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking);
  cudaDeviceSynchronize();
  size_t u0 = used();
  if (spin) spinner<<<1, 32, 0, s1>>>(flag, 3000000000ull);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread releaser([&] { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); *(volatile int *)flag = 1; });
  auto t0 = std::chrono::steady_clock::now();
  local_user<N><<<264, 1024, 0, s2>>>(nullptr, 7);
  auto t1 = std::chrono::steady_clock::now();
  cudaError_t e = cudaStreamSynchronize(s2);
  auto t2 = std::chrono::steady_clock::now();
  releaser.join(); cudaDeviceSynchronize();
  size_t limit2 = 0; cudaDeviceGetLimit(&limit2, cudaLimitStackSize);
  printf("N=%d spin=%d localSizeBytes=%zu spinnerLocal=%zu stack_limit=%zu->%zu launch_ms=%.2f complete_ms=%.2f mem_grew_MiB=%.1f err=%s\n",
         N, spin, attr.localSizeBytes, sattr.localSizeBytes, limit, limit2,
         std::chrono::duration<double, std::milli>(t1 - t0).count(), std::chrono::duration<double, std::milli>(t2 - t0).count(),
         (double)(used() - u0) / (1 << 20), cudaGetErrorString(e));
  return 0;
}

int main(int argc, char **argv) {
  int n = atoi(argv[1]); bool spin = argc > 2 && atoi(argv[2]);
  if (argc > 3) { cudaDeviceSetLimit(cudaLimitStackSize, atoi(argv[3])); }
  cudaFree(0);
  switch (n) {
    case 0: return run<0>(spin);
    case 512: return run<512>(spin);
    case 832: return run<832>(spin);
    case 1024: return run<1024>(spin);
    case 2048: return run<2048>(spin);
    case 16384: return run<16384>(spin);
  }
  return 1;
}

#include "tools/plexus-bench-alloc/columns.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "core/cuda_status.hpp"
#include "core/device_pool.hpp"
#include "core/host_pool.hpp"
#include "core/status.hpp"

namespace plexus::bench_alloc {
namespace {

using Clock = std::chrono::steady_clock;

// About 100 batches per thread, each long enough for the clock to be exact.
size_t batch_size(size_t iters) { return std::clamp<size_t>(iters / 100, 1, 1000); }

Run not_run(bool skipped, std::string why) {
  Run run;
  run.skipped = skipped;
  run.failed = !skipped;
  run.why = std::move(why);
  return run;
}

double ns_since(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// What the threads of one run share: a start signal and the results.
struct Race {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::mutex mutex;
  Run run;

  void wait_start() {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  void report(const std::vector<double> &batches, uint64_t pairs, const std::string &error) {
    std::lock_guard lock(mutex);
    run.batch_ns.insert(run.batch_ns.end(), batches.begin(), batches.end());
    run.pairs += pairs;
    if (!error.empty() && !run.failed) {
      run.failed = true;
      run.why = error;
    }
  }
};

// Runs `thread_body(race)` on `threads` threads, timing from the common start.
template <typename Body>
Run race(int threads, Body body) {
  Race shared;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back([&shared, &body] { body(shared); });
  while (shared.ready.load() < threads) std::this_thread::yield();
  const Clock::time_point start = Clock::now();
  shared.go.store(true, std::memory_order_release);
  for (std::thread &worker : workers) worker.join();
  shared.run.wall_s = ns_since(start) * 1e-9;
  return std::move(shared.run);
}

// `pair()` returns "" or an error; batches of `batch` pairs are timed.
template <typename Pair>
void timed_pairs(Race &shared, size_t iters, Pair pair) {
  const size_t batch = batch_size(iters);
  std::vector<double> batches;
  batches.reserve(iters / batch + 1);
  std::string error;
  uint64_t done = 0;
  shared.wait_start();
  while (done < iters && error.empty()) {
    const size_t n = std::min(batch, iters - done);
    const Clock::time_point start = Clock::now();
    for (size_t i = 0; i < n && error.empty(); ++i) error = pair();
    batches.push_back(ns_since(start) / static_cast<double>(n));
    done += n;
  }
  shared.report(batches, done, error);
}

// ---------------------------------------------------------------------------
// plexus-pool

// One pool shared by all threads; each thread warms its own cache slot.
template <typename Pool>
Run pool_run(Pool &pool, size_t size, int threads, size_t iters) {
  return race(threads, [&](Race &shared) {
    void *warm = nullptr;
    if (pool.allocate(size, 0, 0, &warm) == PLX_OK) (void)pool.free(warm);
    timed_pairs(shared, iters, [&]() -> std::string {
      void *ptr = nullptr;
      if (pool.allocate(size, 0, 0, &ptr) != PLX_OK) return core::last_message();
      if (pool.free(ptr) != PLX_OK) return core::last_message();
      return {};
    });
  });
}

// The configuration DevicePool gives its HostPool, over host memory.
core::HostPoolConfig host_config() {
  core::HostPoolConfig config;
  config.min_segment_bytes = size_t{32} << 20;
  config.segment_granularity = size_t{2} << 20;
  config.cache_max_block_bytes = size_t{1} << 20;
  return config;
}

Run plexus_pool(const Options &options, size_t size, int threads) {
  if (options.source == PoolSource::host) {
    core::MallocSegmentSource source;
    core::HostPool pool(source, host_config());
    return pool_run(pool, size, threads, options.iters);
  }
  core::DevicePoolConfig config;
  config.device = options.device;
  config.api = options.api;
  std::unique_ptr<core::DevicePool> pool;
  if (core::DevicePool::create(config, &pool) != PLX_OK) return not_run(false, core::last_message());
  return pool_run(*pool, size, threads, options.iters);
}

// ---------------------------------------------------------------------------
// cudaMalloc and cudaMallocAsync

std::string cuda_error(cudaError_t err, const char *what) {
  (void)cudaGetLastError();
  return fmt::format("{}: {}", what, cudaGetErrorName(err));
}

Run cuda_malloc(const Options &options, size_t size, int threads) {
  return race(threads, [&](Race &shared) {
    (void)cudaSetDevice(options.device);
    timed_pairs(shared, std::min(options.iters, options.cuda_malloc_iters), [&]() -> std::string {
      void *ptr = nullptr;
      if (const cudaError_t err = cudaMalloc(&ptr, size); err != cudaSuccess) return cuda_error(err, "cudaMalloc");
      if (const cudaError_t err = cudaFree(ptr); err != cudaSuccess) return cuda_error(err, "cudaFree");
      return {};
    });
  });
}

// Warm: room for every thread's block at once, kept (threshold UINT64_MAX).
cudaError_t make_async_pool(int device, size_t size, int threads, cudaMemPool_t *pool) {
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaError_t err = cudaMemPoolCreate(pool, &props);
  uint64_t threshold = UINT64_MAX;
  if (err == cudaSuccess) err = cudaMemPoolSetAttribute(*pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  std::vector<void *> blocks(threads, nullptr);
  for (void *&block : blocks)
    if (err == cudaSuccess) err = cudaMallocFromPoolAsync(&block, size, *pool, nullptr);
  for (void *block : blocks)
    if (block != nullptr) (void)cudaFreeAsync(block, nullptr);
  const cudaError_t synced = cudaStreamSynchronize(nullptr);
  return err != cudaSuccess ? err : synced;
}

// The stream's final sync is timed as part of the last batch: the frees
// queued by the loop complete only there.
Run cuda_malloc_async(const Options &options, size_t size, int threads) {
  (void)cudaSetDevice(options.device);
  cudaMemPool_t pool = nullptr;
  if (const cudaError_t err = make_async_pool(options.device, size, threads, &pool); err != cudaSuccess) {
    if (pool != nullptr) (void)cudaMemPoolDestroy(pool);
    return not_run(false, cuda_error(err, "cudaMemPool setup"));
  }
  Run run = race(threads, [&](Race &shared) {
    (void)cudaSetDevice(options.device);
    cudaStream_t stream = nullptr;
    if (const cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); err != cudaSuccess) {
      shared.wait_start();  // the others wait for every thread
      shared.report({}, 0, cuda_error(err, "cudaStreamCreate"));
      return;
    }
    void *warm = nullptr;
    if (cudaMallocFromPoolAsync(&warm, size, pool, stream) == cudaSuccess) (void)cudaFreeAsync(warm, stream);
    (void)cudaStreamSynchronize(stream);
    const size_t iters = options.iters;
    size_t done = 0;
    timed_pairs(shared, iters, [&]() -> std::string {
      void *ptr = nullptr;
      if (const cudaError_t err = cudaMallocFromPoolAsync(&ptr, size, pool, stream); err != cudaSuccess)
        return cuda_error(err, "cudaMallocFromPoolAsync");
      if (const cudaError_t err = cudaFreeAsync(ptr, stream); err != cudaSuccess)
        return cuda_error(err, "cudaFreeAsync");
      if (++done == iters) {
        if (const cudaError_t err = cudaStreamSynchronize(stream); err != cudaSuccess)
          return cuda_error(err, "cudaStreamSynchronize");
      }
      return {};
    });
    (void)cudaStreamDestroy(stream);
  });
  (void)cudaMemPoolDestroy(pool);
  return run;
}

}  // namespace

Run run_column(const std::string &column, const Options &options, size_t size, int threads) {
  int devices = 0;
  const bool have_gpu = core::require_cuda_device(&devices) == PLX_OK && options.device < devices;
  const bool needs_gpu = column != "plexus-pool" || options.source == PoolSource::device;
  if (needs_gpu && !have_gpu) return not_run(true, "no CUDA device");
  if (column == "plexus-pool") return plexus_pool(options, size, threads);
  if (column == "cudaMalloc") return cuda_malloc(options, size, threads);
  return cuda_malloc_async(options, size, threads);
}

}  // namespace plexus::bench_alloc

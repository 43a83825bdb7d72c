// Helper threads of one rank: they split the copies and reductions of a
// large step (two_shot_chunk) with the calling thread. A rank alone moves
// its bytes at one core's memory bandwidth (6-12 GB/s on the GPU machine's
// VM cores), while a host with more CPUs than ranks leaves the others idle;
// 8 ranks on 64 cores, 512 KiB: 222 us with one thread a rank.
//
// Helpers only ever touch this rank's own work (memory the caller hands
// them), never wait for a peer, so a part always ends: aborts, timeouts and
// dead peers are the calling thread's business, as before. Free of the rest
// of the plugin, so tests compile it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace plexus::shm_native {

// Part p of `parts` of [first, first + length): contiguous, in order, each
// starting on a multiple of `align` elements from first (so parts never
// share a cache line when align is one line of elements); empty parts at the
// end when length is short.
struct Span {
  size_t first, length;
};
Span part_of(Span whole, int32_t parts, int32_t p, size_t align);

class HelperThreads {
 public:
  // `helpers` threads beside the caller, started on the first run; between
  // jobs each polls for `poll_us` microseconds, then sleeps on a futex.
  HelperThreads(int32_t helpers, int32_t poll_us)
      : helpers_(helpers), poll_us_(poll_us), claimed_(static_cast<size_t>(helpers) + 1) {}
  ~HelperThreads();
  HelperThreads(const HelperThreads &) = delete;
  HelperThreads &operator=(const HelperThreads &) = delete;

  // The threads a job runs on, the caller included.
  int32_t parts() const { return helpers_ + 1; }
  // Calls task(p) once for every p in [0, parts()) and returns when every
  // call returned. Part 0 runs on the caller, part h on helper h, so each
  // thread keeps its part of the buffers in its cache from job to job;
  // but a part whose helper has not claimed it by the time the caller's own
  // is done, the caller claims and runs: a helper that is asleep or has lost
  // its CPU delays nothing. Task must not throw.
  template <typename Task>
  void run(Task &task) {
    run_erased([](void *t, int32_t p) { (*static_cast<Task *>(t))(p); }, &task);
  }

 private:
  using Call = void (*)(void *task, int32_t part);
  void run_erased(Call call, void *task);
  void serve(int32_t part);
  bool claim(uint32_t job, int32_t part);
  void run_part(int32_t part);
  bool wait_for_work(uint32_t *seen);
  void wait_until_finished();

  int32_t helpers_, poll_us_;
  std::vector<std::thread> threads_;
  int owner_pid_ = 0;  // the process that started threads_ (a fork's child has none of them)
  // Per helper's part (entry 0, the caller's, unused), on a line of its
  // own, the last job that claimed it. A thread claims part p of job j by
  // moving it from j - 1 to j, which fails once another thread did, and for
  // a helper that still thinks of an older job; the job's call and task are
  // read after a successful claim (they change only once every part of the
  // job finished).
  struct alignas(64) Claim {
    std::atomic<uint32_t> job{0};
  };
  std::vector<Claim> claimed_;
  std::atomic<Call> call_{nullptr};
  std::atomic<void *> task_{nullptr};
  alignas(64) std::atomic<int32_t> finished_{0};
  // Moves on with every job (and once at destruction): what idle helpers
  // poll and sleep on.
  alignas(64) std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> sleepers_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace plexus::shm_native

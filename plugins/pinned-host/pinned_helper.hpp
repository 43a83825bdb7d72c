// The CPU helper of one rank (PLX_ALGO_CPU_STAR, ExLlamaV3's reduction on
// the CPU; kernels/pinned_cpu.cu is the GPU side). A thread takes the jobs
// its rank's kernels post in the segment's job ring, in order, and for every
// step waits until every rank has staged it, reduces part `rank` over all
// ranks in rank order with core::reduce_into (SIMD; the kernels' numerics
// bit for bit) into that part of its rank's stage, and publishes reduced[s].
// Per GPU that is N bytes up and N down at any number of ranks; the price
// is the host's memory bandwidth and one core per rank.
//
// The kernels write the jobs (device-side counters), so graph replays post
// theirs too; nothing here depends on the host issuing the calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "kernels/pinned.hpp"
#include "plexus/types.h"

namespace plexus::pinned_host {

namespace kp = kernels::pinned;

class CpuHelper {
 public:
  struct Setup {
    char *seg = nullptr;  // the segment's host address
    kp::Layout layout;
    uint64_t rank_bytes = 0;
    int32_t rank = 0;
    int32_t nranks = 1;
    int32_t timeout_ms = 60000;  // a step's wait for the ranks' data; -1 forever
    // Marks the communicator failed (and sets the abort word).
    std::function<void(plx_status, const std::string &)> fail;
  };

  // Starts the thread.
  explicit CpuHelper(Setup setup);
  // Stops it (a wait in progress gives up) and joins it.
  ~CpuHelper();
  CpuHelper(const CpuHelper &) = delete;
  CpuHelper &operator=(const CpuHelper &) = delete;

  // Jobs finished so far (tests).
  uint64_t jobs_finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  enum class Wait { ready, stopped, timed_out };
  void main();
  bool run_job(const kp::CpuJob &job);
  bool run_step(const kp::CpuJob &job, uint64_t i);
  bool wait_staged(uint64_t n, uint32_t s, int32_t coll);
  bool reduce_part(const kp::CpuJob &job, uint32_t s, uint64_t len);
  template <class Ready>
  Wait wait(Ready ready, int32_t timeout_ms) const;
  bool stopping() const;
  char *control(int32_t r) const { return setup_.seg + kp::kHeaderBytes + r * setup_.rank_bytes; }
  uint64_t *flag(int32_t r, uint64_t offset) const { return reinterpret_cast<uint64_t *>(control(r) + offset); }
  char *stage(int32_t r, uint32_t s) const {
    return control(r) + kp::ring_offset(setup_.layout) + s * setup_.layout.stage_bytes;
  }

  Setup setup_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> finished_{0};
  std::thread thread_;
};

}  // namespace plexus::pinned_host

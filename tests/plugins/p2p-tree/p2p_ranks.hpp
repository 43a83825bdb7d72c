// The p2p-tree GPU tests' ranks: the shared helper (tests/plugins/gpu_ranks)
// opening p2p-tree, which ends a test quietly on GPUs without peer access.
#pragma once

#include <atomic>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "tests/plugins/gpu_ranks.hpp"

namespace plexus::test::p2p {

using test::cuda_devices;
using test::DeviceBuffer;
using test::join;

inline void run_p2p_ranks(const char *test_case, int nranks,
                          const std::function<void(plx_backend_h, const plx_unique_id &, int)> &body,
                          int killed_rank = -1) {
  run_gpu_ranks("p2p-tree", test_case, nranks, body, killed_rank, /*skip_when_declined=*/true);
}

// rank(r) for r < nranks, each on a thread of its own; the number of ranks
// that threw (a failed REQUIRE must not leave its thread), each calling
// on_throw() first so the others can go on without it.
inline int run_thread_ranks(int nranks, const std::function<void(int)> &rank,
                            const std::function<void()> &on_throw = {}) {
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      try {
        rank(r);
      } catch (...) {
        ++failed;
        if (on_throw) on_throw();
      }
    });
  for (std::thread &t : threads) t.join();
  return failed;
}

// A variable set before the ranks fork (every rank must see the same) and
// unset when the case ends, so that later cases of the same process run
// with the defaults. keep_callers: a value the caller already set wins and
// stays (a run may ask for other slot sizes from outside).
class ScopedEnv {
 public:
  ScopedEnv(const char *name, const char *value, bool keep_callers = false)
      : name_(name), owned_(!(keep_callers && std::getenv(name) != nullptr)) {
    if (owned_) setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (owned_) unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv &) = delete;
  ScopedEnv &operator=(const ScopedEnv &) = delete;

 private:
  const char *name_;
  bool owned_;
};

// 4 MiB exchange areas (the default is 64 MiB) unless the caller set them,
// so that a few MiB already take several launches.
inline ScopedEnv small_slots() { return ScopedEnv("PLEXUS_P2P_TREE_SLOT_BYTES", "4M", true); }

}  // namespace plexus::test::p2p

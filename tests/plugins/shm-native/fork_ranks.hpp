// Forked ranks of shm-native for the plugin's tests: each rank opens the
// backend, joins one communicator, runs a body and exits with its code.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "plexus/plexus.h"

namespace plexus::test {

// n floats in [-1, 1) from `seed` (rank r's input uses seed + r).
inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v) x = dist(gen);
  return v;
}

// The float32 sum over nranks of those inputs in rank order, as every rank
// must compute it, bit for bit.
inline std::vector<float> expected_sum(size_t n, int nranks, uint32_t seed) {
  std::vector<float> sum = random_floats(n, seed);
  for (int r = 1; r < nranks; ++r) {
    const std::vector<float> x = random_floats(n, seed + r);
    for (size_t i = 0; i < n; ++i) sum[i] += x[i];
  }
  return sum;
}

// Open descriptors of this process.
int count_fds();

// Runs body(comm, rank) on `nranks` forked ranks (timeout_ms for the
// communicator); a rank fails (exits non-zero) when the body does, when
// destroy fails, or when it has more descriptors after destroy than before
// init. Returns how many ranks failed; *pids_out gets their pids.
int run_ranks(int nranks, const std::function<int(plx_comm_h, int)> &body, int timeout_ms = 10000,
              std::vector<pid_t> *pids_out = nullptr);
// The same, with the backend the ranks' communicator came from; each rank
// runs before_init(rank), when given, before it joins the communicator.
int run_ranks_on_backend(int nranks, const std::function<int(plx_backend_h, plx_comm_h, int)> &body,
                         int timeout_ms = 10000, std::vector<pid_t> *pids_out = nullptr,
                         const std::function<void(int)> &before_init = {});

// Forks `nranks` ranks that each run setup(rank), open their own backend
// (so that parameters set in setup count) and join one communicator.
// Returns how many ranks were refused with PLX_ERR_INVALID_USAGE, no
// communicator and an error message containing `naming`.
int ranks_refused_at_init(int nranks, const std::function<void(int)> &setup, const char *naming);

}  // namespace plexus::test

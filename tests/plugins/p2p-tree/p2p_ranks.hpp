// The p2p-tree GPU tests' ranks: the shared helper (tests/plugins/gpu_ranks)
// opening p2p-tree, which ends a test quietly on GPUs without peer access.
#pragma once

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

}  // namespace plexus::test::p2p

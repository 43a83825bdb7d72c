// What each rank of a two-rank communicator does when one of them fails it:
// a rank that never calls (the waiting kernel times out by itself) and a
// rank that aborts (the waiting kernel stops at once). For ranks on two GPUs
// (test_p2p_gpu.cpp) and thread ranks sharing one (test_p2p_gpu_shared.cpp,
// so that compute-sanitizer can watch the fault paths where one GPU is lent).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "plexus/plexus.h"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace plexus::test::p2p {

// Rank 0's all-reduce of 1024 floats in buf that rank 1 never joins:
// returns once its kernel has ended (by its own deadline or an abort),
// which must take under 10 s.
inline void all_reduce_rank_1_does_not_join(plx_comm_h comm, const Stream &stream, const Device &buf) {
  PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 1024, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
  const auto start = std::chrono::steady_clock::now();
  stream.sync();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

// comm's timeout is 1500 ms. Rank 0 enqueues an all-reduce that rank 1
// never joins: its kernel gives up by itself, the failure is sticky and
// names rank 1; rank 1 adopts rank 0's timeout.
inline void timeout_when_rank_1_skips(plx_comm_h comm, int rank) {
  if (rank == 0) {
    Stream stream;
    Device buf(4096);
    all_reduce_rank_1_does_not_join(comm, stream, buf);  // the kernel gives up by itself after the timeout
    CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_TIMEOUT);
    CHECK(plx_all_reduce(comm, buf.p, buf.p, 1024, PLX_FLOAT32, PLX_SUM, nullptr, stream.s) == PLX_ERR_TIMEOUT);
    CHECK(std::string(plx_last_error()).find("rank 1") != std::string::npos);
  } else {
    CHECK(wait_for_failure(comm, std::chrono::seconds(15)) == PLX_ERR_TIMEOUT);  // rank 0's, adopted
  }
}

// comm's timeout is 30 s. Rank 0's all-reduce waits for rank 1, which
// aborts after 500 ms: the host's abort word stops the waiting kernel long
// before the timeout, and both ranks see PLX_ERR_ABORTED.
inline void abort_reaches_rank_0(plx_comm_h comm, int rank) {
  if (rank == 0) {
    Stream stream;
    Device buf(4096);
    all_reduce_rank_1_does_not_join(comm, stream, buf);  // rank 1's abort stops the waiting kernel
    CHECK(wait_for_failure(comm, std::chrono::seconds(5)) == PLX_ERR_ABORTED);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(plx_comm_abort(comm) == PLX_OK);
    CHECK(plx_barrier(comm, nullptr, nullptr) == PLX_ERR_ABORTED);
  }
}

}  // namespace plexus::test::p2p

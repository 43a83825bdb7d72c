// pinned-host's failure domain on GPUs (two ranks, skipped with fewer than
// two GPUs): a rank that skips a call makes the other's kernel give up at
// the timeout (low-latency and bulk), and both ranks then report
// PLX_ERR_TIMEOUT; an abort stops the peer's waiting kernel long before
// the timeout; a peer's kernel timeout is seen before anyone posts it; a
// killed rank is noticed; no segment name is left in
// /dev/shm. Exits 77 (skipped) without a CUDA device.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/gpu_skip.hpp"
#include "tests/plugins/pinned-host/pinned_gpu_util.hpp"

namespace {

using namespace plexus::test::pinned;

// Rank 0 calls an all-reduce that rank 1 never joins.
void skipped_call(plx_backend_h b, const plx_unique_id &id, int rank, uint64_t count) {
  plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/1500);
  if (rank == 0) {
    Stream stream;
    Device buf(count * 4);
    PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, count, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
    const auto start = std::chrono::steady_clock::now();
    stream.sync();  // the kernel gives up by itself after the timeout
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
    CHECK(wait_for_failure(comm, 5) == PLX_ERR_TIMEOUT);
    CHECK(plx_all_reduce(comm, buf.p, buf.p, count, PLX_FLOAT32, PLX_SUM, nullptr, stream.s) == PLX_ERR_TIMEOUT);
    CHECK(std::string(plx_last_error()).find("rank 1") != std::string::npos);
  } else {
    CHECK(wait_for_failure(comm, 15) == PLX_ERR_TIMEOUT);  // rank 0's, adopted
    CHECK(plx_barrier(comm, nullptr, nullptr) == PLX_ERR_TIMEOUT);
  }
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

// A 4 KiB all-reduce that a peer never completes: its kernel must still end
// (time out, or be stopped by the abort word) well within 10 s.
void all_reduce_that_ends(plx_comm_h comm) {
  Stream stream;
  Device buf(4096);
  PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 1024, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
  const auto start = std::chrono::steady_clock::now();
  stream.sync();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

}  // namespace

TEST_CASE("plugins.pinned_host.gpu.timeout_when_a_rank_skips_ll") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.timeout_when_a_rank_skips_ll", 2,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) { skipped_call(b, id, rank, 1024); });
}

TEST_CASE("plugins.pinned_host.gpu.timeout_when_a_rank_skips_bulk") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.timeout_when_a_rank_skips_bulk", 2,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) { skipped_call(b, id, rank, 1 << 20); });
}

// Rank 2 skips an all-reduce; rank 1's kernel times out first (500 ms
// against rank 0's 30 s) and its abort word stops rank 0's kernel. Every
// watchdog sleeps 10 s, so nobody has posted the failure yet when rank 0's
// stream finishes: rank 0 must still not see a successful call, from rank
// 1's timeout record (4 H200, session 23: plexus-conformance's timeout case
// once read PLX_OK there). Needs 3 GPUs.
TEST_CASE("plugins.pinned_host.gpu.a_peers_timeout_is_seen_before_it_is_posted") {
  if (plexus::test::cuda_devices() < 3) return plexus::test::skip_case("fewer than three GPUs");
  setenv("PLEXUS_PINNED_HOST_WATCHDOG_POLL_MS", "10000", 1);
  run_pinned_ranks("plugins.pinned_host.gpu.a_peers_timeout_is_seen_before_it_is_posted", 3,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 3, rank, /*timeout_ms=*/rank == 1 ? 500 : 30000);
    if (rank < 2) all_reduce_that_ends(comm);
    if (rank == 0) {
      plx_status state = PLX_OK;
      CHECK(plx_comm_async_status(comm, &state) == PLX_OK);
      CHECK(state == PLX_ERR_TIMEOUT);
      CHECK(plx_barrier(comm, nullptr, nullptr) == PLX_ERR_TIMEOUT);
      CHECK(std::string(plx_last_error()).find("rank 1's all_reduce") != std::string::npos);
    } else {
      if (rank == 1) std::this_thread::sleep_for(std::chrono::seconds(2));  // rank 0 looks first
      CHECK(wait_for_failure(comm, 15) == PLX_ERR_TIMEOUT);
    }
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
  unsetenv("PLEXUS_PINNED_HOST_WATCHDOG_POLL_MS");
}

TEST_CASE("plugins.pinned_host.gpu.abort_reaches_the_peer") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.abort_reaches_the_peer", 2,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/30000);
    if (rank == 0) {
      Stream stream;
      Device buf(1 << 22);
      PLX_OK_OR_FAIL(plx_all_reduce(comm, buf.p, buf.p, 1 << 20, PLX_FLOAT32, PLX_SUM, nullptr, stream.s));
      const auto start = std::chrono::steady_clock::now();
      stream.sync();  // rank 1's abort word stops the waiting kernel long before the timeout
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
      CHECK(wait_for_failure(comm, 5) == PLX_ERR_ABORTED);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      CHECK(plx_comm_abort(comm) == PLX_OK);
      CHECK(plx_barrier(comm, nullptr, nullptr) == PLX_ERR_ABORTED);
    }
    CHECK(plx_comm_destroy(comm) == PLX_OK);
  });
}

TEST_CASE("plugins.pinned_host.gpu.killed_rank_is_noticed") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.killed_rank_is_noticed", 2,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank, /*timeout_ms=*/30000);
    if (rank == 1) raise(SIGKILL);
    all_reduce_that_ends(comm);
    CHECK(wait_for_failure(comm, 5) == PLX_ERR_PEER_LOST);
    CHECK(plx_comm_destroy(comm) == PLX_OK);
    CHECK(leftover_segments() == 0);
  }, /*killed_rank=*/1);
}

// Communicators made and destroyed, one of them failed: nothing stays in
// /dev/shm and no destroy waits for a peer.
TEST_CASE("plugins.pinned_host.gpu.nothing_left_in_dev_shm") {
  if (!two_gpus()) return;
  run_pinned_ranks("plugins.pinned_host.gpu.nothing_left_in_dev_shm", 2,
                   [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_h comm = join(b, id, 2, rank);
    if (rank == 0) CHECK(leftover_segments() == 0);
    CHECK(plx_barrier(comm, nullptr, nullptr) == PLX_OK);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // both ranks' barriers are in
    if (rank == 0) CHECK(plx_comm_abort(comm) == PLX_OK);
    CHECK(wait_for_failure(comm, 5) == PLX_ERR_ABORTED);
    const auto start = std::chrono::steady_clock::now();
    CHECK(plx_comm_destroy(comm) == PLX_OK);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    if (rank == 0) CHECK(leftover_segments() == 0);
  });
}

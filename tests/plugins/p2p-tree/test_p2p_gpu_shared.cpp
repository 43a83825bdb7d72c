// p2p-tree's protocol with 2 and 4 ranks on ONE GPU: the ranks are threads
// of one process on GPU 0 (PLEXUS_P2P_TREE_SHARED_GPU=1; grids of at most 8
// blocks and 8 copy blocks, so every rank's kernel is resident at once; with
// the default 128 copy blocks two 2-rank grids of the two-shot in rounds did
// not fit, and waited out the timeout), meeting at a barrier
// before every collective (meet_peers: a rank's cudaFree or upload waits for
// the whole device, so it must not come after a peer's launch that waits
// for this rank's). No NVLink is crossed,
// so this says nothing of speed or of LL128 (which needs NVLink between every
// pair and stays off here); it runs the flags, the epochs, the LL lines and
// the exchange areas of every all-reduce kernel with several ranks where a
// machine has a single GPU. Outputs poisoned, every element against core's
// CPU reduction; the options of DESIGN §3 (a rank that adds nothing, a
// half-type wire: all-reduce and reduce, whose one-shot converts in the
// kernel, and reduce-scatter, whose stand-in allocates from the scratch
// pool, which does not wait for the device) bit for bit.
#include <doctest/doctest.h>

#include <barrier>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/gpu_no_contribution.hpp"
#include "tests/plugins/gpu_wire.hpp"
#include "tests/plugins/p2p-tree/p2p_faults.hpp"
#include "tests/plugins/p2p-tree/p2p_first_calls.hpp"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace {

using namespace plexus::test::p2p;  // Stream, Device, input_of, reference, check_same, ScopedEnv

// A communicator of `nranks` with every rank on GPU 0.
plx_comm_h join_on_gpu0(plx_backend_h b, const plx_unique_id &id, int nranks, int rank, int32_t timeout_ms = 20000) {
  plx_comm_config config = PLX_COMM_CONFIG_INIT;
  config.cuda_device = 0;
  config.timeout_ms = timeout_ms;
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  plx_comm_h comm = nullptr;
  const plx_status s = plx_comm_init(b, &id, nranks, rank, &config, &comm);
  INFO("rank ", rank, ": ", plx_last_error());
  REQUIRE(s == PLX_OK);
  return comm;
}

// Float32 sums, unaligned by one element, then bfloat16 in place: 7 by the
// LL one-shot; 65537 by the LL one-shot on 2 ranks, the bulk one-shot on 4;
// 300001 by the bulk one-shot on 2 ranks, the two-shot in one launch on 4;
// 1500001 by the two-shot in two launches (4 MiB areas): on 2 ranks the
// first two-shot of the process, which hung in about a third of the runs
// while the plugin left its kernels to CUDA's lazy loading
// (shared_gpu_first_launch_while_peer_waits).
void check_every_kernel(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  uint32_t salt = 0;
  for (uint64_t count : {uint64_t{7}, uint64_t{65537}, uint64_t{300001}, uint64_t{1500001}})
    for (plx_dtype dtype : {PLX_FLOAT32, PLX_BFLOAT16}) {
      const size_t es = plx_dtype_size(dtype), bytes = count * es;
      const bool in_place = dtype == PLX_BFLOAT16;
      std::vector<Bytes> inputs;
      for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, dtype, count, ++salt));
      Device send(bytes + es), recv(bytes + es);
      send.put(es, inputs[rank]);
      recv.put(0, Bytes(bytes + es, 0xa5));
      uint8_t *out = in_place ? send.p + es : recv.p + es;
      plexus::test::meet_peers();
      PLX_OK_OR_FAIL(plx_all_reduce(comm, send.p + es, out, count, dtype, PLX_SUM, nullptr, stream.s));
      stream.sync();
      check_same((in_place ? send : recv).get(es, bytes), reference(dtype, PLX_SUM, inputs, count), es,
                 std::string(plx_dtype_string(dtype)) + " count " + std::to_string(count));
    }
}

// A float32 sum of `count` elements over every rank, on random inputs,
// into a poisoned output: enqueue() starts it; check(), once the caller
// has synchronised the stream, compares every element with core's sum.
struct FloatSum {
  uint64_t count;
  std::vector<Bytes> inputs;
  Device send, recv;
  FloatSum(int rank, int nranks, uint64_t n, uint32_t *salt) : count(n), send(n * 4), recv(n * 4) {
    for (int r = 0; r < nranks; ++r) inputs.push_back(input_of(r, PLX_FLOAT32, count, ++*salt));
    send.put(0, inputs[rank]);
    recv.put(0, Bytes(count * 4, 0xa5));
  }
  void enqueue(plx_comm_h comm, int32_t algo, const Stream &stream) const {
    plx_coll_options options = PLX_COLL_OPTIONS_INIT;
    options.algorithm = algo;
    PLX_OK_OR_FAIL(plx_all_reduce(comm, send.p, recv.p, count, PLX_FLOAT32, PLX_SUM, &options, stream.s));
  }
  void check(const std::string &what) const {
    check_same(recv.get(0, count * 4), reference(PLX_FLOAT32, PLX_SUM, inputs, count), 4,
               what + " count " + std::to_string(count));
  }
};

// Float32 sums of 300001 elements by `first` (options->algorithm: the bulk
// one-shot, or the two-shot), each followed by a two-shot of two launches
// (1500001 elements against 4 MiB areas), ten rounds back to back. Run
// alone, in a process whose kernels CUDA loaded lazily, the bulk one-shot
// first hung at the first two-launch call about every other run (see
// shared_gpu_first_launch_while_peer_waits); the two-shot first passed.
void alternate(plx_comm_h comm, int rank, int nranks, const Stream &stream, int32_t first) {
  uint32_t salt = 500;
  for (int round = 0; round < 10; ++round)
    for (auto [count, algo] : {std::pair{uint64_t{300001}, first}, std::pair{uint64_t{1500001}, PLX_ALGO_TWO_SHOT}}) {
      const FloatSum sum(rank, nranks, count, &salt);
      plexus::test::meet_peers();
      sum.enqueue(comm, algo, stream);
      stream.sync();
      sum.check("round " + std::to_string(round));
    }
}

// Rank 1 starts 300 ms after rank 0, which meanwhile enqueues an LL
// one-shot (whose kernel ran once already: it now waits for rank 1's) and
// then the first two-shot of the process. Had the two-shot's kernel still
// to be loaded at that launch (CUDA's lazy loading), the load would wait
// for the context to go idle, so for rank 0's one-shot, which waits for
// rank 1's launch, which waits for the load: both ranks hung until the
// timeout. The plugin loads every kernel when the communicator is made
// (core/kernel_loading.hpp), so both calls end once rank 1 joins.
void first_launch_while_peer_waits(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join_on_gpu0(b, id, nranks, rank);
  Stream stream;
  uint32_t salt = 900;
  const FloatSum warm_up(rank, nranks, 7, &salt);
  plexus::test::meet_peers();
  warm_up.enqueue(comm, PLX_ALGO_ONE_SHOT, stream);
  stream.sync();
  warm_up.check("the warm-up one-shot");
  const FloatSum waiting(rank, nranks, 7, &salt), first(rank, nranks, 300001, &salt);
  plexus::test::meet_peers();
  if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  waiting.enqueue(comm, PLX_ALGO_ONE_SHOT, stream);
  first.enqueue(comm, PLX_ALGO_TWO_SHOT, stream);
  stream.sync();
  waiting.check("the one-shot waiting for rank 1");
  first.check("the first two-shot");
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

void first_wire_call(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join_on_gpu0(b, id, nranks, rank);
  first_wire_call_while_peer_waits(comm, rank, nranks);
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

template <int32_t TimeoutMs, void (*Fault)(plx_comm_h, int)>
void failing(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join_on_gpu0(b, id, nranks, rank, TimeoutMs);
  Fault(comm, rank);
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

template <int32_t First>
void alternating(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join_on_gpu0(b, id, nranks, rank);
  Stream stream;
  alternate(comm, rank, nranks, stream, First);
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

void shared_rank(plx_backend_h b, const plx_unique_id &id, int nranks, int rank) {
  plx_comm_h comm = join_on_gpu0(b, id, nranks, rank);
  Stream stream;
  check_every_kernel(comm, rank, nranks, stream);
  plexus::test::check_wire_precision(comm, rank, nranks, 1001, 30001);
  plexus::test::check_no_contribution(comm, rank, nranks, 1001, 300001, true);
  CHECK(plx_comm_destroy(comm) == PLX_OK);
}

using RankBody = void (*)(plx_backend_h, const plx_unique_id &, int nranks, int rank);

void run_shared(const char *test_case, int nranks, RankBody body = shared_rank) {
  const ScopedEnv shared("PLEXUS_P2P_TREE_SHARED_GPU", "1");
  const ScopedEnv blocks("PLEXUS_P2P_TREE_MAX_BLOCKS", "8");
  const ScopedEnv copiers("PLEXUS_P2P_TREE_COPY_BLOCKS", "8");  // the two-shot in rounds adds these
  const ScopedEnv slots("PLEXUS_P2P_TREE_SLOT_BYTES", "4M", true);
  run_p2p_ranks(test_case, 1, [nranks, body](plx_backend_h b, const plx_unique_id &id, int) {
    std::barrier<> meeting(nranks);
    plexus::test::before_collective() = [&meeting] { meeting.arrive_and_wait(); };
    // A rank that fails leaves the meetings, so the others' go on without it.
    const int failed = run_thread_ranks(nranks, [&](int r) { body(b, id, nranks, r); },
                                        [&meeting] { meeting.arrive_and_drop(); });
    plexus::test::before_collective() = nullptr;
    CHECK(failed == 0);
  });
}

// Two ranks in a process of their own, whose kernels CUDA loads lazily
// (the default since CUDA 12.2) whatever the caller's environment says:
// no earlier case of this binary has loaded any.
// With `stack_limit`, the process first lowers the stack limit to it (the
// application's choice): the first launch of a kernel needing more local
// memory than every one before it then resizes the context's local memory,
// unless the plugin raised the limit at plx_comm_init (core/kernel_loading.hpp).
void run_shared_afresh(const char *test_case, RankBody body, size_t stack_limit = 0) {
  const ScopedEnv lazy("CUDA_MODULE_LOADING", "LAZY");
  plexus::test::run_in_fresh_process(test_case, [test_case, body, stack_limit] {
    if (stack_limit != 0 && plexus::test::cuda_devices() > 0) {  // without a GPU, run_shared skips the case
      REQUIRE(cudaSetDevice(0) == cudaSuccess);
      REQUIRE(cudaDeviceSetLimit(cudaLimitStackSize, stack_limit) == cudaSuccess);
    }
    run_shared(test_case, 2, body);
  });
}

}  // namespace

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_two_ranks") { run_shared("plugins.p2p_tree.gpu.shared_gpu_two_ranks", 2); }

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_bulk_then_two_shot") {
  run_shared_afresh("plugins.p2p_tree.gpu.shared_gpu_bulk_then_two_shot", alternating<PLX_ALGO_ONE_SHOT>);
}

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_two_shot_then_two_shot") {
  run_shared("plugins.p2p_tree.gpu.shared_gpu_two_shot_then_two_shot", 2, alternating<PLX_ALGO_TWO_SHOT>);
}

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_first_launch_while_peer_waits") {
  run_shared_afresh("plugins.p2p_tree.gpu.shared_gpu_first_launch_while_peer_waits", first_launch_while_peer_waits);
}

// The same under a stack limit of 64 bytes a thread: the warm-up's kernel
// needs 128 on sm_90, the two-shot's 192 or more, so its first launch would
// resize local memory, which waits for the one-shot spinning for rank 1.
TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_first_launch_under_a_low_stack_limit") {
  run_shared_afresh("plugins.p2p_tree.gpu.shared_gpu_first_launch_under_a_low_stack_limit",
                    first_launch_while_peer_waits, 64);
}

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_four_ranks") { run_shared("plugins.p2p_tree.gpu.shared_gpu_four_ranks", 4); }

// Ranks of two processes on one GPU stay refused, SHARED_GPU or not: their
// kernels would take turns and wait for each other forever.
TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_refuses_two_processes") {
  const ScopedEnv shared("PLEXUS_P2P_TREE_SHARED_GPU", "1");
  run_p2p_ranks("plugins.p2p_tree.gpu.shared_gpu_refuses_two_processes", 2,
                [](plx_backend_h b, const plx_unique_id &id, int rank) {
    plx_comm_config config = PLX_COMM_CONFIG_INIT;
    config.cuda_device = 0;
    config.init_timeout_ms = 20000;
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    plx_comm_h comm = nullptr;
    CHECK(plx_comm_init(b, &id, 2, rank, &config, &comm) == PLX_ERR_UNSUPPORTED);
    CHECK(std::string(plx_last_error()).find("share the GPU") != std::string::npos);
  });
}

// test_p2p_gpu_threads.cpp's first wire calls on one GPU: the stand-in's
// first allocations from its scratch pool, made while the one-shot before
// them spins for rank 1, must not wait for the device (on an H200 a first
// mapping took 9–13 ms with a kernel spinning; cudaFree waited for it).
TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_first_wire_call_while_peer_waits") {
  run_shared_afresh("plugins.p2p_tree.gpu.shared_gpu_first_wire_call_while_peer_waits", first_wire_call);
}

// The fault paths of test_p2p_gpu.cpp with both ranks on one GPU, where
// compute-sanitizer can watch them on a machine with one: a rank that never
// joins (the waiting kernel's own deadline) and a rank that aborts (the
// host's abort word stops the waiting kernel; plx_comm_abort makes no CUDA
// call, so it does not wait for that kernel).
TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_timeout_when_a_rank_skips") {
  run_shared("plugins.p2p_tree.gpu.shared_gpu_timeout_when_a_rank_skips", 2, failing<1500, timeout_when_rank_1_skips>);
}

TEST_CASE("plugins.p2p_tree.gpu.shared_gpu_abort_reaches_the_peer") {
  run_shared("plugins.p2p_tree.gpu.shared_gpu_abort_reaches_the_peer", 2, failing<30000, abort_reaches_rank_0>);
}

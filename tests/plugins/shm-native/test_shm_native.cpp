// shm-native through the loader, with ranks as forked processes and as
// threads: every collective against a host reference on random data, timeouts,
// a killed rank, abort, split. The exhaustive matrix is plexus-conformance's.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/shm-native/fork_ranks.hpp"

namespace {

using plexus::test::run_ranks;

using plexus::test::random_floats;

// The sum over ranks in rank order, as every rank must compute it.
std::vector<float> expected_sum(size_t n, int nranks) {
  std::vector<float> sum = random_floats(n, 1000);
  for (int r = 1; r < nranks; ++r) {
    const std::vector<float> x = random_floats(n, 1000 + r);
    for (size_t i = 0; i < n; ++i) sum[i] += x[i];
  }
  return sum;
}

int all_reduce_case(plx_comm_h comm, int rank, int nranks, size_t n, bool in_place) {
  std::vector<float> send = random_floats(n, 1000 + rank), recv(n, -777.0f);
  float *out = in_place ? send.data() : recv.data();
  if (plx_all_reduce(comm, send.data(), out, n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 1;
  const std::vector<float> want = expected_sum(n, nranks);
  // n == 0: both buffers may be NULL, which memcmp must not see.
  return n == 0 || std::memcmp(out, want.data(), n * sizeof(float)) == 0 ? 0 : 2;
}

}  // namespace

TEST_CASE("ShmNative.AllReduce.float32_sum_matches_reference") {
  for (int nranks : {2, 3, 4})
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1023}, size_t{300001}})
      for (bool in_place : {false, true}) {
        CAPTURE(nranks);
        CAPTURE(n);
        CAPTURE(in_place);
        CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) { return all_reduce_case(c, r, nranks, n, in_place); }) == 0);
      }
}

TEST_CASE("ShmNative.Broadcast.and_gather_move_bytes") {
  const int nranks = 3;
  CHECK(run_ranks(nranks, [&](plx_comm_h c, int r) {
    const size_t n = 500000;
    std::vector<int32_t> buf(n, r == 1 ? 0 : -1);
    if (r == 1) for (size_t i = 0; i < n; ++i) buf[i] = static_cast<int32_t>(i * 7);
    if (plx_broadcast(c, buf.data(), buf.data(), n, PLX_INT32, 1, nullptr, nullptr)) return 1;
    for (size_t i = 0; i < n; ++i) if (buf[i] != static_cast<int32_t>(i * 7)) return 2;
    const uint64_t counts[] = {3, 0, 70000};
    std::vector<int64_t> mine(counts[r], r * 1000), all(70003, -1);
    if (plx_gather(c, mine.data(), all.data(), 0, counts, PLX_INT64, 2, nullptr, nullptr)) return 3;
    if (r == 2 && (all[0] != 0 || all[2] != 0 || all[3] != 2000 || all[70002] != 2000)) return 4;
    return 0;
  }) == 0);
}

TEST_CASE("ShmNative.Failure.missing_rank_times_out_and_killed_rank_is_lost") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    if (r == 1) { usleep(100000); raise(SIGKILL); }
    float x = 1;
    const plx_status s = plx_all_reduce(c, &x, &x, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
    return (s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT) ? 0 : 1;
  }) == 1);  // the killed rank itself counts as failed
}

TEST_CASE("ShmNative.Failure.abort_reaches_every_rank") {
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    if (r == 0) plx_comm_abort(c);
    float x = 1;
    const plx_status s = plx_all_reduce(c, &x, &x, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
    plx_status again = PLX_OK;
    plx_comm_async_status(c, &again);
    return s == PLX_ERR_ABORTED && again == PLX_ERR_ABORTED ? 0 : 1;
  }) == 0);
}

TEST_CASE("ShmNative.Queue.every_reader_gets_every_message_in_order") {
  CHECK(run_ranks(4, [](plx_comm_h c, int r) {
    plx_queue_config cfg = PLX_QUEUE_CONFIG_INIT;
    cfg.writer_rank = 0, cfg.slot_bytes = 256, cfg.slot_count = 8;
    plx_queue_h q = nullptr;
    if (plx_queue_create(c, &cfg, &q)) return 1;
    int code = 0;
    for (uint32_t m = 0; m < 200 && code == 0; ++m) {
      std::vector<uint8_t> msg(m * 13 % 2000);  // sizes from 0 to several slots
      for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<uint8_t>(m + i);
      if (r == 0) {
        code = plx_queue_enqueue(q, msg.data(), msg.size(), -1) ? 2 : 0;
        continue;
      }
      std::vector<uint8_t> got(2000, 0xA5);
      uint64_t bytes = 0;
      if (plx_queue_dequeue(q, got.data(), got.size(), &bytes, -1)) code = 3;
      else if (bytes != msg.size() || (bytes && std::memcmp(got.data(), msg.data(), bytes))) code = 4;
    }
    uint64_t bytes = 0;
    if (r != 0 && plx_queue_dequeue(q, nullptr, 0, &bytes, 0) != PLX_IN_PROGRESS) code = 5;
    plx_queue_destroy(q);
    return code;
  }) == 0);
}

// A reader's wait running out is "nothing yet", not a failed communicator
// (PLX-L-14): the queue and the communicator go on working.
TEST_CASE("ShmNative.Queue.timeout_is_not_sticky") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    plx_queue_config cfg = PLX_QUEUE_CONFIG_INIT;
    cfg.writer_rank = 0;
    plx_queue_h q = nullptr;
    if (plx_queue_create(c, &cfg, &q)) return 1;
    int code = 0;
    char msg[8] = "late";
    uint64_t bytes = 0;
    if (r == 1 && plx_queue_dequeue(q, msg, sizeof(msg), &bytes, 50) != PLX_ERR_TIMEOUT) code = 2;
    if (code == 0 && plx_barrier(c, nullptr, nullptr) != PLX_OK) code = 3;
    if (code == 0 && r == 0 && plx_queue_enqueue(q, msg, sizeof(msg), -1) != PLX_OK) code = 4;
    if (code == 0 && r == 1 && (plx_queue_dequeue(q, msg, sizeof(msg), &bytes, -1) != PLX_OK || bytes != 8)) code = 5;
    plx_queue_destroy(q);
    return code;
  }) == 0);
}

TEST_CASE("ShmNative.Queue.small_buffer_consumes_nothing_and_dead_reader_is_noticed") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    plx_queue_config cfg = PLX_QUEUE_CONFIG_INIT;
    cfg.writer_rank = 0, cfg.slot_bytes = 64, cfg.slot_count = 4;
    plx_queue_h q = nullptr;
    if (plx_queue_create(c, &cfg, &q)) return 1;
    char msg[100] = "hello";
    if (r == 1) {
      char small[10];
      uint64_t bytes = 0;
      if (plx_queue_dequeue(q, small, sizeof(small), &bytes, -1) != PLX_ERR_INVALID_ARGUMENT || bytes != 100) return 2;
      char big[100];
      if (plx_queue_dequeue(q, big, sizeof(big), &bytes, -1) || std::strcmp(big, "hello")) return 3;
      raise(SIGKILL);
    }
    if (plx_queue_enqueue(q, msg, sizeof(msg), -1)) return 4;
    plx_status s = PLX_OK;
    for (int i = 0; i < 100 && s == PLX_OK; ++i) s = plx_queue_enqueue(q, msg, sizeof(msg), -1);
    plx_queue_destroy(q);
    return s == PLX_ERR_PEER_LOST ? 0 : 5;
  }) == 1);  // the reader killed itself
}

TEST_CASE("ShmNative.AllReduce.no_contribution_adds_nothing") {
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    for (size_t n : {size_t{5}, size_t{600000}}) {  // one-shot and two-shot
      std::vector<float> buf(n, static_cast<float>(r + 1));
      plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
      if (r == 1) opts.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
      if (plx_all_reduce(c, r == 1 ? nullptr : buf.data(), buf.data(), n, PLX_FLOAT32, PLX_SUM, &opts, nullptr)) return 1;
      for (float v : buf) if (v != 4.0f) return 2;  // ranks 0 and 2 give 1 + 3
    }
    return 0;
  }) == 0);
}

// float32 sent as bfloat16 or float16: each rank's input rounded to the wire
// type, added in rank order in float32, the sum rounded to the wire type
// once, then widened (here with the compiler's own conversions).
float wire_round(float x, plx_dtype wire) {
  if (wire == PLX_FLOAT16) return static_cast<float>(static_cast<_Float16>(x));
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&x, &bits, 4);
  return x;
}

std::vector<float> expected_on_wire(size_t n, int nranks, plx_dtype wire) {
  std::vector<float> sum(n, 0.0f);
  for (int r = 0; r < nranks; ++r) {
    const std::vector<float> x = random_floats(n, 1000 + r);
    for (size_t i = 0; i < n; ++i) sum[i] = r == 0 ? wire_round(x[i], wire) : sum[i] + wire_round(x[i], wire);
  }
  for (float &v : sum) v = wire_round(v, wire);
  return sum;
}

TEST_CASE("ShmNative.AllReduce.wire_dtype_rounds_inputs_and_result") {
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    for (plx_dtype wire : {PLX_BFLOAT16, PLX_FLOAT16})
      for (size_t n : {size_t{5}, size_t{600000}}) {  // one-shot and two-shot
        plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
        opts.wire_dtype = wire;
        std::vector<float> send = random_floats(n, 1000 + r), recv(n, -777.0f);
        if (plx_all_reduce(c, send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM, &opts, nullptr)) return 1;
        const std::vector<float> want = expected_on_wire(n, 3, wire);
        if (std::memcmp(recv.data(), want.data(), n * 4) != 0) return 2;
        if (plx_all_reduce(c, send.data(), send.data(), n, PLX_FLOAT32, PLX_SUM, &opts, nullptr)) return 3;
        if (std::memcmp(send.data(), want.data(), n * 4) != 0) return 4;
        // reduce-scatter: block r of the same sums, 3n elements a rank
        const std::vector<float> all = expected_on_wire(3 * n, 3, wire);
        send = random_floats(3 * n, 1000 + r);
        std::vector<float> part(n, -777.0f);
        if (plx_reduce_scatter(c, send.data(), part.data(), n, PLX_FLOAT32, PLX_SUM, &opts, nullptr)) return 5;
        if (std::memcmp(part.data(), all.data() + r * n, n * 4) != 0) return 6;
      }
    // Its buffers (3 x 600000 input elements, 600000 results) go back with a trim.
    uint64_t released = 0;
    if (plx_mem_trim(c, PLX_MEM_SHARED_HOST, 0, &released) || released < 4 * 600000 * 2) return 7;
    return 0;
  }) == 0);
}

// Both options at once: rank 1 adds nothing and the others' float32 travels
// as bfloat16, so each rank's result is the wire-rounded sum of ranks 0 and 2.
TEST_CASE("ShmNative.AllReduce.no_contribution_on_a_half_type_wire") {
  CHECK(run_ranks(3, [](plx_comm_h c, int r) {
    const size_t n = 70001;
    plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
    opts.wire_dtype = PLX_BFLOAT16;
    if (r == 1) opts.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
    const std::vector<float> send = random_floats(n, 1000 + r);
    std::vector<float> recv(n, -777.0f);
    if (plx_all_reduce(c, r == 1 ? nullptr : send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM, &opts, nullptr))
      return 1;
    const std::vector<float> x0 = random_floats(n, 1000), x2 = random_floats(n, 1002);
    for (size_t i = 0; i < n; ++i)
      if (recv[i] != wire_round(wire_round(x0[i], PLX_BFLOAT16) + wire_round(x2[i], PLX_BFLOAT16), PLX_BFLOAT16))
        return 2;
    return 0;
  }) == 0);
}

// A wire dtype shm-native does not carry is refused, as on every shipped
// plugin (PLX-P-24), before any rank waits for another; the communicator
// stays usable.
TEST_CASE("ShmNative.Options.wire_dtype_it_does_not_carry_is_refused") {
  CHECK(run_ranks(2, [](plx_comm_h c, int r) {
    plx_coll_options opts = PLX_COLL_OPTIONS_INIT;
    opts.wire_dtype = PLX_BFLOAT16;
    std::vector<double> d(9, r + 0.5);
    if (plx_all_reduce(c, d.data(), d.data(), 9, PLX_FLOAT64, PLX_SUM, &opts, nullptr) != PLX_ERR_UNSUPPORTED ||
        !std::strstr(plx_last_error(), "shm-native: opts->wire_dtype bfloat16 for all_reduce of float64"))
      return 1;
    std::vector<float> mine(9, r + 1.5f), all(18, -777.0f);
    if (plx_all_gather(c, mine.data(), all.data(), 9, PLX_FLOAT32, &opts, nullptr) != PLX_ERR_UNSUPPORTED) return 2;
    opts.wire_dtype = PLX_FLOAT32;  // the data's own: an ordinary call
    if (plx_all_gather(c, mine.data(), all.data(), 9, PLX_FLOAT32, &opts, nullptr)) return 3;
    return all[0] == 1.5f && all[17] == 2.5f ? 0 : 4;
  }) == 0);
}

TEST_CASE("ShmNative.Split.and_threads_as_ranks") {
  CHECK(run_ranks(4, [](plx_comm_h c, int r) {
    plx_comm_h half = nullptr;
    if (plx_comm_split(c, r % 2, -r, nullptr, &half) || half == nullptr) return 1;
    int32_t rank = -1, size = -1;
    plx_comm_rank(half, &rank), plx_comm_size(half, &size);
    if (size != 2 || rank != (r < 2 ? 1 : 0)) return 2;  // key -r reverses the order
    int64_t v = r, sum = 0;
    if (plx_all_reduce(half, &v, &sum, 1, PLX_INT64, PLX_SUM, nullptr, nullptr) || sum != (r % 2 ? 4 : 2)) return 3;
    plx_comm_h none = reinterpret_cast<plx_comm_h>(1);
    if (plx_comm_split(c, r == 0 ? PLX_SPLIT_NO_COLOR : 0, 0, nullptr, &none) || (r == 0) != (none == nullptr)) return 4;
    if (none) plx_comm_destroy(none);
    return plx_comm_destroy(half) ? 5 : 0;
  }) == 0);
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  plx_unique_id id;
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  std::vector<int> results(3, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r)
    threads.emplace_back([&, r] {
      plx_comm_h comm = nullptr;
      if (plx_comm_init(backend, &id, 3, r, nullptr, &comm)) return;
      double v = r + 0.5, max = 0;
      results[r] = plx_all_reduce(comm, &v, &max, 1, PLX_FLOAT64, PLX_MAX, nullptr, nullptr) == PLX_OK && max == 2.5;
      plx_comm_destroy(comm);
    });
  for (auto &t : threads) t.join();
  CHECK(results == std::vector<int>{1, 1, 1});
  CHECK(plx_backend_close(backend) == PLX_OK);
}

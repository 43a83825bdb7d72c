#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/rendezvous.hpp"
#include "core/status.hpp"
#include "plexus/plugin.h"

using namespace plexus::core;
using std::chrono::milliseconds;

namespace {

constexpr int32_t kLongMs = 5000;  // generous: CI has 2 loaded cores

struct Outcome {
  plx_status status = PLX_ERR_INTERNAL;
  std::string message;  // this thread's last error when status failed
};

Outcome outcome_of(plx_status status) {
  return {status, status == PLX_OK ? std::string() : default_last_error()};
}

bool name_exists(const RendezvousId &id) {
  return std::filesystem::exists(std::string("/dev/shm") + id.name);
}

RendezvousId fresh_id() {
  RendezvousId id;
  REQUIRE(make_rendezvous_id(&id) == PLX_OK);
  return id;
}

// Joins from a test thread (a REQUIRE would throw out of the thread).
std::unique_ptr<Rendezvous> join_in_thread(const RendezvousId &id, int32_t nranks, int32_t rank) {
  std::unique_ptr<Rendezvous> rdv;
  const plx_status status = Rendezvous::join(id, nranks, rank, kLongMs, &rdv);
  CHECK_MESSAGE(status == PLX_OK, default_last_error());
  return rdv;
}

template <typename Body>
void run_threads(int32_t nranks, Body body) {
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < nranks; ++r) threads.emplace_back(body, r);
  for (auto &t : threads) t.join();
}

// A rank's whole life, as an exit code (0 = fine) so that forked ranks can
// report it without doctest: join, allgather rounds, barriers.
int join_and_exchange(const RendezvousId &id, int32_t nranks, int32_t rank, int delay_ms,
                      int barriers) {
  std::this_thread::sleep_for(milliseconds(delay_ms));
  std::unique_ptr<Rendezvous> rdv;
  if (Rendezvous::join(id, nranks, rank, kLongMs, &rdv) != PLX_OK) return 1;
  if (rdv->rank() != rank || rdv->nranks() != nranks) return 2;
  for (int round = 0; round < 10; ++round) {
    const int mine = rank * 1000 + round;
    std::vector<int> all(nranks, -1);
    if (rdv->allgather(&mine, sizeof(mine), all.data(), kLongMs) != PLX_OK) return 3;
    for (int32_t r = 0; r < nranks; ++r)
      if (all[r] != r * 1000 + round) return 4;
  }
  for (int i = 0; i < barriers; ++i)
    if (rdv->barrier(kLongMs) != PLX_OK) return 5;
  return 0;
}

std::vector<int> random_delays_ms(int32_t nranks) {
  std::vector<int> delays(nranks);
  std::mt19937 rng(std::random_device{}());
  for (int32_t r = 0; r < nranks; ++r) delays[r] = 30 * r;
  std::shuffle(delays.begin(), delays.end(), rng);
  return delays;
}

int wait_exit_code(pid_t child) {
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("Core.Rendezvous.id_creates_nothing_and_fits_the_payload") {
  static_assert(sizeof(RendezvousId) <= PLX_UNIQUE_ID_PAYLOAD_BYTES);
  const RendezvousId a = fresh_id(), b = fresh_id();
  CHECK(std::string(a.name).rfind("/plexus-", 0) == 0);
  CHECK(std::string(a.name) != b.name);
  CHECK(a.nonce != b.nonce);
  CHECK_FALSE(name_exists(a));
}

TEST_CASE("Core.Rendezvous.threads_join_in_any_order") {
  const RendezvousId id = fresh_id();
  const std::vector<int> delays = random_delays_ms(4);
  std::vector<int> codes(4, -1);
  run_threads(4, [&](int32_t r) { codes[r] = join_and_exchange(id, 4, r, delays[r], 100); });
  CHECK(codes == std::vector<int>(4, 0));
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.rank_a_second_late_still_joins") {
  const RendezvousId id = fresh_id();
  std::vector<int> codes(2, -1);
  run_threads(2, [&](int32_t r) { codes[r] = join_and_exchange(id, 2, r, 1000 * r, 1); });
  CHECK(codes == std::vector<int>(2, 0));
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.processes_join_and_allgather") {
  const RendezvousId id = fresh_id();
  const std::vector<int> delays = random_delays_ms(3);
  std::vector<pid_t> children;
  for (int32_t r = 0; r < 3; ++r) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) _exit(join_and_exchange(id, 3, r, delays[r], 20));
    children.push_back(child);
  }
  for (const pid_t child : children) CHECK(wait_exit_code(child) == 0);
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.missing_rank_times_out_everywhere") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(2);
  run_threads(2, [&](int32_t r) {
    std::unique_ptr<Rendezvous> rdv;
    outcomes[r] = outcome_of(Rendezvous::join(id, 3, r, 300, &rdv));
  });
  for (const Outcome &o : outcomes) {
    CHECK(o.status == PLX_ERR_TIMEOUT);
    CHECK(o.message.find("rank 2 of 3 did not join within 300 ms") != std::string::npos);
  }
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.duplicate_rank_is_rejected") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(2);
  run_threads(2, [&](int32_t t) {
    std::this_thread::sleep_for(milliseconds(50 * t));
    std::unique_ptr<Rendezvous> rdv;
    outcomes[t] = outcome_of(Rendezvous::join(id, 2, 0, kLongMs, &rdv));
  });
  for (const Outcome &o : outcomes) {
    CHECK(o.status == PLX_ERR_INVALID_USAGE);
    CHECK(o.message.find("rank 0 joined twice") != std::string::npos);
  }
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.mismatched_nranks_is_rejected") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(2);
  run_threads(2, [&](int32_t r) {
    // Rank 1 comes once rank 0 has created the segment, so rank 0 sets nranks.
    for (int i = 0; r == 1 && i < 1000 && !name_exists(id); ++i)
      std::this_thread::sleep_for(milliseconds(5));
    std::unique_ptr<Rendezvous> rdv;
    outcomes[r] = outcome_of(Rendezvous::join(id, 3 + r, r, kLongMs, &rdv));
  });
  CHECK(outcomes[0].status == PLX_ERR_INVALID_USAGE);
  CHECK(outcomes[1].status == PLX_ERR_INVALID_USAGE);
  CHECK(outcomes[1].message == "rank 1 joined with nranks 4 but the communicator has 3");
  CHECK(outcomes[0].message.find("rank 1 joined with nranks 4") == 0);
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.bad_arguments_are_rejected") {
  RendezvousId id = fresh_id();
  std::unique_ptr<Rendezvous> rdv;
  CHECK(Rendezvous::join(id, 0, 0, 100, &rdv) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(Rendezvous::join(id, 2, 2, 100, &rdv) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error() == "rank 2 is outside 0..1");
  RendezvousId corrupt = id;
  corrupt.name[1] = 'x';
  CHECK(Rendezvous::join(corrupt, 1, 0, 100, &rdv) == PLX_ERR_INVALID_ARGUMENT);
  REQUIRE(Rendezvous::join(id, 1, 0, 100, &rdv) == PLX_OK);  // one rank meets itself
  std::vector<char> big(Rendezvous::kMaxAllgatherBytes + 1);
  CHECK(rdv->allgather(big.data(), big.size(), big.data(), 100) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(rdv->barrier(100) == PLX_OK);
  CHECK_FALSE(name_exists(id));
}

TEST_CASE("Core.Rendezvous.allgather_size_mismatch_is_usage_error") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(2);
  run_threads(2, [&](int32_t r) {
    const auto rdv = join_in_thread(id, 2, r);
    if (!rdv) return;
    char mine[8] = {}, all[16];
    outcomes[r] = outcome_of(rdv->allgather(mine, 4 + 4 * r, all, kLongMs));
  });
  for (const Outcome &o : outcomes) CHECK(o.status == PLX_ERR_INVALID_USAGE);
}

TEST_CASE("Core.Rendezvous.barrier_timeout_names_the_missing_rank") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(3);
  std::atomic<int> done{0};
  run_threads(3, [&](int32_t r) {
    const auto rdv = join_in_thread(id, 3, r);
    if (!rdv) return;
    if (r == 2) {  // stays joined and alive, but never arrives
      for (int i = 0; i < 1000 && done.load() < 2; ++i)
        std::this_thread::sleep_for(milliseconds(5));
      return;
    }
    outcomes[r] = outcome_of(rdv->barrier(200));
    ++done;
  });
  for (int32_t r = 0; r < 2; ++r) {
    CHECK(outcomes[r].status == PLX_ERR_TIMEOUT);
    CHECK(outcomes[r].message.find("rank 2 of 3 did not arrive at barrier #1") !=
          std::string::npos);
  }
}

// The child joins as rank 1 and dies (exit or SIGKILL); the parent, rank 0,
// must notice within the timeout though the unreaped child is a zombie.
void check_dead_peer_is_noticed(bool by_signal) {
  const RendezvousId id = fresh_id();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::unique_ptr<Rendezvous> rdv;
    if (Rendezvous::join(id, 2, 1, kLongMs, &rdv) != PLX_OK) _exit(1);
    if (by_signal) ::kill(::getpid(), SIGKILL);
    _exit(0);
  }
  std::unique_ptr<Rendezvous> rdv;
  REQUIRE(Rendezvous::join(id, 2, 0, kLongMs, &rdv) == PLX_OK);
  CHECK_FALSE(name_exists(id));
  const auto start = std::chrono::steady_clock::now();
  CHECK(rdv->barrier(3000) == PLX_ERR_PEER_LOST);
  CHECK(std::chrono::steady_clock::now() - start < milliseconds(3000));
  const std::string lost = "rank 1 (pid " + std::to_string(child) + ") exited";
  CHECK(default_last_error() == lost + " during barrier #1");
  CHECK_FALSE(rdv->peer_alive(1));
  CHECK(rdv->peer_alive(0));
  CHECK(rdv->check_peers() == PLX_ERR_PEER_LOST);
  CHECK(default_last_error() == lost);
  CHECK(rdv->barrier(3000) == PLX_ERR_PEER_LOST);  // sticky
  CHECK(wait_exit_code(child) == (by_signal ? 128 + SIGKILL : 0));
}

TEST_CASE("Core.Rendezvous.dead_process_rank_is_noticed") {
  SUBCASE("exit") { check_dead_peer_is_noticed(false); }
  SUBCASE("sigkill") { check_dead_peer_is_noticed(true); }
}

TEST_CASE("Core.Rendezvous.departed_thread_rank_is_noticed") {
  const RendezvousId id = fresh_id();
  Outcome survivor;
  run_threads(2, [&](int32_t r) {
    const auto rdv = join_in_thread(id, 2, r);
    if (!rdv) return;
    if (r == 0) survivor = outcome_of(rdv->barrier(3000));
  });
  CHECK(survivor.status == PLX_ERR_PEER_LOST);
  CHECK(survivor.message.find("left the communicator") != std::string::npos);
}

TEST_CASE("Core.Rendezvous.posted_failure_reaches_every_rank") {
  const RendezvousId id = fresh_id();
  std::vector<Outcome> outcomes(3);
  std::vector<plx_status> seen(3, PLX_OK);
  run_threads(3, [&](int32_t r) {
    const auto rdv = join_in_thread(id, 3, r);
    if (!rdv) return;
    CHECK(rdv->barrier(kLongMs) == PLX_OK);
    if (r == 1) rdv->post_failure(PLX_ERR_ABORTED, "aborted by the user");
    outcomes[r] = outcome_of(rdv->barrier(kLongMs));
    seen[r] = rdv->failure(nullptr);
    rdv->post_failure(PLX_ERR_TIMEOUT, "too late: the first post wins");
  });
  for (int32_t r = 0; r < 3; ++r) {
    CHECK(outcomes[r].status == PLX_ERR_ABORTED);
    CHECK(outcomes[r].message == "aborted by the user (reported by rank 1)");
    CHECK(seen[r] == PLX_ERR_ABORTED);
  }
}

// Rank 0 posts right after its barrier completes: the barrier must still
// complete on the other ranks, and only the next one fails.
TEST_CASE("Core.Rendezvous.failure_after_a_barrier_does_not_undo_it") {
  for (int round = 0; round < 20; ++round) {
    const RendezvousId id = fresh_id();
    std::vector<plx_status> first(3, PLX_ERR_INTERNAL), second(3, PLX_ERR_INTERNAL);
    run_threads(3, [&](int32_t r) {
      const auto rdv = join_in_thread(id, 3, r);
      if (!rdv) return;
      first[r] = rdv->barrier(kLongMs);
      if (r == 0) rdv->post_failure(PLX_ERR_ABORTED, "abort after the barrier");
      second[r] = rdv->barrier(kLongMs);
    });
    CHECK(first == std::vector<plx_status>(3, PLX_OK));
    CHECK(second == std::vector<plx_status>(3, PLX_ERR_ABORTED));
  }
}

// Fault trials on shm-native (trial.hpp). Each case runs its trials, prints
// one summary line with the figures docs/reliability.md records, and fails
// on any trial that went wrong, printing what did and the seed to replay it.
//   PLEXUS_FAULT_TRIALS  SIGKILL trials (default 20; the other kinds run a
//                        tenth of that, at least 3)
//   PLEXUS_FAULT_SEED    the first trial's seed (default: from the clock)
//   PLEXUS_FAULT_RANKS   the most ranks of a trial (default 4)
#include <doctest/doctest.h>
#include <dirent.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/faults/trial.hpp"

namespace {

using namespace plexus::faults;

constexpr int32_t kTimeoutMs = 2000;

int64_t env_int(const char *name, int64_t fallback) {
  const char *text = std::getenv(name);
  return text && *text ? std::strtoll(text, nullptr, 0) : fallback;
}

uint64_t first_seed() {
  static const uint64_t seed = static_cast<uint64_t>(
      env_int("PLEXUS_FAULT_SEED", std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffffff));
  return seed;
}

int parent_fds() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

struct Totals {
  int trials = 0, passed = 0, survivors = 0, lost = 0, timeouts = 0, aborted = 0, in_init = 0;
  int hung = 0, shm_leaks = 0, fd_leaks = 0;
  double max_lost = 0, max_timeout = 0, max_aborted = 0;

  void add(const TrialResult &t) {
    ++trials, passed += t.ok, survivors += t.survivors, in_init += t.fault_in_init;
    lost += t.peer_lost, timeouts += t.timeouts, aborted += t.aborted;
    hung += t.hung, shm_leaks += t.shm_leaks, fd_leaks += t.fd_leaks;
    max_lost = std::max(max_lost, t.max_lost_ms), max_timeout = std::max(max_timeout, t.max_timeout_ms);
    max_aborted = std::max(max_aborted, t.max_aborted_ms);
  }
};

void print_summary(Fault fault, const Totals &t, uint64_t seed) {
  fmt::print("faults.shm_native.{}: {} trials (seed {:#x}, 2-{} ranks, timeout {} ms, margin {} ms): "
             "{} passed, {} failed; {} survivors: PEER_LOST {}, TIMEOUT {}, ABORTED {}; fault before "
             "every rank joined: {} trials; slowest detection: PEER_LOST {:.1f} ms, TIMEOUT {:.1f} ms, "
             "ABORTED {:.1f} ms; hangs {}, /dev/shm names left {}, descriptor leaks {}\n",
             fault_name(fault), t.trials, seed, env_int("PLEXUS_FAULT_RANKS", 4), kTimeoutMs, kMarginMs,
             t.passed, t.trials - t.passed, t.survivors, t.lost, t.timeouts, t.aborted, t.in_init, t.max_lost,
             t.max_timeout, t.max_aborted, t.hung, t.shm_leaks, t.fd_leaks);
  std::fflush(stdout);
}

// never_arrives alternates between a rank that never joins and one that
// skips a collective.
Plan plan_for(Fault fault, int index, uint64_t seed) {
  Plan p = make_plan(fault, seed, static_cast<int32_t>(env_int("PLEXUS_FAULT_RANKS", 4)), kTimeoutMs);
  if (fault == Fault::never_arrives) p.stall_op = index % 3 == 0 ? -1 : std::max(p.stall_op, 0);
  return p;
}

void run_trials(Fault fault, int trials) {
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  const int fds = parent_fds();
  const uint64_t seed = first_seed() + static_cast<uint64_t>(fault) * 1000003u;
  Totals totals;
  for (int i = 0; i < trials; ++i) {
    const TrialResult t = run_trial(backend, plan_for(fault, i, seed + static_cast<uint64_t>(i)));
    totals.add(t);
    for (const std::string &p : t.problems)
      FAIL_CHECK(fmt::format("trial {} (seed {:#x}, {} ranks, victim {}, moment {} ms, stall op {}, {} buffers): {}",
                             i, t.plan.seed, t.plan.nranks, t.plan.victim, t.plan.moment_ms, t.plan.stall_op,
                             t.plan.pool_buffers ? "pool" : "malloc", p));
  }
  print_summary(fault, totals, seed);
  CHECK(parent_fds() == fds);
  CHECK(plx_backend_close(backend) == PLX_OK);
  CHECK(totals.passed == trials);
}

int kill_trials() { return static_cast<int>(env_int("PLEXUS_FAULT_TRIALS", 20)); }
int other_trials() { return std::max(3, kill_trials() / 10); }

}  // namespace

TEST_CASE("faults.shm_native.sigkill") { run_trials(Fault::kill, kill_trials()); }

TEST_CASE("faults.shm_native.never_arrives") { run_trials(Fault::never_arrives, other_trials()); }

TEST_CASE("faults.shm_native.abort") { run_trials(Fault::abort, other_trials()); }

// Fault trials on shm-native (issue 10): N forked ranks run the same random
// sequence of collectives of random sizes, and one thing goes wrong at a
// random moment: a rank is killed with SIGKILL, a rank stops arriving (at
// init or at a collective), or a rank calls plx_comm_abort from a second
// thread. The parent then checks what every other rank saw: the documented
// status within the timeout plus a margin, a failure that stays, destroy
// that works, no descriptor leaked, no plexus name left in /dev/shm, and no
// process that hangs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plexus/plexus.h"

namespace plexus::faults {

enum class Fault { kill, never_arrives, abort };
const char *fault_name(Fault f);

// Every figure of a trial derives from its seed; the ranks replay the same
// collectives from it.
struct Plan {
  Fault fault = Fault::kill;
  uint64_t seed = 0;
  int32_t nranks = 2;
  int32_t victim = 0;
  int32_t moment_ms = 0;   // kill, abort: after the ranks start
  int32_t stall_op = -1;   // never_arrives: the collective it skips; -1: init
  bool pool_buffers = false;  // send/recv from plx_mem_alloc (read in place by peers)
  int32_t timeout_ms = 2000;  // the collective and the init timeout
};

Plan make_plan(Fault fault, uint64_t seed, int32_t max_ranks, int32_t timeout_ms);

// What one rank writes for the parent, in a shared anonymous mapping.
struct RankReport {
  int32_t started = 0;
  int32_t init_status = 1;  // 1: never called
  int32_t fail_status = 0;  // the first failing call's status
  int32_t sticky_status = 0, again_status = 0, async_status = 0;  // the calls after it
  int32_t destroy_status = 1;
  int32_t fds_before = 0, fds_after = 0;
  int32_t ops_done = 0;
  int64_t fail_ns = 0;   // CLOCK_MONOTONIC when the failing call returned
  int64_t sticky_ns = 0; // how long the next call took
  int64_t event_ns = 0;  // abort: the call; never_arrives: the moment it stayed away
  char message[240] = {};
};

int64_t now_ns();  // CLOCK_MONOTONIC, the same clock in every process

// A rank's whole life after fork: join, collectives until one fails, the
// checks after it, destroy. Writes *report; returns the exit code.
int run_rank(plx_backend_h backend, const plx_unique_id &id, const Plan &plan, int32_t rank,
             RankReport *reports);

// What the parent concluded about one trial.
struct TrialResult {
  Plan plan;
  bool ok = true;
  std::vector<std::string> problems;
  int32_t survivors = 0, peer_lost = 0, timeouts = 0, aborted = 0;
  bool fault_in_init = false;  // the fault hit before every rank had joined
  // The longest time from the fault to a survivor's failing return, by
  // the status it returned.
  double max_lost_ms = 0, max_timeout_ms = 0, max_aborted_ms = 0;
  int32_t hung = 0, shm_leaks = 0, fd_leaks = 0;
};

TrialResult run_trial(plx_backend_h backend, const Plan &plan);

// The margin over the timeout within which every survivor must fail.
constexpr int32_t kMarginMs = 1000;

}  // namespace plexus::faults

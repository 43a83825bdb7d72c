// shm-native's waiting policy (plugins/shm-native/spin_budget.hpp): the
// adaptive number of polls before a wait yields, the oversubscription test
// that turns polling off, the pace of the liveness looks, and how long a
// wait stays awake before it sleeps.
#include <doctest/doctest.h>

#include <vector>

#include "plugins/shm-native/spin_budget.hpp"

namespace {

using plexus::shm_native::LivenessClock;
using plexus::shm_native::outnumber_cpus;
using plexus::shm_native::SpinBudget;

cpu_set_t cpus(std::initializer_list<int> ids) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int id : ids) CPU_SET(id, &set);
  return set;
}

}  // namespace

TEST_CASE("plugins.shm_native.spin_budget.halves_when_peers_come_late_and_doubles_back") {
  SpinBudget budget(2000);
  CHECK(budget.polls() == 2000);
  for (int i = 0; i < 20; ++i) budget.came_after_polling();
  CHECK(budget.polls() == SpinBudget::min_polls);  // never below: a peer on another core still comes in time
  budget.came_while_polling();
  CHECK(budget.polls() == 2 * SpinBudget::min_polls);
  for (int i = 0; i < 20; ++i) budget.came_while_polling();
  CHECK(budget.polls() == 2000);  // never above the configured SPIN
}

TEST_CASE("plugins.shm_native.spin_budget.a_peer_there_at_the_first_look_changes_nothing") {
  SpinBudget budget(1000);
  budget.waited(1001, 1000);  // came after all polls
  CHECK(budget.polls() == 500);
  budget.waited(0, 500);      // already there: it may have run while we were descheduled
  CHECK(budget.polls() == 500);
  budget.waited(3, 500);      // came while we polled
  CHECK(budget.polls() == 1000);
}

TEST_CASE("plugins.shm_native.spin_budget.zero_stays_zero") {
  SpinBudget off(0);  // SPIN=0, or oversubscribed
  off.came_while_polling();
  CHECK(off.polls() == 0);
  off.came_after_polling();
  CHECK(off.polls() == 0);
}

TEST_CASE("plugins.shm_native.spin_budget.oversubscribed_when_ranks_outnumber_their_cpus") {
  CHECK_FALSE(outnumber_cpus({cpus({0, 1}), cpus({0, 1})}));            // 2 ranks, 2 cores
  CHECK(outnumber_cpus({cpus({0, 1}), cpus({0, 1}), cpus({0, 1}), cpus({0, 1})}));  // 4 on 2
  CHECK_FALSE(outnumber_cpus({cpus({0}), cpus({1}), cpus({2})}));       // pinned one to a core
  CHECK(outnumber_cpus({cpus({3}), cpus({3})}));                        // both bound to core 3
  CHECK_FALSE(outnumber_cpus({cpus({0}), cpus({0, 1})}));               // union covers both
  CHECK_FALSE(outnumber_cpus({}));
}

TEST_CASE("plugins.shm_native.spin_budget.liveness_is_looked_at_once_a_period_from_one_period_in") {
  LivenessClock clock;
  const auto t0 = LivenessClock::Clock::time_point{} + std::chrono::hours(1);
  CHECK_FALSE(clock.due(t0));  // the first slow-path turn: not yet
  CHECK_FALSE(clock.due(t0 + LivenessClock::period / 2));
  CHECK(clock.due(t0 + LivenessClock::period));
  CHECK_FALSE(clock.due(t0 + LivenessClock::period + std::chrono::milliseconds(1)));
  CHECK(clock.due(t0 + 3 * LivenessClock::period));
}

TEST_CASE("plugins.shm_native.spin_budget.a_wait_sleeps_only_after_its_time_awake") {
  using Clock = plexus::shm_native::SleepGate::Clock;
  const Clock::time_point t0 = Clock::now();
  plexus::shm_native::SleepGate gate(std::chrono::microseconds(1000));
  CHECK_FALSE(gate.open(t0));  // the first look starts the time awake
  CHECK_FALSE(gate.open(t0 + std::chrono::microseconds(999)));
  CHECK(gate.open(t0 + std::chrono::microseconds(1000)));
  plexus::shm_native::SleepGate at_once(std::chrono::microseconds(0));
  CHECK(at_once.open(t0));
}

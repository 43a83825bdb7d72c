// The helper threads that split a rank's large steps (shm_helpers.hpp):
// parts that tile a range on whole lines, every part run once per job (on
// its own thread, or on the caller when its helper has not claimed it),
// jobs back to back, helpers that fell asleep woken, and none left running
// after destruction.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "plugins/shm-native/shm_helpers.hpp"

using plexus::shm_native::HelperThreads;
using plexus::shm_native::part_of;
using plexus::shm_native::Span;

TEST_CASE("ShmNative.Helpers.parts_tile_the_range_on_whole_lines") {
  for (size_t length : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1000}, size_t{65537}})
    for (int32_t parts : {1, 2, 3, 8}) {
      CAPTURE(length);
      CAPTURE(parts);
      const Span whole{100, length};
      size_t next = whole.first;
      for (int32_t p = 0; p < parts; ++p) {
        const Span s = part_of(whole, parts, p, 16);
        CHECK(s.first == next);  // in order, no gap, no overlap
        if (s.length > 0 && s.first + s.length < whole.first + whole.length) CHECK(s.length % 16 == 0);
        if (s.length > 0) CHECK((s.first - whole.first) % 16 == 0);
        next = s.first + s.length;
      }
      CHECK(next == whole.first + whole.length);
    }
}

TEST_CASE("ShmNative.Helpers.every_part_runs_once_a_job") {
  HelperThreads team(3, 50);
  REQUIRE(team.parts() == 4);
  std::vector<std::atomic<int>> runs(4);
  std::atomic<int> wrong{0};
  for (int job = 0; job < 20000; ++job) {
    std::atomic<int> this_job[4] = {};
    auto task = [&](int32_t p) {
      if (p < 0 || p >= 4) ++wrong;
      else ++runs[p], ++this_job[p];
    };
    team.run(task);
    for (auto &n : this_job) wrong += n.load() != 1;  // each part exactly once, all done at return
  }
  CHECK(wrong == 0);
  for (auto &r : runs) CHECK(r == 20000);
}

// While the caller's part 0 waits for part 1, its helper runs part 1, and
// the job ends.
TEST_CASE("ShmNative.Helpers.a_helper_runs_its_part_while_the_caller_waits") {
  HelperThreads team(2, 50);
  int jobs_that_waited = 0;
  for (int job = 0; job < 200; ++job) {
    std::atomic<bool> second_done{false}, waited{false};
    std::atomic<int> first_ran{0};
    std::thread::id first_thread, second_thread;
    auto task = [&](int32_t p) {
      if (p == 0) {
        first_thread = std::this_thread::get_id();
        waited = !second_done.load();
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!second_done.load() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
        first_ran += second_done.load();
      } else if (p == 1) {
        second_thread = std::this_thread::get_id();
        second_done.store(true);
      }
    };
    team.run(task);
    REQUIRE(first_ran == 1);
    if (waited) CHECK(first_thread != second_thread);
    jobs_that_waited += waited;
  }
  CHECK(jobs_that_waited > 0);
}

// A helper that sleeps between jobs (no polling) is not yet awake when the
// caller's short part is done: the caller runs the helper's part itself,
// each part still once.
TEST_CASE("ShmNative.Helpers.the_caller_runs_parts_no_helper_claimed") {
  HelperThreads team(1, 0);
  int parts_run_by_the_caller = 0;
  for (int job = 0; job < 200; ++job) {
    std::atomic<int> runs[2] = {};
    std::thread::id second_thread;
    auto task = [&](int32_t p) {
      ++runs[p];
      if (p == 1) second_thread = std::this_thread::get_id();
    };
    team.run(task);
    REQUIRE(runs[0] == 1);
    REQUIRE(runs[1] == 1);
    parts_run_by_the_caller += second_thread == std::this_thread::get_id();
  }
  CHECK(parts_run_by_the_caller > 0);
}

TEST_CASE("ShmNative.Helpers.sleeping_helpers_wake_for_the_next_job") {
  HelperThreads team(2, 0);  // no polling: every wait sleeps on the futex
  std::atomic<int> sum{0};
  for (int job = 0; job < 200; ++job) {
    auto task = [&](int32_t p) { sum += p + 1; };
    team.run(task);
    if (job % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CHECK(sum == 200 * 6);
}

TEST_CASE("ShmNative.Helpers.no_helpers_runs_on_the_caller_and_unused_teams_start_no_thread") {
  HelperThreads alone(0, 50);
  int calls = 0;
  auto task = [&](int32_t p) { calls += p == 0 ? 1 : 100; };
  alone.run(task);
  CHECK(calls == 1);
  HelperThreads unused(4, 50);  // destroyed without a job: nothing to join
  CHECK(unused.parts() == 5);
}

// A child forked after the helpers started has none of them: its jobs run
// every part on the calling thread, and its team goes without joining.
TEST_CASE("ShmNative.Helpers.a_forked_child_runs_every_part_itself") {
  auto *team = new HelperThreads(2, 50);
  std::atomic<int> warm{0};
  auto count = [&](int32_t) { ++warm; };
  team->run(count);
  REQUIRE(warm == 3);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int parts = 0;
    auto task = [&](int32_t p) { parts += p + 1; };
    team->run(task);
    delete team;
    _exit(parts == 6 ? 0 : 1);
  }
  int status = -1;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  delete team;
}

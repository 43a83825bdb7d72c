// The soak of shm-native (soak.hpp): forks the ranks, prints one line with
// the figures docs/reliability.md records, and checks that memory stayed
// flat from the end of the warm-up to the end of the run.
//   PLEXUS_SOAK_ITERATIONS  small all-reduces (default 20000; 5000 under a
//                           sanitizer; docs/reliability.md records 1000000)
//   PLEXUS_SOAK_RANKS       ranks (default 2)
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

#include "tests/soak/soak.hpp"

namespace {

using namespace plexus::soak;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kDefaultIterations = 5000;
#else
constexpr int64_t kDefaultIterations = 20000;
#endif
// What RSS may rise between the samples without being a leak: malloc's
// arenas and the page cache of the slots settle in.
constexpr int64_t kRssSlackKib = 2048;

int64_t env_int(const char *name, int64_t fallback) {
  const char *text = std::getenv(name);
  return text && *text ? std::strtoll(text, nullptr, 0) : fallback;
}

std::vector<RankReport> run_ranks(const Settings &s) {
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  plx_unique_id id{};
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  const size_t bytes = sizeof(RankReport) * static_cast<size_t>(s.nranks);
  auto *reports = static_cast<RankReport *>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(reports != MAP_FAILED);
  for (int32_t r = 0; r < s.nranks; ++r) new (&reports[r]) RankReport();
  std::vector<pid_t> pids;
  for (int32_t r = 0; r < s.nranks; ++r) {
    const pid_t pid = fork();
    if (pid == 0) _exit(run_soak_rank(backend, id, s, r, &reports[r]));
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) waitpid(pid, nullptr, 0);
  std::vector<RankReport> out(reports, reports + s.nranks);
  munmap(reports, bytes);
  CHECK(plx_backend_close(backend) == PLX_OK);
  return out;
}

struct Drift {
  int64_t rss_kib = 0, reserved = 0, in_use = 0, fds = 0, names = 0, kept = 0;
};

// The largest move of each figure from the first sample (end of warm-up).
Drift drift_of(const RankReport &r) {
  Drift d;
  const Sample &first = r.samples[0];
  for (const Sample &x : r.samples) {
    d.rss_kib = std::max(d.rss_kib, x.rss_kib - first.rss_kib);
    d.reserved = std::max<int64_t>(d.reserved, static_cast<int64_t>(x.pool.bytes_reserved - first.pool.bytes_reserved));
    d.kept = std::max<int64_t>(d.kept, static_cast<int64_t>(x.reserved_after_trim + x.segments_after_trim));
    d.in_use = std::max<int64_t>(d.in_use, static_cast<int64_t>(x.pool.bytes_in_use));
    d.fds = std::max<int64_t>(d.fds, x.fds - first.fds);
    d.names = std::max<int64_t>(d.names, x.shm_names);
  }
  return d;
}

void print_rank(int32_t r, const RankReport &rep, const Drift &d) {
  const double seconds = static_cast<double>(rep.elapsed_ns) / 1e9;
  fmt::print("soak.shm_native rank {}: {} small all-reduces ({:.2f} us each on average, random collectives "
             "included), {} random collectives, {} pool allocations, {} queue messages over {} queues in {:.1f} s; "
             "from the warm-up (call {}) to "
             "the end: RSS {} -> {} KiB (largest rise {} KiB), pool reserved {} -> {} bytes (largest rise {}), "
             "segments {} -> {}, bytes in use at every sample {}, reserved after trim {}, descriptors +{}, "
             "/dev/shm names {}, LeakSanitizer {}\n",
             r, rep.small_ops, seconds * 1e6 / static_cast<double>(std::max<int64_t>(rep.small_ops, 1)),
             rep.random_ops, rep.allocations, rep.queue_messages, rep.queues_made, seconds, rep.samples[0].iteration,
             rep.samples[0].rss_kib,
             rep.samples[kSamples - 1].rss_kib, d.rss_kib, rep.samples[0].pool.bytes_reserved,
             rep.samples[kSamples - 1].pool.bytes_reserved, d.reserved, rep.samples[0].pool.segment_count,
             rep.samples[kSamples - 1].pool.segment_count, d.in_use, d.kept, d.fds, d.names,
#if defined(__SANITIZE_ADDRESS__)
             rep.leaks ? "found leaks" : "clean"
#else
             "not built in"
#endif
  );
  std::fflush(stdout);
}

void judge(int32_t r, const RankReport &rep, const Settings &s) {
  CAPTURE(r);
  CHECK_MESSAGE(rep.status == 0, rep.message);
  // The small all-reduces, plus one before each time the queue is made again.
  // One queue message at every call i with i % random_every == random_every / 2.
  const int64_t every = s.random_every, messages = s.nranks > 1 ? (s.iterations + every - 1 - every / 2) / every : 0;
  CHECK(rep.queue_messages == messages);
  CHECK(rep.small_ops == s.iterations + messages / kQueueRemakeEvery);
  CHECK(rep.leaks == 0);
  CHECK(rep.fds_after == rep.fds_before);
  const Drift d = drift_of(rep);
  print_rank(r, rep, d);
  CHECK(d.in_use == 0);
  CHECK(d.fds == 0);
  CHECK(d.names == 0);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine holds freed memory: there LeakSanitizer judges
  CHECK(d.rss_kib <= kRssSlackKib);
#endif
  // Freed segments are kept for reuse (the reserved bytes follow the sizes
  // drawn); trimmed with every block freed, nothing may stay.
  CHECK(d.kept == 0);
  const plx_mem_stats &last = rep.samples[kSamples - 1].pool;
  CHECK(last.alloc_count == last.free_count);
}

}  // namespace

TEST_CASE("soak.shm_native.all_reduce_and_pool_stay_flat") {
  Settings s;
  s.iterations = env_int("PLEXUS_SOAK_ITERATIONS", kDefaultIterations);
  s.nranks = static_cast<int32_t>(env_int("PLEXUS_SOAK_RANKS", 2));
  s.seed = static_cast<uint64_t>(env_int("PLEXUS_SOAK_SEED", 1));
  const std::vector<RankReport> reports = run_ranks(s);
  for (int32_t r = 0; r < s.nranks; ++r) judge(r, reports[static_cast<size_t>(r)], s);
}

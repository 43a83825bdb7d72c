// The soak of shm-native (issue 10): many small all-reduces, a collective
// of random kind and size on pool or malloc'd buffers every few calls, a
// queue message of random size to every other rank as often (the queue made
// again, with the next rank writing, every 64 messages), and pool blocks of
// random sizes and tags kept alive for a while. Each rank
// samples its memory after a warm-up and at ten points after it; the parent
// prints the drift and judges whether it stayed flat.
#pragma once

#include <cstdint>

#include "plexus/plexus.h"

namespace plexus::soak {

struct Sample {
  int64_t iteration = 0;
  int64_t rss_kib = 0;
  int32_t fds = 0;
  int32_t shm_names = 0;  // plexus names in /dev/shm carrying this rank's pid
  plx_mem_stats pool{};   // PLX_MEM_SHARED_HOST, every tag, every block freed
  // After plx_mem_trim to 0: what the pool cannot give back (leaked
  // blocks or segments) stays reserved.
  uint64_t reserved_after_trim = 0, segments_after_trim = 0;
};

constexpr int kSamples = 11;  // after the warm-up, then every tenth of the rest
constexpr int64_t kQueueRemakeEvery = 64;  // queue messages before the queue is destroyed and made again

// What one rank reports to the parent, in a shared anonymous mapping.
struct RankReport {
  int32_t status = 1;   // 0 once the rank finished without a failed call
  int32_t leaks = 0;    // LeakSanitizer's verdict (ASan builds), else 0
  int64_t small_ops = 0, random_ops = 0, allocations = 0;
  int64_t queue_messages = 0, queues_made = 0;
  int64_t elapsed_ns = 0;  // of the loop
  int32_t fds_before = 0, fds_after = 0;
  Sample samples[kSamples];
  char message[240] = {};
};

struct Settings {
  int64_t iterations = 20000;  // small all-reduces
  int32_t nranks = 2;
  int32_t random_every = 16;   // one random collective and one queue message per this many small ones
  uint64_t seed = 1;
};

// A rank's whole run after fork; fills *report and returns the exit code.
int run_soak_rank(plx_backend_h backend, const plx_unique_id &id, const Settings &s, int32_t rank,
                  RankReport *report);

}  // namespace plexus::soak

// The measured columns of plexus-bench-alloc: each runs `threads` threads of
// allocate+free pairs of one size and times them in batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/plexus-bench-alloc/options.hpp"

namespace plexus::bench_alloc {

struct Run {
  bool skipped = false;
  bool failed = false;
  std::string why;              // of a skip or a failure
  std::vector<double> batch_ns; // per-pair mean of each batch, every thread
  uint64_t pairs = 0;           // all threads
  double wall_s = 0;            // from the common start to the last thread's end
};

// `column` is one of Options::columns' names.
Run run_column(const std::string &column, const Options &options, size_t size, int threads);

}  // namespace plexus::bench_alloc

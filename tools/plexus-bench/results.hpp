// The launcher's view of the results: every rank's line for a (column,
// size) merged into one statistic. Per sample (an iteration on host
// buffers, a batch of iterations on device buffers) the slowest rank's time
// counts (a collective is done when the last rank is), and the statistic is
// the median and the 10th and 90th percentiles over the samples. A
// queue's message counts when its slowest reader has it (the writer
// reports zeros), and so does its burst.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tools/plexus-bench/options.hpp"
#include "tools/plexus-bench/sweep.hpp"

namespace plexus::bench {

struct Stat {
  bool present = false;
  int32_t samples = 0;  // timings the statistic is over (host buffers: one per call)
  double median_us = 0, p10_us = 0, p90_us = 0, min_us = 0, max_us = 0;
  uint64_t wrong = 0;  // summed over ranks
  double algbw_gbs = 0, busbw_gbs = 0;  // from the median; GB = 1e9 bytes
  // Device buffers, eager: the host's time to enqueue one call, median over
  // samples of the slowest rank's (0: not measured).
  double host_us = 0;
  // Queue only: the burst, timed until the slowest reader had it all.
  int64_t burst_msgs = 0;
  double burst_us = 0, burst_msgs_per_s = 0, burst_gbs = 0;
};

struct Row {
  SizePoint point;
  std::vector<Stat> cols;
};

class Collector {
 public:
  Collector(const Options &o, size_t columns);
  // Takes one rank's result; returns the column's Stat once every rank has
  // reported that size, else nullptr. A result for an unknown size or
  // column, or a rank twice, sets *error.
  const Stat *add(const RankResult &r, std::string *error);
  const std::vector<Row> &rows() const { return rows_; }
  // Sizes completed, over all columns (progress).
  size_t completed() const { return completed_; }
  size_t total() const { return rows_.size() * columns_; }

 private:
  const Options &o_;
  size_t columns_;
  size_t completed_ = 0;
  std::vector<Row> rows_;
  std::map<std::pair<int32_t, uint64_t>, std::vector<RankResult>> partial_;
};

// The q-quantile (0..1) of sorted values, interpolated linearly.
double quantile(const std::vector<double> &sorted, double q);

}  // namespace plexus::bench

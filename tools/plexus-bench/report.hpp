// What a run prints and writes: the table on stdout, CSV, JSON, the plot,
// and the live progress line.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tools/plexus-bench/results.hpp"

namespace plexus::bench {

struct RunInfo {
  const Options *options = nullptr;
  std::vector<std::string> labels;   // one per column
  std::vector<std::string> details;  // version and build, one per column
  double memcpy_gbs = 0;             // one core's memcpy, measured in this run
  std::string host, date, library;
  std::vector<std::string> environment;  // NCCL_*, PLEXUS_*, CUDA_VISIBLE_DEVICES as set
};

// The header (settings, host, date, memcpy) and one line per size: per
// column median time, p10-p90, algbw, busbw, busbw / memcpy and the check;
// then, per column after the first, its ratio against the first.
void print_table(std::FILE *out, const RunInfo &info, const std::vector<Row> &rows);

// One row per (size, column) with every number; false after printing why.
bool write_csv(const std::string &path, const RunInfo &info, const std::vector<Row> &rows);
bool write_json(const std::string &path, const RunInfo &info, const std::vector<Row> &rows);

// Runs plexus-bench-plot (python3 + matplotlib) on a JSON file; prints why
// when it cannot, and the run goes on.
void make_plot(const std::string &json_path, const std::string &png_path);

// A progress line on a terminal (rewritten in place with \r), plain lines
// otherwise; both on stderr so stdout stays the table.
class Progress {
 public:
  Progress();
  void step(const std::string &label, const SizePoint &p, const Stat &s, size_t done, size_t total);
  void note(const std::string &text);
  void finish();

 private:
  bool tty_;
  bool dirty_ = false;
};

}  // namespace plexus::bench

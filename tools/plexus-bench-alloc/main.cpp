// plexus-bench-alloc: the device pool's allocate+free pair against
// cudaMalloc and a warm cudaMallocAsync pool, per size and thread count
// (docs/plugins/device-pool.md).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include "tools/plexus-bench-alloc/columns.hpp"
#include "tools/plexus-bench-alloc/options.hpp"

using namespace plexus::bench_alloc;

namespace {

struct Summary {
  double median_ns = 0, p99_ns = 0, pairs_per_s = 0;
};

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(fraction * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

Summary summarize(const Run &run) {
  Summary s;
  s.median_ns = percentile(run.batch_ns, 0.5);
  s.p99_ns = percentile(run.batch_ns, 0.99);
  s.pairs_per_s = run.wall_s > 0 ? static_cast<double>(run.pairs) / run.wall_s : 0;
  return s;
}

std::string size_text(size_t bytes) {
  if (bytes % (1 << 20) == 0) return fmt::format("{}M", bytes >> 20);
  if (bytes % (1 << 10) == 0) return fmt::format("{}K", bytes >> 10);
  return fmt::format("{}", bytes);
}

std::string pool_label(const Options &o) {
  if (o.source == PoolSource::host) return "plexus-pool (host memory)";
  return o.api == plexus::core::DeviceMemoryApi::vmm ? "plexus-pool (vmm)" : "plexus-pool (cuda_malloc)";
}

// One size and thread count: every column, then its lines.
bool measure(const Options &o, size_t size, int threads, std::FILE *csv) {
  std::map<std::string, Run> runs;
  for (const std::string &column : o.columns) runs[column] = run_column(column, o, size, threads);
  const auto pool = runs.find("plexus-pool");
  const bool have_pool = pool != runs.end() && !pool->second.skipped && !pool->second.failed;
  const double pool_median = have_pool ? summarize(pool->second).median_ns : 0;
  bool ok = true;
  for (const std::string &column : o.columns) {
    const Run &run = runs[column];
    const std::string label = column == "plexus-pool" ? pool_label(o) : column;
    if (run.skipped || run.failed) {
      fmt::print("{:>6} {:>3}  {:<26} {}: {}\n", size_text(size), threads, label, run.skipped ? "skipped" : "FAILED",
                 run.why);
      ok = ok && !run.failed;
      continue;
    }
    const Summary s = summarize(run);
    const double ratio = pool_median > 0 ? s.median_ns / pool_median : 0;
    fmt::print("{:>6} {:>3}  {:<26} {:>12.1f} {:>12.1f} {:>14.0f} {:>10}\n", size_text(size), threads, label,
               s.median_ns, s.p99_ns, s.pairs_per_s, ratio > 0 ? fmt::format("{:.1f}x", ratio) : "n/a");
    if (csv != nullptr)
      fmt::print(csv, "{},{},{},{},{:.1f},{:.1f},{:.0f},{:.3f}\n", size, threads, label, run.pairs, s.median_ns,
                 s.p99_ns, s.pairs_per_s, ratio);
  }
  return ok;
}

}  // namespace

int main(int argc, char **argv) {
  Options options;
  bool done = false;
  if (const int code = parse_options(argc, argv, &options, &done); done) return code;
  std::FILE *csv = nullptr;
  if (!options.csv.empty()) {
    csv = std::fopen(options.csv.c_str(), "w");
    if (csv == nullptr) {
      fmt::print(stderr, "plexus-bench-alloc: cannot write {}\n", options.csv);
      return 2;
    }
    fmt::print(csv, "size,threads,column,pairs,median_ns,p99_ns,pairs_per_s,ratio_to_pool\n");
  }
  fmt::print("# allocate+free pairs: ns per pair (median and p99 of batch means), all threads' pairs/s,\n"
             "# and the column's median over plexus-pool's; {} pairs per thread ({} for cudaMalloc)\n",
             options.iters, std::min(options.iters, options.cuda_malloc_iters));
  fmt::print("{:>6} {:>3}  {:<26} {:>12} {:>12} {:>14} {:>10}\n", "size", "thr", "column", "median ns", "p99 ns",
             "pairs/s", "x pool");
  bool ok = true;
  for (const size_t size : options.sizes)
    for (const int threads : options.threads) ok = measure(options, size, threads, csv) && ok;
  if (csv != nullptr) std::fclose(csv);
  return ok ? 0 : 1;
}

#include "tools/plexus-bench/results.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace plexus::bench {
namespace {

// The burst is done when the slowest reader has its last message.
void merge_burst(const SizePoint &p, const std::vector<RankResult> &ranks, Stat *s) {
  int64_t slowest_ns = 0;
  for (const RankResult &r : ranks) s->burst_msgs = std::max(s->burst_msgs, r.burst_msgs);
  for (const RankResult &r : ranks) slowest_ns = std::max(slowest_ns, r.burst_ns);
  if (s->burst_msgs == 0 || slowest_ns <= 0) return;
  const double msgs = static_cast<double>(s->burst_msgs), ns = static_cast<double>(slowest_ns);
  s->burst_us = ns / 1e3, s->burst_msgs_per_s = msgs / ns * 1e9;
  s->burst_gbs = msgs * static_cast<double>(p.bytes) / ns;
}

// Per sample the slowest rank's value of `field`, in us, sorted.
std::vector<double> slowest_per_sample(const std::vector<RankResult> &ranks,
                                       std::vector<int64_t> RankResult::*field) {
  std::vector<double> slowest((ranks.front().*field).size(), 0.0);
  for (const RankResult &r : ranks)
    for (size_t i = 0; i < slowest.size() && i < (r.*field).size(); ++i)
      slowest[i] = std::max(slowest[i], static_cast<double>((r.*field)[i]) / 1e3);
  std::sort(slowest.begin(), slowest.end());
  return slowest;
}

Stat merge(const Options &o, const SizePoint &p, const std::vector<RankResult> &ranks) {
  Stat s;
  s.present = true;
  s.samples = static_cast<int32_t>(ranks.front().ns.size());
  for (const RankResult &r : ranks) s.wrong += r.wrong;
  const std::vector<double> host = slowest_per_sample(ranks, &RankResult::host_ns);
  s.host_us = quantile(host, 0.5);
  const std::vector<double> slowest = slowest_per_sample(ranks, &RankResult::ns);
  if (slowest.empty()) return s;
  s.median_us = quantile(slowest, 0.5), s.p10_us = quantile(slowest, 0.1), s.p90_us = quantile(slowest, 0.9);
  s.min_us = slowest.front(), s.max_us = slowest.back();
  s.algbw_gbs = s.median_us > 0 ? static_cast<double>(p.bytes) / (s.median_us * 1e3) : 0;
  s.busbw_gbs = s.algbw_gbs * bus_factor(o.coll, o.ranks);
  merge_burst(p, ranks, &s);
  return s;
}

}  // namespace

double quantile(const std::vector<double> &sorted, double q) {
  if (sorted.empty()) return 0;
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(at), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - static_cast<double>(lo));
}

Collector::Collector(const Options &o, size_t columns) : o_(o), columns_(columns) {
  for (const SizePoint &p : sweep_points(o)) rows_.push_back(Row{p, std::vector<Stat>(columns)});
}

const Stat *Collector::add(const RankResult &r, std::string *error) {
  const auto row = std::find_if(rows_.begin(), rows_.end(), [&](const Row &x) { return x.point.bytes == r.bytes; });
  if (row == rows_.end() || r.column < 0 || static_cast<size_t>(r.column) >= columns_ || r.rank < 0 ||
      r.rank >= o_.ranks || r.ns.size() != static_cast<size_t>(row->point.samples) ||
      (!r.host_ns.empty() && r.host_ns.size() != r.ns.size())) {
    *error = fmt::format("unexpected result: column {}, rank {}, {} bytes, {} times", r.column, r.rank, r.bytes,
                         r.ns.size());
    return nullptr;
  }
  std::vector<RankResult> &got = partial_[{r.column, r.bytes}];
  for (const RankResult &g : got)
    if (g.rank == r.rank) return *error = fmt::format("rank {} reported {} bytes twice", r.rank, r.bytes), nullptr;
  got.push_back(r);
  if (got.size() < static_cast<size_t>(o_.ranks)) return nullptr;
  Stat &stat = row->cols[static_cast<size_t>(r.column)];
  stat = merge(o_, row->point, got);
  partial_.erase({r.column, r.bytes});
  ++completed_;
  return &stat;
}

}  // namespace plexus::bench

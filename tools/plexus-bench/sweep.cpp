#include "tools/plexus-bench/sweep.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "tools/plexus-bench/data.hpp"

namespace plexus::bench {
namespace {

// Frees through the pool the buffer came from, or with free().
struct BufferDeleter {
  Transport *pool = nullptr;
  void operator()(void *p) const { pool ? pool->release(p) : std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, BufferDeleter>;

// Page-aligned (or pool-aligned) and touched once, so page faults stay out
// of the timings.
Buffer make_buffer(Transport &t, uint64_t bytes) {
  const uint64_t rounded = (std::max<uint64_t>(bytes, 1) + 4095) / 4096 * 4096;
  Buffer b(static_cast<uint8_t *>(t.pooled() ? t.allocate(rounded) : std::aligned_alloc(4096, rounded)),
           BufferDeleter{t.pooled() ? &t : nullptr});
  if (b) std::memset(b.get(), 0, rounded);
  return b;
}

bool measure(const Options &o, const SizePoint &p, Transport &t, uint8_t *send, uint8_t *recv, RankResult *r) {
  const uint64_t seed = size_seed(p.bytes);
  fill_input(o.dtype, seed, t.rank(), 0, send_count(o, p), send);
  poison(o.dtype, recv, recv_count(o, p));
  if (!t.run(p, send, recv)) return false;
  r->wrong = count_wrong(o, p, t.rank(), seed, recv);
  if (!t.barrier()) return false;
  for (int32_t i = 0; i < p.warmup; ++i)
    if (!t.run(p, send, recv)) return false;
  if (!t.barrier()) return false;
  r->ns.resize(static_cast<size_t>(p.iters));
  for (int64_t &ns : r->ns) {
    const auto start = std::chrono::steady_clock::now();
    if (!t.run(p, send, recv)) return false;
    ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  }
  return true;
}

// The numbers from `at` up to the first thing that is not one; *at moves
// past them.
std::vector<int64_t> parse_numbers(const char **at) {
  std::vector<int64_t> values;
  char *end = nullptr;
  for (int64_t v = std::strtoll(*at, &end, 10); end != *at; v = std::strtoll(*at, &end, 10)) {
    values.push_back(v);
    *at = end;
  }
  return values;
}

}  // namespace

std::string result_line(const RankResult &r) {
  std::string line = fmt::format("{} {} {} {} {} {}", r.burst_msgs > 0 ? 'Q' : 'R', r.column, r.rank, r.bytes,
                                 r.count, r.wrong);
  if (r.burst_msgs > 0) fmt::format_to(std::back_inserter(line), " {} {}", r.burst_msgs, r.burst_ns);
  for (int64_t ns : r.ns) fmt::format_to(std::back_inserter(line), " {}", ns);
  if (!r.host_ns.empty()) line += " h";
  for (int64_t ns : r.host_ns) fmt::format_to(std::back_inserter(line), " {}", ns);
  line += '\n';
  return line;
}

bool parse_result_line(std::string_view line, RankResult *out) {
  if (line.size() < 2 || (line.substr(0, 2) != "R " && line.substr(0, 2) != "Q ")) return false;
  std::string text(line.substr(2));
  const char *at = text.c_str();
  char *end = nullptr;
  int64_t fields[7] = {};
  for (size_t i = 0; i < (line[0] == 'Q' ? 7u : 5u); ++i) {
    fields[i] = std::strtoll(at, &end, 10);
    if (end == at) return false;
    at = end;
  }
  *out = RankResult{static_cast<int32_t>(fields[0]), static_cast<int32_t>(fields[1]),
                    static_cast<uint64_t>(fields[2]), static_cast<uint64_t>(fields[3]),
                    static_cast<uint64_t>(fields[4]), {}, fields[5], fields[6]};
  out->ns = parse_numbers(&at);
  if (std::strncmp(at, " h", 2) == 0) {
    at += 2;
    out->host_ns = parse_numbers(&at);
  }
  return true;
}

void largest_buffers(const Options &o, uint64_t *send_bytes, uint64_t *recv_bytes) {
  *send_bytes = *recv_bytes = 0;
  for (const SizePoint &p : sweep_points(o)) {
    *send_bytes = std::max(*send_bytes, send_count(o, p) * dtype_bytes(o.dtype));
    *recv_bytes = std::max(*recv_bytes, recv_count(o, p) * dtype_bytes(o.dtype));
  }
}

bool run_sweep(const Options &o, int32_t column, Transport &t) {
  const std::vector<SizePoint> points = sweep_points(o);
  uint64_t send_max = 0, recv_max = 0;
  largest_buffers(o, &send_max, &recv_max);
  const Buffer send = make_buffer(t, send_max), recv = make_buffer(t, recv_max);
  if (!send || !recv) {
    std::fprintf(stderr, "plexus-bench: rank %d: cannot allocate %llu + %llu bytes\n", t.rank(),
                 static_cast<unsigned long long>(send_max), static_cast<unsigned long long>(recv_max));
    return false;
  }
  for (const SizePoint &p : points) {
    RankResult r{column, t.rank(), p.bytes, p.count, 0, {}};
    if (!measure(o, p, t, send.get(), recv.get(), &r) || !t.report(r)) return false;
  }
  return true;
}

}  // namespace plexus::bench

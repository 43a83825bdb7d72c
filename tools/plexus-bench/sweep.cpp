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

// From pool, or page-aligned from aligned_alloc without one; touched once,
// so page faults stay out of the timings.
Buffer make_buffer(Transport *pool, uint64_t bytes) {
  const uint64_t rounded = (std::max<uint64_t>(bytes, 1) + 4095) / 4096 * 4096;
  Buffer b(static_cast<uint8_t *>(pool ? pool->allocate(rounded) : std::aligned_alloc(4096, rounded)),
           BufferDeleter{pool});
  if (b) std::memset(b.get(), 0, rounded);
  return b;
}

// A rank's buffers for a sweep. fresh (--rewrite-input only) keeps the
// input as first written, copied over send before every call.
struct Buffers {
  Buffer send, recv, fresh;
};

// With --rewrite-input, send is written again from fresh, so the call
// finds its input's lines modified in this rank's cache, as after the
// computation that produced it, not clean in the peers' caches.
void rewrite_input(const Options &o, const SizePoint &p, const Buffers &b) {
  if (o.rewrite_input) std::memcpy(b.send.get(), b.fresh.get(), send_count(o, p) * dtype_bytes(o.dtype));
}

// One call on fresh input into a poisoned output; the wrong elements.
bool checked_call(const Options &o, const SizePoint &p, Transport &t, const Buffers &b, uint64_t *wrong) {
  rewrite_input(o, p, b);
  poison(o.dtype, b.recv.get(), recv_count(o, p));
  if (!t.run(p, b.send.get(), b.recv.get())) return false;
  *wrong += count_wrong(o, p, t.rank(), size_seed(p.bytes), b.recv.get());
  return true;
}

bool timed_calls(const Options &o, const SizePoint &p, Transport &t, const Buffers &b, RankResult *r) {
  r->ns.resize(static_cast<size_t>(p.iters));
  for (int64_t &ns : r->ns) {
    rewrite_input(o, p, b);
    const auto start = std::chrono::steady_clock::now();
    if (!t.run(p, b.send.get(), b.recv.get())) return false;
    ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  }
  return true;
}

bool measure(const Options &o, const SizePoint &p, Transport &t, const Buffers &b, RankResult *r) {
  fill_input(o.dtype, size_seed(p.bytes), t.rank(), 0, send_count(o, p), b.send.get());
  if (o.rewrite_input) std::memcpy(b.fresh.get(), b.send.get(), send_count(o, p) * dtype_bytes(o.dtype));
  if (!checked_call(o, p, t, b, &r->wrong) || !t.barrier()) return false;
  for (int32_t i = 0; i < p.warmup; ++i) {
    rewrite_input(o, p, b);
    if (!t.run(p, b.send.get(), b.recv.get())) return false;
  }
  if (!t.barrier() || !timed_calls(o, p, t, b, r)) return false;
  // Rewritten inputs: the calls after the first are checked once more.
  return !o.rewrite_input || checked_call(o, p, t, b, &r->wrong);
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
  Transport *pool = t.pooled() ? &t : nullptr;
  Buffers b{make_buffer(pool, send_max), make_buffer(pool, recv_max), nullptr};
  if (o.rewrite_input) b.fresh = make_buffer(nullptr, send_max);  // private memory, never the pool
  if (!b.send || !b.recv || (o.rewrite_input && !b.fresh)) {
    std::fprintf(stderr, "plexus-bench: rank %d: cannot allocate %llu + %llu bytes\n", t.rank(),
                 static_cast<unsigned long long>(send_max), static_cast<unsigned long long>(recv_max));
    return false;
  }
  for (const SizePoint &p : points) {
    RankResult r{column, t.rank(), p.bytes, p.count, 0, {}};
    if (!measure(o, p, t, b, &r) || !t.report(r)) return false;
  }
  return true;
}

}  // namespace plexus::bench

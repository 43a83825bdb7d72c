#include "tools/plexus-bench/queue_sweep.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tools/plexus-bench/data.hpp"

namespace plexus::bench {
namespace {

constexpr int32_t writer = 0;
constexpr uint64_t stamp_bytes = 8, header_bytes = 16;  // the stamp, then the sequence number

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One rank's state across the sweep. Patterns are rebuilt per size; the
// writer sends straight out of them (only the header changes per message),
// so making a message costs the burst nothing.
struct QueueRun {
  const Options &o;
  plx_queue_h queue;
  Transport &t;
  int64_t seq = 0;
  std::array<std::vector<uint8_t>, 4> patterns;
  std::vector<uint8_t> recv;
  int64_t size_start_ns = 0;
};

bool queue_ok(const QueueRun &run, const char *what, plx_status s) {
  if (s == PLX_OK) return true;
  std::fprintf(stderr, "plexus-bench: rank %d: %s failed: %s: %s\n", run.t.rank(), what, plx_status_string(s),
               plx_last_error());
  return false;
}

void make_patterns(QueueRun &run, uint64_t bytes) {
  for (uint64_t k = 0; k < run.patterns.size(); ++k) {
    std::vector<uint8_t> &pat = run.patterns[k];
    pat.assign(bytes, 0);
    for (uint64_t i = header_bytes; i < bytes; i += 8) {
      const uint64_t w = mix(size_seed(bytes) ^ (k << 56) ^ i);
      std::memcpy(pat.data() + i, &w, std::min<uint64_t>(8, bytes - i));
    }
  }
}

// Bytes 8..15 of message seq (as many as the message holds).
void put_seq(uint8_t *msg, uint64_t bytes, int64_t seq) {
  if (bytes > stamp_bytes) std::memcpy(msg + stamp_bytes, &seq, std::min(bytes, header_bytes) - stamp_bytes);
}

bool send(QueueRun &run, uint64_t bytes) {
  uint8_t *msg = run.patterns[static_cast<size_t>(run.seq % 4)].data();
  put_seq(msg, bytes, run.seq++);
  const int64_t stamp = now_ns();  // last, so nothing but the enqueue is timed
  std::memcpy(msg, &stamp, stamp_bytes);
  return queue_ok(run, "plx_queue_enqueue", plx_queue_enqueue(run.queue, msg, bytes, -1));
}

uint64_t count_differing(const uint8_t *a, const uint8_t *b, uint64_t n) {
  if (std::memcmp(a, b, n) == 0) return 0;
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < n; ++i) wrong += a[i] != b[i];
  return wrong;
}

// Wrong bytes of message seq (all of them when its size is wrong).
uint64_t check(const QueueRun &run, uint64_t bytes, uint64_t got, int64_t seq, int64_t recv_ns) {
  if (got != bytes) return bytes;
  const uint8_t *msg = run.recv.data();
  int64_t stamp = 0;
  std::memcpy(&stamp, msg, stamp_bytes);
  uint64_t wrong = stamp < run.size_start_ns || stamp > recv_ns ? stamp_bytes : 0;
  uint8_t want[header_bytes] = {};
  put_seq(want, bytes, seq);
  const uint64_t header_end = std::min(bytes, header_bytes);
  wrong += count_differing(msg + stamp_bytes, want + stamp_bytes, header_end - stamp_bytes);
  const uint8_t *pat = run.patterns[static_cast<size_t>(seq % 4)].data();
  return wrong + count_differing(msg + header_end, pat + header_end, bytes - header_end);
}

struct Received {
  int64_t stamp_ns = 0, recv_ns = 0;
};

bool receive(QueueRun &run, uint64_t bytes, Received *out, uint64_t *wrong) {
  uint64_t got = 0;
  const plx_status s = plx_queue_dequeue(run.queue, run.recv.data(), run.recv.size(), &got, -1);
  out->recv_ns = now_ns();
  if (!queue_ok(run, "plx_queue_dequeue", s)) return false;
  std::memcpy(&out->stamp_ns, run.recv.data(), stamp_bytes);
  *wrong += check(run, bytes, got, run.seq++, out->recv_ns);
  return true;
}

// One latency sample: the barrier first, so every reader has consumed the
// previous message and waits in plx_queue_dequeue for this one.
bool one_message(QueueRun &run, uint64_t bytes, int64_t *latency_ns, uint64_t *wrong) {
  if (!run.t.barrier()) return false;
  if (run.t.rank() == writer) return *latency_ns = 0, send(run, bytes);
  Received got;
  if (!receive(run, bytes, &got, wrong)) return false;
  *latency_ns = got.recv_ns - got.stamp_ns;
  return true;
}

bool burst(QueueRun &run, uint64_t bytes, RankResult *r) {
  r->burst_msgs = burst_messages(bytes);
  if (!run.t.barrier()) return false;
  Received first, last;
  for (int64_t i = 0; i < r->burst_msgs; ++i) {
    if (run.t.rank() == writer ? !send(run, bytes) : !receive(run, bytes, i == 0 ? &first : &last, &r->wrong))
      return false;
  }
  if (run.t.rank() != writer) r->burst_ns = (r->burst_msgs > 1 ? last.recv_ns : first.recv_ns) - first.stamp_ns;
  return true;
}

bool measure(QueueRun &run, const SizePoint &p, RankResult *r) {
  make_patterns(run, p.bytes);
  run.size_start_ns = now_ns();
  r->ns.resize(static_cast<size_t>(p.iters));
  for (int32_t i = 0; i < p.warmup + p.iters; ++i) {
    int64_t ns = 0;
    if (!one_message(run, p.bytes, &ns, &r->wrong)) return false;
    if (i >= p.warmup) r->ns[static_cast<size_t>(i - p.warmup)] = ns;
  }
  return burst(run, p.bytes, r);
}

}  // namespace

int64_t burst_messages(uint64_t bytes) { return std::clamp<int64_t>(static_cast<int64_t>((64ull << 20) / bytes), 64, 10000); }

bool run_queue_sweep(const Options &o, int32_t column, plx_comm_h comm, Transport &t) {
  plx_queue_config config = PLX_QUEUE_CONFIG_INIT;
  config.writer_rank = writer;
  plx_queue_h queue = nullptr;
  QueueRun run{o, nullptr, t, 0, {}, {}, 0};
  if (!queue_ok(run, "plx_queue_create", plx_queue_create(comm, &config, &queue))) return false;
  run.queue = queue;
  run.recv.assign(t.rank() == writer ? 0 : o.max_bytes, 0);  // touched now: no page faults in the timings
  bool ok = true;
  for (const SizePoint &p : sweep_points(o)) {
    RankResult r{column, t.rank(), p.bytes, p.count, 0, {}};
    if (!(ok = measure(run, p, &r) && t.report(r))) break;
  }
  // Readers may still be copying the last burst out; the ring goes once all are done.
  ok = ok && t.barrier();
  plx_queue_destroy(queue);
  return ok;
}

}  // namespace plexus::bench

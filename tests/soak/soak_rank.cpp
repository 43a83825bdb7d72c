// One rank of the soak (soak.hpp), in its own forked process. Every rank
// draws the same sequence, so all call the same collectives with the same
// sizes; a small all-reduce's result is checked every time.
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "tests/resident_memory.hpp"
#include "tests/soak/soak.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace plexus::soak {
namespace {

constexpr int kSmallMax = 64;        // floats of a small all-reduce
constexpr int kRandomMaxBits = 20;   // a random collective moves up to 1 MiB per rank
constexpr size_t kLiveBlocks = 6;    // pool blocks kept alive at a time
constexpr uint64_t kSettleBytes = 64 << 10;
constexpr int kQueueMaxBits = 16;          // a queue message is up to 64 KiB: 16 of the ring's 4 KiB slots

int count_fds() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

int count_own_shm_names() {
  const std::string pid = "-" + std::to_string(getpid()) + "-";
  int n = 0;
  if (DIR *d = opendir("/dev/shm")) {
    while (const dirent *e = readdir(d)) n += std::strstr(e->d_name, "plexus") && std::strstr(e->d_name, pid.c_str());
    closedir(d);
  }
  return n;
}

class Rank {
 public:
  Rank(plx_comm_h comm, const Settings &s, int32_t rank, RankReport *report)
      : comm_(comm), s_(s), rank_(rank), report_(report), gen_(s.seed),
        host_send_(size_t{1} << kRandomMaxBits), host_recv_(host_send_.size() * s.nranks),
        message_(size_t{1} << kQueueMaxBits) {
    for (int i = 0; i < kSmallMax; ++i) small_send_[i] = static_cast<float>(rank + 1);
  }
  ~Rank() {
    free_live();
    if (queue_ != nullptr) plx_queue_destroy(queue_);
  }
  bool run();

 private:
  bool fail(const char *what, plx_status s);
  bool small_all_reduce();
  bool random_collective();
  bool collective_on(uint8_t *send, uint8_t *recv, uint64_t bytes, int kind);
  bool prime();
  bool make_queue();
  bool queue_round();
  bool pass_message(uint8_t *buf, uint64_t bytes, uint8_t salt);
  void *take_block(uint64_t bytes);
  void free_live();
  bool sample(int index, int64_t iteration);
  bool settle();

  plx_comm_h comm_;
  const Settings &s_;
  int32_t rank_;
  RankReport *report_;
  std::mt19937_64 gen_;
  float small_send_[kSmallMax], small_recv_[kSmallMax] = {};
  std::vector<uint8_t> host_send_, host_recv_;
  std::deque<void *> live_;  // pool blocks, oldest first
  std::vector<uint8_t> message_;
  plx_queue_h queue_ = nullptr;
  int32_t writer_ = 0;
};

bool Rank::fail(const char *what, plx_status s) {
  std::snprintf(report_->message, sizeof(report_->message), "%s: %s: %s", what, plx_status_string(s),
                plx_last_error());
  return false;
}

// The sum of every rank's (rank + 1) is exact in float32.
bool Rank::small_all_reduce() {
  const uint64_t count = 1 + gen_() % kSmallMax;
  if (plx_status st = plx_all_reduce(comm_, small_send_, small_recv_, count, PLX_FLOAT32, PLX_SUM, nullptr, nullptr))
    return fail("small all_reduce", st);
  const float want = static_cast<float>(s_.nranks * (s_.nranks + 1) / 2);
  if (small_recv_[0] != want || small_recv_[count - 1] != want) {
    std::snprintf(report_->message, sizeof(report_->message), "small all_reduce of %llu gave %g, want %g",
                  static_cast<unsigned long long>(count), small_recv_[0], want);
    return false;
  }
  ++report_->small_ops;
  return true;
}

// A pool block of `bytes` with a random tag; the oldest live one goes back
// when more than kLiveBlocks are out, so blocks are freed out of order.
void *Rank::take_block(uint64_t bytes) {
  plx_mem_alloc_params p = {sizeof(p), PLX_MEM_SHARED_HOST, bytes, 0, static_cast<uint32_t>(gen_() % 8), 0};
  void *ptr = nullptr;
  if (plx_status st = plx_mem_alloc(comm_, &p, &ptr)) return fail("plx_mem_alloc", st), nullptr;
  ++report_->allocations;
  live_.push_back(ptr);
  if (live_.size() > kLiveBlocks) plx_mem_free(comm_, live_.front()), live_.pop_front();
  return ptr;
}

void Rank::free_live() {
  for (void *p : live_) plx_mem_free(comm_, p);
  live_.clear();
}

bool Rank::collective_on(uint8_t *send, uint8_t *recv, uint64_t bytes, int kind) {
  const uint64_t floats = bytes / 4;
  const int32_t root = static_cast<int32_t>(gen_() % static_cast<uint64_t>(s_.nranks));
  plx_status st = PLX_OK;
  if (kind == 0) st = plx_all_reduce(comm_, send, recv, floats, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  if (kind == 1) st = plx_broadcast(comm_, send, recv, bytes, PLX_UINT8, root, nullptr, nullptr);
  if (kind == 2) st = plx_all_gather(comm_, send, recv, bytes, PLX_UINT8, nullptr, nullptr);
  if (kind == 3) st = plx_reduce_scatter(comm_, recv, send, floats / s_.nranks, PLX_FLOAT32, PLX_MAX, nullptr, nullptr);
  return st == PLX_OK ? (++report_->random_ops, true) : fail("random collective", st);
}

// Sizes log-uniform up to 1 MiB per rank, on pool blocks or on malloc'd
// memory (every rank draws the same choice).
bool Rank::random_collective() {
  const uint64_t bytes = 4ull << (gen_() % (kRandomMaxBits - 1));
  const int kind = static_cast<int>(gen_() % 4);
  if (gen_() % 2 == 0) return collective_on(host_send_.data(), host_recv_.data(), bytes, kind);
  auto *send = static_cast<uint8_t *>(take_block(bytes * s_.nranks));
  auto *recv = send ? static_cast<uint8_t *>(take_block(bytes * s_.nranks)) : nullptr;
  return recv && collective_on(send, recv, bytes, kind);
}

// A queue written by the next rank in turn (collective: every rank makes it).
bool Rank::make_queue() {
  plx_queue_config c = PLX_QUEUE_CONFIG_INIT;
  c.writer_rank = static_cast<int32_t>(report_->queues_made % s_.nranks);
  if (plx_status st = plx_queue_create(comm_, &c, &queue_)) return fail("plx_queue_create", st);
  writer_ = c.writer_rank;
  ++report_->queues_made;
  return true;
}

// The writer fills buf with the message and enqueues it; every reader
// dequeues it into buf and checks its size and every byte.
bool Rank::pass_message(uint8_t *buf, uint64_t bytes, uint8_t salt) {
  auto byte = [salt](uint64_t i) { return static_cast<uint8_t>(i * 131 + salt); };
  if (rank_ == writer_) {
    for (uint64_t i = 0; i < bytes; ++i) buf[i] = byte(i);
    const plx_status st = plx_queue_enqueue(queue_, buf, bytes, -1);
    return st == PLX_OK || fail("plx_queue_enqueue", st);
  }
  uint64_t got = 0;
  if (plx_status st = plx_queue_dequeue(queue_, buf, bytes, &got, -1)) return fail("plx_queue_dequeue", st);
  for (uint64_t i = 0; i < bytes; ++i)
    if (got != bytes || buf[i] != byte(i)) {
      std::snprintf(report_->message, sizeof(report_->message), "queue message %lld: %llu bytes, byte %llu wrong",
                    static_cast<long long>(report_->queue_messages), static_cast<unsigned long long>(got),
                    static_cast<unsigned long long>(i));
      return false;
    }
  return true;
}

// One message of random size (1 B to 64 KiB, so often chunked through the
// ring) on malloc'd memory or a pool block, every rank drawing the same.
// Every kQueueRemakeEvery messages a small all-reduce makes sure every
// reader has its message, then the queue is destroyed and made again.
bool Rank::queue_round() {
  const uint64_t bytes = 1 + gen_() % (uint64_t{1} << (1 + gen_() % kQueueMaxBits));
  const auto salt = static_cast<uint8_t>(gen_());
  auto *buf = gen_() % 2 ? static_cast<uint8_t *>(take_block(bytes)) : message_.data();
  if (buf == nullptr || !pass_message(buf, bytes, salt)) return false;
  if (++report_->queue_messages % kQueueRemakeEvery != 0) return true;
  if (!small_all_reduce()) return false;
  plx_queue_destroy(queue_);
  queue_ = nullptr;
  return make_queue();
}

// Every kind once at the largest size, so that the slots have grown to
// their cap before the first sample: growth is expected, not drift.
bool Rank::prime() {
  const uint64_t bytes = host_send_.size();
  for (int kind = 0; kind < 4; ++kind)
    if (!collective_on(host_send_.data(), host_recv_.data(), bytes, kind)) return false;
  return true;
}

// Brings every rank to the same state whatever the random sizes left
// behind: nothing in the pools, and each peer's cache of our segments (which
// it drops only when it next maps one of ours) holding one block of the
// same size. A leak then shows as a difference between samples.
bool Rank::settle() {
  uint64_t released = 0;
  plx_mem_trim(comm_, PLX_MEM_SHARED_HOST, 0, &released);
  auto *block = static_cast<float *>(take_block(kSettleBytes));
  if (block == nullptr) return false;
  const plx_status st = plx_all_reduce(comm_, block, host_recv_.data(), kSettleBytes / 4, PLX_FLOAT32, PLX_SUM,
                                       nullptr, nullptr);
  free_live();
  plx_mem_trim(comm_, PLX_MEM_SHARED_HOST, 0, &released);
  return st == PLX_OK || fail("settling all_reduce", st);
}

// Pool statistics are taken with every block given back, so that a block
// that was never freed shows as bytes in use; then trimmed, so that a
// segment that cannot be given back shows as reserved.
bool Rank::sample(int index, int64_t iteration) {
  free_live();
  Sample &x = report_->samples[index];
  x.iteration = iteration;
  x.pool.struct_size = sizeof(x.pool);
  plx_mem_stats_get(comm_, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &x.pool);
  if (!settle()) return false;
  plx_mem_stats trimmed{};
  trimmed.struct_size = sizeof(trimmed);
  plx_mem_stats_get(comm_, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &trimmed);
  x.reserved_after_trim = trimmed.bytes_reserved, x.segments_after_trim = trimmed.segment_count;
  x.rss_kib = test::resident_kib(), x.fds = count_fds(), x.shm_names = count_own_shm_names();
  return true;
}

bool Rank::run() {
  const int64_t warmup = std::max<int64_t>(s_.iterations / 20, std::min<int64_t>(s_.iterations, 2000));
  const int64_t step = std::max<int64_t>((s_.iterations - warmup) / (kSamples - 1), 1);
  if (!prime() || (s_.nranks > 1 && !make_queue())) return false;
  const auto start = std::chrono::steady_clock::now();
  int next = 0;
  for (int64_t i = 0; i < s_.iterations; ++i) {
    if (next < kSamples && i == warmup + next * step && !sample(next++, i)) return false;
    if (!small_all_reduce()) return false;
    if (i % s_.random_every == 0 && !random_collective()) return false;
    if (queue_ != nullptr && i % s_.random_every == s_.random_every / 2 && !queue_round()) return false;
  }
  while (next < kSamples)
    if (!sample(next++, s_.iterations)) return false;
  report_->elapsed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  return true;
}

// LeakSanitizer checks at exit, which a forked rank leaving with _exit()
// skips: ask it here, after everything is destroyed.
int leak_check() {
#if defined(__SANITIZE_ADDRESS__)
  return __lsan_do_recoverable_leak_check();
#else
  return 0;
#endif
}

}  // namespace

int run_soak_rank(plx_backend_h backend, const plx_unique_id &id, const Settings &s, int32_t rank,
                  RankReport *report) {
  report->fds_before = count_fds();
  plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
  cfg.timeout_ms = cfg.init_timeout_ms = 60000;
  plx_comm_h comm = nullptr;
  if (plx_comm_init(backend, &id, s.nranks, rank, &cfg, &comm) != PLX_OK) {
    std::snprintf(report->message, sizeof(report->message), "plx_comm_init: %s", plx_last_error());
    return 2;
  }
  bool ok = false;
  {
    Rank r(comm, s, rank, report);
    ok = r.run();
  }
  const plx_status destroyed = plx_comm_destroy(comm);
  report->fds_after = count_fds();
  report->leaks = leak_check();
  report->status = ok && destroyed == PLX_OK ? 0 : 1;
  return report->status;
}

}  // namespace plexus::soak

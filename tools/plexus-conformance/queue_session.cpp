// The queue session (PLX-P-21, PLX-P-10), with PLX_CAP_QUEUE: rank 0
// writes, every other rank reads. On a ring of kSlots slots of kSlotBytes:
// the wrong role refused; a poll of an empty ring; messages of 0, 1, slot
// - 1, slot, slot + 1 and 10 x slot bytes (chunked through a ring smaller
// than the message) and a few others, random bytes checked in order on
// every reader, a too-small buffer consuming nothing; a full ring (a poll
// and a timed wait of the writer) and an empty one (a timed wait of the
// readers), each of which must write or take nothing. Timeouts are sticky
// on the communicator (plexus.h), so they come last. Then, on a second
// communicator, the last rank dies with SIGKILL and the writer, filling the
// ring, must see PLX_ERR_PEER_LOST (or PLX_ERR_TIMEOUT) within the timeout.
#include <signal.h>

#include <cstring>
#include <thread>
#include <vector>

#include "sessions.hpp"

namespace plexus::conformance {
namespace {

constexpr uint64_t kSlotBytes = 256;
constexpr uint32_t kSlots = 8;
constexpr int32_t kTimeoutMs = 5000;  // the communicators' timeout: -1 waits this long
constexpr int32_t kWaitMs = 200;  // the timed waits that must time out
constexpr int32_t kKillTimeoutMs = 3000;
constexpr uint64_t kSizes[] = {0, 1, kSlotBytes - 1, kSlotBytes, kSlotBytes + 1, 10 * kSlotBytes, 2, 3 * kSlotBytes + 17};
constexpr size_t kShortBuffer = 4;  // the message of this index is first asked for with 1 byte of room

// Message `index` of `bytes` random bytes, the same on every rank.
std::vector<uint8_t> message(uint64_t index, uint64_t bytes) {
  std::vector<uint8_t> out(bytes);
  uint64_t x = 0x9e3779b97f4a7c15ull * (index + 1);
  for (uint8_t &b : out) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

plx_queue_h create_checked(RankContext &ctx, plx_comm_h comm, uint64_t slot_bytes, uint32_t slots) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", fmt::format("create ({} slots of {} bytes)", slots, slot_bytes));
  plx_queue_config config = PLX_QUEUE_CONFIG_INIT;
  config.writer_rank = 0, config.slot_bytes = slot_bytes, config.slot_count = slots;
  plx_queue_h q = nullptr;
  const plx_status s = plx_queue_create(comm, &config, &q);
  c.expect(s == PLX_OK && q != nullptr, "plx_queue_create returned {}", status_text(s));
  return s == PLX_OK ? q : nullptr;
}

void destroy_checked(RankContext &ctx, plx_queue_h q, plx_comm_h comm, const std::string &name) {
  CaseScope c(ctx.out, "PLX-P-13", "queues", "destroy " + name);
  const plx_status sq = q ? plx_queue_destroy(q) : PLX_OK;
  const plx_status sc = plx_comm_destroy(comm);
  c.expect(sq == PLX_OK && sc == PLX_OK, "plx_queue_destroy: {}, plx_comm_destroy: {}", status_text(sq),
           status_text(sc));
}

// Each rank calls the other role's function: refused, nothing written or taken.
void wrong_role_case(RankContext &ctx, plx_queue_h q) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", "the other role's call refused");
  uint8_t byte = 1;
  uint64_t bytes = 0;
  const plx_status s = ctx.rank() == 0 ? plx_queue_dequeue(q, &byte, 1, &bytes, 0) : plx_queue_enqueue(q, &byte, 1, 0);
  c.expect(s == PLX_ERR_INVALID_USAGE, "{} on rank {} returned {}, want PLX_ERR_INVALID_USAGE",
           ctx.rank() == 0 ? "plx_queue_dequeue on the writer" : "plx_queue_enqueue on a reader", ctx.rank(),
           status_text(s));
}

// A poll (timeout 0) of an empty ring: PLX_IN_PROGRESS at once.
void empty_poll_case(RankContext &ctx, plx_queue_h q, const char *when) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", fmt::format("reader polls an empty ring ({})", when));
  std::vector<uint8_t> buf(16);
  uint64_t bytes = 0;
  const Clock::time_point start = Clock::now();
  const plx_status s = plx_queue_dequeue(q, buf.data(), buf.size(), &bytes, 0);
  const double ms = ms_since(start);
  c.expect(s == PLX_IN_PROGRESS && ms < 1000, "plx_queue_dequeue(timeout 0) returned {} after {:.0f} ms, want "
           "PLX_IN_PROGRESS at once", status_text(s), ms);
}

// The next message on a reader must be `want`, whole.
bool take(plx_queue_h q, const std::vector<uint8_t> &want, uint64_t index, CaseScope &c) {
  std::vector<uint8_t> got(want.size() + 64, 0xee);
  uint64_t bytes = ~0ull;
  const plx_status s = plx_queue_dequeue(q, got.data(), got.size(), &bytes, -1);
  if (!c.expect(s == PLX_OK && bytes == want.size(), "message #{} ({} bytes): {} with *bytes {}", index,
                want.size(), status_text(s), bytes))
    return false;
  const auto bad = std::mismatch(want.begin(), want.end(), got.begin());
  return c.expect(bad.first == want.end(), "message #{} ({} bytes): byte {} is {:#04x}, want {:#04x}", index,
                  want.size(), bad.first - want.begin(), bad.first == want.end() ? 0 : *bad.second,
                  bad.first == want.end() ? 0 : *bad.first);
}

// Too small a buffer: PLX_ERR_INVALID_ARGUMENT, the size needed, nothing consumed.
bool take_short(plx_queue_h q, uint64_t want_bytes, uint64_t index, CaseScope &c) {
  uint8_t one = 0;
  uint64_t bytes = 0;
  const plx_status s = plx_queue_dequeue(q, &one, 1, &bytes, -1);
  return c.expect(s == PLX_ERR_INVALID_ARGUMENT && bytes == want_bytes,
                  "message #{} ({} bytes) into a 1-byte buffer: {} with *bytes {}, want PLX_ERR_INVALID_ARGUMENT "
                  "and {}", index, want_bytes, status_text(s), bytes, want_bytes);
}

void messages_case(RankContext &ctx, plx_queue_h q) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", "messages of 0 .. 10 x slot bytes, in order, byte for byte");
  for (uint64_t k = 0; k < std::size(kSizes); ++k) {
    const std::vector<uint8_t> m = message(k, kSizes[k]);
    if (ctx.rank() == 0) {
      const plx_status s = plx_queue_enqueue(q, m.empty() ? nullptr : m.data(), m.size(), -1);
      if (!c.expect(s == PLX_OK, "plx_queue_enqueue of message #{} ({} bytes): {}", k, m.size(), status_text(s)))
        return;
    } else if ((k == kShortBuffer && !take_short(q, m.size(), k, c)) || !take(q, m, k, c)) {
      return;
    }
  }
}

// Writer: the ring empty, kSlots one-slot messages fit without waiting; the
// next is refused by a poll and times out in a timed wait.
void full_ring_case(RankContext &ctx, plx_queue_h q) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", fmt::format("writer on a full ring ({} ms wait)", kWaitMs));
  for (uint32_t k = 0; k < kSlots; ++k) {
    const std::vector<uint8_t> m = message(100 + k, kSlotBytes);
    const plx_status s = plx_queue_enqueue(q, m.data(), m.size(), 0);
    if (!c.expect(s == PLX_OK, "message {} of {} into an empty ring of {} slots: {}", k + 1, kSlots, kSlots,
                  status_text(s)))
      return;
  }
  const std::vector<uint8_t> extra = message(200, kSlotBytes);
  Clock::time_point start = Clock::now();
  plx_status s = plx_queue_enqueue(q, extra.data(), extra.size(), 0);
  double ms = ms_since(start);
  c.expect(s == PLX_IN_PROGRESS && ms < 1000, "plx_queue_enqueue(timeout 0) on a full ring: {} after {:.0f} ms, want "
           "PLX_IN_PROGRESS at once", status_text(s), ms);
  start = Clock::now();
  s = plx_queue_enqueue(q, extra.data(), extra.size(), kWaitMs);
  ms = ms_since(start);
  c.expect(s == PLX_ERR_TIMEOUT && ms >= 0.9 * kWaitMs && ms <= kWaitMs + kMarginMs,
           "plx_queue_enqueue(timeout {} ms) on a full ring: {} after {:.0f} ms, want PLX_ERR_TIMEOUT", kWaitMs,
           status_text(s), ms);
}

// Reader: the kSlots messages of the full ring and nothing else, then a
// timed wait on the empty ring.
void drain_case(RankContext &ctx, plx_queue_h q) {
  CaseScope c(ctx.out, "PLX-P-21", "queues", fmt::format("reader on an empty ring ({} ms wait)", kWaitMs));
  for (uint32_t k = 0; k < kSlots; ++k)
    if (!take(q, message(100 + k, kSlotBytes), 100 + k, c)) return;
  std::vector<uint8_t> buf(kSlotBytes);
  uint64_t bytes = 0;
  const Clock::time_point start = Clock::now();
  const plx_status s = plx_queue_dequeue(q, buf.data(), buf.size(), &bytes, kWaitMs);
  const double ms = ms_since(start);
  c.expect(s == PLX_ERR_TIMEOUT && ms >= 0.9 * kWaitMs && ms <= kWaitMs + kMarginMs,
           "plx_queue_dequeue(timeout {} ms) after the last message: {} after {:.0f} ms, want PLX_ERR_TIMEOUT "
           "(a message the refused enqueues wrote?)", kWaitMs, status_text(s), ms);
}

void ordinary_queue(RankContext &ctx) {
  const int32_t readers = ctx.nranks() - 1, limit = kTimeoutMs + kMarginMs;
  const plx_comm_h comm = join_checked(ctx, 0, kTimeoutMs);
  if (comm == nullptr) return;
  const plx_queue_h q = create_checked(ctx, comm, kSlotBytes, kSlots);
  if (q != nullptr) {
    wrong_role_case(ctx, q);
    if (ctx.rank() != 0) empty_poll_case(ctx, q, "before any message"), ring(ctx, "polled");
    if (ctx.rank() == 0) wait_bells(ctx, "polled", readers, limit);
    messages_case(ctx, q);
    // The writer stays until the readers' timed wait is over: a writer that
    // has left is a lost peer, not an empty ring.
    if (ctx.rank() == 0) {
      wait_bells(ctx, "drained", readers, limit), full_ring_case(ctx, q), ring(ctx, "full");
      wait_bells(ctx, "waited", readers, 2 * limit);
    } else {
      ring(ctx, "drained"), wait_bells(ctx, "full", 1, 2 * limit), drain_case(ctx, q), ring(ctx, "waited");
    }
  }
  destroy_checked(ctx, q, comm, "after the timeouts");
}

// Readers that live on: take what comes until the writer is done.
void keep_reading(RankContext &ctx, plx_queue_h q) {
  std::vector<uint8_t> buf(64);
  uint64_t bytes = 0;
  const Clock::time_point start = Clock::now();
  while (!read_bell(ctx, "writer-done", 0) && ms_since(start) < 3 * (kKillTimeoutMs + kMarginMs)) {
    const plx_status s = plx_queue_dequeue(q, buf.data(), buf.size(), &bytes, 0);
    if (s == PLX_IN_PROGRESS) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    else if (s != PLX_OK) return;
  }
}

// The writer fills the ring the dead reader never empties.
void writer_sees_death(RankContext &ctx, plx_queue_h q) {
  const int32_t victim = ctx.nranks() - 1;
  CaseScope c(ctx.out, "PLX-P-10", "queues", fmt::format("reader rank {} killed, writer fills the ring", victim));
  wait_bells(ctx, "victim", 1, kKillTimeoutMs + kMarginMs);
  const std::vector<uint8_t> m = message(300, 64);
  for (int k = 0; k < 1000; ++k) {
    const Clock::time_point start = Clock::now();
    const plx_status s = plx_queue_enqueue(q, m.data(), m.size(), kKillTimeoutMs);
    const double ms = ms_since(start);
    if (s == PLX_OK) continue;
    c.expect((s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT) && ms <= kKillTimeoutMs + kMarginMs,
             "plx_queue_enqueue #{}: {} after {:.0f} ms (timeout {} ms)", k + 1, status_text(s), ms, kKillTimeoutMs);
    return;
  }
  c.expect(false, "1000 messages went into a ring of 4 slots although reader rank {} was killed", victim);
}

void dead_reader_queue(RankContext &ctx) {
  const plx_comm_h comm = join_checked(ctx, 1, kKillTimeoutMs);
  if (comm == nullptr) return;
  const plx_queue_h q = create_checked(ctx, comm, 64, 4);
  if (q != nullptr && ctx.rank() == ctx.nranks() - 1) {
    ctx.out.expect_death();
    ring(ctx, "victim");
    raise(SIGKILL);
  }
  if (q != nullptr && ctx.rank() == 0) writer_sees_death(ctx, q), ring(ctx, "writer-done");
  if (q != nullptr && ctx.rank() != 0) keep_reading(ctx, q);
  destroy_checked(ctx, q, comm, "after a reader died");
}

}  // namespace

void run_queue_session(RankContext &ctx) {
  ordinary_queue(ctx);
  dead_reader_queue(ctx);
}

}  // namespace plexus::conformance

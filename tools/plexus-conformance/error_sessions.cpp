// Sessions that break a communicator on purpose: a rank that never joins or
// joins wrongly (init), a rank that skips a collective (timeout), a rank
// killed with SIGKILL (kill-before, kill-during) and abort. Each checks that
// the other ranks fail with the documented status within the timeout plus
// kMarginMs (PLX-P-9 .. PLX-P-11) and that the failure then stays (PLX-P-12).
//
// The calls use the session's work memory (work_memory.hpp). On a stream a
// call that must fail may instead return PLX_OK (enqueued) and fail later:
// its outcome is then what plx_comm_async_status reports while the stream
// has not finished it, within the same time limits; a stream that neither
// finishes nor reports an error by then counts as a hang.
#include <signal.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr int32_t kInitMs = 1000;  // init timeout of the init cases
constexpr int32_t kAbortTimeoutMs = 20000;  // long: an abort must not pass for a timeout
constexpr int32_t kKillTimeoutMs = 5000;

// The memory of a session's calls: a small buffer, and for survive() one
// of 1 MiB; none is copied into after a failure (see WorkBuffer).
struct SessionMemory {
  explicit SessionMemory(const RankContext &ctx) : work(ctx.memory.work), small(work, 64), large(work, 1 << 20) {}
  Work work;
  WorkBuffer small, large;
  bool ok() const { return work.ok() && small.ok() && large.ok(); }
  std::string error() const { return !work.ok() ? work.error() : !small.ok() ? small.error() : large.error(); }
};

// A small all-reduce, settled within max_ms.
Outcome all_reduce_small(plx_comm_h comm, const SessionMemory &m, int32_t max_ms) {
  return small_call(comm, m.work, m.small, max_ms);
}

// Joins the session's communicator with its memory ready; nullptr (after
// reporting why) when either cannot be had.
plx_comm_h join_with_memory(RankContext &ctx, const SessionMemory &m, int32_t timeout_ms) {
  if (!m.ok()) {
    CaseScope c(ctx.out, "-", "session memory", ctx.env.session);
    c.expect(false, "{} memory for the session's calls: {}", mem_kind_name(m.work.kind()), m.error());
    return nullptr;
  }
  return join_checked(ctx, 0, timeout_ms);
}

bool is_one_of(plx_status s, std::initializer_list<plx_status> codes) {
  for (const plx_status c : codes)
    if (s == c) return true;
  return false;
}

// After `first` on this rank: later calls of another kind fail at once with
// the same status, and plx_comm_async_status reports it (PLX-P-12). On a
// stream too the call itself must fail: the backend knows it is broken.
void check_sticky(RankContext &ctx, plx_comm_h comm, const SessionMemory &m, plx_status first,
                  const std::string &after) {
  CaseScope c(ctx.out, "PLX-P-12", "sticky failure", fmt::format("after {} ({})", after, ctx.env.session));
  const Clock::time_point start = Clock::now();
  void *x = m.small.ptr(), *stream = m.work.stream();
  const plx_status again = ctx.has_cap(PLX_CAP_COLL(PLX_COLL_BARRIER))
                               ? plx_barrier(comm, nullptr, stream)
                               : plx_all_reduce(comm, x, x, 16, PLX_FLOAT32, PLX_SUM, nullptr, stream);
  const double ms = ms_since(start);
  c.expect(again == first && ms < 1000, "the next call returned {} after {:.0f} ms, want {} at once",
           status_text(again), ms, plx_status_string(first));
  plx_status state = PLX_OK;
  plx_comm_async_status(comm, &state);
  c.expect(state == first, "plx_comm_async_status reports {}, want {}", plx_status_string(state),
           plx_status_string(first));
}

// A rank that did not see the failure itself learns of it from its peers:
// on a stream that may take until the backend notices (the timeout and the
// margin); elsewhere it is there when the peers have failed.
void await_remote_failure(plx_comm_h comm, const SessionMemory &m, int32_t max_ms) {
  if (m.work.stream() == nullptr) return;
  const Clock::time_point start = Clock::now();
  for (plx_status state = PLX_OK; ms_since(start) < max_ms; std::this_thread::sleep_for(std::chrono::milliseconds(2)))
    if (plx_comm_async_status(comm, &state) == PLX_OK && state < 0) return;
}

// Destroy after a failure must not wait longer than the timeout (PLX-P-13).
void destroy_within(RankContext &ctx, plx_comm_h comm, int32_t timeout_ms, const std::string &after) {
  CaseScope c(ctx.out, "PLX-P-13", "destroy after failure",
              fmt::format("after {} ({})", after, ctx.env.session));
  const Clock::time_point start = Clock::now();
  const plx_status s = plx_comm_destroy(comm);
  const double ms = ms_since(start);
  c.expect(s == PLX_OK && ms <= timeout_ms + kMarginMs, "plx_comm_destroy returned {} after {:.0f} ms",
           status_text(s), ms);
}

// Joins id `id`; ranks for which skip(rank) is true stay away. Every rank
// that joins must fail with one of `codes` within kInitMs + kMarginMs.
void init_case(RankContext &ctx, const char *name, size_t id, int32_t nranks, int32_t rank,
               std::initializer_list<plx_status> codes) {
  CaseScope c(ctx.out, "PLX-P-9", "comm_init failures", name);
  plx_comm_h comm = nullptr;
  const Clock::time_point start = Clock::now();
  const plx_status s = join(ctx, id, kInitMs, kInitMs, &comm, nranks, rank);
  const double ms = ms_since(start);
  c.expect(is_one_of(s, codes) && ms <= kInitMs + kMarginMs,
           "plx_comm_init returned {} after {:.0f} ms "
           "(init_timeout_ms {})",
           status_text(s), ms, kInitMs);
  if (comm) plx_comm_destroy(comm);
}

// Survivors: all-reduces until one fails, which must be PLX_ERR_PEER_LOST
// (or PLX_ERR_TIMEOUT) within the timeout; then the failure must stay.
void survive(RankContext &ctx, plx_comm_h comm, const SessionMemory &m, CaseScope &c) {
  const uint64_t count = (1 << 20) / sizeof(float);
  void *x = m.large.ptr(), *stream = m.work.stream();
  for (int k = 0; k < 100000; ++k) {
    if (ctx.rank() == ctx.nranks() - 1 && ctx.env.session == "kill-before" && k == 2)
      ctx.out.expect_death(), raise(SIGKILL);
    const Clock::time_point start = Clock::now();
    const plx_status called = plx_all_reduce(comm, x, x, count, PLX_FLOAT32, PLX_SUM, nullptr, stream);
    const Outcome o = settle(comm, called, start, stream, kKillTimeoutMs + kMarginMs + 1000);
    if (o.ok()) continue;
    c.expect(is_one_of(o.status, {PLX_ERR_PEER_LOST, PLX_ERR_TIMEOUT}) && o.ms <= kKillTimeoutMs + kMarginMs,
             "all_reduce #{}: {} after {:.0f} ms (timeout_ms {})", k + 1, o.text(), o.ms, kKillTimeoutMs);
    if (o.status < 0) check_sticky(ctx, comm, m, o.status, "a lost peer");
    return destroy_within(ctx, comm, kKillTimeoutMs, "a lost peer");
  }
  c.expect(false, "100000 all_reduces succeeded although rank {} was killed", ctx.nranks() - 1);
}

}  // namespace

void run_init_session(RankContext &ctx) {
  const int32_t n = ctx.nranks(), last = n - 1;
  if (ctx.rank() != last) init_case(ctx, "a rank never joins", 1, n, ctx.rank(), {PLX_ERR_TIMEOUT});
  ring(ctx, "init-1");  // the next case starts together, so no rank is late because of this one
  wait_bells(ctx, "init-1", n, 10 * kInitMs);
  const std::initializer_list<plx_status> refused = {PLX_ERR_INVALID_USAGE, PLX_ERR_INVALID_ARGUMENT,
                                                     PLX_ERR_TIMEOUT};
  init_case(ctx, "a rank joins with nranks + 1", 2, ctx.rank() == last ? n + 1 : n, ctx.rank(), refused);
  ring(ctx, "init-2");
  wait_bells(ctx, "init-2", n, 10 * kInitMs);
  init_case(ctx, "two ranks join as the same rank", 3, n, ctx.rank() == last ? 0 : ctx.rank(), refused);
}

// Rank n-1 skips one all-reduce; the others must get PLX_ERR_TIMEOUT within
// the timeout (on a stream PLX_ERR_PEER_LOST too: the backend may not tell a
// silent peer from a dead one). It then waits (alive) until they have, so
// that what they see is a timeout and not a lost peer, and checks that the
// failure reached it.
void run_timeout_session(RankContext &ctx) {
  const int32_t timeout = ctx.opts.timeout_ms, last = ctx.nranks() - 1;
  const SessionMemory m(ctx);
  const plx_comm_h comm = join_with_memory(ctx, m, timeout);
  if (comm == nullptr) return;
  all_reduce_small(comm, m, timeout + kMarginMs);
  if (ctx.rank() == last) {
    wait_bells(ctx, "timed-out", last, 3 * (timeout + kMarginMs));
    await_remote_failure(comm, m, timeout + kMarginMs);
    check_sticky(ctx, comm, m, PLX_ERR_TIMEOUT, "a timeout on another rank");
  } else {
    CaseScope c(ctx.out, "PLX-P-9", "timeout", fmt::format("rank {} skips an all_reduce", last));
    const Outcome o = all_reduce_small(comm, m, timeout + kMarginMs + 1000);
    ring(ctx, "timed-out");
    const bool lost_ok = o.deferred && o.status == PLX_ERR_PEER_LOST;
    // Too early is as wrong as too late: the wait is timeout_ms, not less.
    c.expect((o.status == PLX_ERR_TIMEOUT || lost_ok) && o.ms <= timeout + kMarginMs && o.ms >= 0.9 * timeout,
             "all_reduce: {} after {:.0f} ms (timeout_ms {})", o.text(), o.ms, timeout);
    // A deferred failure comes through plx_comm_async_status, which has no
    // message to name the rank in.
    if (!o.deferred)
      c.expect(o.detail.find(std::to_string(last)) != std::string::npos,
               "the message does not name rank {}: {}", last, o.detail);
    if (o.status < 0) check_sticky(ctx, comm, m, o.status, "the timeout");
  }
  destroy_within(ctx, comm, timeout, "a timeout");
}

// Rank n-1 dies by SIGKILL: before its third all-reduce, or from a thread
// 30 ms into the collectives (PLX-P-10).
void run_kill_session(RankContext &ctx, bool during) {
  const int32_t last = ctx.nranks() - 1;
  const SessionMemory m(ctx);
  const plx_comm_h comm = join_with_memory(ctx, m, kKillTimeoutMs);
  if (comm == nullptr) return;
  if (ctx.rank() == last && during) {
    ctx.out.expect_death();
    std::thread([] { usleep(30000), raise(SIGKILL); }).detach();
  }
  const std::string label = during ? "killed during all_reduce" : "killed before all_reduce #3";
  CaseScope c(ctx.out, "PLX-P-10", "peer lost", fmt::format("rank {} {}", last, label));
  survive(ctx, comm, m, c);
}

// Rank 0 aborts: after a barrier, or from a second thread while its main
// thread waits in an all-reduce the others join only after the abort. Every
// rank's call must end with PLX_ERR_ABORTED, long before the timeout.
void run_abort_session(RankContext &ctx, bool from_thread) {
  const SessionMemory m(ctx);
  const plx_comm_h comm = join_with_memory(ctx, m, kAbortTimeoutMs);
  if (comm == nullptr) return;
  all_reduce_small(comm, m, kAbortTimeoutMs + kMarginMs);
  const std::string name = from_thread ? "rank 0 aborts from a thread during all_reduce" : "rank 0 aborts";
  std::thread aborter;
  if (ctx.rank() == 0) {
    auto abort_now = [&ctx, comm] { plx_comm_abort(comm), ring(ctx, "aborted"); };
    if (from_thread)
      aborter = std::thread([abort_now] { usleep(200000), abort_now(); });
    else
      abort_now();
  } else {
    wait_bells(ctx, "aborted", 1, kAbortTimeoutMs);
  }
  CaseScope c(ctx.out, "PLX-P-11", "abort", name);
  const Outcome o = all_reduce_small(comm, m, 200 + kMarginMs + 1000);
  if (aborter.joinable()) aborter.join();
  c.expect(o.status == PLX_ERR_ABORTED && o.ms <= 200 + kMarginMs, "all_reduce: {} after {:.0f} ms", o.text(),
           o.ms);
  if (o.status < 0) check_sticky(ctx, comm, m, o.status, "abort");
  destroy_within(ctx, comm, kAbortTimeoutMs, "abort");
}

}  // namespace plexus::conformance

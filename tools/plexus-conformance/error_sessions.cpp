// Sessions that break a communicator on purpose: a rank that never joins or
// joins wrongly (init), a rank that skips a collective (timeout), a rank
// killed with SIGKILL (kill-before, kill-during) and abort. Each checks that
// the other ranks fail with the documented status within the timeout plus
// kMarginMs (PLX-P-9 .. PLX-P-11) and that the failure then stays (PLX-P-12).
#include <signal.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "sessions.hpp"

namespace plexus::conformance {
namespace {

constexpr int32_t kInitMs = 1000;  // init timeout of the init cases
constexpr int32_t kAbortTimeoutMs = 20000;  // long: an abort must not pass for a timeout
constexpr int32_t kKillTimeoutMs = 5000;

plx_status all_reduce_small(plx_comm_h comm) {
  float x[16] = {};
  return plx_all_reduce(comm, x, x, 16, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
}

bool is_one_of(plx_status s, std::initializer_list<plx_status> codes) {
  for (const plx_status c : codes)
    if (s == c) return true;
  return false;
}

// After `first` on this rank: later calls of another kind fail at once with
// the same status, and plx_comm_async_status reports it (PLX-P-12).
void check_sticky(RankContext &ctx, plx_comm_h comm, plx_status first, const std::string &after) {
  CaseScope c(ctx.out, "PLX-P-12", "sticky failure", fmt::format("after {} ({})", after, ctx.env.session));
  const Clock::time_point start = Clock::now();
  const plx_status again = ctx.has_cap(PLX_CAP_COLL(PLX_COLL_BARRIER)) ? plx_barrier(comm, nullptr, nullptr)
                                                                       : all_reduce_small(comm);
  const double ms = ms_since(start);
  c.expect(again == first && ms < 1000, "the next call returned {} after {:.0f} ms, want {} at once",
           status_text(again), ms, plx_status_string(first));
  plx_status state = PLX_OK;
  plx_comm_async_status(comm, &state);
  c.expect(state == first, "plx_comm_async_status reports {}, want {}", plx_status_string(state),
           plx_status_string(first));
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
void survive(RankContext &ctx, plx_comm_h comm, CaseScope &c) {
  std::vector<float> data(1 << 18, 1.0f);
  for (int k = 0; k < 100000; ++k) {
    if (ctx.rank() == ctx.nranks() - 1 && ctx.env.session == "kill-before" && k == 2)
      ctx.out.expect_death(), raise(SIGKILL);
    const Clock::time_point start = Clock::now();
    const plx_status s =
        plx_all_reduce(comm, data.data(), data.data(), data.size(), PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
    const double ms = ms_since(start);
    if (s == PLX_OK) continue;
    c.expect(is_one_of(s, {PLX_ERR_PEER_LOST, PLX_ERR_TIMEOUT}) && ms <= kKillTimeoutMs + kMarginMs,
             "all_reduce #{} returned {} after {:.0f} ms (timeout_ms {})", k + 1, status_text(s), ms,
             kKillTimeoutMs);
    check_sticky(ctx, comm, s, "a lost peer");
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
// the timeout. It then waits (alive) until they have, so that what they see
// is a timeout and not a lost peer, and checks that the failure reached it.
void run_timeout_session(RankContext &ctx) {
  const int32_t timeout = ctx.opts.timeout_ms, last = ctx.nranks() - 1;
  const plx_comm_h comm = join_checked(ctx, 0, timeout);
  if (comm == nullptr) return;
  all_reduce_small(comm);
  if (ctx.rank() == last) {
    wait_bells(ctx, "timed-out", last, 3 * (timeout + kMarginMs));
    check_sticky(ctx, comm, PLX_ERR_TIMEOUT, "a timeout on another rank");
  } else {
    CaseScope c(ctx.out, "PLX-P-9", "timeout", fmt::format("rank {} skips an all_reduce", last));
    const Clock::time_point start = Clock::now();
    const plx_status s = all_reduce_small(comm);
    const double ms = ms_since(start);
    ring(ctx, "timed-out");
    // Too early is as wrong as too late: the wait is timeout_ms, not less.
    c.expect(s == PLX_ERR_TIMEOUT && ms <= timeout + kMarginMs && ms >= 0.9 * timeout,
             "all_reduce returned {} after {:.0f} ms (timeout_ms {})", status_text(s), ms, timeout);
    c.expect(std::string(plx_last_error()).find(std::to_string(last)) != std::string::npos,
             "the message does not name rank {}: {}", last, plx_last_error());
    if (s != PLX_OK) check_sticky(ctx, comm, s, "the timeout");
  }
  destroy_within(ctx, comm, timeout, "a timeout");
}

// Rank n-1 dies by SIGKILL: before its third all-reduce, or from a thread
// 30 ms into the collectives (PLX-P-10).
void run_kill_session(RankContext &ctx, bool during) {
  const int32_t last = ctx.nranks() - 1;
  const plx_comm_h comm = join_checked(ctx, 0, kKillTimeoutMs);
  if (comm == nullptr) return;
  if (ctx.rank() == last && during) {
    ctx.out.expect_death();
    std::thread([] { usleep(30000), raise(SIGKILL); }).detach();
  }
  const std::string label = during ? "killed during all_reduce" : "killed before all_reduce #3";
  CaseScope c(ctx.out, "PLX-P-10", "peer lost", fmt::format("rank {} {}", last, label));
  survive(ctx, comm, c);
}

// Rank 0 aborts: after a barrier, or from a second thread while its main
// thread waits in an all-reduce the others join only after the abort. Every
// rank's call must end with PLX_ERR_ABORTED, long before the timeout.
void run_abort_session(RankContext &ctx, bool from_thread) {
  const plx_comm_h comm = join_checked(ctx, 0, kAbortTimeoutMs);
  if (comm == nullptr) return;
  all_reduce_small(comm);
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
  const Clock::time_point start = Clock::now();
  const plx_status s = all_reduce_small(comm);
  const double ms = ms_since(start);
  if (aborter.joinable()) aborter.join();
  c.expect(s == PLX_ERR_ABORTED && ms <= 200 + kMarginMs, "all_reduce returned {} after {:.0f} ms",
           status_text(s), ms);
  if (s != PLX_OK) check_sticky(ctx, comm, s, "abort");
  destroy_within(ctx, comm, kAbortTimeoutMs, "abort");
}

}  // namespace plexus::conformance

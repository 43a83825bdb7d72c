// The data session: one communicator for every data group, then the
// barrier, the loader's argument checks and split, all on the same ranks.
#include <cstdlib>
#include <thread>

#include "data_run.hpp"
#include "sessions.hpp"

namespace plexus::conformance {
namespace {

// Long enough for a 64 MiB case on a loaded machine; short enough that a
// mismatch between ranks ends well before the launcher gives up.
constexpr int32_t kDataTimeoutMs = 60000;
constexpr int32_t kInitTimeoutMs = 30000;

// No rank may leave a barrier before the last has entered: rank n-1 enters
// late and writes the time it entered; the others compare their exit time.
void run_barrier_case(RankContext &ctx, plx_comm_h comm) {
  CaseScope c(ctx.out, "PLX-P-8", "barrier", "waits for the last rank");
  const int32_t last = ctx.nranks() - 1;
  if (ctx.rank() == last) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ring(ctx, "barrier-enter", std::to_string(Clock::now().time_since_epoch().count()));
  }
  const plx_status s = plx_barrier(comm, nullptr, nullptr);
  const auto left = Clock::now().time_since_epoch().count();
  if (!c.expect(s == PLX_OK, "plx_barrier returned {}", status_text(s))) return;
  const std::optional<std::string> entered = read_bell(ctx, "barrier-enter", last);
  c.expect(entered && std::strtoll(entered->c_str(), nullptr, 10) <= left,
           "rank {} left the barrier before rank {} entered it", ctx.rank(), last);
}

void run_barrier_loop(RankContext &ctx, plx_comm_h comm) {
  CaseScope c(ctx.out, "PLX-P-8", "barrier", "200 in a row");
  for (int k = 0; k < 200; ++k) {
    const plx_status s = plx_barrier(comm, nullptr, nullptr);
    if (!c.expect(s == PLX_OK, "barrier {} returned {}", k, status_text(s))) return;
  }
}

// Ranks of one parity form a child, ordered by descending old rank; every
// member sums (old rank + 1) over the child.
void run_split_case(RankContext &ctx, plx_comm_h comm) {
  CaseScope c(ctx.out, "PLX-P-8", "split", "color = rank % 2, key = -rank");
  plx_comm_h child = nullptr;
  const plx_status s = plx_comm_split(comm, ctx.rank() % 2, -ctx.rank(), nullptr, &child);
  if (!c.expect(s == PLX_OK && child != nullptr, "plx_comm_split returned {}", status_text(s))) return;
  int32_t size = 0, rank = 0, want_rank = 0;
  int64_t want_sum = 0;
  for (int32_t r = ctx.rank() % 2; r < ctx.nranks(); r += 2) want_sum += r + 1, want_rank += r > ctx.rank();
  const int32_t want_size = (ctx.nranks() - ctx.rank() % 2 + 1) / 2;
  plx_comm_size(child, &size), plx_comm_rank(child, &rank);
  c.expect(size == want_size && rank == want_rank, "child rank {} of {}, want {} of {}", rank, size,
           want_rank, want_size);
  int64_t sum = ctx.rank() + 1;
  const plx_status r = plx_all_reduce(child, &sum, &sum, 1, PLX_INT64, PLX_SUM, nullptr, nullptr);
  c.expect(r == PLX_OK && sum == want_sum, "all_reduce on the child gave {} ({}), want {}", sum,
           status_text(r), want_sum);
  c.expect(plx_comm_destroy(child) == PLX_OK, "plx_comm_destroy of the child: {}", plx_last_error());
}

void run_split_no_color(RankContext &ctx, plx_comm_h comm) {
  CaseScope c(ctx.out, "PLX-P-8", "split", "rank 0 takes no color");
  plx_comm_h child = nullptr;
  const plx_status s = plx_comm_split(comm, ctx.rank() == 0 ? PLX_SPLIT_NO_COLOR : 0, 0, nullptr, &child);
  if (!c.expect(s == PLX_OK, "plx_comm_split returned {}", status_text(s))) return;
  if (ctx.rank() == 0)
    c.expect(child == nullptr, "rank 0 got a communicator for PLX_SPLIT_NO_COLOR");
  else if (c.expect(child != nullptr, "no communicator for color 0"))
    c.expect(plx_barrier(child, nullptr, nullptr) == PLX_OK, "barrier on the child: {}", plx_last_error());
  if (child) plx_comm_destroy(child);
}

}  // namespace

void run_data_session(RankContext &ctx) {
  const plx_comm_h comm = join_checked(ctx, 0, kDataTimeoutMs, kInitTimeoutMs);
  if (comm == nullptr) return;
  if (ctx.rank() == 0)
    for (const std::string &note : plan_notes(ctx.props)) ctx.out.note(note);
  for (const DataCase &dc : plan_data_cases(ctx.props, ctx.nranks(), ctx.opts.full))
    run_data_case(ctx, comm, dc);
  if (ctx.has_cap(PLX_CAP_COLL(PLX_COLL_BARRIER))) run_barrier_case(ctx, comm), run_barrier_loop(ctx, comm);
  run_argument_cases(ctx, comm);
  if (ctx.has_cap(PLX_CAP_SPLIT)) run_split_case(ctx, comm), run_split_no_color(ctx, comm);
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "data session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance

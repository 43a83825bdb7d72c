// The data session: one communicator for every data group, then the
// barrier, the loader's argument checks and split, all on the same ranks;
// these last on the session's work memory (work_memory.hpp), and a backend
// without host memory must refuse it.
#include <cstdlib>
#include <cstring>
#include <thread>

#include "data_run.hpp"
#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

// Long enough for a 64 MiB case on a loaded machine; short enough that a
// mismatch between ranks ends well before the launcher gives up.
constexpr int32_t kDataTimeoutMs = 60000;
constexpr int32_t kInitTimeoutMs = 30000;
constexpr int32_t kWaitMs = kDataTimeoutMs + kMarginMs;  // a stream-ordered call's outcome

// No rank may leave a barrier before the last has entered: rank n-1 enters
// late and writes the time it entered; the others compare their exit time.
// On a stream the barrier is left when the stream has finished it.
void run_barrier_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-8", "barrier", "waits for the last rank");
  const int32_t last = ctx.nranks() - 1;
  if (ctx.rank() == last) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ring(ctx, "barrier-enter", std::to_string(Clock::now().time_since_epoch().count()));
  }
  const Clock::time_point start = Clock::now();
  const Outcome o = settle(comm, plx_barrier(comm, nullptr, work.stream()), start, work.stream(), kWaitMs);
  const auto left = Clock::now().time_since_epoch().count();
  if (!c.expect(o.ok(), "plx_barrier: {}", o.text())) return;
  const std::optional<std::string> entered = read_bell(ctx, "barrier-enter", last);
  c.expect(entered && std::strtoll(entered->c_str(), nullptr, 10) <= left,
           "rank {} left the barrier before rank {} entered it", ctx.rank(), last);
}

// On a stream all 200 are enqueued, then awaited together.
void run_barrier_loop(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-8", "barrier", "200 in a row");
  const Clock::time_point start = Clock::now();
  for (int k = 0; k < 200; ++k) {
    const plx_status s = plx_barrier(comm, nullptr, work.stream());
    if (!c.expect(s == PLX_OK, "barrier {} returned {}", k, status_text(s))) return;
  }
  const Outcome o = settle(comm, PLX_OK, start, work.stream(), kWaitMs);
  c.expect(o.ok(), "200 barriers: {}", o.text());
}

// Ranks of one parity form a child, ordered by descending old rank; every
// member sums (old rank + 1) over the child.
void run_split_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-8", "split", "color = rank % 2, key = -rank");
  plx_comm_h child = nullptr;
  const plx_status s = plx_comm_split(comm, ctx.rank() % 2, -ctx.rank(), nullptr, &child);
  if (!c.expect(s == PLX_OK && child != nullptr, "plx_comm_split returned {}", status_text(s))) return;
  int32_t size = 0, rank = 0, want_rank = 0, want_sum = 0;
  for (int32_t r = ctx.rank() % 2; r < ctx.nranks(); r += 2) want_sum += r + 1, want_rank += r > ctx.rank();
  const int32_t want_size = (ctx.nranks() - ctx.rank() % 2 + 1) / 2;
  plx_comm_size(child, &size), plx_comm_rank(child, &rank);
  c.expect(size == want_size && rank == want_rank, "child rank {} of {}, want {} of {}", rank, size,
           want_rank, want_size);
  int32_t sum = ctx.rank() + 1;
  const std::string error = sum_over_ranks(child, work, &sum, kWaitMs);
  c.expect(error.empty() && sum == want_sum, "all_reduce on the child gave {} ({}), want {}", sum,
           error.empty() ? "PLX_OK" : error, want_sum);
  c.expect(plx_comm_destroy(child) == PLX_OK, "plx_comm_destroy of the child: {}", plx_last_error());
}

void run_split_no_color(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-8", "split", "rank 0 takes no color");
  plx_comm_h child = nullptr;
  const plx_status s = plx_comm_split(comm, ctx.rank() == 0 ? PLX_SPLIT_NO_COLOR : 0, 0, nullptr, &child);
  if (!c.expect(s == PLX_OK, "plx_comm_split returned {}", status_text(s))) return;
  if (ctx.rank() == 0)
    c.expect(child == nullptr, "rank 0 got a communicator for PLX_SPLIT_NO_COLOR");
  else if (c.expect(child != nullptr, "no communicator for color 0")) {
    const Outcome o = settle(child, plx_barrier(child, nullptr, work.stream()), Clock::now(), work.stream(), kWaitMs);
    c.expect(o.ok(), "barrier on the child: {}", o.text());
  }
  if (child) plx_comm_destroy(child);
}

// PLX-P-18: a backend that does not take host memory refuses it, at once
// and on this rank alone, and stays usable. The stream is passed as a
// caller who mixed up a CPU and a GPU tensor would pass it.
void run_host_refused(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-18", "memory kinds", "host buffers refused");
  std::vector<float> host(1024, 1.0f);
  const Clock::time_point start = Clock::now();
  const plx_status s =
      plx_all_reduce(comm, host.data(), host.data(), host.size(), PLX_FLOAT32, PLX_SUM, nullptr, work.stream());
  const std::string message = plx_last_error();
  const Outcome o = settle(comm, s, start, work.stream(), kWaitMs);
  if (!c.expect(s == PLX_ERR_UNSUPPORTED && !message.empty(),
                "all_reduce on malloc'ed host memory (mem_kind_mask {:#x} lacks PLX_MEM_HOST) returned {} "
                "(outcome {}), want PLX_ERR_UNSUPPORTED with a message",
                ctx.props.mem_kind_mask, s == PLX_OK ? "PLX_OK" : status_text(s), o.text()))
    return;
  c.expect(host[0] == 1.0f && host[1023] == 1.0f, "the refused call wrote the host buffer");
  int32_t one = 1;
  const std::string error = sum_over_ranks(comm, work, &one, kWaitMs);
  c.expect(error.empty() && one == ctx.nranks(), "the next all_reduce gave {} ({}), want {}", one,
           error.empty() ? "PLX_OK" : error, ctx.nranks());
}

void run_work_cases(RankContext &ctx, plx_comm_h comm) {
  const Work work(ctx.memory.work);
  if (!work.ok()) return ctx.out.note("barrier, argument and split cases not run: " + work.error());
  if (ctx.has_cap(PLX_CAP_COLL(PLX_COLL_BARRIER)))
    run_barrier_case(ctx, comm, work), run_barrier_loop(ctx, comm, work);
  run_argument_cases(ctx, comm, work);
  if (!(ctx.props.mem_kind_mask & PLX_BIT(PLX_MEM_HOST)) && ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE)))
    run_host_refused(ctx, comm, work);
  if (ctx.has_cap(PLX_CAP_SPLIT)) run_split_case(ctx, comm, work), run_split_no_color(ctx, comm, work);
}

}  // namespace

void run_data_session(RankContext &ctx) {
  const plx_comm_h comm = join_checked(ctx, 0, kDataTimeoutMs, kInitTimeoutMs);
  if (comm == nullptr) return;
  if (ctx.rank() == 0)
    for (const std::string &note : plan_notes(ctx.props)) ctx.out.note(note);
  std::string group;  // groups are contiguous in the plan: one memory record each
  for (const DataCase &dc : plan_data_cases(ctx.props, ctx.nranks(), ctx.opts.full, ctx.memory.data)) {
    if (data_group(dc) != group) group = data_group(dc), ctx.out.memory(group, mem_source_name(dc.mem));
    run_data_case(ctx, comm, dc);
  }
  run_work_cases(ctx, comm);
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "data session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance

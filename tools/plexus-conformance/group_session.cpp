// The group session (PLX-P-22), with PLX_CAP_GROUP, on the session's work
// memory (work_memory.hpp): two all-reduces issued in one group, a ring of
// sends and receives in one group (with the send and recv capabilities:
// each rank sends to the next while it receives from the one before, which
// deadlocks without the group), an empty group, a start inside an open group
// and an end without a start, both refused with PLX_ERR_INVALID_USAGE while
// the group that is open (or none) stays as it was.
#include <cstring>
#include <vector>

#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr int32_t kTimeoutMs = 30000;
constexpr int32_t kWaitMs = kTimeoutMs + kMarginMs;
constexpr uint64_t kElems = 1027;

// int32 when the backend has it, else float32: the values are small
// integers, exact in either.
plx_dtype group_dtype(const RankContext &ctx) {
  return (ctx.props.dtype_mask & PLX_BIT(PLX_INT32)) ? PLX_INT32 : PLX_FLOAT32;
}

// Host values as the dtype's bytes.
std::vector<uint8_t> encode(const std::vector<int32_t> &v, plx_dtype dtype) {
  std::vector<uint8_t> out(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    const float f = static_cast<float>(v[i]);
    std::memcpy(out.data() + 4 * i, dtype == PLX_INT32 ? static_cast<const void *>(&v[i]) : &f, 4);
  }
  return out;
}

std::vector<int32_t> decode(const std::vector<uint8_t> &bytes, plx_dtype dtype) {
  std::vector<int32_t> out(bytes.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    float f = 0;
    std::memcpy(dtype == PLX_INT32 ? static_cast<void *>(&out[i]) : &f, bytes.data() + 4 * i, 4);
    if (dtype != PLX_INT32) out[i] = static_cast<int32_t>(f);
  }
  return out;
}

// A buffer of kElems with rank-dependent values: (rank + 1) * (i % 13 + salt).
struct Buffer {
  Buffer(const Work &work, plx_dtype d) : dtype(d), memory(work, kElems * 4) {}
  plx_dtype dtype;
  WorkBuffer memory;
  bool fill(int32_t rank, int32_t salt) {
    std::vector<int32_t> v(kElems);
    for (uint64_t i = 0; i < kElems; ++i) v[i] = (rank + 1) * static_cast<int32_t>(i % 13 + salt);
    return memory.put(encode(v, dtype).data(), kElems * 4);
  }
  // Where the values differ from `want(i)`, or "".
  template <typename Want>
  std::string check(Want want) {
    std::vector<uint8_t> bytes(kElems * 4);
    if (!memory.get(bytes.data(), bytes.size())) return "copying back: " + memory.error();
    const std::vector<int32_t> got = decode(bytes, dtype);
    for (uint64_t i = 0; i < kElems; ++i)
      if (got[i] != want(i)) return fmt::format("element {} is {}, want {}", i, got[i], want(i));
    return {};
  }
};

// Sum over ranks r of (r + 1) * m.
int32_t rank_sum(int32_t nranks, int32_t m) { return nranks * (nranks + 1) / 2 * m; }

bool end_group(plx_comm_h comm, const Work &work, Clock::time_point start, CaseScope &c) {
  const plx_status s = plx_group_end(comm);
  const Outcome o = settle(comm, s, start, work.stream(), kWaitMs);
  return c.expect(o.ok(), "plx_group_end: {}", o.text());
}

void all_reduce_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-22", "groups", "two all_reduces in one group (in place, out of place)");
  Buffer a(work, group_dtype(ctx)), b(work, group_dtype(ctx)), out(work, group_dtype(ctx));
  if (!c.expect(a.memory.ok() && b.memory.ok() && out.memory.ok() && a.fill(ctx.rank(), 1) && b.fill(ctx.rank(), 5),
                "work memory: {}{}{}", a.memory.error(), b.memory.error(), out.memory.error()))
    return;
  const Clock::time_point start = Clock::now();
  plx_status s = plx_group_start(comm);
  if (!c.expect(s == PLX_OK, "plx_group_start: {}", status_text(s))) return;
  void *stream = work.stream();
  s = plx_all_reduce(comm, a.memory.ptr(), a.memory.ptr(), kElems, a.dtype, PLX_SUM, nullptr, stream);
  const plx_status s2 = plx_all_reduce(comm, b.memory.ptr(), out.memory.ptr(), kElems, b.dtype, PLX_SUM, nullptr, stream);
  c.expect(s == PLX_OK && s2 == PLX_OK, "the all_reduces inside the group: {}, {}", status_text(s), status_text(s2));
  if (!end_group(comm, work, start, c) || c.failed()) return;
  const int32_t n = ctx.nranks();
  const std::string bad_a = a.check([n](uint64_t i) { return rank_sum(n, static_cast<int32_t>(i % 13 + 1)); });
  const std::string bad_b = out.check([n](uint64_t i) { return rank_sum(n, static_cast<int32_t>(i % 13 + 5)); });
  c.expect(bad_a.empty() && bad_b.empty(), "in place: {}; out of place: {}", bad_a.empty() ? "right" : bad_a,
           bad_b.empty() ? "right" : bad_b);
}

// Rank r sends its values to r + 1 and receives those of r - 1.
void ring_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-22", "groups", "send to the next rank, receive from the one before, in one group");
  const int32_t n = ctx.nranks(), next = (ctx.rank() + 1) % n, prev = (ctx.rank() + n - 1) % n;
  Buffer send(work, group_dtype(ctx)), recv(work, group_dtype(ctx));
  if (!c.expect(send.memory.ok() && recv.memory.ok() && send.fill(ctx.rank(), 3), "work memory: {}{}",
                send.memory.error(), recv.memory.error()))
    return;
  const Clock::time_point start = Clock::now();
  plx_status s = plx_group_start(comm);
  if (!c.expect(s == PLX_OK, "plx_group_start: {}", status_text(s))) return;
  s = plx_send(comm, send.memory.ptr(), kElems, send.dtype, next, nullptr, work.stream());
  const plx_status s2 = plx_recv(comm, recv.memory.ptr(), kElems, recv.dtype, prev, nullptr, work.stream());
  c.expect(s == PLX_OK && s2 == PLX_OK, "plx_send: {}, plx_recv: {}", status_text(s), status_text(s2));
  if (!end_group(comm, work, start, c) || c.failed()) return;
  const std::string bad = recv.check([prev](uint64_t i) { return (prev + 1) * static_cast<int32_t>(i % 13 + 3); });
  c.expect(bad.empty(), "from rank {}: {}", prev, bad);
}

void empty_group_case(RankContext &ctx, plx_comm_h comm) {
  CaseScope c(ctx.out, "PLX-P-22", "groups", "an empty group");
  const plx_status s = plx_group_start(comm);
  const plx_status e = s == PLX_OK ? plx_group_end(comm) : PLX_OK;
  c.expect(s == PLX_OK && e == PLX_OK, "plx_group_start: {}, plx_group_end: {}", status_text(s), status_text(e));
}

// A start inside an open group is refused (groups do not nest) and the
// group opened first stays open: an all-reduce issued now runs at its end.
void nested_start_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-22", "groups", "plx_group_start inside an open group");
  Buffer x(work, group_dtype(ctx));
  const bool reduce = ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE));
  if (!c.expect(!reduce || (x.memory.ok() && x.fill(ctx.rank(), 2)), "work memory: {}", x.memory.error())) return;
  const Clock::time_point start = Clock::now();
  if (!c.expect(plx_group_start(comm) == PLX_OK, "plx_group_start: {}", plx_last_error())) return;
  plx_status s = plx_group_start(comm);
  const std::string message = s == PLX_OK ? "" : plx_last_error();
  c.expect(s == PLX_ERR_INVALID_USAGE && !message.empty(),
           "the second plx_group_start returned {}, want PLX_ERR_INVALID_USAGE with a message", status_text(s));
  if (s == PLX_OK) plx_group_end(comm);  // the inner group of a backend that nests them
  void *p = x.memory.ptr();
  s = reduce ? plx_all_reduce(comm, p, p, kElems, x.dtype, PLX_SUM, nullptr, work.stream()) : PLX_OK;
  c.expect(s == PLX_OK, "an all_reduce in the group still open: {}", status_text(s));
  if (!end_group(comm, work, start, c) || !reduce || s != PLX_OK) return;
  const int32_t n = ctx.nranks();
  const std::string bad = x.check([n](uint64_t i) { return rank_sum(n, static_cast<int32_t>(i % 13 + 2)); });
  c.expect(bad.empty(), "the all_reduce of the group left open: {}", bad);
}

// Refused, and the communicator goes on working.
void end_without_start_case(RankContext &ctx, plx_comm_h comm, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-22", "groups", "plx_group_end without plx_group_start");
  const plx_status s = plx_group_end(comm);
  const std::string message = s == PLX_OK ? "" : plx_last_error();
  c.expect(s == PLX_ERR_INVALID_USAGE && !message.empty(),
           "plx_group_end returned {}, want PLX_ERR_INVALID_USAGE with a message", status_text(s));
  if (!ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE))) return;
  int32_t one = 1;
  const std::string error = sum_over_ranks(comm, work, &one, kWaitMs);
  c.expect(error.empty() && one == ctx.nranks(), "the next all_reduce gave {} ({}), want {}", one,
           error.empty() ? "PLX_OK" : error, ctx.nranks());
}

}  // namespace

void run_group_session(RankContext &ctx) {
  const Work work(ctx.memory.work);
  const plx_comm_h comm = join_checked(ctx, 0, kTimeoutMs);
  if (comm == nullptr) return;
  if (!work.ok()) {
    ctx.out.note("groups not tested: " + work.error());
  } else {
    if (ctx.has_cap(PLX_CAP_COLL(PLX_COLL_ALL_REDUCE))) all_reduce_case(ctx, comm, work);
    if (ctx.has_cap(PLX_CAP_COLL(PLX_COLL_SEND)) && ctx.has_cap(PLX_CAP_COLL(PLX_COLL_RECV)))
      ring_case(ctx, comm, work);
    empty_group_case(ctx, comm);
    nested_start_case(ctx, comm, work);
    end_without_start_case(ctx, comm, work);
  }
  CaseScope c(ctx.out, "PLX-P-13", "comm_destroy", "group session");
  const plx_status s = plx_comm_destroy(comm);
  c.expect(s == PLX_OK, "plx_comm_destroy returned {}", status_text(s));
}

}  // namespace plexus::conformance

// One data case: lay out this rank's buffers (inputs written, outputs
// poisoned, offsets that break 16-byte alignment), call the collective,
// then check: the status, the guard zones, that the send buffer is
// untouched, every output element against the reference, and hash the
// outputs every rank must share so the launcher can compare their bits.
// On pinned-host and device memory the call goes on the rank's stream: the
// inputs are copied to the device first, the case waits for the stream and
// for plx_comm_async_status to say PLX_OK, and copies the outputs back.
#include "data_run.hpp"

#include <cctype>
#include <cstring>
#include <optional>
#include <string_view>

#include "buffers.hpp"
#include "reference.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

// Outputs up to this many elements are checked on every rank; larger ones
// on one rank per case (turn by turn), while every rank hashes its output.
constexpr uint64_t kEveryRankChecksBelow = 4096;
// How long a stream-ordered case may take: the data session's timeout
// (data_session.cpp) and the margin.
constexpr int32_t kStreamWaitMs = 60000 + kMarginMs;

// Where this rank's input and output live, in elements. Out of place the
// input is a buffer of its own; in place one buffer holds both, the input
// at send_at and the output at recv_at (plexus.h's in-place layouts).
struct Layout {
  uint64_t send_elems = 0, recv_elems = 0;
  bool in_place = false, send_null = false, recv_null = false;
  uint64_t send_at = 0, recv_at = 0;
  uint64_t buffer_elems() const { return std::max(send_at + send_elems, recv_at + recv_elems); }
};

struct Run {
  Run(RankContext &ctx, plx_comm_h comm, const DataCase &c, CaseScope &check);

  RankContext &ctx;
  plx_comm_h comm;
  const DataCase &c;
  CaseScope &check;
  InputRule rule;
  std::vector<uint64_t> counts;  // gather
  Layout layout;
  std::optional<Buffer> send, recv;
  std::vector<uint8_t> input;  // out of place: the input as written, to prove send is left alone
  const void *send_ptr = nullptr;  // in the buffers' host images: what the checks read
  void *recv_ptr = nullptr;
  void *stream = nullptr;  // the rank's stream for CUDA memory, else nullptr

  int32_t rank() const { return ctx.rank(); }
  int32_t nranks() const { return ctx.nranks(); }
  size_t es() const { return plx_dtype_size(c.dtype); }
  bool is_root() const { return rank() == c.root; }
};

// Gather: this rank's part sits at its displacement in root's output.
void gather_layout(const Run &run, Layout *l) {
  uint64_t displ = 0, total = 0;
  for (int32_t r = 0; r < run.nranks(); ++r)
    total += run.counts[r], displ += r < run.rank() ? run.counts[r] : 0;
  l->send_elems = run.counts[run.rank()], l->recv_elems = run.is_root() ? total : 0;
  l->recv_null = !run.is_root(), l->in_place = run.c.in_place && run.is_root(), l->send_at = displ;
}

Layout layout_of(const Run &run) {
  const DataCase &c = run.c;
  const uint64_t n = c.count, me = static_cast<uint64_t>(run.rank());
  const uint64_t all = n * static_cast<uint64_t>(run.nranks());
  Layout l{n, n, c.in_place};
  switch (c.coll) {
    case PLX_COLL_REDUCE:
      l.recv_null = !run.is_root() && !c.in_place && c.seq % 2 == 0;  // NULL is allowed off root
      break;
    case PLX_COLL_REDUCE_SCATTER: l.send_elems = all, l.recv_at = me * n; break;
    case PLX_COLL_ALL_GATHER: l.recv_elems = all, l.send_at = me * n; break;
    case PLX_COLL_BROADCAST:
      if (!run.is_root()) l.send_elems = 0, l.send_null = !c.in_place;
      break;
    case PLX_COLL_GATHER: gather_layout(run, &l); break;
    default: break;
  }
  if (c.absent == run.rank()) l.send_elems = 0, l.send_null = !c.in_place;  // its send is not read
  if (!l.in_place) l.send_at = l.recv_at = 0;
  return l;
}

Run::Run(RankContext &ctx_, plx_comm_h comm_, const DataCase &c_, CaseScope &check_)
    : ctx(ctx_),
      comm(comm_),
      c(c_),
      check(check_),
      rule(make_input_rule(c_.dtype, c_.op, ctx_.nranks(), c_.seq, c_.absent, c_.wire)),
      counts(gather_counts(c_, ctx_.nranks())),
      stream(needs_cuda(c_.mem.kind) ? ctx_.stream : nullptr) {
  layout = layout_of(*this);
}

uint64_t offset(const DataCase &c, bool send) {
  return c.aligned ? 0 : (send ? 1 : 3) * plx_dtype_size(c.dtype);
}

// Allocates and fills; false (the case failed) when memory is short.
bool prepare(Run &run) {
  const Layout &l = run.layout;
  const size_t es = run.es();
  if (l.in_place) {
    run.recv.emplace(run.comm, run.c.mem, l.buffer_elems() * es, offset(run.c, false), run.stream);
    run.recv_ptr = run.recv->data() + l.recv_at * es;
    run.send_ptr = run.recv->data() + l.send_at * es;
  } else {
    if (!l.send_null) run.send.emplace(run.comm, run.c.mem, l.send_elems * es, offset(run.c, true), run.stream);
    if (!l.recv_null) run.recv.emplace(run.comm, run.c.mem, l.recv_elems * es, offset(run.c, false), run.stream);
    run.send_ptr = run.send ? run.send->data() : nullptr;
    run.recv_ptr = run.recv ? run.recv->data() : nullptr;
  }
  for (const auto *b : {&run.send, &run.recv})
    if (*b && !run.check.expect((*b)->status() == PLX_OK, "buffer: {}", (*b)->error())) return false;
  fill_input(run.rule, run.rank(), 0, l.send_elems, const_cast<void *>(run.send_ptr));
  if (!l.in_place && run.send) run.input.assign(run.send->data(), run.send->data() + run.send->bytes());
  for (auto *b : {&run.send, &run.recv})
    if (*b && !run.check.expect((*b)->upload(), "copying the input to the device: {}", (*b)->error())) return false;
  return true;
}

// The addresses the collective gets: the device's for device memory.
const void *send_target(const Run &run) {
  if (run.send_ptr == nullptr) return nullptr;
  return run.send ? run.send->target(run.send_ptr) : run.recv->target(run.send_ptr);
}

void *recv_target(const Run &run) { return run.recv_ptr ? run.recv->target(run.recv_ptr) : nullptr; }

// Device memory: the outputs (and guards, and the send buffer) back into
// the host images.
bool fetch(Run &run) {
  for (auto *b : {&run.send, &run.recv})
    if (*b && !run.check.expect((*b)->download(), "copying the output back: {}", (*b)->error())) return false;
  return true;
}

plx_status call(Run &run) {
  const DataCase &c = run.c;
  const void *s = send_target(run);
  void *r = recv_target(run), *st = run.stream;
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  if (c.absent == run.rank()) o.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  o.wire_dtype = c.wire;
  switch (c.coll) {
    case PLX_COLL_ALL_REDUCE: return plx_all_reduce(run.comm, s, r, c.count, c.dtype, c.op, &o, st);
    case PLX_COLL_REDUCE: return plx_reduce(run.comm, s, r, c.count, c.dtype, c.op, c.root, &o, st);
    case PLX_COLL_REDUCE_SCATTER: return plx_reduce_scatter(run.comm, s, r, c.count, c.dtype, c.op, &o, st);
    case PLX_COLL_BROADCAST: return plx_broadcast(run.comm, s, r, c.count, c.dtype, c.root, &o, st);
    case PLX_COLL_ALL_GATHER: return plx_all_gather(run.comm, s, r, c.count, c.dtype, &o, st);
    default:
      return plx_gather(run.comm, s, r, c.count, c.varied ? run.counts.data() : nullptr, c.dtype, c.root,
                        &o, st);
  }
}

void expect_match(Run &run, const Mismatch &m, const char *what) {
  run.check.expect(m.ok(), "{}: {}", what, m.describe());
}

std::vector<Segment> every_rank(const Run &run, const std::vector<uint64_t> &counts) {
  std::vector<Segment> segments;
  for (int32_t r = 0; r < run.nranks(); ++r) segments.push_back({r, 0, counts[r]});
  return segments;
}

// The output every rank of this collective must hold; hashed for the
// bit-identical comparison, checked on the ranks whose turn it is.
void check_shared_output(Run &run, const std::vector<Segment> &want, bool reduction) {
  const DataCase &c = run.c;
  const uint64_t elems = reduction ? c.count : run.layout.recv_elems;
  run.ctx.out.hash(data_group(c), data_case_name(c), hash_bytes(run.recv_ptr, elems * run.es()));
  if (c.count >= kEveryRankChecksBelow && c.seq % run.nranks() != static_cast<uint64_t>(run.rank())) return;
  if (reduction)
    expect_match(run, check_reduction(run.rule, run.recv_ptr, 0, c.count), "output");
  else
    expect_match(run, check_copies(run.rule, run.recv_ptr, want, c.wire >= 0), "output");
}

// Reduce: root holds the result; other ranks' buffers stay as they were.
void check_reduce(Run &run) {
  const DataCase &c = run.c;
  if (run.is_root())
    return expect_match(run, check_reduction(run.rule, run.recv_ptr, 0, c.count), "root's output");
  if (c.in_place && c.absent != run.rank())
    return expect_match(run, check_copies(run.rule, run.recv_ptr, {{run.rank(), 0, c.count}}),
                        "non-root buffer changed");
  if (run.recv)
    run.check.expect(run.recv->untouched(0, run.recv->bytes()), "recv of non-root rank {} was written",
                     run.rank());
}

void check_output(Run &run) {
  const DataCase &c = run.c;
  const uint64_t n = c.count;
  switch (c.coll) {
    case PLX_COLL_ALL_REDUCE: return check_shared_output(run, {}, true);
    case PLX_COLL_REDUCE: return check_reduce(run);
    case PLX_COLL_REDUCE_SCATTER:
      return expect_match(run, check_reduction(run.rule, run.recv_ptr, run.rank() * n, n), "output");
    case PLX_COLL_BROADCAST: return check_shared_output(run, {{c.root, 0, n}}, false);
    case PLX_COLL_ALL_GATHER:
      return check_shared_output(run, every_rank(run, std::vector<uint64_t>(run.nranks(), n)), false);
    default:
      if (run.is_root())
        expect_match(run, check_copies(run.rule, run.recv_ptr, every_rank(run, run.counts), c.wire >= 0),
                     "root's output");
  }
}

void check_buffers(Run &run) {
  for (const auto *b : {&run.send, &run.recv})
    if (*b) {
      const std::string damage = (*b)->guard_damage();
      run.check.expect(damage.empty(), "{}: {}", b == &run.send ? "send" : "recv", damage);
    }
  if (run.send && std::memcmp(run.send->data(), run.input.data(), run.input.size()) != 0)
    expect_match(run, check_copies(run.rule, run.send_ptr, {{run.rank(), 0, run.layout.send_elems}}),
                 "the send buffer was modified");
}

// Whether `text` holds `word` as a word of its own ("float16" is not in
// "bfloat16").
bool names_word(std::string_view text, std::string_view word) {
  const auto is_word_char = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !is_word_char(text[at - 1])) && (end == text.size() || !is_word_char(text[end]))) return true;
  }
  return false;
}

// A wire pairing refused as PLX-P-24 allows: with a message that names the
// wire dtype, and nothing written.
void check_refusal(Run &run, const Outcome &o) {
  const char *wire = plx_dtype_string(run.c.wire);
  run.check.expect(names_word(o.detail, wire),
                   "refused with PLX_ERR_UNSUPPORTED, but the message does not name the wire dtype {}: {}", wire,
                   o.detail);
  if (!fetch(run)) return;
  check_buffers(run);
  if (run.recv)
    run.check.expect(run.recv->untouched(0, run.recv->bytes()), "refused with PLX_ERR_UNSUPPORTED, but recv was "
                     "written");
}

// How the backend took a pairing PLX-P-24 lets it refuse, once per pairing
// among the report's notes (a passing case's line does not say).
void note_pairing(Run &run, bool refused) {
  const DataCase &c = run.c;
  const char *wire = plx_dtype_string(c.wire);
  run.ctx.out.note(fmt::format("PLX-P-24: {} {}{} on a {} wire: {}", plx_coll_string(c.coll), plx_dtype_string(c.dtype),
                               c.op >= 0 ? fmt::format(" {}", plx_reduce_op_string(c.op)) : "", wire,
                               refused ? "refused (PLX_ERR_UNSUPPORTED)" : fmt::format("carried as {}", wire)));
}

// A case sent as a narrower float is PLX-P-24's; the rest PLX-P-8's.
const char *requirement_of(const DataCase &c) {
  return c.wire >= 0 && c.wire != c.dtype ? "PLX-P-24" : "PLX-P-8";
}

}  // namespace

void run_data_case(RankContext &ctx, plx_comm_h comm, const DataCase &c) {
  CaseScope check(ctx.out, requirement_of(c), data_group(c), data_case_name(c));
  Run run(ctx, comm, c, check);
  if (!prepare(run)) return;
  const Clock::time_point start = Clock::now();
  const Outcome o = settle(comm, call(run), start, run.stream, kStreamWaitMs);
  const bool refusable = wire_may_be_refused(c);
  if (o.status == PLX_ERR_UNSUPPORTED && !o.deferred && refusable) {
    note_pairing(run, true);
    return check_refusal(run, o);
  }
  if (!o.ok()) {
    check.expect(false, "{}: {} after {:.0f} ms", plx_coll_string(c.coll), o.text(), o.ms);
    return;
  }
  if (refusable) note_pairing(run, false);
  if (!fetch(run)) return;
  check_buffers(run);
  check_output(run);
}

}  // namespace plexus::conformance

// The low-latency (LL) all-reduce: a two-shot whose data carries its own
// signal. Every rank posts its input as LL lines (LowLatencyLine in
// shm_comm.hpp: 56 bytes and the collective's sequence number), gathers
// each peer's lines of its share once they have arrived, reduces the share
// in rank order, posts the result lines, and copies each peer's result
// lines out once they have arrived. No `arrive` or `done` waits: a rank
// waits on the lines it reads, and each wait fetches the data with the same
// line transfer.
//
// Reuse: the lines of sequence number s are written again at s + 2 at the
// earliest. By then this rank has reduced s + 1, which needed every peer's
// input of s + 1, which a peer posts only after it finished s, reads of our
// lines included.
#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {
namespace {

// How the message maps onto lines: bytes, lines of the message, lines of
// each rank's share (whole lines, so no line holds two shares), and the
// call's sequence number and first line in its parity's lines.
struct LlLayout {
  size_t bytes, lines, share_lines;
  uint64_t seq;
  size_t base;
  size_t first(int32_t r) const { return std::min(lines, share_lines * static_cast<size_t>(r)); }
  size_t end(int32_t r) const { return std::min(lines, first(r) + share_lines); }
  size_t bytes_of(size_t line) const { return std::min(ll_payload_bytes, bytes - line * ll_payload_bytes); }
};

LlLayout layout_of(Op &op) {
  const size_t bytes = op.desc.count * op.elem_bytes, lines = (bytes + ll_payload_bytes - 1) / ll_payload_bytes;
  const size_t n = static_cast<size_t>(op.comm.nranks());
  const uint64_t seq = op.comm.next_ll_seq();
  return {bytes, lines, (lines + n - 1) / n, seq, op.comm.ll_region(seq, lines)};
}

// Rank r's input and result lines of this call (line 0 of the message).
LowLatencyLine *input_lines(Comm &c, int32_t r, const LlLayout &l) { return c.ll_area(r).input[l.seq & 1u] + l.base; }
LowLatencyLine *result_lines(Comm &c, int32_t r, const LlLayout &l) { return c.ll_area(r).result[l.seq & 1u] + l.base; }

bool contributes(const Op &op) { return !(op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION); }

// Whether this rank reads its own share from `send`; otherwise from its own
// posted lines: when it contributes nothing (they hold the identity), or
// when recv overlaps send other than exactly (a result written into recv
// could overwrite input not yet reduced).
bool reads_own_send(const Op &op) {
  return contributes(op) && (op.desc.send == op.desc.recv ||
                             !overlap(op.desc.send, op.desc.recv, op.desc.count * op.elem_bytes));
}

// A line's payload in or out: whole lines with a constant size, which the
// compiler inlines (a memcpy call per 56 bytes cost more than the copy).
void copy_payload(void *to, const void *from, size_t bytes) {
  if (bytes == ll_payload_bytes) std::memcpy(to, from, ll_payload_bytes);
  else std::memcpy(to, from, bytes);
}

// Writes the payload, then the sequence number that announces it.
void post(LowLatencyLine &line, const void *src, size_t bytes, uint64_t seq) {
  copy_payload(line.data, src, bytes);
  line.seq.store(seq, std::memory_order_release);
}

// Waits until lines [first, end) of rank r all carry `seq`: one pass reads
// every sequence number with no early exit, so the loads are in flight
// together (a wait per line, one after the other, took a line's latency
// each); the lines still missing then get the ordinary wait (a timeout
// naming late_rank() where given).
plx_status wait_lines(Op &op, int32_t r, const LowLatencyLine *lines, size_t first, size_t end, uint64_t seq,
                      const std::function<int32_t()> &late_rank = {}) {
  size_t missing = end;
  for (size_t j = end; j-- > first;)
    if (lines[j].seq.load(std::memory_order_acquire) != seq) missing = j;
  for (size_t j = missing; j < end; ++j)
    if (plx_status s = wait_word(op.comm, r, lines[j].seq, seq, op.deadline, op.label, late_rank)) return s;
  return PLX_OK;
}

// The rank that keeps rank r's result lines from coming: the first peer
// (from r + 1 on) that has not posted its input lines of r's share (every
// rank but r posts them), or else r itself.
int32_t late_for_results(Comm &c, const LlLayout &l, int32_t r) {
  for (int32_t i = 1; i < c.nranks(); ++i) {
    const int32_t p = (r + i) % c.nranks();
    if (input_lines(c, p, l)[l.first(r)].seq.load(std::memory_order_acquire) != l.seq) return p;
  }
  return r;
}

// Posts this rank's input lines: all but its own share where only it reads
// that from `send`; all of them, as the identity, when it contributes
// nothing.
plx_status post_input(Op &op, const LlLayout &l, LowLatencyLine *lines, uint64_t seq) {
  const int32_t me = op.comm.rank();
  const auto *in = static_cast<const uint8_t *>(op.desc.send);
  uint8_t identity[ll_payload_bytes];
  if (!contributes(op))
    if (plx_status s = core::fill_identity(op.desc.dtype, op.desc.op, identity, ll_payload_bytes / op.elem_bytes))
      return s;
  for (size_t j = 0; j < l.lines; ++j) {
    if (reads_own_send(op) && j >= l.first(me) && j < l.end(me)) continue;
    post(lines[j], contributes(op) ? in + j * ll_payload_bytes : identity, l.bytes_of(j), seq);
  }
  return PLX_OK;
}

// Copies peer r's input lines of this rank's share, once they have
// arrived, into `to` end to end, where one reduction can read them.
plx_status receive_share(Op &op, const LlLayout &l, int32_t r, uint64_t seq, uint8_t *to) {
  Comm &c = op.comm;
  const LowLatencyLine *lines = input_lines(c, r, l);
  const size_t first = l.first(c.rank()), end = l.end(c.rank());
  if (plx_status s = wait_lines(op, r, lines, first, end, seq)) return s;
  for (size_t j = first; j < end; ++j, to += ll_payload_bytes) copy_payload(to, lines[j].data, l.bytes_of(j));
  return PLX_OK;
}

// Reduces this rank's share in rank order into recv, in one pass once every
// peer's lines of it are in `staged` (a call per 56-byte line cost more
// than the copies), and posts the result lines.
plx_status reduce_share(Op &op, const LlLayout &l, uint64_t seq, uint8_t *staged) {
  Comm &c = op.comm;
  const size_t first = l.first(c.rank()), end = l.end(c.rank());
  if (first == end) return PLX_OK;
  const size_t offset = first * ll_payload_bytes, share_bytes = (end - first) * ll_payload_bytes;
  const size_t count = (std::min(l.bytes, end * ll_payload_bytes) - offset) / op.elem_bytes;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) {
    const bool own_send = r == c.rank() && reads_own_send(op);
    sources[r] = own_send ? static_cast<const uint8_t *>(op.desc.send) + offset : staged + r * share_bytes;
    if (!own_send)
      if (plx_status s = receive_share(op, l, r, seq, staged + r * share_bytes)) return s;
  }
  uint8_t *out = static_cast<uint8_t *>(op.desc.recv);
  if (plx_status s = core::reduce_into(op.desc.dtype, op.desc.op, out + offset, sources, c.nranks(), count))
    return s;
  LowLatencyLine *mine = result_lines(c, c.rank(), l);
  for (size_t j = first; j < end; ++j) post(mine[j], out + j * ll_payload_bytes, l.bytes_of(j), seq);
  return PLX_OK;
}

// Copies every peer's result lines into recv, a peer's once they have all
// arrived, from the next rank on.
plx_status gather_results(Op &op, const LlLayout &l, uint64_t seq) {
  Comm &c = op.comm;
  auto *out = static_cast<uint8_t *>(op.desc.recv);
  for (int32_t i = 1; i < c.nranks(); ++i) {
    const int32_t r = (c.rank() + i) % c.nranks();
    const LowLatencyLine *lines = result_lines(c, r, l);
    const auto late = [&] { return late_for_results(c, l, r); };
    // By reference: a std::function holds that without allocating.
    if (plx_status s = wait_lines(op, r, lines, l.first(r), l.end(r), seq, std::cref(late))) return s;
    for (size_t j = l.first(r); j < l.end(r); ++j)
      copy_payload(out + j * ll_payload_bytes, lines[j].data, l.bytes_of(j));
  }
  return PLX_OK;
}

}  // namespace

bool fits_low_latency(const Op &op) {
  const size_t bytes = op.desc.count * op.elem_bytes;
  return op.comm.has_ll_lines() && bytes <= ll_max_lines * ll_payload_bytes && op.comm.nranks() <= max_sources;
}

plx_status low_latency_all_reduce(Op &op) {
  Comm &c = op.comm;
  const LlLayout l = layout_of(op);
  const uint64_t seq = l.seq;
  if (plx_status s = post_input(op, l, input_lines(c, c.rank(), l), seq)) return s;
  // Every peer's lines of this rank's share, end to end: at most all the
  // lines' payload (n shares of ceil(lines / n) lines cover them).
  std::vector<uint8_t> &staged = c.ll_staging();
  staged.resize(static_cast<size_t>(c.nranks()) * l.share_lines * ll_payload_bytes);
  if (plx_status s = reduce_share(op, l, seq, staged.data())) return s;
  op.record(PLX_ALGO_LOW_LATENCY);
  return gather_results(op, l, seq);
}

}  // namespace plexus::shm_native

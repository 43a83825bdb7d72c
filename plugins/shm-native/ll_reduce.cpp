// The low-latency (LL) all-reduce: a two-shot whose data carries its own
// signal. Every rank posts its input as LL lines (LowLatencyLine in
// shm_comm.hpp: 56 bytes and the collective's sequence number), reduces its
// share of the lines in rank order as each peer's line arrives, posts the
// result lines, and copies the peers' result lines out as they arrive. No
// `arrive` or `done` waits: a rank waits on the lines it reads, and each
// wait fetches the data with the same line transfer.
//
// Reuse: the lines of sequence number s are written again at s + 2. By then
// this rank has reduced s + 1, which needed every peer's input of s + 1,
// which a peer posts only after it finished s, reads of our lines included.
#include <algorithm>
#include <cstring>

#include "core/cpu_reduce.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {
namespace {

constexpr int32_t max_sources = 1024;

// How the message maps onto lines: elements a line, lines of the message,
// lines of each rank's share (whole lines, so no line holds two shares).
struct LlLayout {
  size_t bytes, lines, share_lines;
  size_t first(int32_t r) const { return std::min(lines, share_lines * static_cast<size_t>(r)); }
  size_t end(int32_t r) const { return std::min(lines, first(r) + share_lines); }
  size_t bytes_of(size_t line) const { return std::min(ll_payload_bytes, bytes - line * ll_payload_bytes); }
};

LlLayout layout_of(const Op &op) {
  const size_t bytes = op.desc.count * op.elem_bytes, lines = (bytes + ll_payload_bytes - 1) / ll_payload_bytes;
  const size_t n = static_cast<size_t>(op.comm.nranks());
  return {bytes, lines, (lines + n - 1) / n};
}

bool contributes(const Op &op) { return !(op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION); }

// Whether this rank reads its own share from `send`; otherwise from its own
// posted lines: when it contributes nothing (they hold the identity), or
// when recv overlaps send other than exactly (a result written into recv
// could overwrite input not yet reduced).
bool reads_own_send(const Op &op) {
  return contributes(op) && (op.desc.send == op.desc.recv ||
                             !overlap(op.desc.send, op.desc.recv, op.desc.count * op.elem_bytes));
}

// Writes the payload, then the sequence number that announces it.
void post(LowLatencyLine &line, const void *src, size_t bytes, uint64_t seq) {
  std::memcpy(line.data, src, bytes);
  line.seq.store(seq, std::memory_order_release);
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

// Reduces line j of this rank's share in rank order into recv, each peer's
// line once it has arrived, and posts the result.
plx_status reduce_line(Op &op, const LlLayout &l, size_t j, uint64_t seq) {
  Comm &c = op.comm;
  const size_t parity = seq & 1u, offset = j * ll_payload_bytes;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) {
    const LowLatencyLine &line = c.ll_area(r).input[parity][j];
    if (r == c.rank() && reads_own_send(op)) {
      sources[r] = static_cast<const uint8_t *>(op.desc.send) + offset;
      continue;
    }
    if (plx_status s = wait_word(c, r, line.seq, seq, op.deadline, op.label)) return s;
    sources[r] = line.data;
  }
  uint8_t *out = static_cast<uint8_t *>(op.desc.recv) + offset;
  if (plx_status s = core::reduce_into(op.desc.dtype, op.desc.op, out, sources, c.nranks(),
                                       l.bytes_of(j) / op.elem_bytes))
    return s;
  post(c.ll_area(c.rank()).result[parity][j], out, l.bytes_of(j), seq);
  return PLX_OK;
}

// Copies every peer's result lines into recv, each once it has arrived,
// from the next rank on.
plx_status gather_results(Op &op, const LlLayout &l, uint64_t seq) {
  Comm &c = op.comm;
  auto *out = static_cast<uint8_t *>(op.desc.recv);
  for (int32_t i = 1; i < c.nranks(); ++i) {
    const int32_t r = (c.rank() + i) % c.nranks();
    const LowLatencyLine *lines = c.ll_area(r).result[seq & 1u];
    for (size_t j = l.first(r); j < l.end(r); ++j) {
      if (plx_status s = wait_word(c, r, lines[j].seq, seq, op.deadline, op.label)) return s;
      std::memcpy(out + j * ll_payload_bytes, lines[j].data, l.bytes_of(j));
    }
  }
  return PLX_OK;
}

}  // namespace

bool fits_low_latency(const Op &op) {
  const size_t bytes = op.desc.count * op.elem_bytes;
  return bytes <= ll_max_lines * ll_payload_bytes && op.comm.nranks() <= max_sources;
}

plx_status low_latency_all_reduce(Op &op) {
  Comm &c = op.comm;
  const LlLayout l = layout_of(op);
  const uint64_t seq = c.next_ll_seq();
  if (plx_status s = post_input(op, l, c.ll_area(c.rank()).input[seq & 1u], seq)) return s;
  for (size_t j = l.first(c.rank()); j < l.end(c.rank()); ++j)
    if (plx_status s = reduce_line(op, l, j, seq)) return s;
  op.record(PLX_ALGO_LOW_LATENCY);
  return gather_results(op, l, seq);
}

}  // namespace plexus::shm_native

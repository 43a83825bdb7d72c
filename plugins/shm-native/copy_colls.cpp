// Collectives that only move data: broadcast, all-gather, gather.
#include <algorithm>
#include <cstring>

#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {

namespace {

// Root's input was published as a pool block for `step`: the others copy it
// straight out of their mapping of it, and nobody returns before all have.
plx_status broadcast_in_place(Op &op, uint32_t step, size_t total) {
  Comm &c = op.comm;
  const auto *in = static_cast<const uint8_t *>(op.desc.send);
  auto *out = static_cast<uint8_t *>(op.desc.recv);
  if (c.rank() != op.desc.root) {
    const uint8_t *block = nullptr;
    if (plx_status s = op.peer_input(op.desc.root, step, total, &block)) return s;
    std::memcpy(out, block, total);
  } else if (out != in) {
    std::memcpy(out, in, total);
  }
  op.record(PLX_ALGO_COPY);
  return op.finish_share(step);
}

}  // namespace

// Root publishes whether its input is read in place with the first step;
// only in the copy case do more steps follow.
plx_status broadcast(Op &op) {
  Comm &c = op.comm;
  const size_t total = op.desc.count * op.elem_bytes;
  if (plx_status s = c.stage(total)) return s;
  const size_t chunk = c.slot_bytes();
  const bool root = c.rank() == op.desc.root;
  const auto *in = static_cast<const uint8_t *>(op.desc.send);
  auto *out = static_cast<uint8_t *>(op.desc.recv);
  for (size_t first = 0; first < total; first += chunk) {
    const size_t len = std::min(chunk, total - first);
    const uint32_t step = c.next_step();
    const bool publish = root && first == 0;
    const bool in_place = publish && op.publish_input(step, in, total, out == in || !overlap(in, out, total));
    if (root && !in_place) std::memcpy(c.slot(c.rank(), step), in + first, len);
    if (plx_status s = op.exchange(step)) return s;
    if (first == 0 && c.control(op.desc.root).input[step & 1u].segment_id != 0)
      return broadcast_in_place(op, step, total);
    if (!root) std::memcpy(out + first, c.slot(op.desc.root, step), len);
    else if (out != in) std::memmove(out + first, in + first, len);
  }
  op.record(PLX_ALGO_COPY);
  return PLX_OK;
}

namespace {

// Where each rank's contribution goes (bytes[r] at byte offset displ[r] of
// recv), and which ranks published theirs as a pool block in the first step
// (then read in place from it, all at once). Arrays by rank, filled for the
// communicator's ranks only: no allocation per call.
struct Contributions {
  size_t bytes[max_sources], displ[max_sources];
  bool published[max_sources];
};

// A rank's contribution may be read in place unless recv overlaps it other
// than exactly at its own place (in place: the rank writes the others'
// places, never its own, while the peers read it).
bool may_publish(const Op &op, const Contributions &k, size_t out_bytes) {
  const int32_t me = op.comm.rank();
  const auto *in = static_cast<const uint8_t *>(op.desc.send), *out = static_cast<const uint8_t *>(op.desc.recv);
  const bool receives = op.desc.coll == PLX_COLL_ALL_GATHER || me == op.desc.root;
  return !receives || in == out + k.displ[me] || !overlap_bytes(in, k.bytes[me], out, out_bytes);
}

// Copies rank r's contribution, or its piece [first, first + chunk), to
// its place in recv: from r's block when r published it, else its slot.
plx_status receive(Op &op, const Contributions &k, int32_t r, uint32_t step, size_t first, size_t chunk) {
  auto *out = static_cast<uint8_t *>(op.desc.recv) + k.displ[r];
  const uint8_t *from = op.comm.slot(r, step);
  size_t len = k.bytes[r] > first ? std::min(chunk, k.bytes[r] - first) : 0;
  if (k.published[r]) {
    from = static_cast<const uint8_t *>(op.desc.send), len = k.bytes[r];
    if (r != op.comm.rank())
      if (plx_status s = op.peer_input(r, step, len, &from)) return s;
  }
  if (len > 0 && out + first != from) std::memcpy(out + first, from, len);
  return PLX_OK;
}

// One step carrying the piece at `first` of each contribution that goes
// through the slots (in the first step also the published ones, whole).
plx_status gather_step(Op &op, Contributions &k, uint32_t step, size_t first, size_t chunk, bool receives) {
  Comm &c = op.comm;
  const size_t mine = k.bytes[c.rank()] > first ? std::min(chunk, k.bytes[c.rank()] - first) : 0;
  if (mine > 0 && !k.published[c.rank()])  // `send` is NULL for 0 bytes
    std::memcpy(c.slot(c.rank(), step), static_cast<const uint8_t *>(op.desc.send) + first, mine);
  if (plx_status s = op.exchange(step)) return s;
  for (int32_t r = 0; r < c.nranks(); ++r) {
    if (first == 0 && r != c.rank()) k.published[r] = c.control(r).input[step & 1u].segment_id != 0;
    if (receives && (first == 0 || !k.published[r]))
      if (plx_status s = receive(op, k, r, step, first, chunk)) return s;
  }
  return PLX_OK;
}

}  // namespace

// Steps of `chunk` bytes until the largest contribution is through (k:
// bytes and displ set, nothing published yet). A contribution that is a
// pool block is published in the first step and read from it then; the
// steps go on for the largest of the others, and if any was published,
// nobody returns before every rank has read it.
static plx_status gather_bytes(Op &op, Contributions &k, bool to_all) {
  Comm &c = op.comm;
  const int32_t n = c.nranks();
  if (plx_status s = c.stage(*std::max_element(k.bytes, k.bytes + n))) return s;
  const size_t chunk = c.slot_bytes(), out_bytes = k.displ[n - 1] + k.bytes[n - 1];
  const bool receives = to_all || c.rank() == op.desc.root;
  uint32_t step = c.next_step();
  k.published[c.rank()] = op.publish_input(step, op.desc.send, k.bytes[c.rank()], may_publish(op, k, out_bytes));
  if (plx_status s = gather_step(op, k, step, 0, chunk, receives)) return s;
  size_t rest = 0;
  for (int32_t r = 0; r < n; ++r) rest = k.published[r] ? rest : std::max(rest, k.bytes[r]);
  for (size_t first = chunk; first < rest; first += chunk)
    if (plx_status s = gather_step(op, k, step = c.next_step(), first, chunk, receives)) return s;
  op.record(PLX_ALGO_COPY);
  return std::find(k.published, k.published + n, true) != k.published + n ? op.finish_share(step) : PLX_OK;
}

plx_status all_gather(Op &op) {
  const size_t each = op.desc.count * op.elem_bytes;
  Contributions k;
  for (int32_t r = 0; r < op.comm.nranks(); ++r)
    k.bytes[r] = each, k.displ[r] = static_cast<size_t>(r) * each, k.published[r] = false;
  return gather_bytes(op, k, true);
}

plx_status gather(Op &op) {
  Contributions k;
  size_t at = 0;
  for (int32_t r = 0; r < op.comm.nranks(); ++r) {
    k.bytes[r] = (op.desc.counts ? op.desc.counts[r] : op.desc.count) * op.elem_bytes;
    k.displ[r] = at, k.published[r] = false;
    at += k.bytes[r];
  }
  return gather_bytes(op, k, false);
}

}  // namespace plexus::shm_native

// Collectives that only move data: broadcast, all-gather, gather.
#include <algorithm>
#include <cstring>
#include <vector>

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

// Steps of `chunk` bytes until the largest contribution is through; rank r
// contributes bytes[r] starting at the byte offset displ[r] of the output.
static plx_status gather_bytes(Op &op, const std::vector<size_t> &bytes,
                               const std::vector<size_t> &displ, bool to_all) {
  Comm &c = op.comm;
  const size_t largest = *std::max_element(bytes.begin(), bytes.end());
  if (plx_status s = c.stage(largest)) return s;
  const size_t chunk = c.slot_bytes();
  const auto *in = static_cast<const uint8_t *>(op.desc.send);
  auto *out = static_cast<uint8_t *>(op.desc.recv);
  const bool receives = to_all || c.rank() == op.desc.root;
  for (size_t first = 0; first < largest; first += chunk) {
    const uint32_t step = c.next_step();
    const size_t mine = bytes[c.rank()] > first ? std::min(chunk, bytes[c.rank()] - first) : 0;
    if (mine > 0) std::memcpy(c.slot(c.rank(), step), in + first, mine);  // `in` is NULL for 0 bytes
    if (plx_status s = op.exchange(step)) return s;
    for (int32_t r = 0; receives && r < c.nranks(); ++r)
      if (bytes[r] > first)
        std::memcpy(out + displ[r] + first, c.slot(r, step), std::min(chunk, bytes[r] - first));
  }
  op.record(PLX_ALGO_COPY);
  return PLX_OK;
}

plx_status all_gather(Op &op) {
  const size_t n = static_cast<size_t>(op.comm.nranks()), each = op.desc.count * op.elem_bytes;
  std::vector<size_t> bytes(n, each), displ(n);
  for (size_t r = 0; r < n; ++r) displ[r] = r * each;
  return gather_bytes(op, bytes, displ, true);
}

plx_status gather(Op &op) {
  const size_t n = static_cast<size_t>(op.comm.nranks());
  std::vector<size_t> bytes(n), displ(n);
  for (size_t r = 0, at = 0; r < n; ++r) {
    bytes[r] = (op.desc.counts ? op.desc.counts[r] : op.desc.count) * op.elem_bytes;
    displ[r] = at;
    at += bytes[r];
  }
  return gather_bytes(op, bytes, displ, false);
}

}  // namespace plexus::shm_native

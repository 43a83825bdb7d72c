// Inputs read in place from pool blocks (see shm_coll.hpp and shm_pool.hpp).
#include <array>
#include <cstring>

#include "core/cpu_reduce.hpp"
#include "core/status.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {

bool overlap(const void *a, const void *b, size_t bytes) { return overlap_bytes(a, bytes, b, bytes); }

bool overlap_bytes(const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && x < y + b_bytes && y < x + a_bytes;
}

// Reading in place saves the copy into the slot but adds a completion sync,
// whose cost grows with the ranks: below this size it loses with more than 2
// ranks (measured on 16 cores, 8 and 16 ranks: 4.2 against 3.3 us at 8 B,
// 6.3 against 13.3 us at 8 KiB; docs/performance.md).
constexpr size_t in_place_min_bytes = 2048;
// With more ranks than cores that sync costs context switches: 4 ranks on 2
// cores, pool against ordinary buffers, 2 KiB 14.8 against 5.6 us, 8 KiB
// 11.8 against 8.7, 32 KiB 12.4 against 20.7.
constexpr size_t in_place_min_bytes_oversubscribed = 16384;

// The entry is written at every call, also to clear it: peers read it for
// each step, and entry step % 2 still holds what step - 2 published.
bool Op::publish_input(uint32_t step, const void *ptr, size_t bytes, bool allowed) {
  BlockRef ref{};
  const size_t min_bytes = comm.oversubscribed() ? in_place_min_bytes_oversubscribed : in_place_min_bytes;
  const bool worth_it = bytes >= min_bytes || comm.nranks() <= 2;
  const bool published = allowed && bytes > 0 && worth_it && comm.reads_in_place() &&
                         comm.pool().describe(ptr, bytes, &ref);
  comm.control(comm.rank()).input[step & 1u] = published ? ref : BlockRef{};
  return published;
}

plx_status Op::peer_input(int32_t r, uint32_t step, size_t bytes, const uint8_t **out) {
  const BlockRef ref = comm.control(r).input[step & 1u];
  *out = nullptr;
  if (ref.segment_id == 0) return PLX_OK;
  if (plx_status s = comm.peer_maps().resolve(r, ref, bytes, out))
    return comm.peer_open_failed(r, s, fmt::format("rank {} cannot read rank {}'s pool block in {} #{}",
                                                   comm.rank(), r, label.coll, label.seq));
  return PLX_OK;
}

namespace {

// Every rank's input as mapped here, by rank (no allocation on the hot path).
using Blocks = std::array<const uint8_t *, max_sources>;

// Every rank's input of `step`: this rank's send buffer and the peers'
// published blocks (the caller knows that all published one).
plx_status input_blocks(Op &op, uint32_t step, Blocks *blocks) {
  Comm &c = op.comm;
  for (int32_t r = 0; r < c.nranks(); ++r) {
    (*blocks)[r] = static_cast<const uint8_t *>(op.desc.send);
    if (r != c.rank())
      if (plx_status s = op.peer_input(r, step, op.desc.count * op.elem_bytes, &(*blocks)[r])) return s;
  }
  return PLX_OK;
}

// Part `part` of this rank's share of the chunk at `first`, reduced in rank
// order straight from every rank's block into its slot, and copied out.
plx_status reduce_part_from_blocks(Op &op, const Blocks &blocks, uint32_t step, size_t first, const Share &part,
                                   uint8_t *out) {
  const size_t es = op.elem_bytes;
  const void *sources[max_sources];
  for (int32_t r = 0; r < op.comm.nranks(); ++r) sources[r] = blocks[r] + (first + part.first) * es;
  uint8_t *reduced = op.comm.slot(op.comm.rank(), step) + part.first * es;
  if (plx_status s = core::reduce_into(op.desc.dtype, op.desc.op, reduced, sources, op.comm.nranks(), part.length))
    return s;
  if (out) op.copy_result(out + part.first * es, reduced, part.length * es);
  return PLX_OK;
}

// One chunk: this rank reduces its share in rank order straight from every
// rank's block into its slot and copies it out; after `done`, the others'
// shares come from their slots. Both halves split over the rank's helper
// threads for large chunks (shm_helpers.hpp), a part of each range a thread.
plx_status in_place_chunk(Op &op, const Blocks &blocks, size_t first, size_t count, bool gets_result) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes;
  const uint32_t step = c.next_step(count * es);
  HelperThreads *team = op.team(count * es);
  const int32_t parts = team ? team->parts() : 1;
  const Share mine = share_of(count, c.nranks(), c.rank());
  uint8_t *out = gets_result ? static_cast<uint8_t *>(op.desc.recv) + first * es : nullptr;
  if (plx_status s = on_team(team, [&](int32_t p) {
        return reduce_part_from_blocks(op, blocks, step, first, part_of(mine, parts, p, 64 / es), out);
      }))
    return s;
  if (plx_status s = op.finish_share(step)) return s;
  if (!gets_result) return PLX_OK;
  return on_team(team, [&](int32_t p) {
    copy_peer_parts(op, step, count, out, parts, p);
    return PLX_OK;
  });
}

}  // namespace

// Each chunk's `done` also tells that every rank has finished reading the
// blocks for it, so after the last one no owner's block is read any more.
// A slot is written again two chunks on, once every peer has published the
// `done` that follows its copy out of it.
plx_status in_place_two_shot(Op &op, uint32_t step, bool to_all) {
  Blocks blocks;
  if (plx_status s = input_blocks(op, step, &blocks)) return s;
  const size_t chunk = op.comm.slot_bytes() / op.elem_bytes;
  const bool gets_result = to_all || op.comm.rank() == op.desc.root;
  for (size_t first = 0; first < op.desc.count; first += chunk)
    if (plx_status s = in_place_chunk(op, blocks, first, std::min(chunk, op.desc.count - first), gets_result))
      return s;
  op.record(PLX_ALGO_TWO_SHOT);
  return PLX_OK;
}

}  // namespace plexus::shm_native

// Reductions: all-reduce, reduce and reduce-scatter (see shm_coll.hpp).
#include <algorithm>
#include <cstring>

#include "core/cpu_reduce.hpp"
#include "core/status.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {
namespace {

// Above the slots, with every input a pool block: up to this many ranks each
// reads all n inputs in one step (one-shot), beyond it each reads 1/n of
// them (in_place_two_shot). 4 ranks on 2 cores, 8 MiB: 7.3 ms one-shot
// against 2.9 ms two-shot; 2 ranks: at par.
constexpr int32_t in_place_one_shot_max_ranks = 2;

// With 2 ranks one-shot moves no more bytes between the ranks than two-shot
// (each reads the peer's whole input, where two-shot reads half of it and
// half of the result) and saves the `done` sync: it runs up to this many
// times ONESHOT_MAX_BYTES (2 ranks on the 2-core dev machine: 128 KiB 7.7 us
// one-shot against 10.0 two-shot; 256 KiB 18.3 against 16.0). With more
// ranks every rank reads all n inputs instead of 2(n-1)/n of them (4 ranks
// on 2 cores, 64 KiB: 31 us one-shot against 21 two-shot).
constexpr uint64_t two_rank_oneshot_factor = 2;

// Up to this many ranks the one-shot limit is ONESHOT_MAX_BYTES x 2/n;
// beyond, it falls with n^2 as x 4/n^2 (8 ranks: 4 KiB, 16 ranks: 1 KiB),
// as the n readers of every input contend for the same lines and two-shot's
// two syncs cost less than that. On 32 cores: 8 ranks, 16 KiB: one-shot
// 20.2-22.8 us in five runs against two-shot 7.1-8.7 (8 KiB: 4.5-5.1 both
// ways, and 6.4-10.3 one-shot against 6.2-7.7 two-shot in session 15); 16
// ranks, 2 KiB: 5.6-8.1 us one-shot against 4.0-4.8 two-shot in four runs
// (4 KiB: 13.0/9.4 against 6.2/5.4).
constexpr uint64_t oneshot_linear_max_ranks = 4;

uint64_t oneshot_limit(uint64_t oneshot_max_bytes, int32_t nranks) {
  const uint64_t n = static_cast<uint64_t>(nranks), m = oneshot_linear_max_ranks;
  if (n == 2) return oneshot_max_bytes * two_rank_oneshot_factor;
  if (n <= m) return oneshot_max_bytes * 2 / n;
  return oneshot_max_bytes * m / (n * n);
}

// Reductions that rotate through the slots (Params::rotate_min_bytes) take
// them at the cap, to have room to rotate.
plx_status stage_reduction(Op &op, uint64_t bytes) {
  const Params &p = op.comm.params();
  return op.comm.stage(bytes >= op.comm.rotate_min_bytes() ? p.slot_bytes : bytes);
}

// Reduces `length` elements at byte offset `offset` of every rank's slot
// for `step`, in rank order, into dst.
plx_status reduce_slots(Op &op, uint32_t step, size_t offset, size_t length, void *dst) {
  const void *sources[max_sources];
  for (int32_t r = 0; r < op.comm.nranks(); ++r) sources[r] = op.comm.slot(r, step) + offset;
  return core::reduce_into(op.desc.dtype, op.desc.op, dst, sources, op.comm.nranks(), length);
}

// This rank's input for elements [first, first+count): its send buffer, or
// the operator's identity when it takes part without contributing.
plx_status copy_in(Op &op, void *dst, size_t first, size_t count) {
  if (op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION)
    return core::fill_identity(op.desc.dtype, op.desc.op, dst, count);
  std::memcpy(dst, static_cast<const uint8_t *>(op.desc.send) + first * op.elem_bytes, count * op.elem_bytes);
  return PLX_OK;
}

// A pool send buffer can be read in place unless this rank contributes
// nothing or writes its result over its input while peers may still read it.
bool may_read_in_place(const Op &op) {
  return !(op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION) &&
         !overlap(op.desc.send, op.desc.recv, op.desc.count * op.elem_bytes);
}

// Whether this rank's one-shot reduce reads its own input from `send`
// rather than from its copy in the slot, which the peers read at the same
// time: a line a peer has just read is a miss again here (2 ranks on the
// 2-core dev machine, 32 KiB: 1.2 us reading send, 2.0 us reading the
// slot). Not when the rank contributes nothing (the slot holds the
// identity) or recv overlaps send other than exactly (reduce_into allows
// dst to be a source, not to overlap one partly).
bool reads_own_send(const Op &op) {
  return !(op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION) &&
         (op.desc.send == op.desc.recv || !overlap(op.desc.send, op.desc.recv, op.desc.count * op.elem_bytes));
}

bool any_peer_published(Op &op, uint32_t step) {
  for (int32_t r = 0; r < op.comm.nranks(); ++r)
    if (r != op.comm.rank() && op.comm.control(r).input[step & 1u].segment_id != 0) return true;
  return false;
}

bool all_peers_published(Op &op, uint32_t step) {
  for (int32_t r = 0; r < op.comm.nranks(); ++r)
    if (r != op.comm.rank() && op.comm.control(r).input[step & 1u].segment_id == 0) return false;
  return true;
}

// Reduces every rank's input for `step` in rank order into recv: each from
// the rank's pool block where it published one, else from its slot.
plx_status reduce_inputs(Op &op, uint32_t step, bool mine_in_place) {
  Comm &c = op.comm;
  const size_t bytes = op.desc.count * op.elem_bytes;
  const bool own_from_send = mine_in_place || reads_own_send(op);
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) {
    const uint8_t *block = r == c.rank() && own_from_send ? static_cast<const uint8_t *>(op.desc.send) : nullptr;
    if (r != c.rank())
      if (plx_status s = op.peer_input(r, step, bytes, &block)) return s;
    sources[r] = block ? block : c.slot(r, step);
  }
  return core::reduce_into(op.desc.dtype, op.desc.op, op.desc.recv, sources, c.nranks(), op.desc.count);
}

// After the exchange of `step`: every rank (reduce: root) reduces, and if
// any rank's input was read in place, all wait until every rank is done.
plx_status finish_one_shot(Op &op, uint32_t step, bool to_all, bool mine_in_place) {
  const bool wait_done = mine_in_place || any_peer_published(op, step);
  plx_status s = PLX_OK;
  if (to_all || op.comm.rank() == op.desc.root) s = reduce_inputs(op, step, mine_in_place);
  if (s == PLX_OK && wait_done) s = op.finish_share(step);
  return s;
}

// Every rank reduces the whole message; to_all false: only root does.
plx_status one_shot(Op &op, bool to_all) {
  const uint32_t step = op.comm.next_step(op.desc.count * op.elem_bytes);
  const bool mine_in_place = op.publish_input(step, op.desc.send, op.desc.count * op.elem_bytes,
                                              may_read_in_place(op));
  if (!mine_in_place)
    if (plx_status s = copy_in(op, op.comm.slot(op.comm.rank(), step), 0, op.desc.count)) return s;
  if (plx_status s = op.exchange(step)) return s;
  op.record(PLX_ALGO_ONE_SHOT);
  return finish_one_shot(op, step, to_all, mine_in_place);
}

// Too large for the slots: if every rank's input is a pool block, they are
// reduced in place (one-shot up to in_place_one_shot_max_ranks, two-shot
// shares beyond); otherwise the step only told so, and *done stays false
// for two-shot to take over.
plx_status try_in_place(Op &op, bool to_all, bool *done) {
  const uint32_t step = op.comm.next_step();
  const bool mine = op.publish_input(step, op.desc.send, op.desc.count * op.elem_bytes, may_read_in_place(op));
  if (plx_status s = op.exchange(step)) return s;
  *done = mine && all_peers_published(op, step);
  if (!*done) return PLX_OK;
  if (op.comm.nranks() > in_place_one_shot_max_ranks && op.desc.options->algorithm != PLX_ALGO_ONE_SHOT)
    return in_place_two_shot(op, step, to_all);
  op.record(PLX_ALGO_ONE_SHOT);
  return finish_one_shot(op, step, to_all, true);
}

// Copies this rank's input for elements `range` of the chunk into its slot,
// all but its own share: only this rank reads that part, and it reads it
// from `send`.
plx_status copy_in_for_peers(Op &op, uint8_t *slot, size_t first, Share range, const Share &mine) {
  const size_t es = op.elem_bytes, end = range.first + range.length;
  if (op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION)
    return copy_in(op, slot + range.first * es, first + range.first, range.length);
  const auto *in = static_cast<const uint8_t *>(op.desc.send) + first * es;
  const size_t before = std::min(end, mine.first), after = std::max(range.first, mine.first + mine.length);
  if (before > range.first) std::memcpy(slot + range.first * es, in + range.first * es, (before - range.first) * es);
  if (end > after) std::memcpy(slot + after * es, in + after * es, (end - after) * es);
  return PLX_OK;
}

// Reduces this rank's share in rank order, its own input straight from
// `send`, into its own slot where the peers pick it up, and into `copy`
// too (its place in recv) in the same pass unless `copy` is null.
plx_status reduce_share(Op &op, uint32_t step, size_t first, const Share &mine, void *copy) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes, offset = mine.first * es;
  const bool own_in_slot = op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r)
    sources[r] = r == c.rank() && !own_in_slot
                     ? static_cast<const uint8_t *>(op.desc.send) + (first + mine.first) * es
                     : c.slot(r, step) + offset;
  return core::reduce_into_both(op.desc.dtype, op.desc.op, c.slot(c.rank(), step) + offset, copy, sources,
                                c.nranks(), mine.length);
}

// Where recv takes streaming stores (copy_result), the own share is reduced
// into the slot piece by piece and each piece copied out while it is in L1
// (2 ranks on the 2-core dev machine, 2 MiB: 104 us against 127 us reducing
// the whole share first; 4 and 16 KiB pieces measured the same as 8).
constexpr size_t piece_bytes = 8 << 10;

// Reduces the own share [mine) of the chunk at `first` into the slot and,
// if out is set, into out (recv at the chunk). Unless the result streams, both
// in one pass (reduce_into_both), which saves re-reading each piece: 2 ranks
// on the 2-core dev machine, 1 MiB: 51 -> 48 us, 2 MiB: 106 -> 101 us.
plx_status reduce_own_share(Op &op, uint32_t step, size_t first, const Share &mine, uint8_t *out) {
  const size_t es = op.elem_bytes;
  const bool fused = out && !op.streams_result();
  const size_t piece = out && !fused ? std::max<size_t>(1, piece_bytes / es) : mine.length;
  for (size_t at = 0; at < mine.length; at += piece) {
    const Share part{mine.first + at, std::min(piece, mine.length - at)};
    if (plx_status s = reduce_share(op, step, first, part, fused ? out + part.first * es : nullptr)) return s;
    if (out && !fused)
      op.copy_result(out + part.first * es, op.comm.slot(op.comm.rank(), step) + part.first * es, part.length * es);
  }
  return PLX_OK;
}

// Publishes this rank's share as done, then copies each peer's share out as
// soon as that peer has finished it (not once all have), in the order they
// finish, from the next rank on so that the ranks do not all read the same
// slot at once: 4 ranks on 2 cores, 2 MiB: 405 -> 396 us, 512 KiB 94 -> 92 us.
plx_status copy_out_shares(Op &op, uint32_t step, size_t count, uint8_t *out) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes;
  publish(c, &RankControl::done, step + 1);
  return on_each_arrival(c, &RankControl::done, step + 1, op.deadline, op.label, [&](int32_t r) {
    const Share share = share_of(count, c.nranks(), r);
    op.copy_result(out + share.first * es, c.slot(r, step) + share.first * es, share.length * es);
    return PLX_OK;
  });
}

// One chunk of a two-shot reduction: copy in, reduce this rank's share
// (into recv too), then copy the other shares out (to every rank, or to
// root). The own share goes out before the `done` wait, while it is in
// cache and peers still reduce. With a team (helper threads), each phase's
// ranges are split over its threads (part_of: whole cache lines, so no two
// threads write one line), and the copy-out waits for every peer's share
// first (one fork and join instead of one per peer); the waits for the
// peers stay on this thread.
plx_status two_shot_chunk(Op &op, size_t first, size_t count, bool to_all, HelperThreads *team) {
  Comm &c = op.comm;
  const uint32_t step = c.next_step(count * op.elem_bytes);
  const size_t es = op.elem_bytes, line = 64 / es;
  const int32_t parts = team ? team->parts() : 1;
  const Share mine = share_of(count, c.nranks(), c.rank());
  uint8_t *slot = c.slot(c.rank(), step);
  if (plx_status s = on_team(team, [&](int32_t p) {
        return copy_in_for_peers(op, slot, first, part_of({0, count}, parts, p, line), mine);
      }))
    return s;
  if (plx_status s = op.exchange(step)) return s;
  const bool gets_result = to_all || c.rank() == op.desc.root;
  uint8_t *out = gets_result ? static_cast<uint8_t *>(op.desc.recv) + first * es : nullptr;
  if (plx_status s = on_team(team, [&](int32_t p) {
        return reduce_own_share(op, step, first, part_of(mine, parts, p, line), out);
      }))
    return s;
  if (!gets_result) return op.finish_share(step);
  if (!team) return copy_out_shares(op, step, count, out);
  if (plx_status s = op.finish_share(step)) return s;
  return on_every_thread(*team, [&](int32_t p) {
    copy_peer_parts(op, step, count, out, parts, p);
    return PLX_OK;
  });
}

plx_status two_shot(Op &op, bool to_all) {
  if (plx_status s = stage_reduction(op, op.desc.count * op.elem_bytes)) return s;
  const size_t chunk = op.comm.slot_bytes() / op.elem_bytes;
  for (size_t first = 0; first < op.desc.count; first += chunk) {
    const size_t count = std::min(chunk, op.desc.count - first);
    if (plx_status s = two_shot_chunk(op, first, count, to_all, op.team(count * op.elem_bytes))) return s;
  }
  op.record(PLX_ALGO_TWO_SHOT);
  return PLX_OK;
}

// The LL all-reduce where asked for, or where LL_MAX_BYTES takes the size
// and the input does not fit the inline line.
bool wants_low_latency(const Op &op, size_t bytes) {
  const int32_t forced = op.desc.options->algorithm;
  if (!fits_low_latency(op)) return false;
  if (forced == PLX_ALGO_LOW_LATENCY) return true;
  return forced == PLX_ALGO_AUTO && bytes <= op.comm.params().ll_max_bytes && !fits_inline(op);
}

plx_status reduction(Op &op, bool to_all) {
  if (op.desc.count == 0) return PLX_OK;
  const size_t bytes = op.desc.count * op.elem_bytes;
  const Params &p = op.comm.params();
  if (to_all && wants_low_latency(op, bytes)) return low_latency_all_reduce(op);
  // One-shot makes every rank read every input: its limit shrinks as ranks
  // grow, except with 2 ranks (two_rank_oneshot_factor).
  const bool small = bytes <= oneshot_limit(p.oneshot_max_bytes, op.comm.nranks()) && bytes <= p.slot_bytes;
  const int32_t forced = op.desc.options->algorithm;
  if ((small && forced != PLX_ALGO_TWO_SHOT) || (forced == PLX_ALGO_ONE_SHOT && bytes <= p.slot_bytes)) {
    if (fits_inline(op)) return inline_one_shot(op, to_all);
    if (plx_status s = stage_reduction(op, bytes)) return s;
    return one_shot(op, to_all);
  }
  // Reading the inputs in place saves copying them into the slots.
  if (op.comm.reads_in_place() && forced != PLX_ALGO_TWO_SHOT) {
    if (plx_status s = stage_reduction(op, bytes)) return s;
    bool done = false;
    if (plx_status s = try_in_place(op, to_all, &done); s != PLX_OK || done) return s;
  }
  return two_shot(op, to_all);
}

}  // namespace

plx_status all_reduce(Op &op) { return reduction(op, true); }
plx_status reduce(Op &op) { return reduction(op, false); }

namespace {

// Below this many bytes of input a reduce-scatter does not spend a step on
// finding out whether every input is a pool block (the same on every rank).
constexpr size_t reduce_scatter_in_place_min_bytes = 64 << 10;

// Every rank's input a pool block: rank r reduces block r of each straight
// into recv, then all wait until every rank has read. Otherwise the step
// only told so, and *done stays false.
plx_status try_reduce_scatter_in_place(Op &op, bool *done) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes, block = op.desc.count * es, total = block * static_cast<size_t>(c.nranks());
  const uint32_t step = c.next_step();
  const bool allowed = !(op.desc.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION) &&
                       !overlap_bytes(op.desc.send, total, op.desc.recv, block);
  const bool mine = op.publish_input(step, op.desc.send, total, allowed);
  if (plx_status s = op.exchange(step)) return s;
  *done = mine && all_peers_published(op, step);
  if (!*done) return PLX_OK;
  const void *sources[max_sources];
  for (int32_t r = 0; r < c.nranks(); ++r) {
    const uint8_t *input = static_cast<const uint8_t *>(op.desc.send);
    if (r != c.rank())
      if (plx_status s = op.peer_input(r, step, total, &input)) return s;
    sources[r] = input + c.rank() * block;
  }
  if (plx_status s = core::reduce_into(op.desc.dtype, op.desc.op, op.desc.recv, sources, c.nranks(), op.desc.count))
    return s;
  op.record(PLX_ALGO_COPY);
  return op.finish_share(step);
}

}  // namespace

// Block b of every rank's input goes to rank b: each step carries a piece
// of every block, and rank r reduces the pieces of its block (or, every
// input a pool block, the whole block r straight from them).
plx_status reduce_scatter(Op &op) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes, n = static_cast<size_t>(c.nranks());
  if (c.reads_in_place() && n * op.desc.count * es >= reduce_scatter_in_place_min_bytes) {
    bool done = false;
    if (plx_status s = try_reduce_scatter_in_place(op, &done); s != PLX_OK || done) return s;
  }
  if (plx_status s = c.stage(n * op.desc.count * es)) return s;
  const size_t chunk = c.slot_bytes() / (n * es);
  if (chunk == 0)
    return core::fail(PLX_ERR_UNSUPPORTED, "shm-native: reduce-scatter of {}-byte elements over {} ranks "
                      "needs slots of {} bytes; PLEXUS_SHM_NATIVE_SLOT_BYTES is {}", es, n, n * es,
                      c.params().slot_bytes);
  for (size_t first = 0; first < op.desc.count; first += chunk) {
    const size_t len = std::min(chunk, op.desc.count - first);
    const uint32_t step = c.next_step();
    for (size_t b = 0; b < n; ++b)
      if (plx_status s = copy_in(op, c.slot(c.rank(), step) + b * len * es, b * op.desc.count + first, len))
        return s;
    if (plx_status s = op.exchange(step)) return s;
    void *dst = static_cast<uint8_t *>(op.desc.recv) + first * es;
    if (plx_status s = reduce_slots(op, step, c.rank() * len * es, len, dst)) return s;
  }
  op.record(PLX_ALGO_COPY);
  return PLX_OK;
}

}  // namespace plexus::shm_native

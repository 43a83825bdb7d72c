// Every collective moves its data through the ranks' slots in chunks of at
// most a slot: each rank writes its part of the chunk into its own slot,
// all meet in a barrier, each reads what it needs from the others' slots,
// and all meet again before a slot is written anew. Every rank reads every
// input (a one-shot star): simple, correct for any count and any rank
// count, and quick for small messages on few ranks. A production backend
// adds pipelining and reduce-scatter + all-gather for large messages, as
// plexus's shm-native does.
#include "collectives.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "host.hpp"
#include "reduce.hpp"

namespace example_shm {
namespace {

using Bytes = unsigned char;

const Bytes *send_of(const plx_coll_desc &d) { return static_cast<const Bytes *>(d.send); }
Bytes *recv_of(const plx_coll_desc &d) { return static_cast<Bytes *>(d.recv); }

// One chunk: this rank's part into its slot, then everyone's parts out.
template <typename Publish, typename Consume>
plx_status step(Comm &c, Publish publish, Consume consume) {
  publish(c.slot(c.rank()));
  if (plx_status s = c.barrier()) return s;
  consume();
  return c.barrier();
}

// Reduces `count` elements found at `offset` bytes into every slot.
void reduce_slots(const Comm &c, const plx_coll_desc &d, size_t offset, Bytes *out, size_t count) {
  std::vector<const void *> inputs(static_cast<size_t>(c.nranks()));
  for (int32_t r = 0; r < c.nranks(); ++r) inputs[r] = c.slot(r) + offset;
  reduce(d.dtype, d.op, out, inputs.data(), c.nranks(), count);
}

// All-reduce, or reduce when only root keeps the result.
plx_status all_reduce(Comm &c, const plx_coll_desc &d, size_t es, bool everyone) {
  const size_t per = c.slot_bytes() / es;
  const bool keeps = everyone || c.rank() == d.root;
  for (uint64_t first = 0; first < d.count; first += per) {
    const size_t n = std::min<uint64_t>(per, d.count - first);
    if (plx_status s = step(
            c, [&](Bytes *slot) { std::memcpy(slot, send_of(d) + first * es, n * es); },
            [&] { if (keeps) reduce_slots(c, d, 0, recv_of(d) + first * es, n); }))
      return s;
  }
  return PLX_OK;
}

plx_status broadcast(Comm &c, const plx_coll_desc &d, size_t es) {
  const bool root = c.rank() == d.root;
  // Root's own result needs no slot.
  if (root && d.count > 0 && d.send != d.recv) std::memcpy(recv_of(d), send_of(d), d.count * es);
  const size_t per = c.slot_bytes() / es;
  for (uint64_t first = 0; first < d.count; first += per) {
    const size_t n = std::min<uint64_t>(per, d.count - first);
    if (plx_status s = step(
            c, [&](Bytes *slot) { if (root) std::memcpy(slot, send_of(d) + first * es, n * es); },
            [&] { if (!root) std::memcpy(recv_of(d) + first * es, c.slot(d.root), n * es); }))
      return s;
  }
  return PLX_OK;
}

// In place (send == recv + rank * count) is safe: a rank's own block is
// copied out of its slot, never over data it has yet to publish.
plx_status all_gather(Comm &c, const plx_coll_desc &d, size_t es) {
  const size_t per = c.slot_bytes() / es;
  for (uint64_t first = 0; first < d.count; first += per) {
    const size_t n = std::min<uint64_t>(per, d.count - first);
    auto copy_out = [&] {
      for (int32_t r = 0; r < c.nranks(); ++r) std::memcpy(recv_of(d) + (r * d.count + first) * es, c.slot(r), n * es);
    };
    if (plx_status s = step(c, [&](Bytes *slot) { std::memcpy(slot, send_of(d) + first * es, n * es); }, copy_out))
      return s;
  }
  return PLX_OK;
}

// Per-rank counts (a zero allowed); NULL counts mean d.count from every rank.
plx_status gather(Comm &c, const plx_coll_desc &d, size_t es) {
  std::vector<uint64_t> counts(static_cast<size_t>(c.nranks()), d.count), at(counts.size(), 0);
  if (d.counts != nullptr) counts.assign(d.counts, d.counts + c.nranks());
  for (size_t r = 1; r < counts.size(); ++r) at[r] = at[r - 1] + counts[r - 1];
  const uint64_t longest = *std::max_element(counts.begin(), counts.end()), per = c.slot_bytes() / es;
  auto part = [&](int32_t r, uint64_t first) { return first < counts[r] ? std::min(per, counts[r] - first) : 0; };
  for (uint64_t first = 0; first < longest; first += per) {
    auto publish = [&](Bytes *slot) {
      if (part(c.rank(), first) > 0) std::memcpy(slot, send_of(d) + first * es, part(c.rank(), first) * es);
    };
    auto copy_out = [&] {
      for (int32_t r = 0; r < c.nranks() && c.rank() == d.root; ++r)
        if (part(r, first) > 0) std::memcpy(recv_of(d) + (at[r] + first) * es, c.slot(r), part(r, first) * es);
    };
    if (plx_status s = step(c, publish, copy_out)) return s;
  }
  return PLX_OK;
}

// Each slot holds this chunk of every destination's block, side by side.
plx_status reduce_scatter(Comm &c, const plx_coll_desc &d, size_t es) {
  const size_t per = c.slot_bytes() / (es * static_cast<size_t>(c.nranks()));
  if (per == 0)
    return fail(PLX_ERR_UNSUPPORTED, "reduce_scatter over %d ranks needs PLEXUS_EXAMPLE_SHM_SLOT_BYTES >= %zu",
                c.nranks(), es * static_cast<size_t>(c.nranks()));
  for (uint64_t first = 0; first < d.count; first += per) {
    const size_t n = std::min<uint64_t>(per, d.count - first);
    auto publish = [&](Bytes *slot) {
      for (int32_t to = 0; to < c.nranks(); ++to)
        std::memcpy(slot + to * n * es, send_of(d) + (to * d.count + first) * es, n * es);
    };
    if (plx_status s = step(c, publish, [&] { reduce_slots(c, d, c.rank() * n * es, recv_of(d) + first * es, n); }))
      return s;
  }
  return PLX_OK;
}

const char *coll_name(int32_t coll) {
  static const char *const names[] = {"all_reduce", "reduce", "broadcast", "all_gather", "gather",
                                      "reduce_scatter", "barrier", "send", "recv"};
  return coll >= 0 && coll < PLX_COLL_KIND_COUNT ? names[coll] : "?";
}

}  // namespace

plx_status run_collective(Comm &c, const plx_coll_desc &d) {
  // Sticky: after a failure anywhere, fail at once with the first one.
  if (plx_status s = c.posted_failure()) return s;
  if (d.stream != nullptr)
    return fail(PLX_ERR_UNSUPPORTED, "host memory only: %s got a CUDA stream (device buffers?)", coll_name(d.coll));
  char what[48];
  std::snprintf(what, sizeof(what), "%s #%llu", coll_name(d.coll), static_cast<unsigned long long>(c.count_call(d.coll)));
  c.set_operation(what);
  const size_t es = dtype_size(d.dtype);
  switch (d.coll) {
    case PLX_COLL_ALL_REDUCE: return all_reduce(c, d, es, true);
    case PLX_COLL_REDUCE: return all_reduce(c, d, es, false);
    case PLX_COLL_BROADCAST: return broadcast(c, d, es);
    case PLX_COLL_ALL_GATHER: return all_gather(c, d, es);
    case PLX_COLL_GATHER: return gather(c, d, es);
    case PLX_COLL_REDUCE_SCATTER: return reduce_scatter(c, d, es);
    case PLX_COLL_BARRIER: return c.barrier();
    default: return fail(PLX_ERR_UNSUPPORTED, "%s is not implemented", coll_name(d.coll));
  }
}

namespace {

// What each rank puts in its mailbox for a split.
struct Proposal {
  int32_t color, key;
  UniqueId id;  // used when this rank becomes rank 0 of its color
};
static_assert(sizeof(Proposal) <= Comm::kMailboxBytes, "a proposal fits a mailbox");

// Every rank's proposal, through the mailboxes (a small all-gather).
plx_status exchange(Comm &parent, const Proposal &mine, std::vector<Proposal> *all) {
  all->resize(static_cast<size_t>(parent.nranks()));
  auto publish = [&](Bytes *) { std::memcpy(parent.mailbox(parent.rank()), &mine, sizeof(mine)); };
  auto read_all = [&] {
    for (int32_t r = 0; r < parent.nranks(); ++r) std::memcpy(&(*all)[r], parent.mailbox(r), sizeof(Proposal));
  };
  return step(parent, publish, read_all);
}

}  // namespace

plx_status split(Comm &parent, int32_t color, int32_t key, const plx_comm_config &config, Comm **out) {
  if (plx_status s = parent.posted_failure()) return s;
  parent.set_operation("comm_split");
  Proposal mine{color, key, {}};
  std::vector<Proposal> all;
  if (plx_status s = make_unique_id(&mine.id)) return s;
  if (plx_status s = exchange(parent, mine, &all)) return s;
  *out = nullptr;
  if (color == PLX_SPLIT_NO_COLOR) return PLX_OK;
  std::vector<int32_t> members;  // in old rank order, which the stable sort keeps among equal keys
  for (int32_t r = 0; r < parent.nranks(); ++r)
    if (all[r].color == color) members.push_back(r);
  std::stable_sort(members.begin(), members.end(), [&](int32_t a, int32_t b) { return all[a].key < all[b].key; });
  const auto me = std::find(members.begin(), members.end(), parent.rank()) - members.begin();
  return Comm::join(all[members[0]].id, static_cast<int32_t>(members.size()), static_cast<int32_t>(me),
                    config.init_timeout_ms, config.timeout_ms, out);
}

}  // namespace example_shm

// The collectives of shm-native, each a sequence of steps over the slots
// (shm_comm.hpp). Algorithms, per the size of the message:
//  - all-reduces up to PLEXUS_SHM_NATIVE_LL_MAX_BYTES (default none): the
//    low-latency two-shot, whose lines carry their own signal (ll_reduce.cpp);
//  - reductions up to PLEXUS_SHM_NATIVE_ONESHOT_MAX_BYTES x 2/n (2 ranks:
//    x 2; beyond 4 ranks x 4/n^2): one-shot, every rank reduces all
//    inputs in rank order;
//  - larger: reduce-scatter then all-gather (two-shot), a slot-sized chunk
//    per step, each element reduced by one rank in rank order;
//  - broadcast, gather and all-gather: copies through the slots.
// Both reduction algorithms add the inputs in rank order, so every rank and
// every size gives bit-identical results (PLX-P-8).
//
// Reading in place (shm_pool.hpp): when a send buffer is a block of this
// rank's PLX_MEM_SHARED_HOST pool, one-shot all-reduce and reduce, and
// broadcast's root, publish (segment, offset) in the control page instead of
// copying into the slot, and peers read the block through their mapping.
// The owner then must not return, and let its caller overwrite the block,
// before every peer has read it: such a step ends with a `done` sync.
#pragma once

#include <atomic>

#include "plugins/shm-native/shm_wait.hpp"

namespace plexus::shm_native {

// The most inputs a reduction gathers: one per rank, and the rendezvous
// admits at most this many ranks.
inline constexpr int32_t max_sources = core::Rendezvous::kMaxRanks;

// State of one collective while it runs.
struct Op {
  Comm &comm;
  const plx_coll_desc &desc;
  size_t elem_bytes;
  Deadline deadline;
  OpLabel label;

  // Publishes this rank's `arrive` for `step` and waits for every peer's.
  // The first exchange after the slots grew also maps the peers' new slots.
  plx_status exchange(uint32_t step) {
    if (plx_status s = sync(&RankControl::arrive, step)) return s;
    return comm.growth_pending() ? comm.finish_growth(label.coll, label.seq) : PLX_OK;
  }
  // The same for `done` (the reduce-scatter half of a step is finished).
  plx_status finish_share(uint32_t step) { return sync(&RankControl::done, step); }
  void record(plx_algorithm algorithm);
  // Copies part of the result into recv: with streaming stores where
  // streams_result() (stream_copy.hpp).
  void copy_result(void *dst, const void *src, size_t bytes) const;
  // Whether copy_result uses streaming stores for this message: when the
  // messages of all ranks together (what the host's caches must hold) reach
  // STREAM_MIN_BYTES (by default by CPU vendor: auto_stream_min_bytes).
  // Below, the results stay in the caches for the next use.
  bool streams_result() const {
    return desc.count * elem_bytes * static_cast<uint64_t>(comm.nranks()) >= comm.params().stream_min_bytes;
  }

  // Publishes [ptr, ptr+bytes) as this rank's input for `step` when `allowed`
  // and it is one pool block peers can map; otherwise clears the entry.
  bool publish_input(uint32_t step, const void *ptr, size_t bytes, bool allowed);
  // The rank's helper threads for a step of `step_bytes` (THREADS_MIN_BYTES
  // and more), or nullptr: the step runs on the calling thread alone.
  HelperThreads *team(size_t step_bytes) const {
    return step_bytes >= comm.params().threads_min_bytes ? comm.helpers() : nullptr;
  }
  // Rank r's published input for `step` as mapped here, or nullptr when it
  // published none (its input is in its slot). A mapping that fails fails
  // the communicator for every rank, so no owner waits for it in vain.
  plx_status peer_input(int32_t r, uint32_t step, size_t bytes, const uint8_t **out);

 private:
  plx_status sync(CounterField field, uint32_t step);
};

plx_status run_collective(Comm &comm, const plx_coll_desc &desc);
// A float32 all-reduce, reduce or reduce-scatter whose opts->wire_dtype is
// float16 or bfloat16: the input rounded to it, the reduction run in it
// (accumulated in float32, rounded once), the result widened into recv. The
// slots carry half the bytes; the two conversions are the price.
bool narrows_on_wire(const plx_coll_desc &desc);
plx_status run_on_wire(Comm &comm, const plx_coll_desc &desc);

// Whether a reduction's input fits a rank's InlineInput line.
bool fits_inline(const Op &op);
// One-shot through the InlineInput lines (inline_reduce.cpp).
plx_status inline_one_shot(Op &op, bool to_all);
// Whether an all-reduce fits the LL lines (the same answer on every rank).
bool fits_low_latency(const Op &op);
// The LL all-reduce (ll_reduce.cpp): a two-shot whose lines carry their
// own signal.
plx_status low_latency_all_reduce(Op &op);
// Two-shot whose inputs are every rank's pool block published for `step`
// (in_place.cpp): no copy into the slots, each rank reading 1/n of them.
plx_status in_place_two_shot(Op &op, uint32_t step, bool to_all);

plx_status all_reduce(Op &op);
plx_status reduce(Op &op);
plx_status reduce_scatter(Op &op);
plx_status broadcast(Op &op);
plx_status all_gather(Op &op);
plx_status gather(Op &op);
plx_status barrier(Op &op);

// The share [first, first+length) of `count` elements that rank r reduces.
using Share = Span;  // (shm_helpers.hpp)

// Runs work(p) (a plx_status) for every part p of the team, part p on its
// thread p, or on the calling thread when p's helper has not claimed it
// (HelperThreads::run); the first failure, or PLX_OK.
template <typename PartWork>
plx_status on_every_thread(HelperThreads &team, PartWork work) {
  std::atomic<int32_t> failed{PLX_OK};
  auto task = [&](int32_t p) {
    int32_t none = PLX_OK;
    if (plx_status s = work(p)) failed.compare_exchange_strong(none, s);
  };
  team.run(task);
  return static_cast<plx_status>(failed.load());
}

// The same on the team, or on this thread alone as part 0 of 1.
template <typename PartWork>
plx_status on_team(HelperThreads *team, PartWork work) {
  return team ? on_every_thread(*team, work) : work(0);
}
Share share_of(size_t count, int32_t nranks, int32_t r);

// Part p of `parts` of every peer's share of a two-shot chunk of `count`
// elements reduced in `step`, from the peer's slot into out (recv at the
// chunk), starting with the next rank so that the ranks do not all read
// one slot at once.
void copy_peer_parts(Op &op, uint32_t step, size_t count, uint8_t *out, int32_t parts, int32_t p);

// Whether two byte ranges share a byte: of `bytes` each, or of their own lengths.
bool overlap(const void *a, const void *b, size_t bytes);
bool overlap_bytes(const void *a, size_t a_bytes, const void *b, size_t b_bytes);

}  // namespace plexus::shm_native

// The pipelined kernels' arithmetic (kernels/pipe.hpp, the functions the
// ring and tree kernels call), emulated on the CPU: FIFOs fit their input
// area, slices cover every element once, the ring's schedule sums each
// chunk once in ring order and hands every rank the same result, and the
// ready/ack protocol of the ring and of the trees (with the broadcast half
// kTreeLag slices behind) never deadlocks with kFifoSlots slots.
#include <doctest/doctest.h>

#include <map>
#include <utility>
#include <vector>

#include "kernels/pipe.hpp"
#include "plugins/p2p-tree/p2p_topo.hpp"

namespace {

using namespace plexus::kernels;
using plexus::p2p_tree::full_links;
using plexus::p2p_tree::Links;
using plexus::p2p_tree::spanning_tree;
using plexus::p2p_tree::Tree;

constexpr uint64_t K = kFifoSlots;

uint64_t wide_of(uint64_t es) { return es == 2 ? 4 : es; }  // float16/bfloat16 accumulate in float

// One block of a ring launch: every element of the share in exactly one
// (chunk, slice), each slice within one FIFO slot in wide form.
void cover_ring_block(const RingBlock &rb, uint64_t nranks, uint64_t slice, uint64_t es, uint64_t fifo_slot,
                      std::vector<int> &seen) {
  const uint64_t vec = 16 / es;
  for (uint64_t c = 0; c < nranks; ++c)
    for (uint64_t i = 0; i < rb.slices; ++i) {
      const Range e = ring_slice(rb, c, i, slice);
      REQUIRE(e.begin <= e.end);
      REQUIRE((e.end == e.begin || (e.begin - rb.begin) % vec == 0));
      REQUIRE((e.end - e.begin + vec - 1) / vec * 16 * (wide_of(es) / es) <= fifo_slot);
      for (uint64_t x = e.begin; x < e.end; ++x) ++seen[x];
    }
}

}  // namespace

TEST_CASE("plugins.p2p_tree.pipe.fifos_fit_the_input_area") {
  for (uint64_t slot : {uint64_t{64} << 10, uint64_t{4} << 20, uint64_t{64} << 20, uint64_t{1} << 30})
    for (int32_t nranks = 1; nranks <= kMaxRanks; ++nranks)
      for (int32_t max_blocks : {0, 1, 3, 32, 128, 132}) {
        CAPTURE(slot);
        CAPTURE(nranks);
        CAPTURE(max_blocks);
        const FifoGeometry g = fifo_geometry(slot, nranks, max_blocks);
        REQUIRE(g.blocks >= 1);
        REQUIRE(g.blocks <= static_cast<uint32_t>(max_blocks < 1 ? 1 : max_blocks > kMaxBlocks ? kMaxBlocks : max_blocks));
        REQUIRE(g.slot_bytes >= 256);
        REQUIRE(g.slot_bytes % 256 == 0);
        REQUIRE(g.slot_bytes <= kFifoSlotMaxBytes);
        const uint64_t last = fifo_offset(slot, nranks, nranks - 1, g.blocks - 1, g.slot_bytes) + K * g.slot_bytes;
        REQUIRE(last <= slot);
        REQUIRE(g.blocks * K * g.slot_bytes <= fifo_region_bytes(slot, nranks));
        for (uint64_t es : {1, 2, 4, 8}) REQUIRE(slice_elems(g.slot_bytes, wide_of(es)) % (16 / es) == 0);
      }
  CHECK(fifo_geometry(64 << 20, 2, 128).blocks == 128);
  CHECK(fifo_geometry(64 << 20, 2, 128).slot_bytes == kFifoSlotMaxBytes);
  CHECK(fifo_geometry(64 << 10, 8, 128).blocks == 1);
}

TEST_CASE("plugins.p2p_tree.pipe.ring_slices_cover_every_element_once") {
  for (uint64_t es : {1, 2, 4, 8})
    for (uint64_t nranks : {2, 3, 5, 8})
      for (uint64_t total : {uint64_t{1}, uint64_t{7}, uint64_t{1001}, uint64_t{65537}, uint64_t{3} << 20}) {
        CAPTURE(es);
        CAPTURE(nranks);
        CAPTURE(total);
        const FifoGeometry g = fifo_geometry(4 << 20, static_cast<int32_t>(nranks), 128);
        const uint64_t slice = slice_elems(g.slot_bytes, wide_of(es));
        const uint32_t blocks = pipe_blocks(total * es / nranks, g);
        std::vector<int> seen(total, 0);
        for (uint32_t b = 0; b < blocks; ++b) {
          const RingBlock rb = ring_block(total, 16 / es, slice, b, blocks, nranks);
          REQUIRE(rb.slices <= kMaxSlices);
          if (b == 0) REQUIRE(rb.slices >= 1);  // block 0 always runs the whole ring
          cover_ring_block(rb, nranks, slice, es, g.slot_bytes, seen);
        }
        bool once = true;
        for (int s : seen) once = once && s == 1;
        REQUIRE(once);
      }
  const uint64_t slice = slice_elems(1024, 8);
  CHECK(ring_block(pipe_piece_elems(slice), 2, slice, 0, 1, 8).slices <= kMaxSlices);
}

TEST_CASE("plugins.p2p_tree.pipe.tree_slices_cover_every_element_once") {
  for (uint64_t es : {1, 2, 8})
    for (uint64_t total : {uint64_t{0}, uint64_t{1}, uint64_t{4097}, uint64_t{5} << 20}) {
      const FifoGeometry g = fifo_geometry(4 << 20, 4, 128);
      const uint64_t slice = slice_elems(g.slot_bytes, wide_of(es));
      const uint32_t blocks = pipe_blocks(total * es, g);
      std::vector<int> seen(total, 0);
      for (uint32_t b = 0; b < blocks; ++b) {
        const TreeBlock tb = tree_block(total, 16 / es, slice, b, blocks);
        if (b == 0) REQUIRE(tb.slices >= 1);  // a barrier's one empty message
        for (uint64_t i = 0; i < tb.slices; ++i) {
          const Range e = tree_slice(tb, i, slice);
          REQUIRE(e.end - e.begin <= slice);
          for (uint64_t x = e.begin; x < e.end; ++x) ++seen[x];
        }
      }
      bool once = true;
      for (int s : seen) once = once && s == 1;
      REQUIRE(once);
    }
}

// The ring schedule on chunk values that record who added in which order:
// every chunk's result is built once, in ring order from the chunk's
// position, and every rank ends with the same n results.
TEST_CASE("plugins.p2p_tree.pipe.ring_schedule_reduces_once_in_ring_order") {
  for (int n = 2; n <= kMaxRanks; ++n) {
    CAPTURE(n);
    using Value = std::vector<int>;  // the positions summed, in order
    std::vector<std::vector<Value>> out(n, std::vector<Value>(n));
    std::vector<Value> in_flight(n);  // the message on channel pos -> pos + 1
    std::vector<int> results(n, 0);
    for (int k = 0; k < 2 * n - 1; ++k) {
      std::vector<Value> sent(n);
      for (int pos = 0; pos < n; ++pos) {
        const RingStep s = ring_step_of(n, pos, k);
        Value v = s.recv ? in_flight[(pos + n - 1) % n] : Value{};
        if (s.kind != RingStep::pass) v.push_back(pos);  // own input added last
        if (s.kind == RingStep::result) ++results[s.chunk];
        if (s.kind == RingStep::result || s.kind == RingStep::pass) out[pos][s.chunk] = v;
        REQUIRE(s.wide_in == (s.recv && v.size() > 2 && s.kind != RingStep::pass));
        if (s.send) sent[pos] = v;
      }
      in_flight = sent;
    }
    for (int c = 0; c < n; ++c) {
      CHECK(results[c] == 1);
      Value want;
      for (int j = 0; j < n; ++j) want.push_back((c + j) % n);
      for (int pos = 0; pos < n; ++pos) CHECK(out[pos][c] == want);
    }
  }
}

namespace {

// Counters by (sender, receiver): messages posted (ready) and consumed (ack).
struct Counters {
  std::map<std::pair<int, int>, uint64_t> ready, ack;
  bool can_read(int from, int to, uint64_t m) { return ready[{from, to}] >= m + 1; }
  bool can_write(int from, int to, uint64_t m) { return m < K || ack[{from, to}] >= m + 1 - K; }
};

// Runs every rank's steps whenever their waits are met; false on a deadlock.
template <class Step>
bool run_all(int n, uint64_t steps, Step &&step) {
  std::vector<uint64_t> at(n, 0);
  for (bool moved = true; moved;) {
    moved = false;
    for (int r = 0; r < n; ++r)
      while (at[r] < steps && step(r, at[r])) ++at[r], moved = true;
  }
  for (int r = 0; r < n; ++r)
    if (at[r] != steps) return false;
  return true;
}

}  // namespace

TEST_CASE("plugins.p2p_tree.pipe.ring_protocol_never_deadlocks") {
  for (int n = 2; n <= kMaxRanks; ++n)
    for (uint64_t slices : {uint64_t{1}, uint64_t{2}, K - 1, K, K + 1, 3 * K + 2}) {
      CAPTURE(n);
      CAPTURE(slices);
      Counters c;
      std::vector<uint64_t> received(n, 0), sent(n, 0);
      const uint64_t per_slice = 2 * n - 1;
      REQUIRE(run_all(n, slices * per_slice, [&](int r, uint64_t t) {
        const RingStep s = ring_step_of(n, r, static_cast<int>(t % per_slice));
        const int pred = (r + n - 1) % n, succ = (r + 1) % n;
        if (s.recv && !c.can_read(pred, r, received[r])) return false;
        if (s.send && !c.can_write(r, succ, sent[r])) return false;
        if (s.recv) c.ack[{pred, r}] = ++received[r];
        if (s.send) c.ready[{r, succ}] = ++sent[r];
        return true;
      }));
    }
}

namespace {

// The tree kernel's step order on rank r: up(s), then down(s - kTreeLag).
bool tree_step(const Tree &t, Counters &c, int r, uint64_t op, uint64_t slices) {
  const uint64_t s = op / 2;
  const bool up = op % 2 == 0;
  if (up ? s >= slices : s < kTreeLag) return true;  // nothing this step
  const uint64_t m = up ? s : s - kTreeLag;
  const int parent = t.parent[r];
  for (int i = 0; i < t.nchildren[r]; ++i)
    if (up ? !c.can_read(t.child[r][i], r, m) : !c.can_write(r, t.child[r][i], m)) return false;
  if (parent >= 0 && (up ? !c.can_write(r, parent, m) : !c.can_read(parent, r, m))) return false;
  for (int i = 0; i < t.nchildren[r]; ++i)
    (up ? c.ack[{t.child[r][i], r}] : c.ready[{r, t.child[r][i]}]) = m + 1;
  if (parent >= 0) (up ? c.ready[{r, parent}] : c.ack[{parent, r}]) = m + 1;
  return true;
}

}  // namespace

TEST_CASE("plugins.p2p_tree.pipe.tree_protocol_never_deadlocks") {
  Links star{6, {}};
  for (int q = 1; q < 6; ++q) star.row[0] |= 1u << q, star.row[q] |= 1u;
  Links line{5, {}};
  for (int a = 0; a + 1 < 5; ++a) line.row[a] |= 1u << (a + 1), line.row[a + 1] |= 1u << a;
  for (const Links &l : {full_links(2), full_links(8), star, line})
    for (int arity : {2, 4})
      for (uint64_t slices : {uint64_t{1}, K - 1, K + 1, 4 * K + 3}) {
        CAPTURE(l.nranks);
        CAPTURE(arity);
        CAPTURE(slices);
        const Tree t = spanning_tree(l, l.nranks - 1, arity);
        Counters c;
        REQUIRE(run_all(l.nranks, 2 * (slices + kTreeLag),
                        [&](int r, uint64_t op) { return tree_step(t, c, r, op, slices); }));
      }
}

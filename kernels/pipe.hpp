// The pipelined kernels (ring.cu, tree.cu): plain C++ launch interface and
// the constexpr geometry they share with the host planner and its CPU test.
//
// A pipelined kernel moves a message as slices through per-neighbour FIFOs
// in the receiver's exchange block: the input area of the epoch's half is
// cut into one region per sending rank, each region into one FIFO per
// thread block, each FIFO into kFifoSlots slots. Every thread block is an
// independent channel over its share of the data. Per (block, sender) the
// receiver's header holds a `ready` counter (written by the sender after a
// slot's data) and per (block, receiver) the sender's header holds an `ack`
// counter (written by the receiver once it has read a slot). Counter values
// are tag(epoch, messages so far) = epoch << kTagShift | messages, so they
// only grow, across launches of any kernel, and waits test >=. A sender
// reuses a slot only after the receiver acked the message kFifoSlots
// before; a receiver reads a slot after ready says it is written.
#pragma once

#include <cstdint>

#include "kernels/kernels.hpp"

namespace plexus::kernels {

constexpr uint32_t kFifoSlots = 8;
constexpr uint64_t kFifoSlotMaxBytes = 32 << 10;
// A FIFO slot is at least this large while blocks can be given up for it.
constexpr uint64_t kFifoSlotMinBytes = 4 << 10;
constexpr uint32_t kTagShift = 20;
// Slices per block and launch: a ring channel carries 2 (nranks - 1) per
// slice, which stays below 2^kTagShift.
constexpr uint64_t kMaxSlices = uint64_t{1} << 16;
static_assert(2 * (kMaxRanks - 1) * kMaxSlices < (uint64_t{1} << kTagShift), "message counts fit the tag");
// The trees run their broadcast half this many slices behind the reduce
// half, so a slice's round trip to the root overlaps the next slices.
constexpr uint64_t kTreeLag = kFifoSlots / 2;

constexpr uint64_t tag(uint64_t epoch, uint64_t messages) { return epoch << kTagShift | messages; }

// Counters in the header: uint64 [kMaxBlocks][kMaxRanks] each.
constexpr uint64_t kReadyOffset = 16384;
constexpr uint64_t kAckOffset = kReadyOffset + kFlagsBytes;
static_assert(kAckOffset + kFlagsBytes <= kHeaderBytes, "the pipeline counters fit the header");

struct RingView {
  int32_t pos = 0;   // this rank's ring position
  int32_t pred = 0;  // rank it receives from
  int32_t succ = 0;  // rank it sends to
};

struct TreeView {
  int32_t parent = -1;  // -1: the root
  int32_t nchildren = 0;
  int32_t child[kMaxRanks - 1] = {};  // the order a parent reduces them in
};

enum TreeMode : int32_t {
  kTreeAllReduce = 0,  // reduce up, result down
  kTreeReduce = 1,     // reduce up to the root, empty messages down
  kTreeBroadcast = 2,  // empty messages up, the root's input down
  kTreeBarrier = 3,    // empty messages both ways
};

struct PipeArgs {
  const void *in = nullptr;  // NULL where the rank has none (broadcast non-roots)
  void *out = nullptr;       // NULL where the rank keeps nothing (reduce non-roots)
  uint64_t total = 0;        // elements (broadcast: bytes, as uint8)
  int32_t dtype = 0;
  int32_t op = 0;
  int32_t coll = 0;
  int32_t mode = kTreeAllReduce;  // trees only
  uint32_t blocks = 1;            // the grid: pipe_blocks
  uint64_t fifo_slot_bytes = 0;   // FifoGeometry::slot_bytes
  RingView ring;
  TreeView tree;
};

// Ring all-reduce (reduce with out NULL on non-roots): reduce-scatter, then
// all-gather, n - 1 steps each, every rank sending only to its successor.
cudaError_t launch_ring(const Peers &peers, const PipeArgs &args, cudaStream_t stream);
// Tree all-reduce, reduce, broadcast or barrier (args.mode).
cudaError_t launch_tree(const Peers &peers, const PipeArgs &args, cudaStream_t stream);

struct FifoGeometry {
  uint32_t blocks;      // most blocks a pipelined launch uses
  uint64_t slot_bytes;  // bytes of one FIFO slot (a multiple of 256)
};

// Bytes of one sender's region of an input area.
constexpr uint64_t fifo_region_bytes(uint64_t slot_bytes, uint64_t nranks) { return slot_bytes / nranks / 256 * 256; }

// The grid gives up blocks before FIFO slots drop below kFifoSlotMinBytes.
constexpr FifoGeometry fifo_geometry(uint64_t slot_bytes, int32_t nranks, int32_t max_blocks) {
  const uint64_t region = fifo_region_bytes(slot_bytes, static_cast<uint64_t>(nranks));
  uint64_t blocks = max_blocks < 1 ? 1 : max_blocks > kMaxBlocks ? kMaxBlocks : static_cast<uint64_t>(max_blocks);
  const uint64_t fit = region / (kFifoSlots * kFifoSlotMinBytes);
  if (blocks > fit) blocks = fit < 1 ? 1 : fit;
  uint64_t slot = region / blocks / kFifoSlots / 256 * 256;
  if (slot > kFifoSlotMaxBytes) slot = kFifoSlotMaxBytes;
  return {static_cast<uint32_t>(blocks), slot};
}

// Byte offset, in the receiver's input area, of block b's FIFO from `src`.
constexpr uint64_t fifo_offset(uint64_t slot_bytes, uint64_t nranks, uint64_t src, uint64_t b, uint64_t fifo_slot) {
  return src * fifo_region_bytes(slot_bytes, nranks) + b * kFifoSlots * fifo_slot;
}

// Elements of one slice: a FIFO slot holds it in the accumulator type
// (`wide` bytes an element: float for float16/bfloat16, else the dtype).
constexpr uint64_t slice_elems(uint64_t fifo_slot, uint64_t wide) { return fifo_slot / wide; }

// One block's part of a ring launch: its share of the elements in nranks
// chunks of `chunk` (a multiple of the vector), each of `slices` slices.
struct RingBlock {
  uint64_t begin = 0, end = 0, chunk = 0, slices = 0;
};

constexpr RingBlock ring_block(uint64_t total, uint64_t vec, uint64_t slice, uint32_t b, uint32_t blocks,
                               uint64_t nranks) {
  const Range r = share_of(total, vec, b, blocks);
  const uint64_t n = r.end - r.begin;
  const uint64_t chunk = ((n + nranks - 1) / nranks + vec - 1) / vec * vec;
  return {r.begin, r.end, chunk, (chunk + slice - 1) / slice};
}

// Elements [begin, end) of slice i of chunk c (empty past the share's end).
constexpr Range ring_slice(const RingBlock &rb, uint64_t c, uint64_t i, uint64_t slice) {
  const uint64_t chunk_end = rb.begin + (c + 1) * rb.chunk < rb.end ? rb.begin + (c + 1) * rb.chunk : rb.end;
  const uint64_t lo = rb.begin + c * rb.chunk + i * slice;
  const uint64_t hi = lo + slice < chunk_end ? lo + slice : chunk_end;
  return lo < hi ? Range{lo, hi} : Range{hi, hi};
}

// Step k (0 .. 2 nranks - 2) of a ring slice at ring position pos: its
// chunk; whether it sends its input (own), adds a received partial to its
// input and sends it on (partial), completes the chunk (result: out and
// sent), or writes and forwards a result (pass); whether it receives (a
// wide partial from the second partial on) and sends.
struct RingStep {
  enum Kind { own, partial, result, pass };
  uint64_t chunk;
  Kind kind;
  bool recv, send, wide_in;
};

constexpr RingStep ring_step_of(int n, int pos, int k) {
  RingStep s{};
  s.chunk = static_cast<uint64_t>(k < n ? (pos - k + n) % n : (pos + 2 * n - k) % n);
  s.kind = k == 0 ? RingStep::own : k < n - 1 ? RingStep::partial : k == n - 1 ? RingStep::result : RingStep::pass;
  s.recv = k > 0;
  s.send = k < 2 * n - 2;
  s.wide_in = k >= 2 && k <= n - 1;
  return s;
}

// One block's part of a tree launch: its share in slices; block 0 sends at
// least one (empty) message, so a barrier and empty halves still meet.
struct TreeBlock {
  uint64_t begin = 0, end = 0, slices = 0;
};

constexpr TreeBlock tree_block(uint64_t total, uint64_t vec, uint64_t slice, uint32_t b, uint32_t blocks) {
  const Range r = share_of(total, vec, b, blocks);
  const uint64_t slices = (r.end - r.begin + slice - 1) / slice;
  return {r.begin, r.end, slices == 0 && b == 0 ? 1 : slices};
}

constexpr Range tree_slice(const TreeBlock &tb, uint64_t i, uint64_t slice) {
  const uint64_t lo = tb.begin + i * slice < tb.end ? tb.begin + i * slice : tb.end;
  return {lo, lo + slice < tb.end ? lo + slice : tb.end};
}

// The grid of a launch of `bytes` (a ring: per rank's chunk), at most the
// FIFO geometry's blocks.
constexpr uint32_t pipe_blocks(uint64_t bytes, const FifoGeometry &g) { return blocks_for(bytes, int32_t(g.blocks)); }

// Most elements of one launch: no block's channel exceeds kMaxSlices.
constexpr uint64_t pipe_piece_elems(uint64_t slice) { return kMaxSlices * slice; }

}  // namespace plexus::kernels

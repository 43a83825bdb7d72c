// p2p-tree's copy-engine two-shot all-reduce (PLEXUS_P2P_TREE_ALGO=copy):
// the NVLink traffic goes by cudaMemcpyAsync, which the copy engines push
// at 360-372 GB/s a GPU on 4 H100 where SM stores reach 332-354
// (docs/performance.md, session 17); these kernels are the glue between
// the copies and do the reduction. The host enqueues, per launch
// (plugins/p2p-tree/p2p_copy_engine.cpp):
//
//   caller's stream   enter; sum(k) for each piece k; copy_out(k); exit
//   scatter stream j  piece k of chunk q (q = rank + 1 + j) -> slot `rank`
//                     of q's scatter area, then the flag of scatter row k
//   gather stream j   after sum(k): my reduced piece k -> slot `rank` of
//                     q's gather area, then the flag of gather row k
//
// The side streams carry copies only: a flag is an 8-byte copy, behind
// the data on the same stream, of the value enter stored for its row in
// this rank's block (ce_values_offset), so no kernel sits between two
// copies (on 2 H100 a kernel after each copy cost about 15 us a piece).
// The scatter area is the input and result areas of half 0 of q's
// exchange block, the gather area those of half 1 (2 x slot_bytes each,
// kernels.hpp), so one launch carries up to 2 x slot_bytes. Chunk q holds
// elements [q chunk, (q + 1) chunk) of the launch, slot s of an area sits
// at s chunk elements, and piece k of a chunk is ce_piece(). Every kernel
// reads the launch's epoch as the others (state.epoch + 1); only exit
// stores it. Each signal goes to its own flag row (flags[row][src], one
// write per epoch and source, so a row's values only grow):
// row 0 enter, 1 + k scatter piece k, 1 + pieces + k gather piece k,
// 1 + 2 pieces exit. Enter is a full exchange, so no rank writes into a
// peer's areas before that peer finished its earlier kernels (which use
// the same areas by epoch parity); exit is another, so no rank's next
// kernel writes into a peer still copying out. Every wait is bounded by
// the deadline and the abort word like every other wait; the copies never
// wait, so nothing here can hang on a dead peer.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernels.hpp"

namespace plexus::kernels {

// Pieces a launch's chunks are cut into (PLEXUS_P2P_TREE_COPY_PIECES), so
// that one piece's sum overlaps the next piece's copies: rows 0 to
// 1 + 2 x 7 stay below kStepsPerEpoch (16).
constexpr uint32_t kCopyMaxPieces = 7;
constexpr uint32_t ce_scatter_row(uint32_t k) { return 1 + k; }
constexpr uint32_t ce_gather_row(uint32_t pieces, uint32_t k) { return 1 + pieces + k; }
constexpr uint32_t ce_exit_row(uint32_t pieces) { return 1 + 2 * pieces; }
constexpr uint32_t kCeRows = 16;  // signal_value's steps per epoch

// Where enter stores each row's value for this launch (uint64 values[kCeRows],
// in the header's free space; peers never touch it), and where row `row`
// of rank `src`'s flags sits in a block.
constexpr uint64_t kCeValuesOffset = kFlagsBytes + 640;
static_assert(kRegAckedOffset + kRegSlots * sizeof(uint64_t) <= kCeValuesOffset);
static_assert(kCeValuesOffset + kCeRows * sizeof(uint64_t) <= kPostsOffset);
constexpr uint64_t ce_flag_offset(uint32_t row, int32_t src) { return (uint64_t(row) * kMaxRanks + src) * sizeof(uint64_t); }

// Elements [begin, end) of chunk q's piece k, counted from the chunk's
// start: pieces of round_up(chunk / pieces, vector) elements, cut at the
// chunk's own length (the last chunk may be short or empty).
constexpr Range ce_piece(uint64_t chunk, uint64_t total, uint64_t q, uint32_t k, uint32_t pieces, uint64_t vec) {
  const uint64_t len = chunk_len(chunk, total, q);
  const uint64_t per = ((chunk + pieces - 1) / pieces + vec - 1) / vec * vec;
  const uint64_t begin = per * k < len ? per * k : len;
  return {begin, begin + per < len ? begin + per : len};
}

// Rank `rank`'s scatter area (gather = false) or gather area, as mapped
// in this process (p.block).
inline char *ce_area(const Peers &p, int rank, bool gather) {
  return p.block[rank] + kHeaderBytes + (gather ? half_bytes(p.nranks, p.ll_slot_bytes, p.slot_bytes) : 0) +
         2 * uint64_t(p.nranks) * p.ll_slot_bytes;
}

// One launch: `total` elements cut into nranks chunks of `chunk` (a
// multiple of the vector), `piece` of `pieces` for sum and copy_out.
struct CeArgs {
  const void *in = nullptr;
  void *out = nullptr;
  uint64_t total = 0;
  uint64_t chunk = 0;
  int32_t dtype = 0;
  int32_t op = 0;
  int32_t coll = 0;
  uint32_t esize = 1;  // bytes of one element of dtype
  uint32_t pieces = 1;
  uint32_t piece = 0;
};

// Enter: stores the launch's row values (kCeValuesOffset), signals row 0
// to every peer and waits for every peer's.
cudaError_t launch_ce_enter(const Peers &peers, int32_t coll, cudaStream_t stream);
// Waits for every peer's scatter of a.piece, then reduces this rank's
// chunk's piece in rank order (its own input and the peers' slots) into
// out: every rank adds alike, so all get the same bits.
cudaError_t launch_ce_sum(const Peers &peers, const CeArgs &args, cudaStream_t stream);
// Waits for every peer's gather of a.piece, then copies each peer's
// reduced piece from this rank's gather area into out.
cudaError_t launch_ce_copy_out(const Peers &peers, const CeArgs &args, cudaStream_t stream);
// Exit: signals the exit row, waits for every peer's, stores the epoch.
cudaError_t launch_ce_exit(const Peers &peers, uint32_t pieces, int32_t coll, cudaStream_t stream);

}  // namespace plexus::kernels

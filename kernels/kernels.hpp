// The launch interface of plexus's CUDA kernels (kernels/*.cu): plain C++,
// no CUDA syntax, so plugins compiled by the host compiler call them.
//
// Exchange protocol (docs/plugins/p2p-tree.md). Every rank owns one device
// block that its peers map (CUDA IPC):
//
//   [0, kFlagsBytes)            flags: uint64 flags[kMaxBlocks][kMaxRanks];
//                               flags[b][src] is written by rank `src`'s
//                               block b, and polled by this rank's block b
//   [kFlagsBytes, 9 KiB)        this rank's DeviceState, at + 64 its two-shot's
//                               registration decision, at + 128 its
//                               acknowledged registrations (peers never
//                               touch these)
//   [9 KiB, 9.5 KiB)            OutputPost posts[2][kMaxRanks]: posts[e & 1][src]
//                               is written by rank src's blocks in epoch e
//                               (its output's registration, or none)
//   [12 KiB, 16 KiB)            RegSlot regs[kMaxRanks][kRegSlots]: rank q's
//                               registration in bulletin slot s, mapped here;
//                               written by this rank's host (p2p_registry)
//   [16 KiB, kHeaderBytes)      the pipelined kernels' ready and ack counters
//                               (kernels/pipe.hpp)
//   [kHeaderBytes, ...)         two halves, chosen by the epoch's parity,
//                               each: nranks low-latency (LL) slots of
//                               ll_slot_bytes (slot src is written by rank
//                               src), nranks LL128 slots of the same size,
//                               an input area and a result area of
//                               slot_bytes each
//
// A launch's epoch is the rank's DeviceState.epoch + 1: read by every block
// when it starts and stored back by the last block to finish, so the epoch
// advances on the device (CUDA graph replays included) and every rank counts
// alike as long as every rank launches the same kernels in the same order.
// Signals are monotonic (16 * epoch + step: step 0 after phase 1, 1 + r
// after the two-shot's round r of phase 2; device_common.cuh, signal_value)
// and waits test >=, so flags are never reset and no reset can race. The
// halves alternate, so a rank writes a half again only two epochs later, by
// which time every peer has finished reading it: every kernel begins with a
// full exchange (signals, or LL lines from every peer), and a peer whose
// epoch e + 1 this rank has seen has finished its kernel of epoch e.
//
// LL lines (the one-shot all-reduce): 16 bytes {data, flag, data, flag}
// with flag = the epoch's low 32 bits, stored by the writer straight into
// the reader's LL slot; an 8-byte half is seen whole or not at all, so a
// reader that sees both flags has the data, with no fence and no separate
// signal. Stale lines hold older epochs of the same parity (or the zeros
// of a fresh block), never the current one (until 2^32 launches wrap).
//
// LL128 lines (the one-shot from ll128_min_bytes up, on NVLink): 128 bytes,
// stored by one warp instruction (8 lanes x 16 bytes), 120 of data and a
// 64-bit flag (the epoch) in the last 8 bytes. NVLink delivers a warp's
// 128-byte store whole, so a reader warp that loads the line and sees the
// flag has its data, as in NCCL's LL128 protocol: the same latency as LL
// for 15/16 instead of 1/2 of the bytes. PCIe gives no such guarantee, so
// LL128 runs only where every pair is NVLink. Its slots are apart from the
// LL slots: an LL reader could take LL128 data words for its flags.
//
// Waits spin on ld.acquire.sys (or volatile LL loads); every 1024 spins
// they look at the deadline (globaltimer, timeout_ns after the wait began)
// and at the Control words in host-mapped memory: a host abort, or an error
// another block recorded. A block that gives up records the first error (a
// timeout: which peer, which epoch) and returns; the watchdog on the host
// reads it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace plexus::kernels {

constexpr int kMaxRanks = 8;
constexpr int kMaxBlocks = 128;
constexpr int kThreads = 512;
constexpr uint64_t kFlagsBytes = uint64_t{kMaxBlocks} * kMaxRanks * sizeof(uint64_t);
constexpr uint64_t kHeaderBytes = 32768;
static_assert(kFlagsBytes + 64 <= kHeaderBytes, "flags and state fit the header");

// Control words in host-mapped memory (cudaHostAllocMapped), one set per
// rank: the host writes host_abort, the kernels write the error record.
struct Control {
  uint32_t host_abort;   // nonzero: every wait gives up at once
  uint32_t error;        // kErrorNone or kErrorTimeout, first writer wins (racy, benign)
  int32_t waited_rank;   // the peer a timed-out wait was waiting for
  int32_t coll;          // PLX_COLL_* of the launch that timed out
  uint64_t epoch;        // its epoch
  uint64_t reserved[5];
};
constexpr uint32_t kErrorNone = 0;
constexpr uint32_t kErrorTimeout = 1;
constexpr uint32_t kErrorRegistry = 2;  // a peer posted a registration this rank has not mapped

// Registered outputs (docs/plugins/p2p-tree.md, "Registered buffers"). A
// rank whose two-shot output lies in a registration that every peer has
// mapped posts it with its first signal; each peer then stores its reduced
// chunk straight into that output, and the rank skips the copy-out phase.
// The launch carries the registration the output lies in (out_reg), even
// one the peers have not mapped yet (a buffer first seen in a graph
// capture); the kernel posts it only when this rank's acknowledged table
// (written by its host once every peer mapped the entry, cleared at
// deregistration) holds that id. Block 0 reads the table once and every
// block follows its decision, so a launch never splits between paths.
constexpr int kRegSlots = 32;  // registrations per rank (bulletin slots)
constexpr uint64_t kRegDecisionOffset = kFlagsBytes + 64;  // uint64: 2 * epoch + (posted ? 1 : 0)
constexpr uint64_t kRegAckedOffset = kFlagsBytes + 128;     // uint64 acked[kRegSlots]: id or 0
constexpr uint64_t kPostsOffset = 9216;
constexpr uint64_t kRegTableOffset = 12288;
struct OutputPost {
  uint64_t epoch;   // the launch it is for
  uint64_t reg_id;  // 0: no registered output (copy out from the result area)
  uint64_t slot;    // the registration's bulletin slot, below kRegSlots
  uint64_t offset;  // bytes from the registration's mapped base to the output
};
struct RegSlot {
  uint64_t id;    // written after base (a reader that sees id sees base)
  uint64_t base;  // the owner's CUDA allocation, mapped in this process
};
static_assert(kRegAckedOffset + kRegSlots * sizeof(uint64_t) <= kPostsOffset);
static_assert(kPostsOffset + 2 * kMaxRanks * sizeof(OutputPost) <= kRegTableOffset);
static_assert(kRegTableOffset + uint64_t{kMaxRanks} * kRegSlots * sizeof(RegSlot) <= 16384);

// The rank's own epoch counter, inside its exchange block.
struct DeviceState {
  unsigned long long epoch;
  unsigned int blocks_done;
  unsigned int reserved;
};

// What every launch needs: where each rank's block is mapped here.
struct Peers {
  int32_t rank = 0;
  int32_t nranks = 1;
  char *block[kMaxRanks] = {};  // each rank's exchange block (mine at [rank])
  uint64_t slot_bytes = 0;      // bytes of one input area (and one result area)
  uint64_t ll_slot_bytes = 0;   // bytes of one LL slot (twice the one-shot payload)
  Control *control = nullptr;   // device pointer of this rank's Control
  int64_t timeout_ns = -1;      // a wait's limit; negative waits for ever
  int32_t max_blocks = kMaxBlocks;
  int32_t dependent_launch = 0;  // launched with programmatic dependent launch (sm_90+)
  int32_t ll_threads = kThreads; // fewest threads per block of the LL one-shot (a multiple of 32)
  int32_t copy_blocks = 0;       // two-shot of 2+ rounds: copy-out blocks beside its workers (0: workers copy)
  int32_t max_rounds = 4;        // two-shot: most rounds of phase 2 (two_shot_rounds)
};

// All-reduce, reduce (out NULL on non-roots) and reduce-scatter. Chunks:
// the data of a launch is nranks chunks of `chunk` elements (the last may
// be shorter; total elements in all), chunk c read from in + c * in_stride.
struct ReduceArgs {
  const void *in = nullptr;
  void *out = nullptr;          // NULL: reduce only (a non-root of plx_reduce)
  uint64_t total = 0;           // elements of this launch
  uint64_t chunk = 0;           // two-shot: elements per rank's chunk
  uint64_t in_stride = 0;       // two-shot: elements between chunks in `in`
  int32_t dtype = 0;            // PLX_* dtype
  int32_t op = 0;               // PLX_SUM .. PLX_AVG
  int32_t scatter_only = 0;     // reduce-scatter: write my chunk to out, no all-gather phase
  int32_t coll = 0;             // PLX_COLL_* for error records
  // The one-shots (LL and LL128 lines): in and out are float32 buffers
  // whose values travel and are reduced as `dtype`, a half type (a wire
  // dtype): rounded on load, widened on store (kernels/wire_io.cuh).
  int32_t float32_io = 0;
  // Two-shot: the registration out lies in (0: none), posted to the peers
  // when this rank's acknowledged table holds it.
  uint64_t out_reg = 0;
  uint64_t out_slot = 0;
  uint64_t out_offset = 0;      // bytes from the registration's base to out
};

// One-shot: every rank writes its input as LL lines into its slot of every
// peer's LL area, then reduces every rank's lines in rank order as they
// arrive (bit-identical on every rank). total * esize must fit half an LL
// slot (the lines carry half data).
cudaError_t launch_one_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream);
// The same with LL128 lines (the tiles below) in the LL128 slots: half the
// bytes of LL. total * esize must fit ll128_capacity(ll_slot_bytes).
cudaError_t launch_one_shot_ll128(const Peers &peers, const ReduceArgs &args, cudaStream_t stream);
// LL128 two-shot: the tiles cut into nranks chunks; chunk q of every rank
// goes to rank q as lines (slot positions [0, per)), rank q reduces it in
// rank order and sends it back as lines (positions [per, 2 per)). Every
// rank gets the same bits. 2 * per tiles must fit an LL128 slot
// (ll128_two_shot_capacity).
cudaError_t launch_two_shot_ll128(const Peers &peers, const ReduceArgs &args, cudaStream_t stream);
// Bulk one-shot: every rank writes its whole input into its slot of every
// peer's input area, signals, waits, and reduces every rank's input in rank
// order into out (bit-identical on every rank). nranks * round_up(total,
// vector) * esize must fit one input area.
cudaError_t launch_one_shot_bulk(const Peers &peers, const ReduceArgs &args, cudaStream_t stream);
// Two-shot: rank r writes chunk q of its input into rank q's input area
// (slot r), signals; reduces chunk r from its own input area in rank order
// into out and into every rank's result area, in rounds, signalling each;
// every peer's reduced chunk is copied out of its own result area round by
// round as it arrives, by copy blocks beside the workers when
// peers.copy_blocks (peers whose output is registered get the chunk in
// place instead). chunk * esize must be a multiple of 16 when it is not the
// last launch's (the caller rounds it).
cudaError_t launch_two_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream);

// Byte copies through the input areas.
struct CopyArgs {
  const void *in = nullptr;     // this rank's input (broadcast: the root's only)
  void *out = nullptr;
  uint64_t bytes = 0;           // per rank, at most slot_bytes
  uint64_t out_stride = 0;      // all-gather: bytes between ranks' parts of out
  int32_t root = 0;             // broadcast
  int32_t coll = 0;
};
// Gather, one launch: every rank's piece (bytes[q], zero allowed) goes to
// the root, which copies it to out + displ[q]. Each non-root pushes its piece
// into its slot of the root's input area (at q * stride), the root copies
// its own straight to out (nothing in place); all signal and wait, then the
// root copies the peers' pieces out of its area. stride * nranks must fit
// one input area.
struct GatherArgs {
  const void *in = nullptr;  // this rank's piece
  void *out = nullptr;       // the root's recv (displ counts from here); unused elsewhere
  uint64_t stride = 0;
  uint64_t bytes[kMaxRanks] = {};
  uint64_t displ[kMaxRanks] = {};
  int32_t root = 0;
  int32_t coll = 0;
};
cudaError_t launch_gather(const Peers &peers, const GatherArgs &args, cudaStream_t stream);
cudaError_t launch_broadcast(const Peers &peers, const CopyArgs &args, cudaStream_t stream);
cudaError_t launch_all_gather(const Peers &peers, const CopyArgs &args, cudaStream_t stream);
// Every rank signals and waits for all (one block).
cudaError_t launch_barrier(const Peers &peers, int32_t coll, cudaStream_t stream);

// Bytes of one half of an exchange block (LL slots, LL128 slots, input
// and result areas), and of the whole block.
constexpr uint64_t half_bytes(uint64_t nranks, uint64_t ll_slot_bytes, uint64_t slot_bytes) {
  return 2 * nranks * ll_slot_bytes + 2 * slot_bytes;
}
constexpr uint64_t block_bytes(uint64_t nranks, uint64_t ll_slot_bytes, uint64_t slot_bytes) {
  return kHeaderBytes + 2 * half_bytes(nranks, ll_slot_bytes, slot_bytes);
}

// The two-shot's copy blocks beside `workers` worker blocks reducing in
// `rounds` rounds: `wanted` (Peers::copy_blocks), at most one per worker,
// none for one round (nothing to overlap); each copies the rounds of the
// workers w with w % copiers == its index.
constexpr unsigned copy_blocks_for(unsigned workers, int32_t wanted, uint32_t rounds) {
  if (wanted <= 0 || rounds < 2) return 0;
  return static_cast<unsigned>(wanted) < workers ? static_cast<unsigned>(wanted) : workers;
}

// Elements (of dtype) that a 16-byte vector holds.
constexpr uint64_t vector_elems(uint64_t esize) { return 16 / esize; }

// The partition arithmetic the kernels use, constexpr so that host code
// (the CPU tests) runs exactly the same (nvcc: --expt-relaxed-constexpr).

// [begin, end) of block b's share of n units, in multiples of `align` units.
struct Range {
  uint64_t begin, end;
};
constexpr Range share_of(uint64_t n, uint64_t align, uint32_t b, uint32_t blocks) {
  const uint64_t per = ((n + blocks - 1) / blocks + align - 1) / align * align;
  const uint64_t begin = per * b < n ? per * b : n;
  return {begin, begin + per < n ? begin + per : n};
}

// The two-shot's phase 2 goes in rounds, each signalled apart, so that the
// copy-out of a round overlaps the reduction of the next. A block copies out
// what its peers reduced, widest share (block 0's, bytes of one chunk) times
// `peers` (nranks - 1); from kRoundsFromBytes of that, its share goes in as
// many rounds of kRoundMinBytes as it holds, at most max_rounds
// (Peers::max_rounds, at most kMaxRounds); below, one. Each signal is a
// system-scope release that waits for the block's stores to land (2-3 us
// under load on 4 H100), so rounds pay only where the copy-out they hide
// is long. Measured with 128 blocks: on 4 H100, 8 to 32 MiB (192 KiB a block
// to copy) as fast or faster in one round, 64 and 128 MiB (384 KiB) faster
// in 4; on 2 H100, 32 MiB (128 KiB) 113.8 us in one round against 120.4 in
// 4, 64 MiB (256 KiB) 217.1 against 215.3. Round r of a share is
// share_of(share, vector, r, rounds) within it.
constexpr uint32_t kMaxRounds = 8;
constexpr uint64_t kRoundMinBytes = uint64_t{32} << 10;
constexpr uint64_t kRoundsFromBytes = uint64_t{256} << 10;
constexpr uint32_t two_shot_rounds(uint64_t widest_share_bytes, uint64_t peers, int32_t max_rounds) {
  const uint64_t most = max_rounds < 1 ? 1 : max_rounds > static_cast<int32_t>(kMaxRounds) ? kMaxRounds : max_rounds;
  const bool long_copy = widest_share_bytes * peers >= kRoundsFromBytes;
  const uint64_t n = long_copy ? widest_share_bytes / kRoundMinBytes : 1;
  return static_cast<uint32_t>(n > most ? most : n < 1 ? 1 : n);
}

// Elements of chunk c of a two-shot launch (the last may be short or empty).
constexpr uint64_t chunk_len(uint64_t chunk, uint64_t total, uint64_t c) {
  return chunk * c >= total ? 0 : (total - chunk * c < chunk ? total - chunk * c : chunk);
}

// The two LL lines of vector i of a one-shot launch of `vecs` vectors: each
// run of 32 vectors stores its low halves as 32 consecutive lines, then its
// high halves, so one warp's store is 512 contiguous bytes (whole sectors
// over NVLink) rather than every other 16 bytes; a short last run stays
// dense, so the lines are exactly [0, 2 * vecs).
struct LinePair {
  uint64_t lo, hi;
};
constexpr LinePair ll_lines(uint64_t i, uint64_t vecs) {
  const uint64_t run = i / 32 * 32, in_run = vecs - run < 32 ? vecs - run : 32;
  return {run + i, run + i + in_run};
}

// The LL one-shot's grid for `vecs` 16-byte vectors: one vector per thread,
// blocks of `min_threads` spread over up to max_blocks SMs (one SM's
// stores over NVLink are the limit of a small message), and blocks grow to
// kThreads when that is not enough.
struct LLGrid {
  unsigned blocks, threads;
};
constexpr LLGrid ll_grid(uint64_t vecs, int32_t max_blocks, int32_t min_threads) {
  const uint64_t limit = max_blocks < 1 ? 1 : max_blocks > kMaxBlocks ? kMaxBlocks : static_cast<uint64_t>(max_blocks);
  const uint64_t floor = min_threads < 32 ? 32 : min_threads > kThreads ? kThreads : static_cast<uint64_t>(min_threads);
  uint64_t blocks = (vecs + floor - 1) / floor;
  blocks = blocks < 1 ? 1 : blocks > limit ? limit : blocks;
  uint64_t threads = ((vecs + blocks - 1) / blocks + 31) / 32 * 32;
  threads = threads < floor ? floor : threads > kThreads ? kThreads : threads;
  return {static_cast<unsigned>(blocks), static_cast<unsigned>(threads)};
}

// LL128 tiles: a warp's 32 lanes store 512 bytes, four 128-byte lines of
// 120 data bytes (lanes 0-6 of a line carry 16 data bytes, lane 7 carries 8
// and the flag), so tile t holds data bytes [480 t, 480 t + 480).
constexpr uint64_t kLL128LineData = 120;
constexpr uint64_t kLL128TileData = 4 * kLL128LineData;
constexpr uint64_t kLL128TileBytes = 512;
constexpr uint64_t ll128_tiles(uint64_t data_bytes) { return (data_bytes + kLL128TileData - 1) / kLL128TileData; }
// Data bytes one launch may carry in an LL128 slot of slot_bytes.
constexpr uint64_t ll128_capacity(uint64_t slot_bytes) { return slot_bytes / kLL128TileBytes * kLL128TileData; }
// Data bytes one LL128 two-shot launch may carry: nranks chunks of at most
// half a slot's tiles each.
constexpr uint64_t ll128_two_shot_capacity(uint64_t slot_bytes, uint64_t nranks) {
  return nranks * (slot_bytes / (2 * kLL128TileBytes)) * kLL128TileData;
}

// Lane `lane`'s data bytes of tile `tile`: [begin, begin + bytes), 8-byte
// aligned, so every piece holds whole elements of every dtype.
struct LanePiece {
  uint64_t begin;
  uint32_t bytes;
};
constexpr LanePiece ll128_piece(uint64_t tile, uint32_t lane) {
  const uint32_t line = lane / 8, j = lane % 8;
  return {tile * kLL128TileData + line * kLL128LineData + j * 16, j < 7 ? 16u : 8u};
}

// Thread blocks of a launch moving `bytes` per rank: one per kThreads
// 16-byte vectors, 1 .. min(max_blocks, kMaxBlocks).
constexpr unsigned blocks_for(uint64_t bytes, int32_t max_blocks) {
  const uint64_t per_block = uint64_t{kThreads} * 16;
  const uint64_t limit = max_blocks < 1 ? 1 : max_blocks > kMaxBlocks ? kMaxBlocks : static_cast<uint64_t>(max_blocks);
  const uint64_t blocks = (bytes + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks > limit ? limit : blocks);
}

}  // namespace plexus::kernels

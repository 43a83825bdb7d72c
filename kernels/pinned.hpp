// The launch interface of pinned-host's kernels (kernels/pinned_*.cu):
// plain C++, no CUDA syntax, so the plugin (host compiler) and the CPU
// tests use the same layout and plans the kernels use.
//
// Every rank of a communicator maps one shared host segment, registered
// with CUDA (portable, mapped); kernels reach it through the device alias.
//
//   [0, 4 KiB)                  SegmentHeader; its abort word at 128
//   rank r at kHeaderBytes + r * rank_bytes:
//     control (page-rounded)    ErrorRecord, LL ack, then one 64-byte line
//                               per flag: posted[S], reduced[S], done[S],
//                               jobs_done; the CPU helper's job ring; the
//                               copy engines' ce_posted[C], ce_done[C]
//     LL area                   two halves (epoch parity), 16-byte lines
//     ring                      S stages of stage_bytes
//     copy area                 C chunks of ce_bytes (none when C is 0)
//
// Bulk protocol. Every collective is a sequence of steps; all ranks number
// them alike from a counter in device memory (State.step), so graphs replay.
// Step n uses stage n % S of every rank's ring. A rank writes its stage s
// for step n only when every peer has published done[s] >= n + 1 - S (it
// has finished reading step n - S); it then publishes posted[s] = n + 1
// (kSkip added when it contributes nothing). Readers wait for posted[s] >=
// n + 1, read, and publish done[s] = n + 1. Two-shot (and the CPU helper)
// adds reduced[s] for the second phase. Values only grow, so no flag is
// ever reset.
//
// Low-latency (LL) protocol. 8 payload bytes travel with two copies of a
// 32-bit tag in one 16-byte line (each 8-byte half, data and tag, lands in
// one store); readers poll the line itself. Epoch e (State.ll_epoch + 1)
// uses half e % 2, so a writer may reuse a half once every peer has acked
// epoch e - 2 (ack word, or known from having read every peer's e - 1).
//
// Waits spin on ld.acquire.sys (LL: ld.volatile); every kCheckSpins polls
// they read the abort word every rank sees and the deadline (globaltimer,
// timeout_ns after the wait began). A wait that times out records
// {peer, collective, tag} in its rank's ErrorRecord and sets the abort
// word, so every rank's kernels stop; the watchdogs turn that into the
// communicator's sticky status.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace plexus::kernels::pinned {

constexpr int kMaxRanks = 16;
constexpr int kMaxStages = 64;
constexpr int kThreads = 512;
constexpr int kMaxBlocks = 64;
constexpr uint64_t kFlagBytes = 64;          // one flag per line: ranks poll different lines
constexpr uint64_t kPage = 4096;
constexpr uint64_t kHeaderBytes = kPage;
constexpr uint64_t kAbortOffset = 128;       // the abort word, in the header
constexpr uint64_t kSkip = uint64_t{1} << 63;  // posted[s]: this rank adds nothing
constexpr uint64_t kMinStepBytes = 16 << 10;   // below this, more blocks do not pay
// A wait looks at the clock after its first failed poll and then every
// kCheckSpins polls (a power of two; a poll of host memory takes about a
// microsecond over PCIe); at the abort word only once it has waited
// Channel.abort_check_ns, then every abort_check_ns (one lane per warp):
// that word is one host address, and reads of it from many warps queue
// behind each other.
constexpr uint32_t kCheckSpins = 64;
constexpr uint64_t kMagic = 0x31306e6970786c70ull;  // "plxpin01"
constexpr uint32_t kErrorNone = 0;
constexpr uint32_t kErrorTimeout = 1;

constexpr uint64_t round_up(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }
constexpr uint64_t div_up(uint64_t x, uint64_t by) { return (x + by - 1) / by; }
constexpr uint64_t min_u(uint64_t a, uint64_t b) { return a < b ? a : b; }
constexpr uint64_t max_u(uint64_t a, uint64_t b) { return a > b ? a : b; }

// The first bytes of the segment: written by rank 0, checked by the others.
struct SegmentHeader {
  uint64_t magic;
  uint32_t nranks;
  uint32_t stages;
  uint64_t stage_bytes;
  uint64_t ll_bytes;
  uint64_t segment_bytes;
  uint64_t ce_bytes;
  uint32_t ce_stages;
  uint32_t reserved0;
};

// A rank's record of its kernels' first failed wait, read by its own
// watchdog and, once the abort word is set, by the peers' (a peer whose
// kernels stopped may look before this rank has posted the failure). error
// is written last.
struct ErrorRecord {
  uint32_t error;       // kErrorNone or kErrorTimeout
  int32_t waited_rank;  // the peer the wait was for
  int32_t coll;         // PLX_COLL_* of the launch
  int32_t reserved;
  uint64_t tag;         // the step (bulk) or epoch (LL) it waited in
};

// One all-reduce or reduce for the CPU helper (one line of the job ring):
// its steps, as the kernel numbered them. seq (job number + 1) is written last.
struct CpuJob {
  uint64_t seq;
  uint64_t base;   // its first step
  uint64_t steps;
  uint64_t count;  // elements
  uint64_t step;   // elements per step (a two-shot plan: nranks parts)
  int32_t wire;    // the dtype the stages hold, which the helper reduces in
  int32_t op;
  int32_t coll;
  int32_t reserved0;
  uint64_t reserved1;
};
static_assert(sizeof(CpuJob) == kFlagBytes, "a job is one line");

// What the segment holds; every rank computes the same from its parameters.
struct Layout {
  uint32_t nranks = 1;
  uint32_t stages = 16;
  uint64_t stage_bytes = 256 << 10;  // a multiple of kPage
  uint64_t ll_bytes = 64 << 10;      // LL payload of one half, a multiple of 8
  uint32_t ce_stages = 0;            // chunks of the copy area (0: no copy-engine path)
  uint64_t ce_bytes = 0;             // bytes of one chunk, a multiple of kPage
};
constexpr uint32_t kMaxCeStages = 16;

constexpr uint64_t posted_offset(uint32_t s) { return 2 * kFlagBytes + s * kFlagBytes; }
constexpr uint64_t reduced_offset(const Layout &l, uint32_t s) { return posted_offset(l.stages + s); }
constexpr uint64_t done_offset(const Layout &l, uint32_t s) { return posted_offset(2 * l.stages + s); }
constexpr uint64_t kErrorOffset = 0;
constexpr uint64_t kAckOffset = kFlagBytes;
// The CPU helper's job ring (CpuJob): the rank's kernels write job j into
// slot j % kJobSlots once its helper has published jobs_done >= j + 1 -
// kJobSlots.
constexpr uint32_t kJobSlots = 32;
constexpr uint64_t jobs_done_offset(const Layout &l) { return posted_offset(3 * l.stages); }
constexpr uint64_t job_offset(const Layout &l, uint64_t j) { return posted_offset(3 * l.stages + 1 + j % kJobSlots); }
// The copy-engine path's flags (host-numbered chunks, pinned_ce.cu).
constexpr uint64_t ce_posted_offset(const Layout &l, uint32_t c) { return posted_offset(3 * l.stages + 1 + kJobSlots + c); }
constexpr uint64_t ce_done_offset(const Layout &l, uint32_t c) {
  return posted_offset(3 * l.stages + 1 + kJobSlots + kMaxCeStages + c);
}
constexpr uint64_t control_bytes(const Layout &l) {
  return round_up(posted_offset(3 * l.stages + 1 + kJobSlots + 2 * kMaxCeStages), kPage);
}
// An LL half: 16 bytes of line for every 8 payload bytes.
constexpr uint64_t ll_half_bytes(const Layout &l) { return round_up(2 * l.ll_bytes, kPage); }
constexpr uint64_t ll_offset(const Layout &l) { return control_bytes(l); }
constexpr uint64_t ring_offset(const Layout &l) { return ll_offset(l) + 2 * ll_half_bytes(l); }
constexpr uint64_t ce_offset(const Layout &l) { return ring_offset(l) + l.stages * l.stage_bytes; }
constexpr uint64_t rank_bytes(const Layout &l) { return ce_offset(l) + l.ce_stages * l.ce_bytes; }
constexpr uint64_t segment_bytes(const Layout &l) { return kHeaderBytes + l.nranks * rank_bytes(l); }
constexpr uint64_t ll_lines(const Layout &l) { return l.ll_bytes / 8; }

// This rank's counters, in device memory (zeroed at init).
struct State {
  unsigned long long step;      // the next bulk step
  unsigned long long ll_epoch;  // the last LL epoch
  unsigned long long ll_known;  // every peer has finished reading LL epochs up to this
  unsigned long long job;       // the next CPU-helper job
  unsigned int blocks_done;     // blocks of the running launch that finished
  unsigned int reserved;
};

// What every launch needs.
struct Channel {
  char *seg = nullptr;     // device alias of the segment
  State *state = nullptr;  // this rank's counters (device memory)
  Layout layout;
  uint64_t rank_bytes = 0;
  int32_t rank = 0;
  int32_t nranks = 1;
  int64_t timeout_ns = -1;  // a wait's limit; negative waits for ever
  int32_t max_blocks = 32;
  int32_t ll_blocks = 16;  // most blocks of an LL launch
  uint64_t abort_check_ns = 100000;  // a wait reads the abort word after this long, then this often
};

// How a collective is cut into steps (bulk) and launched.
struct Plan {
  uint64_t step = 0;   // elements (bytes for copies) per step
  uint64_t steps = 0;
  uint32_t blocks = 0;
};

// Reductions. Wire: a float32 buffer may travel as bfloat16 or float16
// (wire != dtype); every contribution, the rank's own included, and the
// result are then rounded to the wire type, so all ranks get the same bits.
struct ReduceArgs {
  const void *in = nullptr;  // NULL when the rank contributes nothing
  void *out = nullptr;       // NULL: no result here (a non-root of reduce)
  uint64_t count = 0;        // elements; reduce-scatter: of each rank's block
  Plan plan;
  int32_t dtype = 0;
  int32_t wire = 0;          // the dtype on the wire (== dtype: unconverted)
  int32_t op = 0;
  int32_t coll = 0;          // PLX_COLL_* for error records
  int32_t contributes = 1;
  int32_t scatter = 0;       // LL: reduce-scatter (nranks segments)
};

// Copies: broadcast (root writes), all-gather (everyone), gather (everyone
// writes, root reads), barrier (LL, nothing). bytes[q] is rank q's part,
// displ[q] where it goes in out.
constexpr int32_t kBroadcast = 0;
constexpr int32_t kAllGather = 1;
constexpr int32_t kGather = 2;
constexpr int32_t kBarrier = 3;
struct CopyArgs {
  const void *in = nullptr;
  void *out = nullptr;
  uint64_t bytes[kMaxRanks] = {};
  uint64_t displ[kMaxRanks] = {};
  Plan plan;
  int32_t mode = kBroadcast;
  int32_t root = 0;
  int32_t coll = 0;
  int32_t reserved = 0;
};

// LL: every rank writes its payload, the readers poll it (one launch).
cudaError_t launch_ll_reduce(const Channel &c, const ReduceArgs &a, cudaStream_t stream);
cudaError_t launch_ll_copy(const Channel &c, const CopyArgs &a, cudaStream_t stream);
// Bulk, through the rings.
cudaError_t launch_one_shot(const Channel &c, const ReduceArgs &a, cudaStream_t stream);
cudaError_t launch_two_shot(const Channel &c, const ReduceArgs &a, cudaStream_t stream);
cudaError_t launch_reduce_scatter(const Channel &c, const ReduceArgs &a, cudaStream_t stream);
cudaError_t launch_copy(const Channel &c, const CopyArgs &a, cudaStream_t stream);
// CPU helper (all-reduce, reduce; a.plan from plan_two_shot): every rank
// stages its input (the identity when it adds nothing) and posts a CpuJob;
// rank r's helper thread reduces part r of every step over all ranks into
// that part of rank r's stage and publishes reduced[s]; the GPUs copy every
// part out.
cudaError_t launch_cpu_star(const Channel &c, const ReduceArgs &a, cudaStream_t stream);

// Copy engines (pinned_ce.cu; all-reduce and reduce, eager calls). The
// host numbers the chunks (no graph ever holds one) and enqueues, per chunk
// m in copy slot m % C: on a second stream, a wait until the peers have
// read chunk m - C from this rank's slot (ce_done), the copy of the input
// into it, and ce_posted = m + 1; on the caller's stream, a wait for every
// rank's ce_posted (its own too: in place, the reduction overwrites what
// its upload reads), copies of the peers' slots into device scratch, and
// the reduction in rank order, whose last block publishes ce_done = m + 1.
// One block waits for flag `offset` of the ranks in `mask` to reach want.
cudaError_t launch_ce_wait(const Channel &c, uint64_t offset, uint32_t mask, uint64_t want, int32_t coll,
                           cudaStream_t stream);
// Publishes this rank's flag `offset` = value (after the stream's copies).
cudaError_t launch_ce_post(const Channel &c, uint64_t offset, uint64_t value, cudaStream_t stream);
struct CeReduceArgs {
  const void *in = nullptr;  // this rank's chunk (device); NULL: adds nothing
  void *out = nullptr;       // NULL: no result here (a non-root of reduce)
  char *scratch = nullptr;   // device: rank q's copy at scratch + q * slot_bytes
  uint64_t slot_bytes = 0;
  uint64_t count = 0;        // elements of the chunk
  uint64_t chunk = 0;        // its number m (ce_done = m + 1; kSkip read from ce_posted)
  int32_t dtype = 0;
  int32_t op = 0;
  int32_t coll = 0;
  int32_t reserved = 0;
};
cudaError_t launch_ce_reduce(const Channel &c, const CeReduceArgs &a, cudaStream_t stream);

// ---- Plans: pure arithmetic, the same on every rank (and in the tests) ----

// Elements of one 16-byte pack on the wire.
constexpr uint64_t pack_elems(uint64_t wire_size) { return 16 / wire_size; }

// Blocks that run in parallel: one per stage at most.
constexpr uint32_t parallel_steps(const Layout &l, int32_t max_blocks) {
  return static_cast<uint32_t>(min_u(l.stages, max_u(1, static_cast<uint64_t>(max_blocks))));
}

// Units per step: an even share for every block, aligned, at least min
// units, at most max (max a multiple of align).
constexpr uint64_t fit_step(uint64_t total, uint64_t align, uint64_t min_units, uint64_t max_units, uint32_t want) {
  const uint64_t share = round_up(div_up(total, want), align);
  return min_u(max_u(share, round_up(min_units, align)), max_units);
}

constexpr Plan make_plan(uint64_t total, uint64_t step, uint32_t want) {
  const uint64_t steps = total == 0 ? 0 : div_up(total, step);
  return {step, steps, static_cast<uint32_t>(min_u(steps, want))};
}

// One-shot: steps of whole packs; every rank writes all, reads all.
constexpr Plan plan_one_shot(const Layout &l, int32_t max_blocks, uint64_t count, uint64_t ws) {
  const uint64_t pack = pack_elems(ws);
  const uint64_t step = fit_step(count, pack, kMinStepBytes / ws, l.stage_bytes / ws, parallel_steps(l, max_blocks));
  return make_plan(count, step, parallel_steps(l, max_blocks));
}

// Two-shot: a step is nranks parts of packs (part_of), so every part starts
// on a pack in the stage.
constexpr Plan plan_two_shot(const Layout &l, int32_t max_blocks, uint64_t count, uint64_t ws) {
  const uint64_t unit = pack_elems(ws) * l.nranks;
  const uint64_t max_step = l.stage_bytes / ws / unit * unit;
  const uint64_t step = fit_step(count, unit, kMinStepBytes / ws, max_step, parallel_steps(l, max_blocks));
  return make_plan(count, step, parallel_steps(l, max_blocks));
}

// Elements of each part of a two-shot step of `len` elements.
constexpr uint64_t part_elems(uint64_t len, uint32_t nranks, uint64_t ws) {
  return round_up(div_up(len, nranks), pack_elems(ws));
}

struct Range {
  uint64_t begin, end;
};
constexpr Range part_of(uint64_t len, uint64_t part, uint32_t r) {
  const uint64_t b = min_u(part * r, len);
  return {b, min_u(b + part, len)};
}

// Reduce-scatter: a step covers `step` elements of every rank's block; the
// stage holds nranks segments of `step` elements (a whole number of packs).
constexpr Plan plan_reduce_scatter(const Layout &l, int32_t max_blocks, uint64_t count, uint64_t ws) {
  const uint64_t pack = pack_elems(ws);
  const uint64_t max_step = l.stage_bytes / ws / l.nranks / pack * pack;
  const uint64_t step = fit_step(count, pack, kMinStepBytes / ws / l.nranks, max_step, parallel_steps(l, max_blocks));
  return make_plan(count, step, parallel_steps(l, max_blocks));
}

// Copies: steps of bytes (16-byte aligned) of the largest part.
constexpr Plan plan_copy(const Layout &l, int32_t max_blocks, uint64_t largest_part) {
  const uint64_t step = fit_step(largest_part, 16, kMinStepBytes, l.stage_bytes, parallel_steps(l, max_blocks));
  return make_plan(largest_part, step, parallel_steps(l, max_blocks));
}

// LL: lines (8 payload bytes) of `elems` wire elements, and the blocks that
// cover `lines` lines with one line per thread, at most max_blocks; beyond
// that a thread takes batches of kLLBatch lines, whose loads fly together.
constexpr int kLLBatch = 4;
constexpr uint64_t ll_lines_for(uint64_t elems, uint64_t ws) { return div_up(elems * ws, 8); }
constexpr uint32_t ll_blocks(uint64_t lines, int32_t max_blocks) {
  const uint64_t b = max_u(1, div_up(lines, kThreads));
  return static_cast<uint32_t>(min_u(b, min_u(kMaxBlocks, max_u(1, static_cast<uint64_t>(max_blocks)))));
}

// Lines of the batch of thread t (of `threads`) that starts at line base
// (t, then t + kLLBatch * threads, ...): base, base + threads, ... below end.
constexpr uint32_t ll_batch_lines(uint64_t base, uint64_t threads, uint64_t end) {
  return base >= end ? 0u : static_cast<uint32_t>(min_u(kLLBatch, div_up(end - base, threads)));
}

// The 32-bit tag of LL epoch e: never 0, so a line never written (zero)
// matches no epoch.
constexpr uint32_t ll_tag(uint64_t e) { return static_cast<uint32_t>(e % 0xFFFFFFFFull) + 1u; }

}  // namespace plexus::kernels::pinned

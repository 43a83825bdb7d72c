// The all-reduce kernels over peer-mapped exchange blocks (the protocol is
// in kernels.hpp): a one-shot of LL lines for small messages, a bulk
// one-shot (whole inputs pushed, one exchange) for middle sizes and a
// two-shot (reduce-scatter, then all-gather) for large ones; reduce (out NULL on
// non-roots) and reduce-scatter (two-shot's first half) use them too. Data
// moves by stores into the peers' memory: a store over NVLink is posted,
// a load is a round trip, so writers push and readers read locally.
#include "kernels/device_common.cuh"
#include "kernels/module_anchor.cuh"
#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"
#include "kernels/wire_io.cuh"

namespace plexus::kernels {
namespace device {
namespace {

// Spins until the LL line carries `flag` in both halves; false when the
// wait gave up (deadline, host abort, another thread's error).
__device__ __forceinline__ bool ll_wait(const uint4 *line, uint32_t flag, uint4 *out, const Peers &p, int src,
                                     int32_t coll, uint64_t epoch) {
  uint64_t started = 0;
  for (uint32_t spin = 1;; ++spin) {
    const uint4 v = ld_volatile_v4(line);
    if (v.y == flag && v.w == flag) {
      *out = v;
      return true;
    }
    if (!keep_waiting(p, spin, &started, src, coll, epoch)) return false;
  }
}

// Vector i of rank src's input, from its LL lines in this rank's slot.
__device__ __forceinline__ bool ll_receive(const Peers &p, uint64_t epoch, int src, uint64_t i, uint64_t vecs,
                                           int32_t coll, uint4 *out) {
  const uint4 *slot = ll_slot(p, p.rank, epoch, src);
  const LinePair at = ll_lines(i, vecs);
  uint4 lo, hi;
  if (!ll_wait(slot + at.lo, static_cast<uint32_t>(epoch), &lo, p, src, coll, epoch)) return false;
  if (!ll_wait(slot + at.hi, static_cast<uint32_t>(epoch), &hi, p, src, coll, epoch)) return false;
  *out = make_uint4(lo.x, lo.z, hi.x, hi.z);
  return true;
}

// Vector i of this rank's input, as LL lines into its slot at every peer.
__device__ __forceinline__ void ll_send(const Peers &p, uint64_t epoch, uint64_t i, uint64_t vecs, uint4 x) {
  const auto flag = static_cast<uint32_t>(epoch);
  const uint4 lo = make_uint4(x.x, flag, x.y, flag), hi = make_uint4(x.z, flag, x.w, flag);
  const LinePair at = ll_lines(i, vecs);
  for (int q = 0; q < p.nranks; ++q) {
    if (q == p.rank) continue;
    uint4 *slot = ll_slot(p, q, epoch, p.rank);
    st_volatile_v4(slot + at.lo, lo);
    st_volatile_v4(slot + at.hi, hi);
  }
}

// Every thread sends its vectors first and only then waits, so no thread
// waits for a line whose sender is itself waiting. Wire: float32 buffers,
// E's half type on the lines (ReduceArgs::float32_io).
template <class E, int Op, bool Wire>
__global__ void __launch_bounds__(kThreads, 2) one_shot_kernel(Peers p, ReduceArgs a) {
  constexpr uint64_t V = 16 / sizeof(typename E::S);
  const uint64_t epoch = begin_epoch(p);
  const uint64_t vecs = (a.total + V - 1) / V, first = blockIdx.x * blockDim.x + threadIdx.x;
  const uint64_t step = uint64_t{gridDim.x} * blockDim.x;
  for (uint64_t i = first; i < vecs; i += step) ll_send(p, epoch, i, vecs, load_input<E, Wire>(a.in, i, a.total));
  bool ok = true;
  for (uint64_t i = first; ok && i < vecs; i += step) {
    VecReduce<E, Op> r;
    for (int q = 0; ok && q < p.nranks; ++q) {
      uint4 x = make_uint4(0, 0, 0, 0);
      if (q == p.rank) x = load_input<E, Wire>(a.in, i, a.total);
      else ok = ll_receive(p, epoch, q, i, vecs, a.coll, &x);
      r.add(x, q == 0);
    }
    if (ok && a.out != nullptr) store_result<E, Wire>(a.out, i, a.total, r.result(p.nranks));
  }
  end_epoch(p, epoch);
}

struct TwoShotLayout {
  uint64_t stride;  // elements between ranks' slots in the input and result areas
  Range share;      // this block's elements of every chunk
  uint32_t rounds;  // phase 2's pieces of the share, each signalled apart
  bool own_direct;  // this rank's chunk is read from the caller's input (aligned)
};

// Phase 2 signals its share in rounds (steps 1 .. rounds of the epoch).
static_assert(1 + kMaxRounds <= kStepsPerEpoch, "phase 1 and every round have a step");

// Phase 2's rounds with `workers` worker blocks: as many (at most
// p.max_rounds) as block 0's share allows, so every rank and every block
// counts the same rounds, and the launch picks its kernel from the same count.
template <class S>
__host__ __device__ uint32_t two_shot_round_count(const Peers &p, const ReduceArgs &a, unsigned workers) {
  constexpr uint64_t V = 16 / sizeof(S);
  return two_shot_rounds(share_of(a.chunk, V, 0, workers).end * sizeof(S), p.nranks - 1, p.max_rounds);
}

// Worker block `worker` of `workers`: its share of every chunk, cut into
// two_shot_round_count rounds.
template <class S>
__device__ TwoShotLayout two_shot_layout(const Peers &p, const ReduceArgs &a, unsigned worker, unsigned workers) {
  constexpr uint64_t V = 16 / sizeof(S);
  TwoShotLayout l;
  l.stride = (a.chunk + V - 1) / V * V;
  l.share = share_of(a.chunk, V, worker, workers);
  l.rounds = two_shot_round_count<S>(p, a, workers);
  l.own_direct = (reinterpret_cast<uintptr_t>(static_cast<const S *>(a.in) + p.rank * a.in_stride) & 15) == 0;
  return l;
}

// Round r's elements of every chunk: a piece of the share, vector-aligned.
template <class S>
__device__ __forceinline__ Range round_of(const TwoShotLayout &l, uint32_t r) {
  const Range piece = share_of(l.share.end - l.share.begin, 16 / sizeof(S), r, l.rounds);
  return {l.share.begin + piece.begin, l.share.begin + piece.end};
}

template <class S>
__device__ __forceinline__ const S *chunk_of_input(const ReduceArgs &a, int q, uint64_t begin) {
  return static_cast<const S *>(a.in) + q * a.in_stride + begin;
}

// Phase 1: chunk q of this block's share goes to rank q's input area, in
// the slot of this rank (this rank's own chunk too, unless read in place).
template <class S>
__device__ void scatter_chunks(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l) {
  for (int k = 1; k <= p.nranks; ++k) {  // the peers from the next one up, this rank's own chunk last
    const int q = rotated_peer(p, k);
    const uint64_t end = min(l.share.end, chunk_len(a.chunk, a.total, q));
    if (end <= l.share.begin || (q == p.rank && l.own_direct)) continue;
    copy_bytes(area(p, q, epoch, false) + (p.rank * l.stride + l.share.begin) * sizeof(S),
               reinterpret_cast<const char *>(chunk_of_input<S>(a, q, l.share.begin)),
               (end - l.share.begin) * sizeof(S), false);
  }
}

// Whether this launch posts out's registration: block 0's thread 0 reads
// this rank's acknowledged table once, before its phase 1, and stores the
// answer with the epoch; the other blocks' thread 0 take that answer after
// their phase 1 (by when it is long written), so the blocks of one launch
// never differ even when the host writes the table meanwhile. -1: the wait
// gave up (an abort, another block's error).
__device__ int decide_posting(const Peers &p, const ReduceArgs &a, uint64_t epoch) {
  if (a.out_reg == 0 || a.out == nullptr || a.scatter_only) return 0;
  const volatile uint64_t *acked = reinterpret_cast<const uint64_t *>(p.block[p.rank] + kRegAckedOffset);
  const int answer = acked[a.out_slot % kRegSlots] == a.out_reg ? 1 : 0;
  st_release_gpu(reinterpret_cast<uint64_t *>(p.block[p.rank] + kRegDecisionOffset), 2 * epoch + answer);
  return answer;
}

__device__ int follow_posting(const Peers &p, const ReduceArgs &a, uint64_t epoch) {
  if (a.out_reg == 0 || a.out == nullptr || a.scatter_only) return 0;
  const uint64_t *word = reinterpret_cast<const uint64_t *>(p.block[p.rank] + kRegDecisionOffset);
  uint64_t v = 0, started = 0;
  for (uint32_t spin = 1; ((v = ld_acquire_gpu(word)) >> 1) != epoch; ++spin)
    if (!keep_waiting(p, spin, &started, p.rank, a.coll, epoch)) return -1;
  return static_cast<int>(v & 1);
}

// Phase 1's post, by each block (block b of a peer reads it after waiting
// for block b): this rank's registered output, or none, in its slot at
// every peer.
__device__ void post_output(const Peers &p, const ReduceArgs &a, uint64_t epoch, bool posted) {
  if (threadIdx.x != 0 || a.scatter_only) return;
  const OutputPost post{epoch, posted ? a.out_reg : 0, a.out_slot, a.out_offset};
  for (int q = 0; q < p.nranks; ++q)
    if (q != p.rank) posts_of(p.block[q], epoch)[p.rank] = post;
}

// After phase 1's wait: rank q's registered output (its chunk 0) as mapped
// here, or NULL for its result area. A post of a registration this rank
// never mapped breaks the protocol: recorded for the watchdog.
__device__ char *peer_output(const Peers &p, const ReduceArgs &a, uint64_t epoch, int q) {
  const volatile OutputPost *post = posts_of(p.block[p.rank], epoch) + q;
  const uint64_t id = post->reg_id;
  if (post->epoch != epoch || id == 0) return nullptr;
  const RegSlot *slot = reg_slots_of(p.block[p.rank]) + q * kRegSlots + post->slot % kRegSlots;
  if (ld_acquire_sys(&slot->id) != id) {
    record_error(p.control, kErrorRegistry, q, a.coll, epoch);
    return nullptr;
  }
  return reinterpret_cast<char *>(*reinterpret_cast<const volatile uint64_t *>(&slot->base)) + post->offset;
}

// Phase 2 for one round: this rank's chunk (the piece's elements) reduced
// in rank order into out and, for every peer, into its registered output
// (outputs[q]) or this rank's slot of its result area.
template <class E, int Op>
__device__ void reduce_own_piece(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l,
                                 Range piece, char *const *outputs) {
  using S = typename E::S;
  const uint64_t n = piece.end - piece.begin, at = p.rank * l.stride + piece.begin;
  const S *src[kMaxRanks];
  for (int q = 0; q < p.nranks; ++q)
    src[q] = q == p.rank && l.own_direct
                 ? chunk_of_input<S>(a, q, piece.begin)
                 : reinterpret_cast<const S *>(area(p, p.rank, epoch, false)) + q * l.stride + piece.begin;
  S *out = a.out == nullptr ? nullptr
                            : static_cast<S *>(a.out) + (a.scatter_only ? 0 : p.rank * a.chunk) + piece.begin;
  const uint64_t vecs = (n + VecReduce<E, Op>::V - 1) / VecReduce<E, Op>::V;
  for (uint64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
    VecReduce<E, Op> r;
    for (int q = 0; q < p.nranks; ++q) r.add(load_vec(src[q], i, n, q != p.rank || !l.own_direct), q == 0);
    const uint4 v = r.result(p.nranks);
    if (out != nullptr) store_vec(out, i, n, v);
    if (a.scatter_only) continue;
    for (int k = 1; k < p.nranks; ++k) {
      const int q = rotated_peer(p, k);
      if (outputs[q] != nullptr) store_vec(reinterpret_cast<S *>(outputs[q]) + p.rank * a.chunk + piece.begin, i, n, v);
      else reinterpret_cast<uint4 *>(reinterpret_cast<S *>(area(p, q, epoch, true)) + at)[i] = v;
    }
  }
}

// The rounds kernel's calls of the loops above, kept out of line: inlined
// into one kernel with the copy blocks' path they spilled 130-250 bytes of
// registers under the 64 that two blocks per SM allow; apart, each loop
// runs without spills. (The one-round kernel inlines them, as before the
// rounds: out of line they cost it 5 us at 8 MiB on 4 H100.)
template <class S>
__device__ __noinline__ void scatter_chunks_apart(const Peers &p, const ReduceArgs &a, uint64_t epoch,
                                                  const TwoShotLayout &l) {
  scatter_chunks<S>(p, a, epoch, l);
}

template <class E, int Op>
__device__ __noinline__ void reduce_own_piece_apart(const Peers &p, const ReduceArgs &a, uint64_t epoch,
                                                    const TwoShotLayout &l, Range piece, char *const *outputs) {
  reduce_own_piece<E, Op>(p, a, epoch, l, piece, outputs);
}

// Whether every peer posted its registered output: then each waits only
// for the last round's signal (copy_rounds), and a signal per round, a
// system-scope release that drains the block's stores, buys nothing.
__device__ __forceinline__ bool every_peer_posted(const Peers &p, const ReduceArgs &a, char *const *outputs) {
  if (a.scatter_only) return false;
  for (int q = 0; q < p.nranks; ++q)
    if (q != p.rank && outputs[q] == nullptr) return false;
  return true;
}

// Phases 1 and 2 of worker block b: the chunks pushed, one exchange, then
// this rank's chunk reduced round by round, each round signalled (step 1 +
// r) once its results are stored. *posting: whether out's registration was
// posted (1), not (0), or the wait for block 0's decision gave up (-1).
// False when a wait gave up. Apart: the loops out of line.
template <bool Apart, class E, int Op>
__device__ bool reduce_rounds(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l,
                              int *posting) {
  using S = typename E::S;
  if (threadIdx.x == 0 && blockIdx.x == 0) *posting = decide_posting(p, a, epoch);
  if constexpr (Apart) scatter_chunks_apart<S>(p, a, epoch, l);
  else scatter_chunks<S>(p, a, epoch, l);
  if (threadIdx.x == 0 && blockIdx.x != 0) *posting = follow_posting(p, a, epoch);
  post_output(p, a, epoch, *posting == 1);  // thread 0's own answer
  signal_peers(p, signal_value(epoch, 0));
  if (!wait_peers(p, signal_value(epoch, 0), a.coll, epoch) || *posting < 0) return false;
  __shared__ char *outputs[kMaxRanks];
  if (threadIdx.x < p.nranks)
    outputs[threadIdx.x] = !a.scatter_only && threadIdx.x != p.rank ? peer_output(p, a, epoch, threadIdx.x) : nullptr;
  __syncthreads();
  const uint64_t mine = chunk_len(a.chunk, a.total, p.rank);
  const bool whole = every_peer_posted(p, a, outputs);  // then the share in one piece, the last round's signal
  for (uint32_t r = whole ? l.rounds - 1 : 0; r < l.rounds; ++r) {
    const Range piece = whole ? l.share : round_of<S>(l, r);
    const Range own{piece.begin, min(piece.end, mine)};
    if (own.end > own.begin && Apart) reduce_own_piece_apart<E, Op>(p, a, epoch, l, own, outputs);
    else if (own.end > own.begin) reduce_own_piece<E, Op>(p, a, epoch, l, own, outputs);
    if (!a.scatter_only) signal_peers(p, signal_value(epoch, 1 + r));
  }
  return true;
}

// Phase 3, round r of worker block `worker`'s share, once every peer's
// block `worker` signalled it: each peer's reduced piece from this rank's
// result area to out. With out's registration posted the peers stored it
// there and nothing is copied: the wait only keeps the kernel from ending
// before their stores. False when a wait gave up.
template <class S>
__device__ bool copy_round(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l,
                           unsigned worker, uint32_t r, bool posted) {
  const Range piece = round_of<S>(l, r);
  if (!wait_peers_of(p, worker, signal_value(epoch, 1 + r), a.coll, epoch)) return false;
  for (int k = 1; !posted && k < p.nranks; ++k) {
    const int q = rotated_peer(p, k);
    const uint64_t end = min(piece.end, chunk_len(a.chunk, a.total, q));
    if (end <= piece.begin) continue;
    copy_bytes(reinterpret_cast<char *>(static_cast<S *>(a.out) + q * a.chunk + piece.begin),
               area(p, p.rank, epoch, true) + (q * l.stride + piece.begin) * sizeof(S),
               (end - piece.begin) * sizeof(S), true);
  }
  return true;
}

// The rounds kernel's copy-out, out of line as the loops above.
template <class S>
__device__ __noinline__ bool copy_round_apart(const Peers &p, const ReduceArgs &a, uint64_t epoch,
                                              const TwoShotLayout &l, unsigned worker, uint32_t r, bool posted) {
  return copy_round<S>(p, a, epoch, l, worker, r, posted);
}

// Phase 3 of the rounds kernel's workers w = first, first + step, ...
// below `workers`, round by round (only the last round when posted).
// Nothing for reduce's non-roots (no out), reduce-scatter, or when the
// posting wait gave up.
template <class S>
__device__ void copy_rounds(const Peers &p, const ReduceArgs &a, uint64_t epoch, unsigned first, unsigned step,
                            unsigned workers, int posting) {
  if (a.out == nullptr || a.scatter_only || posting < 0) return;
  const uint32_t rounds = two_shot_round_count<S>(p, a, workers);
  for (uint32_t r = posting == 1 ? rounds - 1 : 0; r < rounds; ++r)
    for (unsigned w = first; w < workers; w += step)
      if (!copy_round_apart<S>(p, a, epoch, two_shot_layout<S>(p, a, w, workers), w, r, posting == 1))
        return;
}

// The two-shot in one round: each block pushes, reduces its share, then
// copies the peers' reduced shares out (under 256 KiB of them a block,
// two_shot_rounds: up to 32 MiB on 2 and on 4 ranks with 128 blocks).
template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) two_shot_kernel(Peers p, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t epoch = begin_epoch(p);
  TwoShotLayout l = two_shot_layout<S>(p, a, blockIdx.x, gridDim.x);
  l.rounds = 1;  // a constant here, so that the round loop folds away
  __shared__ int posting;
  if (reduce_rounds<false, E, Op>(p, a, epoch, l, &posting) && a.out != nullptr && !a.scatter_only)
    copy_round<S>(p, a, epoch, l, blockIdx.x, 0, posting == 1);
  end_epoch(p, epoch);
}

// The two-shot in rounds: blocks [0, workers) run phases 1 and 2. Copy
// blocks (the rest, Peers::copy_blocks) copy the workers' rounds out as
// they come, while the workers still push and reduce; without, each worker
// copies its own after its last round. Workers never wait for copy blocks,
// and blocks start in index order, so copy blocks cannot hold SMs that
// workers need.
template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) two_shot_rounds_kernel(Peers p, ReduceArgs a, unsigned workers) {
  using S = typename E::S;
  const uint64_t epoch = begin_epoch(p);
  __shared__ int posting;
  if (blockIdx.x >= workers) {
    if (threadIdx.x == 0) posting = follow_posting(p, a, epoch);
    __syncthreads();
    copy_rounds<S>(p, a, epoch, blockIdx.x - workers, gridDim.x - workers, workers, posting);
  } else if (reduce_rounds<true, E, Op>(p, a, epoch, two_shot_layout<S>(p, a, blockIdx.x, workers),
                                        &posting) &&
             gridDim.x == workers) {
    copy_rounds<S>(p, a, epoch, blockIdx.x, workers, workers, posting);
  }
  end_epoch(p, epoch);
}

// Bulk one-shot, phase 1: this block's share of the whole input into this
// rank's slot of every peer's input area.
template <class S>
__device__ void push_input(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l) {
  const uint64_t n = l.share.end - l.share.begin;
  for (int k = 1; n > 0 && k < p.nranks; ++k) {
    const int q = rotated_peer(p, k);
    copy_bytes(area(p, q, epoch, false) + (p.rank * l.stride + l.share.begin) * sizeof(S),
               reinterpret_cast<const char *>(static_cast<const S *>(a.in) + l.share.begin), n * sizeof(S), false);
  }
}

// Phase 2: the share reduced in rank order into out: this rank's own part
// from its input, every peer's from this rank's input area.
template <class E, int Op>
__device__ void reduce_pushed(const Peers &p, const ReduceArgs &a, uint64_t epoch, const TwoShotLayout &l) {
  using S = typename E::S;
  const uint64_t n = l.share.end - l.share.begin;
  if (a.out == nullptr || n == 0) return;
  const S *src[kMaxRanks];
  for (int q = 0; q < p.nranks; ++q)
    src[q] = q == p.rank ? static_cast<const S *>(a.in) + l.share.begin
                         : reinterpret_cast<const S *>(area(p, p.rank, epoch, false)) + q * l.stride + l.share.begin;
  S *out = static_cast<S *>(a.out) + l.share.begin;
  const uint64_t vecs = (n + VecReduce<E, Op>::V - 1) / VecReduce<E, Op>::V;
  for (uint64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
    VecReduce<E, Op> r;
    for (int q = 0; q < p.nranks; ++q) r.add(load_vec(src[q], i, n, q != p.rank), q == 0);
    store_vec(out, i, n, r.result(p.nranks));
  }
}

// One exchange instead of two-shot's two, and no copy-out phase; the same
// NVLink bytes as two-shot on 2 ranks ((nranks - 1) x the input on more).
template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) bulk_one_shot_kernel(Peers p, ReduceArgs a) {
  using S = typename E::S;
  constexpr uint64_t V = 16 / sizeof(S);
  const uint64_t epoch = begin_epoch(p);
  TwoShotLayout l;
  l.stride = (a.total + V - 1) / V * V;
  l.share = share_of(a.total, V, blockIdx.x, gridDim.x);
  l.rounds = 1;
  l.own_direct = true;
  push_input<S>(p, a, epoch, l);
  signal_peers(p, signal_value(epoch, 0));
  if (wait_peers(p, signal_value(epoch, 0), a.coll, epoch)) reduce_pushed<E, Op>(p, a, epoch, l);
  end_epoch(p, epoch);
}

enum class Reduction { one_shot, bulk_one_shot, two_shot };

// The launch of one reduction kernel for the (element, op) pair that
// with_types picks; the grid follows the bytes each block shares out
// (two-shot: one rank's chunk; the one-shots: the whole input). Wire: the
// one-shot over float32 buffers (with_half_types picks E).
template <Reduction K, bool Wire = false>
struct ReduceLaunch {
  const Peers &p;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const uint64_t elements = K == Reduction::two_shot ? a.chunk : a.total;
    const uint64_t bytes = elements * sizeof(typename E::S);
    if constexpr (K == Reduction::one_shot) {
      const LLGrid g = ll_grid(bytes / 16 + (bytes % 16 != 0), p.max_blocks, p.ll_threads);
      return launch(one_shot_kernel<E, Op, Wire>, g.blocks, g.threads, p, stream, p, a);
    }
    const unsigned blocks = blocks_for(bytes, p.max_blocks);
    if constexpr (K == Reduction::bulk_one_shot)
      return launch(bulk_one_shot_kernel<E, Op>, blocks, kThreads, p, stream, p, a);
    else {  // copy blocks only where there is a copy-out (kernels.hpp, Peers::copy_blocks)
      const uint32_t rounds = two_shot_round_count<typename E::S>(p, a, blocks);
      if (rounds < 2) return launch(two_shot_kernel<E, Op>, blocks, kThreads, p, stream, p, a);
      const bool gathers = a.out != nullptr && !a.scatter_only;
      const unsigned copiers = gathers ? copy_blocks_for(blocks, p.copy_blocks, rounds) : 0;
      return launch(two_shot_rounds_kernel<E, Op>, blocks + copiers, kThreads, p, stream, p, a, blocks);
    }
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_one_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  using device::ReduceLaunch, device::Reduction;
  if (args.float32_io)
    return device::with_half_types(args.dtype, args.op, ReduceLaunch<Reduction::one_shot, true>{peers, args, stream});
  return device::with_types(args.dtype, args.op, ReduceLaunch<Reduction::one_shot>{peers, args, stream});
}

cudaError_t launch_one_shot_bulk(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op,
                            device::ReduceLaunch<device::Reduction::bulk_one_shot>{peers, args, stream});
}

cudaError_t launch_two_shot(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op, device::ReduceLaunch<device::Reduction::two_shot>{peers, args, stream});
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(allreduce)

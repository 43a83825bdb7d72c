// The LL128 all-reduces (protocol in kernels.hpp). One-shot: every warp
// stores its tiles of the input into its slot at every peer as 128-byte
// lines that carry their flag, then reduces every rank's tiles in rank
// order as they arrive, so every rank gets the same bits. LL (one 8-byte
// flag per 8 data bytes) sends twice the bytes; LL128 sends 16/15.
// Two-shot: the same lines, reduce-scatter then all-gather.
#include "kernels/device_common.cuh"
#include "kernels/module_anchor.cuh"
#include "kernels/reduce_ops.cuh"
#include "kernels/vectors.cuh"
#include "kernels/wire_io.cuh"

namespace plexus::kernels {
namespace device {
namespace {

constexpr unsigned kFullWarp = 0xffffffffu;

// A lane's piece of the caller's data (kernels.hpp, ll128_piece): 16 or 8
// bytes in the low end of a vector, zeros past the end. Whole 8-byte loads
// where aligned: a line's pieces start 8 bytes apart from 16.
template <class S>
__device__ __forceinline__ uint4 load_piece(const S *data, uint64_t total, LanePiece piece) {
  const uint64_t first = piece.begin / sizeof(S), count = piece.bytes / sizeof(S);
  const S *p = data + first;
  if ((reinterpret_cast<uintptr_t>(p) & 7) == 0 && first + count <= total) {
    const auto *v = reinterpret_cast<const uint2 *>(p);
    const uint2 lo = v[0], hi = piece.bytes == 16 ? v[1] : make_uint2(0, 0);
    return make_uint4(lo.x, lo.y, hi.x, hi.y);
  }
  Vec<S> x;
  x.v = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (uint64_t j = 0; j < 16 / sizeof(S); ++j)
    if (j < count && first + j < total) x.e[j] = p[j];
  return x.v;
}

template <class S>
__device__ __forceinline__ void store_piece(S *data, uint64_t total, LanePiece piece, uint4 v) {
  const uint64_t first = piece.begin / sizeof(S), count = piece.bytes / sizeof(S);
  S *p = data + first;
  if ((reinterpret_cast<uintptr_t>(p) & 7) == 0 && first + count <= total) {
    auto *d = reinterpret_cast<uint2 *>(p);
    d[0] = make_uint2(v.x, v.y);
    if (piece.bytes == 16) d[1] = make_uint2(v.z, v.w);
    return;
  }
  Vec<S> x;
  x.v = v;
#pragma unroll
  for (uint64_t j = 0; j < 16 / sizeof(S); ++j)
    if (j < count && first + j < total) p[j] = x.e[j];
}

// The float32 of a lane's piece of E's half type (8 or 4 elements: 32 or
// 16 bytes) as one or two float pieces.
__device__ __forceinline__ LanePiece float_piece(LanePiece half, uint32_t which) {
  return {half.begin * 2 + which * 16, 16u};
}

// A lane's piece of the caller's input: its own elements, or (Wire, a
// float32 buffer) the same elements rounded to E's half type.
template <class E, bool Wire>
__device__ __forceinline__ uint4 load_input_piece(const void *in, uint64_t total, LanePiece piece) {
  if constexpr (!Wire) {
    return load_piece(static_cast<const typename E::S *>(in), total, piece);
  } else {
    const auto *f = static_cast<const float *>(in);
    const uint4 lo = load_piece(f, total, float_piece(piece, 0));
    const uint4 hi = piece.bytes == 16 ? load_piece(f, total, float_piece(piece, 1)) : make_uint4(0, 0, 0, 0);
    return narrow_pair<E>(lo, hi);
  }
}

// A lane's piece of the result into the caller's output, widened for Wire.
template <class E, bool Wire>
__device__ __forceinline__ void store_result_piece(void *out, uint64_t total, LanePiece piece, uint4 v) {
  if constexpr (!Wire) {
    store_piece(static_cast<typename E::S *>(out), total, piece, v);
  } else {
    uint4 lo, hi;
    widen_pair<E>(v, &lo, &hi);
    store_piece(static_cast<float *>(out), total, float_piece(piece, 0), lo);
    if (piece.bytes == 16) store_piece(static_cast<float *>(out), total, float_piece(piece, 1), hi);
  }
}

__device__ __forceinline__ bool flag_lane(uint32_t lane) { return (lane & 7u) == 7u; }

// A tile into this rank's slot at rank q, at tile position `at`: one
// 16-byte store per lane, the line's last lane carrying the flag in its
// high half.
__device__ __forceinline__ void ll128_put(const Peers &p, int q, uint64_t epoch, uint64_t at, uint32_t lane, uint4 v) {
  if (flag_lane(lane)) v.z = static_cast<uint32_t>(epoch), v.w = static_cast<uint32_t>(epoch >> 32);
  st_volatile_v4(ll128_slot(p, q, epoch, p.rank) + at * 32 + lane, v);
}

// The same tile to every peer.
__device__ __forceinline__ void ll128_send(const Peers &p, uint64_t epoch, uint64_t at, uint32_t lane, uint4 v) {
  for (int k = 1; k < p.nranks; ++k) ll128_put(p, rotated_peer(p, k), epoch, at, lane, v);
}

// The tile at position `at` of rank src's lines in this rank's slot: the
// warp loads it again until every flag lane sees the epoch. False (for the
// whole warp) when lane 0's wait gave up.
__device__ __forceinline__ bool ll128_receive(const Peers &p, uint64_t epoch, int src, uint64_t at_tile, uint32_t lane,
                                              int32_t coll, uint4 *out) {
  const uint4 *at = ll128_slot(p, p.rank, epoch, src) + at_tile * 32 + lane;
  const auto lo = static_cast<uint32_t>(epoch), hi = static_cast<uint32_t>(epoch >> 32);
  uint64_t started = 0;
  for (uint32_t spin = 1;; ++spin) {
    const uint4 v = ld_volatile_v4(at);
    if (!__any_sync(kFullWarp, flag_lane(lane) && (v.z != lo || v.w != hi))) {
      *out = v;
      return true;
    }
    const bool go = lane != 0 || keep_waiting(p, spin, &started, src, coll, epoch);
    if (!__shfl_sync(kFullWarp, go, 0)) return false;
  }
}

// Tile `tile` of the data reduced in rank order: this rank's piece from its
// input, every peer's from its lines at position `at` of this rank's slot.
// False (for the whole warp) when a wait gave up.
template <class E, int Op, bool Wire = false>
__device__ __forceinline__ bool reduce_tile(const Peers &p, const ReduceArgs &a, uint64_t epoch, uint64_t tile,
                                            uint64_t at, uint4 *out) {
  const uint32_t lane = threadIdx.x % 32;
  VecReduce<E, Op> r;
  for (int q = 0; q < p.nranks; ++q) {
    uint4 x = make_uint4(0, 0, 0, 0);
    if (q == p.rank) x = load_input_piece<E, Wire>(a.in, a.total, ll128_piece(tile, lane));
    else if (!ll128_receive(p, epoch, q, at, lane, a.coll, &x)) return false;
    r.add(x, q == 0);
  }
  *out = r.result(p.nranks);
  return true;
}

// Warps take tiles in turn (all 32 lanes of a warp always together, as the
// line stores and the flag votes need); each warp sends all its tiles before
// it waits for any, so no warp waits on a sender that is itself waiting.
// Wire: float32 buffers, E's half type on the lines (ReduceArgs::float32_io).
template <class E, int Op, bool Wire>
__global__ void __launch_bounds__(kThreads, 2) ll128_one_shot_kernel(Peers p, ReduceArgs a) {
  const uint64_t epoch = begin_epoch(p);
  const uint64_t tiles = ll128_tiles(a.total * sizeof(typename E::S));
  const uint32_t lane = threadIdx.x % 32;
  const uint64_t first = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const uint64_t step = uint64_t{gridDim.x} * blockDim.x / 32;
  for (uint64_t t = first; t < tiles; t += step)
    ll128_send(p, epoch, t, lane, load_input_piece<E, Wire>(a.in, a.total, ll128_piece(t, lane)));
  uint4 v;
  for (uint64_t t = first; t < tiles && reduce_tile<E, Op, Wire>(p, a, epoch, t, t, &v); t += step)
    if (a.out != nullptr) store_result_piece<E, Wire>(a.out, a.total, ll128_piece(t, lane), v);
  end_epoch(p, epoch);
}

// The LL128 two-shot's phase 2: this rank's chunk (tiles [mine, mine +
// per)) reduced in rank order from its own input and the peers' tiles at
// positions [0, per) of their slots, into out and, as lines at positions
// [per, 2 per), into this rank's slot at every peer.
template <class E, int Op>
__device__ bool ll128_reduce_chunk(const Peers &p, const ReduceArgs &a, uint64_t epoch, uint64_t tiles, uint64_t per,
                                   uint64_t first, uint64_t step) {
  using S = typename E::S;
  const uint32_t lane = threadIdx.x % 32;
  const uint64_t mine = p.rank * per;
  for (uint64_t t = first; t < per && mine + t < tiles; t += step) {
    uint4 v;
    if (!reduce_tile<E, Op>(p, a, epoch, mine + t, t, &v)) return false;
    if (a.out != nullptr) store_piece(static_cast<S *>(a.out), a.total, ll128_piece(mine + t, lane), v);
    ll128_send(p, epoch, per + t, lane, v);
  }
  return true;
}

// LL128 two-shot: the tiles cut into nranks chunks of `per`; chunk q of
// every rank's input goes to rank q as lines, rank q reduces it (phase 2)
// and sends the result back as lines, which every rank stores into out.
// Half the bytes of the LL128 one-shot on 4 ranks ((n - 1) / n twice, not
// n - 1), for one more hop.
template <class E, int Op>
__global__ void __launch_bounds__(kThreads, 2) ll128_two_shot_kernel(Peers p, ReduceArgs a) {
  using S = typename E::S;
  const uint64_t epoch = begin_epoch(p);
  const uint64_t tiles = ll128_tiles(a.total * sizeof(S)), per = (tiles + p.nranks - 1) / p.nranks;
  const uint32_t lane = threadIdx.x % 32;
  const uint64_t first = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const uint64_t step = uint64_t{gridDim.x} * blockDim.x / 32;
  for (uint64_t t = first; t < per; t += step)
    for (int k = 1; k < p.nranks; ++k) {
      const int q = rotated_peer(p, k);
      if (q * per + t < tiles)
        ll128_put(p, q, epoch, t, lane, load_piece(static_cast<const S *>(a.in), a.total, ll128_piece(q * per + t, lane)));
    }
  bool ok = ll128_reduce_chunk<E, Op>(p, a, epoch, tiles, per, first, step);
  for (uint64_t t = first; ok && a.out != nullptr && t < per; t += step)
    for (int k = 1; ok && k < p.nranks; ++k) {
      const int q = rotated_peer(p, k);
      uint4 v;
      if (q * per + t >= tiles) continue;
      ok = ll128_receive(p, epoch, q, per + t, lane, a.coll, &v);
      if (ok) store_piece(static_cast<S *>(a.out), a.total, ll128_piece(q * per + t, lane), v);
    }
  end_epoch(p, epoch);
}

// One lane per 16 bytes of line (ll_grid over the lanes of the tiles each
// warp position serves, so whole warps: its thread counts are multiples of
// 32): all the tiles for the one-shot, one chunk's for the two-shot. Wire:
// the one-shot over float32 buffers (with_half_types picks E).
template <bool TwoShot, bool Wire = false>
struct LL128Launch {
  const Peers &p;
  const ReduceArgs &a;
  cudaStream_t stream;
  template <class E, int Op>
  cudaError_t run() const {
    const uint64_t tiles = ll128_tiles(a.total * sizeof(typename E::S));
    const uint64_t lanes = (TwoShot ? (tiles + p.nranks - 1) / p.nranks : tiles) * 32;
    const LLGrid g = ll_grid(lanes, p.max_blocks, p.ll_threads);
    if constexpr (TwoShot) return launch(ll128_two_shot_kernel<E, Op>, g.blocks, g.threads, p, stream, p, a);
    else return launch(ll128_one_shot_kernel<E, Op, Wire>, g.blocks, g.threads, p, stream, p, a);
  }
};

}  // namespace
}  // namespace device

cudaError_t launch_one_shot_ll128(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  if (args.float32_io)
    return device::with_half_types(args.dtype, args.op, device::LL128Launch<false, true>{peers, args, stream});
  return device::with_types(args.dtype, args.op, device::LL128Launch<false>{peers, args, stream});
}

cudaError_t launch_two_shot_ll128(const Peers &peers, const ReduceArgs &args, cudaStream_t stream) {
  return device::with_types(args.dtype, args.op, device::LL128Launch<true>{peers, args, stream});
}

}  // namespace plexus::kernels

PLEXUS_KERNEL_MODULE(ll128)

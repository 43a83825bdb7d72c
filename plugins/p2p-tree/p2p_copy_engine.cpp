// The copy-engine two-shot all-reduce (kAlgoCopy; the protocol and the
// kernels are kernels/ce.hpp). Each launch of up to 2 x SLOT_BYTES:
//
//   caller's stream: enter, fork, then per piece k the sum (which waits
//   for every peer's scatter of k), the copy-outs (each waits for every
//   peer's gather of its piece), the joins and exit;
//   for j = 0, 1, ..., on the scatter stream of lane j mod COPY_STREAMS
//   (default 1: the peers take turns; 0: a lane per peer): per piece, my
//   input's piece of chunk q (q the j-th rank after mine, so every GPU
//   sends to a different one at a time) into q's scatter area, then the
//   row's flag at q (an 8-byte copy); on the lane's gather stream, after
//   the piece's sum, my reduced piece into q's gather area, then the
//   row's flag at q.
//
// The copies read the caller's buffers directly (any device pointer: the
// copy engine pushes from local memory), so nothing is staged on the way
// in, and one piece's sum overlaps the next piece's copies. The epoch
// lives on the device as for every kernel, so the whole sequence can be
// captured in a CUDA graph (the side streams join the capture through the
// fork event and leave it through the joins).
#include <algorithm>

#include "core/dtype.hpp"
#include "plugins/p2p-tree/p2p_backend.hpp"
#include "plugins/p2p-tree/p2p_plan.hpp"

namespace plexus::p2p_tree {
namespace {

struct Launch {
  Comm &c;
  kernels::CeArgs a;  // a.piece set per piece
  cudaStream_t stream;

  int32_t peer(int32_t j) const { return (c.rank() + 1 + j) % c.nranks(); }
  int32_t lanes() const { return c.params().copy_lanes(c.nranks()); }
  int32_t lane(int32_t j) const { return j % lanes(); }
  uint64_t es() const { return a.esize; }
  uint64_t vec() const { return 16 / es(); }
  kernels::Range piece_of(int32_t q, uint32_t k) const {
    return kernels::ce_piece(a.chunk, a.total, static_cast<uint64_t>(q), k, a.pieces, vec());
  }
};

// cudaMemcpyAsync of `bytes` (none: nothing enqueued), then, behind it on
// the same stream, row's value (stored by enter) into my flag of that row
// at `to`.
cudaError_t push(const Launch &l, char *dst, const char *src, uint64_t bytes, int32_t to, uint32_t row,
                 cudaStream_t s) {
  if (bytes > 0)
    if (cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s); err != cudaSuccess) return err;
  const kernels::Peers &p = l.c.peers();
  return cudaMemcpyAsync(p.block[to] + kernels::ce_flag_offset(row, p.rank),
                         p.block[p.rank] + kernels::kCeValuesOffset + row * sizeof(uint64_t), sizeof(uint64_t),
                         cudaMemcpyDefault, s);
}

// Piece k of chunk q of my input into my slot of q's scatter area.
cudaError_t scatter(const Launch &l, uint32_t k) {
  const CopyEngines &ce = l.c.copy_engines();
  cudaError_t err = cudaSuccess;
  for (int32_t j = 0; err == cudaSuccess && j < l.c.nranks() - 1; ++j) {
    const int32_t q = l.peer(j);
    const kernels::Range r = l.piece_of(q, k);
    char *dst = kernels::ce_area(l.c.peers(), q, false) + (l.c.rank() * l.a.chunk + r.begin) * l.es();
    const char *src = static_cast<const char *>(l.a.in) + (q * l.a.chunk + r.begin) * l.es();
    err = push(l, dst, src, (r.end - r.begin) * l.es(), q, kernels::ce_scatter_row(k), ce.scatter[l.lane(j)]);
  }
  return err;
}

// After piece k's sum: my reduced piece into my slot of every peer's gather area.
cudaError_t gather(const Launch &l, uint32_t k) {
  const CopyEngines &ce = l.c.copy_engines();
  const kernels::Range r = l.piece_of(l.c.rank(), k);
  const uint64_t at = (l.c.rank() * l.a.chunk + r.begin) * l.es();
  cudaError_t err = cudaEventRecord(ce.summed[k], l.stream);
  for (int32_t j = 0; err == cudaSuccess && j < l.c.nranks() - 1; ++j) {
    const int32_t q = l.peer(j);
    if (l.lane(j) == j) err = cudaStreamWaitEvent(ce.gather[j], ce.summed[k], 0);  // once per lane
    if (err == cudaSuccess)
      err = push(l, kernels::ce_area(l.c.peers(), q, true) + at, static_cast<const char *>(l.a.out) + at,
                 (r.end - r.begin) * l.es(), q, kernels::ce_gather_row(l.a.pieces, k), ce.gather[l.lane(j)]);
  }
  return err;
}

// The side streams wait for the caller's (fork), or it for them (join).
cudaError_t fork(const Launch &l) {
  CopyEngines &ce = l.c.copy_engines();
  cudaError_t err = cudaEventRecord(ce.forked, l.stream);
  for (int32_t j = 0; err == cudaSuccess && j < l.lanes(); ++j) {
    err = cudaStreamWaitEvent(ce.scatter[j], ce.forked, 0);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(ce.gather[j], ce.forked, 0);
  }
  return err;
}

cudaError_t join(const Launch &l) {
  CopyEngines &ce = l.c.copy_engines();
  cudaError_t err = cudaSuccess;
  for (int32_t j = 0; err == cudaSuccess && j < l.lanes(); ++j) {
    cudaEvent_t *done = &ce.joined[2 * j];
    err = cudaEventRecord(done[0], ce.scatter[j]);
    if (err == cudaSuccess) err = cudaEventRecord(done[1], ce.gather[j]);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(l.stream, done[0], 0);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(l.stream, done[1], 0);
  }
  return err;
}

cudaError_t copy_out(Launch &l, uint32_t k) {
  l.a.piece = k;
  return kernels::launch_ce_copy_out(l.c.peers(), l.a, l.stream);
}

// One launch: the order of the file's comment.
cudaError_t run(Launch &l) {
  cudaError_t err = kernels::launch_ce_enter(l.c.peers(), l.a.coll, l.stream);
  if (err == cudaSuccess) err = fork(l);
  for (uint32_t k = 0; err == cudaSuccess && k < l.a.pieces; ++k) {
    err = scatter(l, k);
    l.a.piece = k;
    if (err == cudaSuccess) err = kernels::launch_ce_sum(l.c.peers(), l.a, l.stream);
    if (err == cudaSuccess) err = gather(l, k);
  }
  for (uint32_t k = 0; err == cudaSuccess && k < l.a.pieces; ++k) err = copy_out(l, k);
  if (err == cudaSuccess) err = join(l);
  if (err == cudaSuccess) err = kernels::launch_ce_exit(l.c.peers(), l.a.pieces, l.a.coll, l.stream);
  return err;
}

}  // namespace

// Launches of up to the scatter area (2 x SLOT_BYTES), cut as the
// two-shot's (plan_reduce: chunks of whole vectors).
cudaError_t copy_engine_all_reduce(Comm &c, const plx_coll_desc &d, cudaStream_t stream) {
  const uint64_t es = core::kDtypeBytes[d.dtype];
  Launch l{c, {}, stream};
  l.a.dtype = d.dtype, l.a.op = d.op, l.a.coll = d.coll, l.a.esize = static_cast<uint32_t>(es);
  l.a.pieces = static_cast<uint32_t>(c.params().copy_pieces);
  cudaError_t err = cudaSuccess;
  plan_reduce(d.count, es, static_cast<uint64_t>(c.nranks()), 2 * c.params().slot_bytes, false,
              [&](const ReducePiece &piece) {
                if (err != cudaSuccess) return;
                l.a.in = static_cast<const char *>(d.send) + piece.offset * es;
                l.a.out = static_cast<char *>(d.recv) + piece.offset * es;
                l.a.total = piece.total, l.a.chunk = piece.chunk;
                err = run(l);
              });
  return err;
}

}  // namespace plexus::p2p_tree

// The copy-engine path of all-reduce and reduce (PLX_ALGO_COPY; the
// protocol is launch_ce_* in kernels/pinned.hpp). Large chunks move by
// cudaMemcpyAsync, the copy engines' full rate, instead of SM loads of host
// memory: uploads on a second stream forked from the caller's, downloads
// and the reduction on the caller's, so each chunk's upload overlaps the
// previous chunks' downloads. The chunks are numbered here, on the host,
// which is why a capturing stream never takes this path (choose_reduction).
#include <algorithm>

#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/status.hpp"
#include "plugins/pinned-host/pinned_backend.hpp"

namespace plexus::pinned_host {
namespace {

uint32_t peers_of(const Comm &c) { return ((1u << c.nranks()) - 1u) & ~(1u << c.rank()); }

struct Chunk {
  uint64_t number;  // m, counted over the communicator's life
  uint32_t slot;    // m % C
  const char *in;   // this rank's part of the input, NULL when it adds nothing
  char *out;        // NULL on a non-root of reduce
  uint64_t count;   // elements
};

// On the copy stream: wait until every peer has read chunk m - C from this
// rank's slot, upload, publish ce_posted.
cudaError_t upload(Comm &c, const Chunk &k, uint64_t bytes, int32_t coll) {
  const kp::Layout &l = c.layout();
  cudaStream_t s = c.copy_engines().stream;
  cudaError_t err = cudaSuccess;
  if (k.number >= l.ce_stages)
    err = kp::launch_ce_wait(c.channel(), kp::ce_done_offset(l, k.slot), peers_of(c), k.number + 1 - l.ce_stages, coll, s);
  if (err == cudaSuccess && k.in != nullptr && c.nranks() > 1)
    err = cudaMemcpyAsync(c.copy_slot(c.rank(), k.slot), k.in, bytes, cudaMemcpyDeviceToHost, s);
  if (err == cudaSuccess)
    err = kp::launch_ce_post(c.channel(), kp::ce_posted_offset(l, k.slot), (k.number + 1) | (k.in ? 0 : kp::kSkip), s);
  return err;
}

// On the caller's stream: wait for every rank's upload (this rank's too: in
// place, the reduction overwrites the input the upload reads), download
// the peers', reduce (whose last block publishes ce_done).
cudaError_t download(Comm &c, const Chunk &k, const plx_coll_desc &d, cudaStream_t stream) {
  const kp::Layout &l = c.layout();
  const uint64_t bytes = k.count * core::kDtypeBytes[d.dtype];
  const uint32_t everyone = peers_of(c) | (1u << c.rank());
  cudaError_t err = kp::launch_ce_wait(c.channel(), kp::ce_posted_offset(l, k.slot), everyone, k.number + 1, d.coll, stream);
  for (int32_t q = 0; err == cudaSuccess && k.out != nullptr && q < c.nranks(); ++q)
    if (q != c.rank())
      err = cudaMemcpyAsync(c.copy_engines().scratch + q * l.ce_bytes, c.copy_slot(q, k.slot), bytes,
                            cudaMemcpyHostToDevice, stream);
  if (err != cudaSuccess) return err;
  kp::CeReduceArgs a;
  a.in = k.in, a.out = k.out, a.scratch = c.copy_engines().scratch, a.slot_bytes = l.ce_bytes;
  a.count = k.count, a.chunk = k.number, a.dtype = d.dtype, a.op = d.op, a.coll = d.coll;
  return kp::launch_ce_reduce(c.channel(), a, stream);
}

cudaError_t chunks(Comm &c, const plx_coll_desc &d, const char *in, char *out, cudaStream_t stream) {
  const kp::Layout &l = c.layout();
  const uint64_t es = core::kDtypeBytes[d.dtype], per = l.ce_bytes / es;
  CopyEngines &ce = c.copy_engines();
  cudaError_t err = cudaEventRecord(ce.fork, stream);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(ce.stream, ce.fork, 0);
  for (uint64_t first = 0; err == cudaSuccess && first < d.count; first += per) {
    const Chunk k{ce.next, static_cast<uint32_t>(ce.next % l.ce_stages), in ? in + first * es : nullptr,
                  out ? out + first * es : nullptr, std::min(per, d.count - first)};
    ++ce.next;  // every rank counts alike: the same calls, the same sizes
    err = upload(c, k, k.count * es, d.coll);
    if (err == cudaSuccess) err = download(c, k, d, stream);
  }
  if (err == cudaSuccess) err = cudaEventRecord(ce.join, ce.stream);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(stream, ce.join, 0);
  return err;
}

}  // namespace

plx_status copy_engine_reduction(Comm &c, const plx_coll_desc &d, cudaStream_t stream, cudaError_t *err) {
  const bool gives = !(d.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION);
  const bool receives = d.coll == PLX_COLL_ALL_REDUCE || c.rank() == d.root;
  *err = chunks(c, d, gives ? static_cast<const char *>(d.send) : nullptr, receives ? static_cast<char *>(d.recv) : nullptr,
                stream);
  return *err == cudaSuccess ? PLX_OK : PLX_ERR_DEVICE;
}

// The stream is capturing (or cannot say): host-numbered chunks must not
// enter a graph, so the caller takes an SM path.
bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t err = cudaStreamIsCapturing(stream, &status);
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err != cudaSuccess || status != cudaStreamCaptureStatusNone;
}

}  // namespace plexus::pinned_host

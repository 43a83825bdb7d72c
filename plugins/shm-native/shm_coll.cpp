#include "plugins/shm-native/shm_coll.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "core/dtype.hpp"
#include "core/names.hpp"
#include "core/status.hpp"
#include "plugins/shm-native/stream_copy.hpp"

namespace plexus::shm_native {
plx_status Op::sync(CounterField field, uint32_t step) {
  publish(comm, field, step + 1);
  return wait_all(comm, field, step + 1, deadline, label);
}

void Op::copy_result(void *dst, const void *src, size_t bytes) const {
  if (streams_result()) stream_copy(dst, src, bytes);
  else std::memcpy(dst, src, bytes);
}

void Op::record(plx_algorithm algorithm) {
  comm.algorithm_calls[desc.coll][algorithm].fetch_add(1, std::memory_order_relaxed);
  comm.last_algorithm[desc.coll].store(algorithm, std::memory_order_relaxed);
}

// Shares are multiples of 16 elements, so SIMD loops run on whole vectors
// and no two ranks write the same cache line of a slot.
Share share_of(size_t count, int32_t nranks, int32_t r) {
  const size_t per = ((count + nranks - 1) / nranks + 15) / 16 * 16;
  const size_t first = std::min(count, per * r);
  return {first, std::min(count, first + per) - first};
}

void copy_peer_parts(Op &op, uint32_t step, size_t count, uint8_t *out, int32_t parts, int32_t p) {
  Comm &c = op.comm;
  const size_t es = op.elem_bytes;
  for (int32_t i = 1; i < c.nranks(); ++i) {
    const int32_t r = (c.rank() + i) % c.nranks();
    const Share part = part_of(share_of(count, c.nranks(), r), parts, p, 64 / es);
    op.copy_result(out + part.first * es, c.slot(r, step) + part.first * es, part.length * es);
  }
}

plx_status run_collective(Comm &comm, const plx_coll_desc &desc) {
  if (plx_status s = comm.posted_failure()) return s;
  comm.count_collective();
  Op op{comm, desc, desc.dtype >= 0 ? core::dtype_bytes(desc.dtype) : 1, Deadline(comm.timeout_ms()),
        {core::coll_name(desc.coll), comm.collectives()}};
  switch (desc.coll) {
    case PLX_COLL_ALL_REDUCE: return all_reduce(op);
    case PLX_COLL_REDUCE: return reduce(op);
    case PLX_COLL_REDUCE_SCATTER: return reduce_scatter(op);
    case PLX_COLL_BROADCAST: return broadcast(op);
    case PLX_COLL_ALL_GATHER: return all_gather(op);
    case PLX_COLL_GATHER: return gather(op);
    case PLX_COLL_BARRIER: return barrier(op);
    default:
      return core::fail(PLX_ERR_UNSUPPORTED, "shm-native: {} is not implemented", core::coll_name(desc.coll));
  }
}

bool narrows_on_wire(const plx_coll_desc &d) {
  return core::float32_on_half_wire(d.coll, d.dtype, d.options->wire_dtype);
}

plx_status run_on_wire(Comm &comm, const plx_coll_desc &d) {
  const auto wire = static_cast<plx_dtype>(d.options->wire_dtype);
  const bool gives = !(d.options->flags & PLX_COLL_FLAG_NO_CONTRIBUTION);
  const bool gets = d.coll != PLX_COLL_REDUCE || comm.rank() == d.root;
  const size_t in_count = d.coll == PLX_COLL_REDUCE_SCATTER ? d.count * static_cast<size_t>(comm.nranks()) : d.count;
  std::vector<uint16_t> &in = comm.wire_input(), &out = comm.wire_result();
  if (gives) in.resize(std::max(in.size(), in_count));
  if (gets) out.resize(std::max(out.size(), d.count));
  if (gives)
    if (plx_status s = core::narrow_floats(static_cast<const float *>(d.send), in.data(), in_count, wire)) return s;
  plx_coll_options options = *d.options;
  options.wire_dtype = -1;
  plx_coll_desc narrowed = d;
  narrowed.dtype = wire, narrowed.options = &options;
  narrowed.send = gives ? in.data() : nullptr;
  narrowed.recv = gets ? out.data() : nullptr;
  if (plx_status s = run_collective(comm, narrowed)) return s;
  return gets ? core::widen_floats(out.data(), static_cast<float *>(d.recv), d.count, wire) : PLX_OK;
}

plx_status barrier(Op &op) {
  op.record(PLX_ALGO_COPY);
  return op.exchange(op.comm.next_step());
}

}  // namespace plexus::shm_native

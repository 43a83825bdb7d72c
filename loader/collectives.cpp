// The collectives of plexus.h: every argument is checked here, before the
// plugin runs (PLX-L-20 .. PLX-L-26), then one descriptor goes to the
// plugin's `collective` slot.
#include <cstring>

#include "loader/errors.hpp"
#include "loader/objects.hpp"
#include "loader/tick_clock.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

constexpr uint32_t coll_options_v1_size = 32;
static_assert(sizeof(plx_coll_options) == coll_options_v1_size);
constexpr uint32_t known_coll_flags = PLX_COLL_FLAG_NO_CONTRIBUTION;

struct Call {
  const char *fn;
  plx_comm *comm;
  plx_coll_options options;
  plx_coll_desc desc;
};

bool is_float(plx_dtype d) {
  return d == PLX_FLOAT16 || d == PLX_BFLOAT16 || d == PLX_FLOAT32 || d == PLX_FLOAT64;
}

plx_status check_option_values(const char *fn, const plx_coll_options &o) {
  if (o.flags & ~known_coll_flags)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: opts->flags {:#x} has unknown bits", fn, o.flags);
  if (o.wire_dtype != -1 && !is_float(o.wire_dtype))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: opts->wire_dtype {} must be -1 or a float "
                      "dtype (float16, bfloat16, float32, float64)", fn, o.wire_dtype);
  if (algorithm_name(o.algorithm) == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: opts->algorithm {} is not a plx_algorithm", fn, o.algorithm);
  if (o.reserved[0] || o.reserved[1])
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: opts->reserved must be zero", fn);
  return PLX_OK;
}

plx_status resolve_options(const char *fn, const plx_coll_options *given, plx_coll_options *out) {
  *out = PLX_COLL_OPTIONS_INIT;
  if (given == nullptr) return PLX_OK;
  if (given->struct_size < coll_options_v1_size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: opts->struct_size is {}, smaller than "
                      "sizeof(plx_coll_options) v1 ({}); use PLX_COLL_OPTIONS_INIT", fn,
                      given->struct_size, coll_options_v1_size);
  *out = *given;
  out->struct_size = sizeof(plx_coll_options);
  return check_option_values(fn, *out);
}

// The communicator, the options, and what the backend declared it can do.
plx_status begin(Call *c, plx_coll_kind coll, const plx_coll_options *opts) {
  if (plx_status s = check_comm(c->fn, c->comm)) return s;
  if (plx_status s = resolve_options(c->fn, opts, &c->options)) return s;
  const plx_plugin_info &info = *c->comm->backend->lib->info;
  if (!(info.capabilities & PLX_CAP_COLL(coll)))
    return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not implement {}", c->fn, info.name, coll_name(coll));
  if ((c->options.flags & PLX_COLL_FLAG_NO_CONTRIBUTION) && !(info.capabilities & PLX_CAP_NO_CONTRIBUTION))
    return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not support "
                      "PLX_COLL_FLAG_NO_CONTRIBUTION", c->fn, info.name);
  std::memset(&c->desc, 0, sizeof(c->desc));
  c->desc = {sizeof(plx_coll_desc), coll, nullptr, nullptr, 0, nullptr, -1, -1, -1, -1, &c->options, nullptr};
  return PLX_OK;
}

// A wire dtype other than the data's own needs a backend that declares it
// honours one (PLX-L-24): any other would send the data as it is, and the
// caller would not learn that the choice was ignored.
plx_status check_wire(const Call &c, plx_dtype dtype) {
  const int32_t wire = c.options.wire_dtype;
  const plx_plugin_info &info = *c.comm->backend->lib->info;
  if (wire == -1 || wire == dtype || (info.capabilities & PLX_CAP_WIRE_PRECISION)) return PLX_OK;
  return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not declare PLX_CAP_WIRE_PRECISION: opts->wire_dtype "
                    "{} for {} data", c.fn, info.name, dtype_name(wire), dtype_name(dtype));
}

plx_status check_dtype(const Call &c, plx_dtype dtype, uint64_t count, uint64_t multiplier) {
  if (dtype_name(dtype) == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: dtype {} is not a plx_dtype (0..{})", c.fn, dtype, PLX_DTYPE_COUNT - 1);
  const uint64_t size = plx_dtype_size(dtype);
  if (count > static_cast<uint64_t>(INT64_MAX) / size / multiplier)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: count {} of {} overflows a 64-bit byte size",
                      c.fn, count, dtype_name(dtype));
  const plx_plugin_info &info = *c.comm->backend->lib->info;
  if (!(info.dtype_mask & PLX_BIT(dtype)))
    return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not support dtype {}", c.fn, info.name, dtype_name(dtype));
  return check_wire(c, dtype);
}

plx_status check_op(const Call &c, plx_reduce_op op) {
  if (reduce_op_name(op) == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: op {} is not a plx_reduce_op (0..{})", c.fn, op, PLX_REDUCE_OP_COUNT - 1);
  const plx_plugin_info &info = *c.comm->backend->lib->info;
  if (!(info.reduce_op_mask & PLX_BIT(op)))
    return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not support op {}", c.fn, info.name, reduce_op_name(op));
  return PLX_OK;
}

plx_status check_rank_arg(const Call &c, const char *arg, int32_t value) {
  if (value >= 0 && value < c.comm->size) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: {} {} is out of range for a communicator of {} "
                    "ranks", c.fn, arg, value, c.comm->size);
}

// A buffer the call reads or writes (`needed`) of `bytes`: not NULL, and not
// running past the end of the pool block it starts in (PLX-L-33).
plx_status check_buffer(const Call &c, const char *arg, const void *p, bool needed, uint64_t bytes) {
  if (!needed) return PLX_OK;
  if (p == nullptr) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: {} is NULL", c.fn, arg);
  return c.comm->blocks.check(c.fn, arg, p, bytes);
}

bool contributes(const Call &c) { return !(c.options.flags & PLX_COLL_FLAG_NO_CONTRIBUTION); }

plx_status dispatch(Call *c, uint64_t bytes) {
  const uint64_t start = ticks_now();
  plx_comm *comm = c->comm;
  const plx_status s = note_result(comm, PLX_CALL_SLOT(c->fn, comm->backend, collective, comm->state, &c->desc));
  if (s != PLX_OK) return s;
  OpCounters &counters = comm->counters[c->desc.coll];
  add_relaxed(counters.calls, 1);
  add_relaxed(counters.bytes, bytes);
  add_relaxed(counters.time_ticks, ticks_now() - start);
  return PLX_OK;
}

void set_data(Call *c, const void *send, void *recv, uint64_t count, plx_dtype dtype, void *stream) {
  c->desc.send = send, c->desc.recv = recv, c->desc.count = count;
  c->desc.dtype = dtype, c->desc.stream = stream;
}

// Reductions to every rank or to root; root < 0 means all ranks receive.
plx_status reduction(Call *c, plx_coll_kind coll, const void *send, void *recv, uint64_t count,
                     plx_dtype dtype, plx_reduce_op op, int32_t root, const plx_coll_options *opts,
                     void *stream) {
  if (plx_status s = begin(c, coll, opts)) return s;
  if (plx_status s = check_dtype(*c, dtype, count, 1)) return s;
  if (plx_status s = check_op(*c, op)) return s;
  if (root >= 0 || coll == PLX_COLL_REDUCE)
    if (plx_status s = check_rank_arg(*c, "root", root)) return s;
  const bool receives = coll == PLX_COLL_ALL_REDUCE || c->comm->rank == root;
  const uint64_t bytes = count * plx_dtype_size(dtype);
  if (plx_status s = check_buffer(*c, "send", send, count > 0 && contributes(*c), bytes)) return s;
  if (plx_status s = check_buffer(*c, "recv", recv, count > 0 && receives, bytes)) return s;
  set_data(c, send, recv, count, dtype, stream);
  c->desc.op = op, c->desc.root = root;
  return dispatch(c, bytes);
}

uint64_t sum_counts(const uint64_t *counts, int32_t n, bool *overflow) {
  uint64_t total = 0;
  for (int32_t r = 0; r < n; ++r) {
    *overflow |= counts[r] > UINT64_MAX - total;
    total += counts[r];
  }
  return total;
}

}  // namespace

extern "C" {

plx_status plx_all_reduce(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                          plx_dtype dtype, plx_reduce_op op, const plx_coll_options *opts, void *stream) {
  Call c{"plx_all_reduce", comm, {}, {}};
  return reduction(&c, PLX_COLL_ALL_REDUCE, send, recv, count, dtype, op, -1, opts, stream);
}

plx_status plx_reduce(plx_comm_h comm, const void *send, void *recv, uint64_t count, plx_dtype dtype,
                      plx_reduce_op op, int32_t root, const plx_coll_options *opts, void *stream) {
  Call c{"plx_reduce", comm, {}, {}};
  return reduction(&c, PLX_COLL_REDUCE, send, recv, count, dtype, op, root, opts, stream);
}

plx_status plx_broadcast(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                         plx_dtype dtype, int32_t root, const plx_coll_options *opts, void *stream) {
  Call c{"plx_broadcast", comm, {}, {}};
  if (plx_status s = begin(&c, PLX_COLL_BROADCAST, opts)) return s;
  if (plx_status s = check_dtype(c, dtype, count, 1)) return s;
  if (plx_status s = check_rank_arg(c, "root", root)) return s;
  const uint64_t bytes = count * plx_dtype_size(dtype);
  if (plx_status s = check_buffer(c, "send", send, count > 0 && comm->rank == root, bytes)) return s;
  if (plx_status s = check_buffer(c, "recv", recv, count > 0, bytes)) return s;
  set_data(&c, send, recv, count, dtype, stream);
  c.desc.root = root;
  return dispatch(&c, bytes);
}

plx_status plx_all_gather(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                          plx_dtype dtype, const plx_coll_options *opts, void *stream) {
  Call c{"plx_all_gather", comm, {}, {}};
  if (plx_status s = begin(&c, PLX_COLL_ALL_GATHER, opts)) return s;
  if (plx_status s = check_dtype(c, dtype, count, static_cast<uint64_t>(comm->size))) return s;
  const uint64_t bytes = count * plx_dtype_size(dtype);
  if (plx_status s = check_buffer(c, "send", send, count > 0, bytes)) return s;
  if (plx_status s = check_buffer(c, "recv", recv, count > 0, bytes * comm->size)) return s;
  set_data(&c, send, recv, count, dtype, stream);
  return dispatch(&c, bytes);
}

plx_status plx_gather(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                      const uint64_t *counts, plx_dtype dtype, int32_t root,
                      const plx_coll_options *opts, void *stream) {
  Call c{"plx_gather", comm, {}, {}};
  if (plx_status s = begin(&c, PLX_COLL_GATHER, opts)) return s;
  bool overflow = false;
  const uint64_t total = counts ? sum_counts(counts, comm->size, &overflow) : count * comm->size;
  const uint64_t mine = counts ? counts[comm->rank] : count;
  if (overflow || (!counts && count > UINT64_MAX / static_cast<uint64_t>(comm->size)))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: the counts add up past 2^64", c.fn);
  if (plx_status s = check_dtype(c, dtype, total, 1)) return s;
  if (plx_status s = check_rank_arg(c, "root", root)) return s;
  const uint64_t size = plx_dtype_size(dtype);
  if (plx_status s = check_buffer(c, "send", send, mine > 0, mine * size)) return s;
  if (plx_status s = check_buffer(c, "recv", recv, total > 0 && comm->rank == root, total * size)) return s;
  set_data(&c, send, recv, mine, dtype, stream);
  c.desc.counts = counts, c.desc.root = root;
  return dispatch(&c, mine * size);
}

plx_status plx_reduce_scatter(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                              plx_dtype dtype, plx_reduce_op op, const plx_coll_options *opts,
                              void *stream) {
  Call c{"plx_reduce_scatter", comm, {}, {}};
  if (plx_status s = begin(&c, PLX_COLL_REDUCE_SCATTER, opts)) return s;
  if (plx_status s = check_dtype(c, dtype, count, static_cast<uint64_t>(comm->size))) return s;
  if (plx_status s = check_op(c, op)) return s;
  const uint64_t bytes = count * plx_dtype_size(dtype);
  if (plx_status s = check_buffer(c, "send", send, count > 0 && contributes(c), bytes * comm->size)) return s;
  if (plx_status s = check_buffer(c, "recv", recv, count > 0, bytes)) return s;
  set_data(&c, send, recv, count, dtype, stream);
  c.desc.op = op;
  return dispatch(&c, bytes * comm->size);
}

plx_status plx_barrier(plx_comm_h comm, const plx_coll_options *opts, void *stream) {
  Call c{"plx_barrier", comm, {}, {}};
  if (plx_status s = begin(&c, PLX_COLL_BARRIER, opts)) return s;
  c.desc.stream = stream;
  return dispatch(&c, 0);
}

static plx_status point_to_point(Call *c, plx_coll_kind coll, void *buf, uint64_t count,
                                 plx_dtype dtype, int32_t peer, const plx_coll_options *opts, void *stream) {
  if (plx_status s = begin(c, coll, opts)) return s;
  if (plx_status s = check_dtype(*c, dtype, count, 1)) return s;
  if (plx_status s = check_rank_arg(*c, "peer", peer)) return s;
  const uint64_t bytes = count * plx_dtype_size(dtype);
  if (plx_status s = check_buffer(*c, "buf", buf, count > 0, bytes)) return s;
  set_data(c, coll == PLX_COLL_SEND ? buf : nullptr, coll == PLX_COLL_RECV ? buf : nullptr, count, dtype, stream);
  c->desc.peer = peer;
  return dispatch(c, bytes);
}

plx_status plx_send(plx_comm_h comm, const void *buf, uint64_t count, plx_dtype dtype, int32_t peer,
                    const plx_coll_options *opts, void *stream) {
  Call c{"plx_send", comm, {}, {}};
  return point_to_point(&c, PLX_COLL_SEND, const_cast<void *>(buf), count, dtype, peer, opts, stream);
}

plx_status plx_recv(plx_comm_h comm, void *buf, uint64_t count, plx_dtype dtype, int32_t peer,
                    const plx_coll_options *opts, void *stream) {
  Call c{"plx_recv", comm, {}, {}};
  return point_to_point(&c, PLX_COLL_RECV, buf, count, dtype, peer, opts, stream);
}

plx_status plx_group_start(plx_comm_h comm) {
  if (plx_status s = check_comm("plx_group_start", comm)) return s;
  return note_result(comm, PLX_CALL_SLOT("plx_group_start", comm->backend, group_start, comm->state));
}

plx_status plx_group_end(plx_comm_h comm) {
  if (plx_status s = check_comm("plx_group_end", comm)) return s;
  return note_result(comm, PLX_CALL_SLOT("plx_group_end", comm->backend, group_end, comm->state));
}

}  // extern "C"

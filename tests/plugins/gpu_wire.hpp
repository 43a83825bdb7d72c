// float32 reductions sent as float16 or bfloat16 (opts->wire_dtype), for the
// GPU plugins that honour it: every input and the result rounded to the wire
// type. A backend that accumulates in float32 in rank order (p2p-tree; nccl
// on 1 or 2 ranks, where NCCL adds once and rounds once) gives
// wire_reference's bits exactly on these inputs (multiples of 1/256 under 4,
// whose sums float32 holds exactly).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/gpu_data.hpp"
#include "tests/plugins/gpu_ranks.hpp"

namespace plexus::test {

// All-reduce, reduce (to the last rank; the others pass no recv) and
// reduce-scatter of float32 sent as `wire`, outputs poisoned, every byte
// against wire_reference: each rank's input is count x nranks elements, all
// of it for reduce-scatter, the first count for all-reduce and reduce (the
// reference is element by element).
inline void wire_case(plx_comm_h comm, int rank, int nranks, plx_dtype wire, plx_reduce_op op, uint64_t count) {
  const std::string what = std::string("wire ") + plx_dtype_string(wire) + " op " + std::to_string(op) +
                           " count " + std::to_string(count);
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r)
    inputs.push_back(random_input(31u * r + 7u * op + count, PLX_FLOAT32, count * nranks));
  const Bytes want = wire_reference(wire, op, inputs, count * nranks);
  const size_t bytes = count * 4;
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  o.wire_dtype = wire;
  Stream stream;
  DeviceBuffer<uint8_t> send(bytes * nranks), recv(bytes);
  send.upload(inputs[rank]);
  recv.upload(poison_bytes(bytes));
  meet_peers();
  require_ok(plx_all_reduce(comm, send.get(), recv.get(), count, PLX_FLOAT32, op, &o, stream.s), what);
  stream.sync();
  check_same(recv.download(), Bytes(want.begin(), want.begin() + bytes), 4, what + " all_reduce");
  const int root = nranks - 1;
  recv.upload(poison_bytes(bytes));
  meet_peers();
  require_ok(plx_reduce(comm, send.get(), rank == root ? recv.get() : nullptr, count, PLX_FLOAT32, op, root, &o,
                        stream.s), what);
  stream.sync();
  if (rank == root) check_same(recv.download(), Bytes(want.begin(), want.begin() + bytes), 4, what + " reduce");
  recv.upload(poison_bytes(bytes));
  meet_peers();
  require_ok(plx_reduce_scatter(comm, send.get(), recv.get(), count, PLX_FLOAT32, op, &o, stream.s), what);
  stream.sync();
  check_same(recv.download(), Bytes(want.begin() + rank * bytes, want.begin() + (rank + 1) * bytes), 4,
             what + " reduce_scatter");
}

// Both wire types, sum, prod, min and max, at `small` and `large` elements;
// then what stays refused: a wire dtype on a broadcast, or on float64.
inline void check_wire_precision(plx_comm_h comm, int rank, int nranks, uint64_t small, uint64_t large) {
  for (plx_dtype wire : {PLX_BFLOAT16, PLX_FLOAT16})
    for (plx_reduce_op op : {PLX_SUM, PLX_PROD, PLX_MIN, PLX_MAX})
      for (uint64_t count : {small, large}) wire_case(comm, rank, nranks, wire, op, count);
  Stream stream;
  DeviceBuffer<float> buf(64);
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  o.wire_dtype = PLX_BFLOAT16;
  CHECK(plx_broadcast(comm, buf.get(), buf.get(), 64, PLX_FLOAT32, 0, &o, stream.s) == PLX_ERR_UNSUPPORTED);
  CHECK(std::string(plx_last_error()).find("only float32 reductions") != std::string::npos);
  CHECK(plx_all_reduce(comm, buf.get(), buf.get(), 32, PLX_FLOAT64, PLX_SUM, &o, stream.s) == PLX_ERR_UNSUPPORTED);
}

}  // namespace plexus::test

// Reductions with one rank that contributes nothing
// (PLX_COLL_FLAG_NO_CONTRIBUTION), for the GPU plugins that stand a buffer
// of the operator's identity in for its input: all-reduce out of place
// (its send NULL) and in place (its buffer poisoned, not its input), reduce
// to a contributing root and to the absent rank (non-roots pass no recv),
// reduce-scatter (its send NULL), and an all-reduce captured in a CUDA
// graph whose identity buffer is made during the capture. Random inputs,
// poisoned outputs, every byte compared with core's reference, in which the
// absent rank's input is the identity.
#pragma once

#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plexus/plexus.h"
#include "tests/plugins/gpu_data.hpp"
#include "tests/plugins/gpu_ranks.hpp"

namespace plexus::test {

struct AbsentCase {
  plx_dtype dtype;
  plx_reduce_op op;
  uint64_t count;
};

inline std::string describe(const AbsentCase &k, const char *what) {
  return std::string(what) + " dtype " + std::to_string(k.dtype) + " op " + std::to_string(k.op) + " count " +
         std::to_string(k.count);
}

// Every rank's input of `count` elements; the absent rank's is the identity.
inline std::vector<Bytes> absent_inputs(const AbsentCase &k, uint64_t count, int nranks, int absent) {
  std::vector<Bytes> inputs;
  for (int r = 0; r < nranks; ++r) {
    Bytes v = random_input(7919u * (r + 1) + 97u * k.dtype + 13u * k.op + count, k.dtype, count);
    if (r == absent) REQUIRE(core::fill_identity(k.dtype, k.op, v.data(), count) == PLX_OK);
    inputs.push_back(std::move(v));
  }
  return inputs;
}

inline plx_coll_options absent_options(int rank, int absent) {
  plx_coll_options o = PLX_COLL_OPTIONS_INIT;
  if (rank == absent) o.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  return o;
}

// All-reduce out of place and in place, then reduce to rank 0 and to the
// absent rank, on the same inputs.
inline void all_reduce_and_reduce_without(plx_comm_h comm, int rank, int nranks, const AbsentCase &k,
                                          const Stream &stream) {
  const int absent = nranks - 1;
  const size_t es = plx_dtype_size(k.dtype), bytes = k.count * es;
  const std::vector<Bytes> inputs = absent_inputs(k, k.count, nranks, absent);
  const Bytes want = reference(k.dtype, k.op, inputs, k.count);
  const plx_coll_options o = absent_options(rank, absent);
  DeviceBuffer<uint8_t> send(bytes), recv(bytes);
  send.upload(rank == absent ? poison_bytes(bytes) : inputs[rank]);
  recv.upload(poison_bytes(bytes));
  const void *in = rank == absent ? nullptr : send.get();
  meet_peers();
  require_ok(plx_all_reduce(comm, in, recv.get(), k.count, k.dtype, k.op, &o, stream.s), describe(k, "all_reduce"));
  stream.sync();
  check_same(recv.download(), want, es, describe(k, "all_reduce"));
  meet_peers();
  require_ok(plx_all_reduce(comm, send.get(), send.get(), k.count, k.dtype, k.op, &o, stream.s),
             describe(k, "all_reduce in place"));
  stream.sync();
  check_same(send.download(), want, es, describe(k, "all_reduce in place"));
  if (rank != absent) send.upload(inputs[rank]);
  for (int root : {0, absent}) {
    recv.upload(poison_bytes(bytes));
    meet_peers();
    require_ok(plx_reduce(comm, in, rank == root ? recv.get() : nullptr, k.count, k.dtype, k.op, root, &o, stream.s),
               describe(k, "reduce"));
    stream.sync();
    if (rank == root) check_same(recv.download(), want, es, describe(k, "reduce"));
  }
}

inline void reduce_scatter_without(plx_comm_h comm, int rank, int nranks, const AbsentCase &k,
                                   const Stream &stream) {
  const int absent = nranks - 1;
  const size_t es = plx_dtype_size(k.dtype), bytes = k.count * es;
  const std::vector<Bytes> inputs = absent_inputs(k, k.count * nranks, nranks, absent);
  const Bytes all = reference(k.dtype, k.op, inputs, k.count * nranks);
  const plx_coll_options o = absent_options(rank, absent);
  DeviceBuffer<uint8_t> send(bytes * nranks), recv(bytes);
  if (rank != absent) send.upload(inputs[rank]);
  recv.upload(poison_bytes(bytes));
  const void *in = rank == absent ? nullptr : send.get();
  meet_peers();
  require_ok(plx_reduce_scatter(comm, in, recv.get(), k.count, k.dtype, k.op, &o, stream.s),
             describe(k, "reduce_scatter"));
  stream.sync();
  const Bytes want(all.begin() + rank * bytes, all.begin() + (rank + 1) * bytes);
  check_same(recv.download(), want, es, describe(k, "reduce_scatter"));
}

// Captured while its identity buffer does not exist yet (a pattern no call
// before used), replayed twice.
inline void captured_without(plx_comm_h comm, int rank, int nranks, const Stream &stream) {
  const AbsentCase k{PLX_INT64, PLX_MIN, 40961};
  const int absent = nranks - 1;
  const size_t bytes = k.count * 8;
  const std::vector<Bytes> inputs = absent_inputs(k, k.count, nranks, absent);
  const plx_coll_options o = absent_options(rank, absent);
  DeviceBuffer<uint8_t> send(bytes), recv(bytes);
  if (rank != absent) send.upload(inputs[rank]);
  recv.upload(poison_bytes(bytes));
  meet_peers();  // every rank's capture begins and ends with the others'
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const plx_status s = plx_all_reduce(comm, rank == absent ? nullptr : send.get(), recv.get(), k.count, k.dtype,
                                      k.op, &o, stream.s);  // checked after the capture ends
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  meet_peers();
  require_ok(s, describe(k, "captured all_reduce"));
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int replay = 0; replay < 2; ++replay) {
    recv.upload(poison_bytes(bytes));
    meet_peers();
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    stream.sync();
    check_same(recv.download(), reference(k.dtype, k.op, inputs, k.count), 8, describe(k, "captured all_reduce"));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// Every dtype and op at `small` elements, float32 and bfloat16 sums also at
// `large`; `with_avg` false leaves PLX_AVG out (a backend whose average is
// not bit-identical to core's sum-then-divide).
inline void check_no_contribution(plx_comm_h comm, int rank, int nranks, uint64_t small, uint64_t large,
                                  bool with_avg) {
  Stream stream;
  std::vector<AbsentCase> cases;
  for (plx_dtype dtype = 0; dtype < PLX_DTYPE_COUNT; ++dtype)
    for (plx_reduce_op op = 0; op < PLX_REDUCE_OP_COUNT; ++op)
      if (with_avg || op != PLX_AVG) cases.push_back({dtype, op, small});
  cases.push_back({PLX_FLOAT32, PLX_SUM, large});
  cases.push_back({PLX_BFLOAT16, PLX_SUM, large});
  for (const AbsentCase &k : cases) {
    all_reduce_and_reduce_without(comm, rank, nranks, k, stream);
    reduce_scatter_without(comm, rank, nranks, k, stream);
  }
  captured_without(comm, rank, nranks, stream);
}

}  // namespace plexus::test

// A rank's first calls of some kind enqueued while its previous kernel
// waits for a late peer: for thread ranks, on two GPUs
// (test_p2p_gpu_threads.cpp) and sharing one (test_p2p_gpu_shared.cpp).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/gpu_wire.hpp"
#include "tests/plugins/p2p-tree/p2p_gpu_check.hpp"

namespace plexus::test::p2p {

// Rank 1 starts 300 ms late; meanwhile rank 0 enqueues a one-shot that
// waits for it, then its first float32 reduce-scatter and large all-reduce
// on a bfloat16 wire (the stand-in: the scratch pool's first mappings).
// Were a first use inside those calls to wait for the whole device while
// it kept rank 1 from launching (as CUDA's lazy kernel loading did to two
// ranks on one GPU), both ranks would hang until the timeout. Every buffer
// is filled before the ranks meet (meet_peers): an upload synchronises the
// device.
inline void first_wire_call_while_peer_waits(plx_comm_h comm, int rank, int nranks) {
  Stream stream;
  const uint64_t small = 7, count = (uint64_t{1} << 20) + 3;
  std::vector<Bytes> waiting_inputs, wire_inputs;
  for (int r = 0; r < nranks; ++r) {
    waiting_inputs.push_back(input_of(r, PLX_FLOAT32, small, 77));
    wire_inputs.push_back(random_input(4099u * r + 11u, PLX_FLOAT32, count * nranks));
  }
  const Bytes want = wire_reference(PLX_BFLOAT16, PLX_SUM, wire_inputs, count * nranks);
  const size_t bytes = count * 4;
  DeviceBuffer<uint8_t> small_send(small * 4), small_recv(small * 4), send(bytes * nranks), scattered(bytes),
      reduced(bytes);
  small_send.upload(waiting_inputs[rank]);
  small_recv.upload(poison_bytes(small * 4));
  send.upload(wire_inputs[rank]);
  scattered.upload(poison_bytes(bytes));
  reduced.upload(poison_bytes(bytes));
  meet_peers();
  if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  plx_coll_options one_shot = PLX_COLL_OPTIONS_INIT, wire = PLX_COLL_OPTIONS_INIT;
  one_shot.algorithm = PLX_ALGO_ONE_SHOT;
  wire.wire_dtype = PLX_BFLOAT16;
  PLX_OK_OR_FAIL(plx_all_reduce(comm, small_send.get(), small_recv.get(), small, PLX_FLOAT32, PLX_SUM, &one_shot,
                                stream.s));
  PLX_OK_OR_FAIL(plx_reduce_scatter(comm, send.get(), scattered.get(), count, PLX_FLOAT32, PLX_SUM, &wire, stream.s));
  PLX_OK_OR_FAIL(plx_all_reduce(comm, send.get(), reduced.get(), count, PLX_FLOAT32, PLX_SUM, &wire, stream.s));
  stream.sync();
  check_same(small_recv.download(), reference(PLX_FLOAT32, PLX_SUM, waiting_inputs, small), 4, "the waiting one-shot");
  check_same(scattered.download(), Bytes(want.begin() + rank * bytes, want.begin() + (rank + 1) * bytes), 4,
             "the first wire reduce-scatter");
  check_same(reduced.download(), Bytes(want.begin(), want.begin() + bytes), 4, "the first wire all-reduce");
}

}  // namespace plexus::test::p2p

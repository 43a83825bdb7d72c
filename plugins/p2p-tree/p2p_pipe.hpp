// The ring and tree routes of p2p-tree's collectives (p2p_pipe.cpp): when a
// call takes them (forced, hinted, or because the machine is partly
// connected), and their launches. p2p_coll.cpp asks these first and keeps
// its one-shot and two-shot choice for everything else.
#pragma once

#include <cuda_runtime_api.h>

#include "plexus/plugin.h"
#include "plugins/p2p-tree/p2p_comm.hpp"

namespace plexus::p2p_tree {

constexpr bool is_pipe_algo(int32_t algo) {
  return algo == PLX_ALGO_RING || algo == PLX_ALGO_TREE || algo == PLX_ALGO_KARY_TREE;
}

// All-reduce and reduce: the ring or a tree when forced or hinted, or on a
// partly connected machine (a tree up to ONESHOT_MAX_BYTES x 2 / nranks,
// else the ring where one exists); PLX_ALGO_AUTO leaves the call to the
// full-graph algorithms. UNSUPPORTED for a ring that does not exist or a
// full-graph algorithm forced on a partial graph.
plx_status pipe_reduce_algo(const Comm &c, const plx_coll_desc &d, uint64_t bytes, int32_t *algo);
// Broadcast: a tree when forced or hinted (tree, kary_tree) or on a partly
// connected machine; else PLX_ALGO_AUTO.
int32_t pipe_broadcast_algo(const Comm &c, const plx_coll_desc &d);
// UNSUPPORTED naming an unlinked pair when `coll` needs every pair linked
// and the machine is partly connected.
plx_status require_full_graph(const Comm &c, int32_t coll, const char *algo);

// The launches: out NULL on reduce's non-roots.
plx_status pipe_reduce(Comm &c, const plx_coll_desc &d, void *out, int32_t algo, cudaStream_t stream);
plx_status pipe_broadcast(Comm &c, const plx_coll_desc &d, int32_t algo, cudaStream_t stream);
plx_status pipe_barrier(Comm &c, const plx_coll_desc &d, cudaStream_t stream);

}  // namespace plexus::p2p_tree

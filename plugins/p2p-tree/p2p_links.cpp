// Which peers a p2p-tree rank reaches with peer access, agreed by all
// ranks at plx_comm_init: each rank tests its own pairs, the masks are
// all-gathered, and a pair is linked only when both ends reach each other,
// so every rank builds the same matrix, ring and trees (p2p_topo.hpp). A
// machine whose linked pairs leave some rank unreachable is refused.
#include <cuda_runtime_api.h>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/p2p-tree/p2p_comm.hpp"

namespace plexus::p2p_tree {

// cudaDeviceCanAccessPeer when the peer's GPU is visible here (a rank whose
// CUDA_VISIBLE_DEVICES hides it trusts the IPC open's lazy enable), unless
// PLEXUS_P2P_TREE_UNLINK names the pair.
plx_status Comm::reaches(int32_t peer, const PeerCard &card, bool *reach) {
  *reach = !pair_bit(params_.unlinked, setup_.rank, peer);
  int ordinal = -1;
  if (!*reach || cudaDeviceGetByPCIBusId(&ordinal, card.pci_bus_id) != cudaSuccess) {
    (void)cudaGetLastError();
    return PLX_OK;
  }
  if (ordinal == setup_.device) return PLX_OK;
  int can = 0;
  PLX_CUDA_CHECK(cudaDeviceCanAccessPeer(&can, setup_.device, ordinal));
  *reach = can != 0;
  if (!*reach)
    core::log_info("p2p-tree: rank {}: no peer access from device {} to device {} ({}, rank {})", setup_.rank,
                   setup_.device, ordinal, card.pci_bus_id, peer);
  return PLX_OK;
}

plx_status Comm::agree_links(const std::vector<PeerCard> &cards) {
  uint32_t mine = 0;
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    bool reach = false;
    if (q == setup_.rank) continue;
    if (plx_status s = reaches(q, cards[q], &reach)) return s;
    if (reach) mine |= 1u << q;
  }
  std::vector<uint32_t> all(static_cast<size_t>(setup_.nranks));
  if (plx_status s = rendezvous_->allgather(&mine, sizeof(mine), all.data(), setup_.init_timeout_ms)) return s;
  const Links links = links_from(setup_.nranks, all.data());
  if (const Pair cut = unreachable_pair(links); !cut.none())
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: ranks {} and {} cannot reach each other over peer "
                      "access, not even through other ranks (devices {} and {}: the linked pairs form "
                      "more than one island); use pinned-host or nccl on this machine", cut.a, cut.b,
                      cards[cut.a].pci_bus_id, cards[cut.b].pci_bus_id);
  routes_ = routes_for(links, params_.tree_arity);
  if (!routes_.full) {
    const Pair gap = first_unlinked(links);
    core::log_info("p2p-tree: rank {}: partly connected (ranks {} and {} not linked): trees, and a ring{}",
                   setup_.rank, gap.a, gap.b, routes_.ring.ok ? "" : " (none exists: trees only)");
  }
  return PLX_OK;
}

}  // namespace plexus::p2p_tree

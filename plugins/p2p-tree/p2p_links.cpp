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
// PLEXUS_P2P_TREE_UNLINK names the pair; and whether NVML saw NVLink to it
// (false when the peer's GPU is not visible here).
plx_status Comm::reaches(int32_t peer, const PeerCard &card, bool *reach, bool *nvlink) {
  *reach = !pair_bit(params_.unlinked, setup_.rank, peer);
  *nvlink = false;
  int ordinal = -1;
  if (!*reach || cudaDeviceGetByPCIBusId(&ordinal, card.pci_bus_id) != cudaSuccess) {
    (void)cudaGetLastError();
    return PLX_OK;
  }
  *nvlink = ordinal >= 0 && ordinal < 32 && ((setup_.nvlinked_ordinals >> ordinal) & 1u) != 0;
  if (ordinal == setup_.device) return PLX_OK;
  int can = 0;
  PLX_CUDA_CHECK(cudaDeviceCanAccessPeer(&can, setup_.device, ordinal));
  *reach = can != 0;
  if (!*reach)
    core::log_info("p2p-tree: rank {}: no peer access from device {} to device {} ({}, rank {})", setup_.rank,
                   setup_.device, ordinal, card.pci_bus_id, peer);
  return PLX_OK;
}

// LL128 needs NVLink's whole 128-byte stores between every pair: on only
// when every rank saw NVLink to every other (and the parameters allow it).
void Comm::agree_ll128(const uint32_t *nvlinked) {
  bool all = params_.ll128;
  for (int32_t a = 0; a < setup_.nranks; ++a)
    all = all && (nvlinked[a] | 1u << a) == (1u << setup_.nranks) - 1;
  ll128_min_bytes_ = all ? params_.ll128_from() : UINT64_MAX;
  core::log_debug("p2p-tree: rank {}: LL128 one-shot {}", setup_.rank,
                  all ? fmt::format("from {} bytes", ll128_min_bytes_)
                      : params_.ll128 ? std::string("off (not every pair is NVLink)") : std::string("off"));
}

// Each rank's reach mask (low half) and NVLink mask (high half), gathered.
plx_status Comm::agree_links(const std::vector<PeerCard> &cards) {
  uint64_t mine = 0;
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    bool reach = false, nvlink = false;
    if (q == setup_.rank) continue;
    if (plx_status s = reaches(q, cards[q], &reach, &nvlink)) return s;
    if (reach) mine |= uint64_t{1} << q;
    if (nvlink) mine |= uint64_t{1} << (32 + q);
  }
  std::vector<uint64_t> gathered(static_cast<size_t>(setup_.nranks));
  if (plx_status s = rendezvous_->allgather(&mine, sizeof(mine), gathered.data(), setup_.init_timeout_ms)) return s;
  std::vector<uint32_t> all(gathered.size()), nvlinked(gathered.size());
  for (size_t a = 0; a < gathered.size(); ++a) {
    all[a] = static_cast<uint32_t>(gathered[a]);
    nvlinked[a] = static_cast<uint32_t>(gathered[a] >> 32);
  }
  agree_ll128(nvlinked.data());
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

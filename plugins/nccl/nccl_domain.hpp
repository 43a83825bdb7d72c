// The failure domain of an nccl communicator, the CPU half: NCCL does not
// tell the other ranks when one aborts or times out, so the ranks of each
// host also meet in a core::Rendezvous, where a failure posted by one is
// seen by all. This file holds what needs no GPU (keys, host identity,
// which ranks share a host, segment names), so it can be tested on CPU.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/rendezvous.hpp"
#include "plexus/types.h"

namespace plexus::nccl {

// Random bytes shared by every rank of a communicator (through the unique
// id, or derived from the parent's at a split). A core::RendezvousId (72
// bytes) does not fit the payload next to NCCL's 128-byte id, and one
// segment name would not do anyway: each host needs its own.
struct DomainKey {
  uint64_t secret[2];
  uint64_t nonce;
};
static_assert(std::is_trivially_copyable_v<DomainKey> && sizeof(DomainKey) == 24);

plx_status make_domain_key(DomainKey *out);

// The key of a split's child: every rank of the child computes the same
// from its parent's key, the split's sequence number on the parent and the
// color, and children of different splits or colors never share one.
DomainKey child_domain_key(const DomainKey &parent, uint64_t split_seq, int32_t color);

// Ranks may share a rendezvous segment when they see the same /dev/shm and
// the same pids: same host (hostname, boot id), same tmpfs, same pid
// namespace. A hash of those.
uint64_t host_identity_of(std::string_view hostname, std::string_view boot_id, uint64_t shm_device,
                          std::string_view pid_namespace);
// host_identity_of for this process (computed once).
uint64_t host_identity();

// What each rank contributes to the discovery all-gather.
struct HostRank {
  uint64_t host;  // host_identity()
  uint64_t pid;
};
static_assert(sizeof(HostRank) == 16);

struct LocalRanks {
  std::vector<int32_t> ranks;  // communicator ranks on my host, ascending
  int32_t index = -1;          // my position among them (my rendezvous rank)
};

// The ranks whose host is my_rank's; index -1 when my_rank is out of range.
LocalRanks local_ranks(const std::vector<HostRank> &all, int32_t my_rank);

// The rendezvous of `key`'s ranks on `host`: "/plexus-nccl-<32 hex>", a
// one-way mix of key and host, so each host has its own segment and a name
// seen in /dev/shm tells nothing of the key (nor of a child's name).
core::RendezvousId domain_rendezvous_id(const DomainKey &key, uint64_t host);

}  // namespace plexus::nccl

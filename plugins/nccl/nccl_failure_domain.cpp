// The failure domain, the GPU half: which ranks share this host (an
// all-gather over the new communicator), the host's rendezvous, and what
// the watchdog reads from it. See nccl_domain.hpp for the CPU half.
#include <unistd.h>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/nccl/nccl_comm.hpp"

namespace plexus::nccl {
namespace {

// /proc reads per local rank: cheap, but not every poll. A SIGKILLed peer
// is noticed within this interval plus one poll.
constexpr int64_t kPeerCheckNs = 50'000'000;

}  // namespace

// Runs on every rank of a new communicator (all of them are in init or
// split together), before the warm-up, so a rank that fails the warm-up
// can already tell its host's other ranks.
plx_status Comm::join_domain() {
  std::vector<HostRank> all;
  if (plx_status s = gather_host_ranks(&all)) return s;
  LocalRanks local = local_ranks(all, setup_.rank);
  if (local.index < 0)
    return core::fail(PLX_ERR_INTERNAL, "nccl: rank {} is not among the {} ranks of its communicator",
                      setup_.rank, all.size());
  const core::RendezvousId id = domain_rendezvous_id(setup_.domain, all[setup_.rank].host);
  const auto nlocal = static_cast<int32_t>(local.ranks.size());
  std::unique_ptr<core::Rendezvous> domain;
  if (plx_status s = core::Rendezvous::join(id, nlocal, local.index, setup_.init_timeout_ms, &domain)) {
    const std::string why = core::last_message();
    return core::fail(s, "nccl: rank {} of {} (device {}): the {} rank(s) of this host did not meet "
                      "in shared memory (/dev/shm): {}", setup_.rank, setup_.nranks, setup_.device,
                      nlocal, why);
  }
  for (const int32_t r : local.ranks) local_pids_.push_back(all[r].pid);
  local_ranks_ = std::move(local.ranks);
  posted_word_ = domain->failure_word();
  domain_ = std::move(domain);
  core::log_debug("nccl: rank {} of {}: local rank {} of {} on this host", setup_.rank, setup_.nranks,
                  local.index, nlocal);
  return PLX_OK;
}

// Every rank's (host identity, pid), in rank order.
plx_status Comm::gather_host_ranks(std::vector<HostRank> *all) {
  const HostRank mine{host_identity(), static_cast<uint64_t>(::getpid())};
  void *device = nullptr;
  const size_t bytes = (static_cast<size_t>(setup_.nranks) + 1) * sizeof(HostRank);
  PLX_CUDA_CHECK(cudaMallocAsync(&device, bytes, internal_stream_));
  const plx_status s = all_gather_host_ranks(static_cast<HostRank *>(device), mine, all);
  // Stream-ordered: freed after the all-gather, also one a missing peer
  // still holds (the abort that follows a failure releases it).
  (void)cudaFreeAsync(device, internal_stream_);
  return s;
}

// `device` holds my entry, then everyone's. The copy back waits until the
// all-gather is done (bounded), since a copy into pageable memory would
// block the host on a gather that a missing peer never completes.
plx_status Comm::all_gather_host_ranks(HostRank *device, const HostRank &mine,
                                       std::vector<HostRank> *all) {
  PLX_CUDA_CHECK(cudaMemcpyAsync(device, &mine, sizeof(mine), cudaMemcpyHostToDevice, internal_stream_));
  static_assert(sizeof(HostRank) == 2 * sizeof(uint64_t));
  if (plx_status s = setup_call(ncclAllGather(device, device + 1, 2, ncclUint64, nccl_, internal_stream_),
                                "the host discovery all-gather (ncclAllGather)"))
    return s;
  if (plx_status s = wait_stream(setup_.init_timeout_ms, "the host discovery all-gather")) return s;
  all->resize(static_cast<size_t>(setup_.nranks));
  PLX_CUDA_CHECK(cudaMemcpyAsync(all->data(), device + 1, all->size() * sizeof(HostRank),
                                 cudaMemcpyDeviceToHost, internal_stream_));
  return wait_stream(setup_.init_timeout_ms, "copying the host discovery back");
}

// A failure posted in the domain, in this rank's words: which rank of the
// communicator posted it, and its message.
plx_status Comm::posted_failure(std::string *message) const {
  std::string text;
  const plx_status status = domain_->failure(&text);
  if (status == PLX_OK) return PLX_OK;
  const uint64_t word = __atomic_load_n(posted_word_, __ATOMIC_ACQUIRE);
  const auto poster = static_cast<size_t>(word >> 32);
  const int32_t poster_rank = poster < local_ranks_.size() ? local_ranks_[poster] : -1;
  *message = fmt::format("nccl: rank {} of {} (device {}): rank {} failed the communicator, so this "
                         "rank aborted it too: {}", setup_.rank, setup_.nranks, setup_.device,
                         poster_rank, text);
  return status;
}

// Watchdog: a failure another rank of this host posted fails this rank with
// the same status (its kernels may wait on that rank forever otherwise);
// a local rank whose process died without leaving is PLX_ERR_PEER_LOST,
// long before the timeout would notice.
void Comm::watch_domain(int64_t now) {
  if (domain_ == nullptr) return;
  std::string message;
  if (const plx_status posted = posted_failure(&message); posted != PLX_OK) {
    fail_and_abort(posted, message, 0);
    return;
  }
  if (now < next_peer_check_ns_) return;
  next_peer_check_ns_ = now + kPeerCheckNs;
  (void)lost_local_peer();
}

bool Comm::lost_local_peer() {
  if (domain_ == nullptr) return false;
  for (size_t i = 0; i < local_ranks_.size(); ++i) {
    const auto local = static_cast<int32_t>(i);
    // Read in this order: a rank that leaves, then exits, is never lost.
    if (domain_->peer_alive(local) || domain_->peer_left(local)) continue;
    fail_and_abort(PLX_ERR_PEER_LOST, fmt::format("nccl: rank {} of {} (device {}): rank {} (pid {}) "
                   "on this host exited without leaving the communicator (killed or crashed); the "
                   "NCCL communicator was aborted", setup_.rank, setup_.nranks, setup_.device,
                   local_ranks_[i], local_pids_[i]), 0);
    return true;
  }
  return false;
}

}  // namespace plexus::nccl

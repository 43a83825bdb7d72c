#include "plugins/shm-native/shm_comm.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::shm_native {
namespace {

// What ranks exchange to map each other: the name of each rank's segment,
// and its pid and descriptor, to try the /proc/<pid>/fd path pool blocks use.
struct SegmentAnnouncement {
  char name[128];
  uint64_t bytes;
  int32_t pid;
  int32_t fd;
};

}  // namespace

namespace {

// With more ranks than cores a spinning rank burns the time slice of the
// rank it waits for; then waiting yields at once.
int32_t spin_for(int32_t nranks, int32_t configured) {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return configured;
  return nranks > CPU_COUNT(&cpus) ? 0 : configured;
}

}  // namespace

Comm::Comm(int32_t nranks, int32_t rank, const Params &params, int32_t timeout_ms)
    : rank_(rank), nranks_(nranks), params_(params), timeout_ms_(timeout_ms) {
  params_.spin_iterations = spin_for(nranks, params.spin_iterations);
}

Comm::~Comm() = default;

plx_status Comm::create(const core::RendezvousId &id, int32_t nranks, int32_t rank,
                        const plx_comm_config &config, const Params &params,
                        std::unique_ptr<Comm> *out) {
  std::unique_ptr<Comm> comm(new Comm(nranks, rank, params, config.timeout_ms));
  if (plx_status s = core::Rendezvous::join(id, nranks, rank, config.init_timeout_ms, &comm->rendezvous_))
    return s;
  comm->pool_ = std::make_unique<ShmPool>(params.defrag_threshold);
  if (plx_status s = comm->map_peers(config.init_timeout_ms)) return s;
  *out = std::move(comm);
  return PLX_OK;
}

// Creates this rank's segment, tells the others its name, maps theirs, and
// once all have mapped all, removes every name: from then on nothing of the
// communicator is left in /dev/shm, whatever happens to the ranks.
plx_status Comm::map_peers(int32_t init_timeout_ms) {
  const uint64_t bytes = slot_offset + 2 * params_.slot_bytes;
  peers_.resize(nranks_);
  core::ShmSegment &own = peers_[rank_];
  if (plx_status s = core::ShmSegment::create(core::ShmSegment::make_name("shm-native"), bytes, &own))
    return fail_all(s, core::last_message());
  new (own.data()) RankControl();
  SegmentAnnouncement mine{};
  std::strncpy(mine.name, own.name().c_str(), sizeof(mine.name) - 1);
  mine.bytes = bytes;
  mine.pid = static_cast<int32_t>(::getpid());
  mine.fd = own.fd();
  std::vector<SegmentAnnouncement> all(nranks_);
  if (plx_status s = rendezvous_->allgather(&mine, sizeof(mine), all.data(), init_timeout_ms)) return s;
  std::vector<int32_t> pids(nranks_), fds(nranks_);
  for (int32_t r = 0; r < nranks_; ++r) {
    pids[r] = all[r].pid, fds[r] = all[r].fd;
    if (r == rank_) continue;
    if (plx_status s = core::ShmSegment::open(all[r].name, all[r].bytes, &peers_[r]))
      return fail_all(s, "rank " + std::to_string(rank_) + " could not map rank " + std::to_string(r) + "'s segment");
  }
  const plx_status probed = probe_peer_fds(pids, fds);
  const plx_status s = rendezvous_->barrier(init_timeout_ms);
  own.unlink();
  reads_in_place_ = probed == PLX_OK && params_.read_in_place;
  for (int32_t r = 0; r < nranks_; ++r)
    reads_in_place_ = reads_in_place_ && control(r).maps_peers.load(std::memory_order_acquire);
  return s;
}

// Pool blocks are read in place only if every rank can open every peer's
// descriptors; the barrier after this makes every rank's answer visible, so
// all ranks take the same decision. A failure only costs the copy.
plx_status Comm::probe_peer_fds(const std::vector<int32_t> &pids, const std::vector<int32_t> &fds) {
  peer_maps_ = std::make_unique<PeerMaps>(pids);
  for (int32_t r = 0; r < nranks_; ++r)
    if (r != rank_ && PeerMaps::probe(pids[r], fds[r]) != PLX_OK) {
      core::log_info("{}", core::last_message());
      return PLX_ERR_UNSUPPORTED;
    }
  control(rank_).maps_peers.store(1, std::memory_order_release);
  return PLX_OK;
}

plx_status Comm::fail_all(plx_status status, const std::string &message) {
  rendezvous_->post_failure(status, message);
  return core::fail(status, "{}", message);
}

plx_status Comm::posted_failure() {
  std::string message;
  const plx_status s = rendezvous_->failure(&message);
  return s == PLX_OK ? PLX_OK : core::fail(s, "{}", message);
}

}  // namespace plexus::shm_native

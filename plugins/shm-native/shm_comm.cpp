#include "plugins/shm-native/shm_comm.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include "core/host_topology.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "plugins/shm-native/shm_wait.hpp"

namespace plexus::shm_native {

namespace {

// Parameters every rank must set alike: each rank alone decides when the
// slots grow, which algorithm a call takes, which slot region a step writes
// and whether it maps LL lines, and all must decide the same.
constexpr std::array agreed_param_names = {"SLOT_MIN_BYTES", "SLOT_BYTES", "ONESHOT_MAX_BYTES",
                                           "ROTATE_MIN_BYTES", "LL_MAX_BYTES", "READ_IN_PLACE"};
using AgreedParams = std::array<uint64_t, agreed_param_names.size()>;

AgreedParams agreed_params(const Params &p) {
  return {p.slot_min_bytes, p.slot_bytes, p.oneshot_max_bytes, p.rotate_min_bytes, p.ll_max_bytes,
          p.read_in_place ? 1u : 0u};
}

}  // namespace

// What ranks exchange to map each other: the name of each rank's control
// page, its pid (for /proc/<pid>/fd) and the parameters that must agree.
struct SegmentAnnouncement {
  char name[128];
  int32_t pid;
  int32_t pad;
  AgreedParams agreed;
  cpu_set_t cpus;  // where this rank may run, for outnumber_cpus()
};

namespace {

// This thread's affinity; all online CPUs when it cannot be read.
cpu_set_t own_cpus() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return cpus;
  CPU_ZERO(&cpus);
  for (long c = 0; c < std::min<long>(sysconf(_SC_NPROCESSORS_ONLN), CPU_SETSIZE); ++c) CPU_SET(c, &cpus);
  return cpus;
}

}  // namespace

uint64_t rotate_min_bytes_for_ranks(uint64_t configured, int32_t nranks) {
  if (configured != rotate_min_by_ranks) return configured;
  return nranks > 4 ? uint64_t{16} << 10 : uint64_t{8} << 10;
}

// The name of a rank's fixed-size slots in the fallback without /proc.
struct SlotName {
  char name[128];
};

Comm::Comm(int32_t nranks, int32_t rank, const Params &params, int32_t timeout_ms,
           std::shared_ptr<StagingReport> report)
    : rank_(rank), nranks_(nranks), params_(params), timeout_ms_(timeout_ms), report_(std::move(report)) {
  params_.slot_min_bytes = std::min(params.slot_min_bytes, params.slot_bytes);
  rotate_min_bytes_ = rotate_min_bytes_for_ranks(params.rotate_min_bytes, nranks);
}

Comm::~Comm() = default;

plx_status Comm::create(const core::RendezvousId &id, int32_t nranks, int32_t rank,
                        const plx_comm_config &config, const Params &params,
                        std::shared_ptr<StagingReport> report, std::unique_ptr<Comm> *out) {
  std::unique_ptr<Comm> comm(new Comm(nranks, rank, params, config.timeout_ms, std::move(report)));
  if (plx_status s = core::Rendezvous::join(id, nranks, rank, config.init_timeout_ms, &comm->rendezvous_))
    return s;
  comm->pool_ = std::make_unique<ShmPool>(params.defrag_threshold);
  if (plx_status s = comm->map_peers(config.init_timeout_ms)) return s;
  *out = std::move(comm);
  return PLX_OK;
}

void Comm::set_slots(int32_t r, core::ShmSegment segment) {
  slots_[r] = std::move(segment);
  slot_base_[r] = slots_[r].valid() ? static_cast<uint8_t *>(slots_[r].data()) + slot_header_bytes : nullptr;
}

// The control page is named (peers open it by name at init); the slots are
// a memfd placed on this rank's NUMA node, announced in the control page.
plx_status Comm::create_own_segments(const char *control_name) {
  core::ShmSegment &own = controls_[rank_];
  if (plx_status s = core::ShmSegment::create(control_name, control_bytes(), &own)) return s;
  place_existing(own.data(), control_bytes(), numa_node_);
  new (own.data()) RankControl();
  core::ShmSegment slots;
  slot_bytes_ = params_.slot_min_bytes;
  if (plx_status s = create_slot_memfd(0, slot_bytes_, numa_node_, &slots, &placement_)) return s;
  control(rank_).numa_node.store(static_cast<uint32_t>(placement_.placed), std::memory_order_relaxed);
  control(rank_).slot_segments[0] = {0, slots.fd(), slot_bytes_};
  set_slots(rank_, std::move(slots));
  return PLX_OK;
}

plx_status Comm::check_same_params(const std::vector<SegmentAnnouncement> &all) {
  const AgreedParams mine = agreed_params(params_);
  for (int32_t r = 0; r < nranks_; ++r)
    for (size_t i = 0; i < mine.size(); ++i)
      if (all[r].agreed[i] != mine[i])
        return core::fail(PLX_ERR_INVALID_USAGE, "shm-native: rank {} has PLEXUS_SHM_NATIVE_{}={} and rank {} {}: "
                          "every rank must set the same", r, agreed_param_names[i], all[r].agreed[i], rank_,
                          mine[i]);
  return PLX_OK;
}

// Tells the others the name this rank's control page will have, before it
// exists: a rank killed once the page exists is then one whose name every
// survivor knows (see map_peers).
plx_status Comm::announce(int32_t init_timeout_ms, std::vector<SegmentAnnouncement> *all) {
  SegmentAnnouncement mine{};
  const std::string name = core::ShmSegment::make_name("shm-native");
  if (name.empty()) return core::fail(PLX_ERR_SYSTEM, "shm-native: no randomness for a segment name");
  std::strncpy(mine.name, name.c_str(), sizeof(mine.name) - 1);
  mine.pid = static_cast<int32_t>(::getpid());
  mine.agreed = agreed_params(params_);
  mine.cpus = own_cpus();
  all->assign(nranks_, {});
  if (plx_status s = rendezvous_->allgather(&mine, sizeof(mine), all->data(), init_timeout_ms)) return s;
  decide_spinning(*all);
  decide_threads(*all);
  return check_same_params(*all);
}

// With more ranks than CPUs to run them a polling rank burns the time slice
// of the rank it waits for: then waits yield at once and sleep after YIELD
// yields. Every rank sees the same masks, so all decide alike.
void Comm::decide_spinning(const std::vector<SegmentAnnouncement> &all) {
  std::vector<cpu_set_t> masks;
  for (const SegmentAnnouncement &a : all) masks.push_back(a.cpus);
  oversubscribed_ = outnumber_cpus(masks);
  if (oversubscribed_) params_.spin_iterations = 0, params_.sleep_after_us = 0;
  spin_ = SpinBudget(params_.spin_iterations);
}

// Threads per rank (helpers + 1) for the bulk of large steps: THREADS when
// set, else the CPUs the ranks may run on shared out evenly (at most
// auto_threads, and no more than this rank's own mask holds), so that ranks
// never compete with their own helpers. 8 ranks on the GPU machine's 32
// cores: 4 each; 2 ranks on the 2-core dev machine: 1 (no helpers).
constexpr int32_t auto_threads = 8;

void Comm::decide_threads(const std::vector<SegmentAnnouncement> &all) {
  cpu_set_t every;
  CPU_ZERO(&every);
  for (const SegmentAnnouncement &a : all) CPU_OR(&every, &every, &a.cpus);
  const int32_t fair = CPU_COUNT(&every) / nranks_, own = CPU_COUNT(&all[rank_].cpus);
  const int32_t threads = params_.threads > 0 ? std::min(params_.threads, 64)
                          : oversubscribed_   ? 1
                                              : std::clamp(std::min(fair, own), 1, auto_threads);
  helper_count_ = threads - 1;
}

HelperThreads *Comm::helpers() {
  if (helper_count_ == 0) return nullptr;
  if (!helpers_) {
    helpers_ = std::make_unique<HelperThreads>(helper_count_, params_.threads_poll_us);
    core::log_debug("shm-native: rank {}: {} helper threads split the copies and reductions of two-shot steps "
                    "of {} bytes and more", rank_, helper_count_, params_.threads_min_bytes);
  }
  return helpers_.get();
}

// Creates this rank's segments, waits until every rank has, maps theirs,
// and waits until every rank has mapped every other's.
plx_status Comm::open_announced(const std::vector<SegmentAnnouncement> &all, int32_t init_timeout_ms) {
  if (plx_status s = create_own_segments(all[rank_].name)) return fail_all(s, core::last_message());
  if (plx_status s = rendezvous_->barrier(init_timeout_ms)) return s;
  for (int32_t r = 0; r < nranks_; ++r) {
    pids_.push_back(all[r].pid);
    if (r == rank_) continue;
    if (plx_status s = core::ShmSegment::open(all[r].name, control_bytes(), &controls_[r]))
      return fail_all(s, "rank " + std::to_string(rank_) + " could not map rank " + std::to_string(r) + "'s segment");
  }
  peer_maps_ = std::make_unique<PeerMaps>(pids_);
  map_peer_growable_slots();
  return rendezvous_->barrier(init_timeout_ms);
}

// Maps every peer's control page and first slots. Then, whatever happened,
// every rank removes every announced name: after success all ranks have
// mapped all pages, after a failure nobody needs them, and a rank killed
// before removing its own name cannot leave it in /dev/shm. The barrier in
// open_announced also makes every rank's maps_peers visible, so all ranks
// take the same decision on growth and reading in place.
plx_status Comm::map_peers(int32_t init_timeout_ms) {
  numa_node_ = core::current_numa_node();
  controls_.resize(nranks_), slots_.resize(nranks_), slot_base_.assign(nranks_, nullptr);
  std::vector<SegmentAnnouncement> all;
  if (plx_status s = announce(init_timeout_ms, &all)) return s;
  const plx_status s = open_announced(all, init_timeout_ms);
  for (const SegmentAnnouncement &a : all) ::shm_unlink(a.name);
  controls_[rank_].unlink();
  if (s != PLX_OK) return s;
  bool all_map = true;
  for (int32_t r = 0; r < nranks_; ++r) all_map = all_map && control(r).maps_peers.load(std::memory_order_acquire);
  reads_in_place_ = all_map && params_.read_in_place;
  if (!all_map) return use_named_slots(init_timeout_ms);
  grow_above_ = slot_bytes_ < params_.slot_bytes ? slot_bytes_ : UINT64_MAX;
  report_->placed(placement_, slot_bytes_, true);
  return PLX_OK;
}

// Maps every peer's first slots through /proc: the same access that growth
// and reading pool blocks in place need. A failure only costs those two.
plx_status Comm::map_peer_growable_slots() {
  for (int32_t r = 0; r < nranks_; ++r) {
    if (r == rank_) continue;
    core::ShmSegment peer;
    if (plx_status s = map_peer_slots(pids_[r], control(r).slot_segments[0], &peer)) {
      core::log_info("{}", core::last_message());
      return s;
    }
    set_slots(r, std::move(peer));
  }
  control(rank_).maps_peers.store(1, std::memory_order_release);
  return PLX_OK;
}

// Some rank cannot open its peers' descriptors: every rank maps named
// segments of the largest slots instead. As with the control pages, the
// names are announced before they exist and every rank removes all of them
// once all have mapped all, or on a failure.
plx_status Comm::use_named_slots(int32_t init_timeout_ms) {
  for (int32_t r = 0; r < nranks_; ++r) set_slots(r, {});
  SlotName mine{};
  std::strncpy(mine.name, core::ShmSegment::make_name("shm-native-slots").c_str(), sizeof(mine.name) - 1);
  std::vector<SlotName> all(nranks_);
  if (plx_status s = rendezvous_->allgather(&mine, sizeof(mine), all.data(), init_timeout_ms)) return s;
  const plx_status s = open_named_slots(all, init_timeout_ms);
  for (const SlotName &n : all) ::shm_unlink(n.name);
  slots_[rank_].unlink();
  report_->placed(placement_, slot_bytes_, false);
  return s;
}

plx_status Comm::open_named_slots(const std::vector<SlotName> &all, int32_t init_timeout_ms) {
  core::ShmSegment own;
  if (plx_status s = create_slot_named(all[rank_].name, params_.slot_bytes, numa_node_, &own, &placement_))
    return fail_all(s, core::last_message());
  set_slots(rank_, std::move(own));
  slot_bytes_ = params_.slot_bytes;
  if (plx_status s = rendezvous_->barrier(init_timeout_ms)) return s;
  for (int32_t r = 0; r < nranks_; ++r) {
    if (r == rank_) continue;
    core::ShmSegment peer;
    plx_status s = core::ShmSegment::open(all[r].name, slot_file_bytes(slot_bytes_), &peer);
    if (s == PLX_OK) s = check_slot_header(peer, 0, slot_bytes_);
    if (s != PLX_OK) return fail_all(s, fmt::format("rank {} could not map rank {}'s slots: {}", rank_, r, core::last_message()));
    set_slots(r, std::move(peer));
  }
  return rendezvous_->barrier(init_timeout_ms);
}

// Every rank runs this at the same call with the same bytes (stage()), so
// all reach the same generation and size. The old segment is kept (retired_)
// until the first exchange in the new one: a peer maps a generation through
// the owner's descriptor only after the exchange that follows its growth, and
// the owner may pass that exchange and grow again before a slow peer has
// opened it. Once every peer has published a later step it has mapped it.
// Peers still reading the old slots hold their own mapping of them, so
// dropping ours never pulls memory from under them.
plx_status Comm::grow_slots(uint64_t bytes) {
  const uint64_t size = slot_size_for(bytes, params_.slot_min_bytes, params_.slot_bytes);
  core::ShmSegment fresh;
  Placement where;
  if (plx_status s = create_slot_memfd(generation_ + 1, size, numa_node_, &fresh, &where))
    return fail_all(s, fmt::format("shm-native: rank {} could not grow its slots from {} to {} bytes: {}",
                                   rank_, slot_bytes_, size, core::last_message()));
  ++generation_;
  control(rank_).slot_segments[generation_ & 1u] = {generation_, fresh.fd(), size};
  retired_ = std::move(slots_[rank_]);
  set_slots(rank_, std::move(fresh));
  core::log_debug("shm-native: rank {} slots grew from {} to {} bytes (generation {}, NUMA node {}, {})",
                  rank_, slot_bytes_, size, generation_, where.node, where.state());
  slot_bytes_ = size;
  cursor_[0] = cursor_[1] = 0;
  grow_above_ = size < params_.slot_bytes ? size : UINT64_MAX;
  growth_pending_ = true;
  report_->grew(where, size);
  return PLX_OK;
}

// Runs after the exchange of the first step in the grown slots: every peer
// has published that step, so each has grown (its entry for this generation
// is written) and has finished every step that used its old slots. Then
// waits until every peer has mapped this rank's new segment: a peer maps it
// through /proc/<pid>/fd, so a rank that finished the step and exited (its
// last collective grew the slots) would otherwise leave a slower peer
// nothing to open and its input unread.
plx_status Comm::finish_growth(const char *coll, uint64_t seq) {
  growth_pending_ = false;
  retired_ = core::ShmSegment();
  for (int32_t r = 0; r < nranks_; ++r) {
    if (r == rank_) continue;
    const SlotSegmentRef ref = control(r).slot_segments[generation_ & 1u];
    if (ref.generation != generation_ || ref.slot_bytes != slot_bytes_)
      return fail_all(PLX_ERR_INVALID_USAGE, fmt::format("shm-native: in {} #{} rank {}'s slots are generation "
                      "{} of {} bytes, rank {}'s generation {} of {}: the ranks called collectives with "
                      "different sizes", coll, seq, r, ref.generation, ref.slot_bytes, rank_, generation_, slot_bytes_));
    core::ShmSegment peer;
    if (plx_status s = map_peer_slots(pids_[r], ref, &peer))
      return peer_open_failed(r, s, fmt::format("shm-native: rank {} could not map rank {}'s grown slots in "
                              "{} #{}", rank_, r, coll, seq));
    set_slots(r, std::move(peer));
  }
  publish_counter(control(rank_).mapped, generation_);
  return wait_all(*this, &RankControl::mapped, generation_, Deadline(timeout_ms_), {coll, seq});
}

// Regions start on pages: SIMD loops see the alignment they would at the
// slot's start, and no two regions share a line.
uint32_t Comm::next_step(uint64_t bytes) {
  constexpr uint64_t page = 4096;
  const uint32_t p = step_ & 1u;
  const uint64_t span = (bytes + page - 1) / page * page;
  region_[p] = 0;
  if (bytes >= rotate_min_bytes_ && span <= slot_bytes_) {
    if (cursor_[p] + span > slot_bytes_) cursor_[p] = 0;
    region_[p] = cursor_[p];
    cursor_[p] += span;
  }
  return step_++;
}

// A process rank's descriptors vanish when it exits, a moment before it
// turns into a zombie (which is when peer_alive() says it is gone).
bool Comm::peer_gone(int32_t r) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (!rendezvous_->peer_alive(r)) return true;
    ::usleep(1000);
  }
  return false;
}

// Opening a peer's descriptor through /proc failed: the peer left after a
// failure was posted (report that failure, as waits do), died (lost), or
// the open itself failed (its status).
plx_status Comm::peer_open_failed(int32_t r, plx_status s, const std::string &what) {
  const std::string why = core::last_message();
  if (plx_status posted = posted_failure()) return posted;
  const bool lost = peer_gone(r);
  return fail_all(lost ? PLX_ERR_PEER_LOST : s, fmt::format("{}{}: {}", what, lost ? " (it died)" : "", why));
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

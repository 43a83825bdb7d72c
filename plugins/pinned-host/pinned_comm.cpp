#include "plugins/pinned-host/pinned_comm.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/cuda_status.hpp"
#include "core/kernel_loading.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "kernels/modules.hpp"

namespace plexus::pinned_host {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

Comm::Comm(const CommSetup &setup, const Params &params)
    : setup_(setup), params_(params), user_pool_("pinned-host", setup.device, params.defrag_threshold) {
  channel_.layout = layout_of(params, setup.nranks);
  channel_.rank_bytes = kp::rank_bytes(channel_.layout);
  channel_.rank = setup.rank;
  channel_.nranks = setup.nranks;
  channel_.timeout_ns = setup.timeout_ms < 0 ? -1 : int64_t{setup.timeout_ms} * 1000000;
  channel_.max_blocks = params.max_blocks;
  // LL_BLOCKS may differ between ranks (only the lines are shared); MAX_BLOCKS caps every kernel.
  channel_.ll_blocks = std::min(params.ll_blocks, params.max_blocks);
}

std::string Comm::who() const {
  return fmt::format("pinned-host: rank {} of {} (device {})", setup_.rank, setup_.nranks, setup_.device);
}

plx_status Comm::create(const core::RendezvousId &id, const CommSetup &setup, const Params &params,
                        std::unique_ptr<Comm> *out) {
  std::unique_ptr<Comm> c(new Comm(setup, params));
  core::ScopedDevice device(setup.device);
  if (device.status() != PLX_OK) return device.status();
  core::log_debug("{}: joining the rendezvous {}", c->who(), id.name);
  if (plx_status s = core::Rendezvous::join(id, setup.nranks, setup.rank, setup.init_timeout_ms, &c->rendezvous_))
    return s;
  c->posted_word_ = c->rendezvous_->failure_word();
  // From here a failure is posted, so the other ranks stop waiting at once.
  auto fail_all = [&](plx_status s) {
    c->rendezvous_->post_failure(s, core::last_message());
    return s;
  };
  // Every kernel now, none at its first launch (core/kernel_loading.hpp says why).
  if (plx_status s = core::load_kernels(kernels::pinned_host_modules(), c->who())) return fail_all(s);
  if (plx_status s = c->make_state()) return fail_all(s);
  std::vector<PeerCard> cards;
  if (plx_status s = c->join_segment(&cards)) return fail_all(s);
  for (const PeerCard &card : cards) c->pids_.push_back(card.pid);
  if (cpu_helper_runs(params)) c->start_helper();
  if (copy_path_runs(params))
    if (plx_status s = c->make_copy_engines()) return fail_all(s);
  c->watchdog_ = std::thread([p = c.get()] { p->watchdog_main(); });
  core::log_debug("{}: ready ({} bytes of shared host memory)", c->who(), c->segment_.size());
  *out = std::move(c);
  return PLX_OK;
}

// Rank 0 makes the segment; every rank learns its name, checks the others'
// parameters, maps and registers it; after all have, every rank removes the
// name (idempotent), also when the meeting failed.
plx_status Comm::join_segment(std::vector<PeerCard> *cards) {
  if (setup_.rank == 0)
    if (plx_status s = make_segment()) return s;
  core::log_debug("{}: exchanging cards", who());
  if (plx_status s = exchange_cards(cards)) return s;
  const std::string name((*cards)[0].segment);
  plx_status s = check_cards(*cards);
  if (s == PLX_OK && setup_.rank != 0) s = open_segment(name.c_str());
  if (s == PLX_OK) s = register_segment();
  if (s == PLX_OK) {
    core::log_debug("{}: waiting for every rank to have mapped {}", who(), name);
    s = rendezvous_->barrier(setup_.init_timeout_ms);
  }
  if (!name.empty()) ::shm_unlink(name.c_str());  // ENOENT when a peer was first: fine
  (void)segment_.unlink();
  return s;
}

// Zeroed, and the zeros landed, before any kernel on any stream reads them.
plx_status Comm::make_state() {
  void *state = nullptr;
  PLX_CUDA_CHECK(cudaMalloc(&state, sizeof(kp::State)));
  state_ = static_cast<kp::State *>(state);
  channel_.state = state_;
  cudaStream_t stream = nullptr;
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaError_t err = cudaMemsetAsync(state_, 0, sizeof(kp::State), stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  (void)cudaStreamDestroy(stream);
  return err == cudaSuccess ? PLX_OK : core::fail_cuda(err, fmt::format("{}: zeroing its counters", who()));
}

// A fresh segment is all zero (flags, counters, the abort word); rank 0
// writes the header the others check.
plx_status Comm::make_segment() {
  const kp::Layout &l = channel_.layout;
  const uint64_t bytes = kp::segment_bytes(l);
  core::log_debug("{}: creating the shared segment ({} bytes)", who(), bytes);
  if (plx_status s = core::ShmSegment::create(core::ShmSegment::make_name("pinned-host"), bytes, &segment_)) {
    const std::string why = core::last_message();
    return core::fail(s, "{}: could not create its {} MiB of shared host memory (/dev/shm too small? "
                      "PLEXUS_PINNED_HOST_STAGES and _STAGE_BYTES size it): {}", who(), bytes >> 20, why);
  }
  auto *h = static_cast<kp::SegmentHeader *>(segment_.data());
  *h = {kp::kMagic, l.nranks, l.stages, l.stage_bytes, l.ll_bytes, bytes, l.ce_bytes, l.ce_stages, 0};
  return PLX_OK;
}

plx_status Comm::open_segment(const char *name) {
  const uint64_t bytes = kp::segment_bytes(channel_.layout);
  if (plx_status s = core::ShmSegment::open(name, bytes, &segment_)) {
    const std::string why = core::last_message();
    return core::fail(s, "{}: could not map rank 0's segment {}: {}", who(), name, why);
  }
  return check_header();
}

plx_status Comm::check_header() const {
  const auto *h = static_cast<const kp::SegmentHeader *>(segment_.data());
  const kp::Layout &l = channel_.layout;
  if (h->magic == kp::kMagic && h->nranks == l.nranks && h->stages == l.stages && h->stage_bytes == l.stage_bytes &&
      h->ll_bytes == l.ll_bytes && h->segment_bytes == kp::segment_bytes(l) && h->ce_bytes == l.ce_bytes &&
      h->ce_stages == l.ce_stages)
    return PLX_OK;
  return core::fail(PLX_ERR_INTERNAL, "{}: rank 0's segment {} has another layout (magic {:#x}, {} ranks, {} "
                    "stages of {} bytes, LL {} bytes)", who(), segment_.name(), h->magic, h->nranks, h->stages,
                    h->stage_bytes, h->ll_bytes);
}

// Registered portable and mapped; the kernels use the device alias (it can
// differ from the host address, as under WDDM).
plx_status Comm::register_segment() {
  const cudaError_t err =
      cudaHostRegister(segment_.data(), segment_.size(), cudaHostRegisterPortable | cudaHostRegisterMapped);
  if (err == cudaErrorHostMemoryAlreadyRegistered) {
    (void)cudaGetLastError();
    core::log_debug("{}: the segment was already registered", who());
  } else if (err != cudaSuccess) {
    return core::fail_cuda(err, fmt::format("{}: cudaHostRegister of {} bytes of shared host memory "
                                            "(portable, mapped)", who(), segment_.size()));
  } else {
    registered_ = true;
  }
  void *alias = nullptr;
  PLX_CUDA_CHECK(cudaHostGetDevicePointer(&alias, segment_.data(), 0));
  channel_.seg = static_cast<char *>(alias);
  return PLX_OK;
}

plx_status Comm::exchange_cards(std::vector<PeerCard> *cards) {
  PeerCard mine{};
  mine.pid = static_cast<uint64_t>(::getpid());
  mine.device = setup_.device;
  mine.stages = static_cast<uint32_t>(params_.stages);
  mine.stage_bytes = params_.stage_bytes;
  mine.ll_max_bytes = params_.ll_max_bytes;
  mine.oneshot_max_bytes = params_.oneshot_max_bytes;
  mine.cpu_min_bytes = params_.cpu_min_bytes;
  mine.copy_min_bytes = params_.copy_min_bytes;
  mine.copy_chunk_bytes = params_.copy_chunk_bytes;
  mine.copy_stages = params_.copy_stages;
  mine.forced_algo = params_.forced_algo;
  mine.wire = params_.wire;
  mine.max_blocks = params_.max_blocks;
  PLX_CUDA_CHECK(cudaDeviceGetPCIBusId(mine.pci_bus_id, sizeof(mine.pci_bus_id), setup_.device));
  std::strncpy(mine.segment, segment_.name().c_str(), sizeof(mine.segment) - 1);
  cards->resize(static_cast<size_t>(setup_.nranks));
  return rendezvous_->allgather(&mine, sizeof(mine), cards->data(), setup_.init_timeout_ms);
}

plx_status Comm::check_cards(const std::vector<PeerCard> &cards) const {
  const PeerCard &m = cards[setup_.rank];
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    const PeerCard &p = cards[q];
    if (p.stages != m.stages || p.stage_bytes != m.stage_bytes || p.ll_max_bytes != m.ll_max_bytes ||
        p.oneshot_max_bytes != m.oneshot_max_bytes || p.cpu_min_bytes != m.cpu_min_bytes ||
        p.copy_min_bytes != m.copy_min_bytes || p.copy_chunk_bytes != m.copy_chunk_bytes ||
        p.copy_stages != m.copy_stages || p.forced_algo != m.forced_algo || p.wire != m.wire ||
        p.max_blocks != m.max_blocks)
      return core::fail(PLX_ERR_INVALID_USAGE, "{}: rank {} uses other PLEXUS_PINNED_HOST_* parameters (STAGES {} "
                        "vs {}, STAGE_BYTES {} vs {}, LL_MAX_BYTES {} vs {}, ONESHOT_MAX_BYTES {} vs {}, CPU_MIN_BYTES, "
                        "COPY_*, ALGO, WIRE or MAX_BLOCKS): every rank must set the same", who(), q, p.stages, m.stages,
                        p.stage_bytes, m.stage_bytes, p.ll_max_bytes, m.ll_max_bytes, p.oneshot_max_bytes,
                        m.oneshot_max_bytes);
    if (q != setup_.rank && std::strncmp(p.pci_bus_id, m.pci_bus_id, sizeof(p.pci_bus_id)) == 0)
      return core::fail(PLX_ERR_UNSUPPORTED, "{}: ranks {} and {} share the GPU {}; pinned-host needs one GPU "
                        "per rank (kernels of two ranks on one GPU wait for each other but need not run together)",
                        who(), setup_.rank, q, p.pci_bus_id);
  }
  if (cards[0].segment[0] == '\0')
    return core::fail(PLX_ERR_INTERNAL, "{}: rank 0 announced no segment", who());
  return PLX_OK;
}

uint64_t *Comm::abort_word() const {
  return reinterpret_cast<uint64_t *>(static_cast<char *>(segment_.data()) + kp::kAbortOffset);
}

const kp::ErrorRecord *Comm::error_record(int32_t rank) const {
  const char *base = static_cast<const char *>(segment_.data()) + kp::kHeaderBytes;
  return reinterpret_cast<const kp::ErrorRecord *>(base + rank * channel_.rank_bytes + kp::kErrorOffset);
}

plx_status Comm::report_failure() {
  if (failure_.load(std::memory_order_acquire) == PLX_OK && rendezvous_ != nullptr) {
    std::string message;
    if (const plx_status posted = posted_failure(&message); posted != PLX_OK)
      return core::fail_message(posted, message);
  }
  std::lock_guard lock(failure_mutex_);
  return core::fail_message(failure_.load(), failure_message_);
}

plx_status Comm::set_failure(plx_status status, const std::string &message) {
  std::lock_guard lock(failure_mutex_);
  if (failure_.load() != PLX_OK) return core::fail_message(status, message);
  std::string cause = message;
  if (rendezvous_ != nullptr) {
    rendezvous_->post_failure(status, message);  // the first post of any rank wins
    std::string posted_message;
    const plx_status posted = posted_failure(&posted_message);
    const auto poster = static_cast<int32_t>(__atomic_load_n(posted_word_, __ATOMIC_ACQUIRE) >> 32);
    if (posted != PLX_OK && poster != setup_.rank) {
      status = posted;
      cause = std::move(posted_message);
    }
  }
  failure_message_ = cause;
  failure_.store(status, std::memory_order_seq_cst);
  // Every rank's kernels give up their waits at their next look (microseconds).
  if (segment_.valid()) __atomic_store_n(abort_word(), uint64_t{1}, __ATOMIC_SEQ_CST);
  core::log_error("{}", cause);
  return core::fail_message(status, cause);
}

void Comm::count_call(int32_t coll, int32_t algo) {
  algo_calls_[coll][algo].fetch_add(1, std::memory_order_relaxed);
  last_algo_[coll].store(algo, std::memory_order_relaxed);
}

void Comm::stats(int32_t coll, plx_op_stats *out) const {
  out->last_algorithm = last_algo_[coll].load(std::memory_order_relaxed);
  for (int a = 0; a < PLX_OP_STATS_ALGO_SLOTS; ++a)
    out->algorithm_calls[a] = algo_calls_[coll][a].load(std::memory_order_relaxed);
}

// Each rank reduces its part of every CPU-helper step; a failure it meets
// (a rank whose data never comes) fails the communicator like the watchdog.
void Comm::start_helper() {
  CpuHelper::Setup s;
  s.seg = static_cast<char *>(segment_.data());
  s.layout = channel_.layout;
  s.rank_bytes = channel_.rank_bytes;
  s.rank = setup_.rank, s.nranks = setup_.nranks, s.timeout_ms = setup_.timeout_ms;
  s.fail = [this](plx_status status, const std::string &message) { set_failure(status, message); };
  helper_ = std::make_unique<CpuHelper>(std::move(s));
}

plx_status Comm::make_copy_engines() {
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&ce_.stream, cudaStreamNonBlocking));
  PLX_CUDA_CHECK(cudaEventCreateWithFlags(&ce_.fork, cudaEventDisableTiming));
  PLX_CUDA_CHECK(cudaEventCreateWithFlags(&ce_.join, cudaEventDisableTiming));
  void *scratch = nullptr;
  PLX_CUDA_CHECK(cudaMalloc(&scratch, setup_.nranks * channel_.layout.ce_bytes));
  ce_.scratch = static_cast<char *>(scratch);
  return PLX_OK;
}

// This device's queued kernels end by themselves (they finish, time out or
// see the abort word); the helper still serves them meanwhile.
void Comm::drain() {
  core::ScopedDevice device(setup_.device);
  if (const cudaError_t err = cudaDeviceSynchronize(); err != cudaSuccess)
    core::log_warn("{}: cudaDeviceSynchronize before destroy: {}", who(), cudaGetErrorString(err));
  (void)cudaGetLastError();
}

// The peers keep their own mappings and registrations of the segment, so
// nothing here waits for them.
void Comm::release() {
  core::ScopedDevice device(setup_.device);
  user_pool_.reset();
  if (ce_.scratch != nullptr) (void)cudaFree(ce_.scratch);
  if (ce_.join != nullptr) (void)cudaEventDestroy(ce_.join);
  if (ce_.fork != nullptr) (void)cudaEventDestroy(ce_.fork);
  if (ce_.stream != nullptr) (void)cudaStreamDestroy(ce_.stream);
  ce_ = CopyEngines{};
  if (registered_) (void)cudaHostUnregister(segment_.data());
  registered_ = false;
  if (state_ != nullptr) (void)cudaFree(state_);
  state_ = nullptr;
  (void)cudaGetLastError();
  segment_ = core::ShmSegment();
}

Comm::~Comm() {
  drain();
  helper_.reset();
  stop_watchdog();
  release();
  posted_word_ = nullptr;
  rendezvous_.reset();  // leaving: this rank is gone cleanly, not lost
}

}  // namespace plexus::pinned_host

#include "plugins/p2p-tree/p2p_comm.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/cuda_status.hpp"
#include "core/kernel_loading.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "kernels/modules.hpp"

namespace plexus::p2p_tree {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

Comm::Comm(const CommSetup &setup, const Params &params)
    : setup_(setup), params_(params), identity_buffers_(setup.device), wire_pool_(setup.device),
      user_pool_("p2p-tree", setup.device, params.defrag_threshold) {
  peers_.rank = setup.rank;
  peers_.nranks = setup.nranks;
  peers_.slot_bytes = params.slot_bytes;
  peers_.ll_slot_bytes = params.ll_slot_bytes(setup.nranks);
  peers_.max_blocks = params.max_blocks;
  peers_.ll_threads = params.ll_threads;
  peers_.copy_blocks = params.copy_blocks;
  peers_.max_rounds = params.rounds;
  peers_.timeout_ns = setup.timeout_ms < 0 ? -1 : int64_t{setup.timeout_ms} * 1000000;
}

plx_status Comm::create(const core::RendezvousId &id, const CommSetup &setup, const Params &params,
                        std::unique_ptr<Comm> *out) {
  std::unique_ptr<Comm> c(new Comm(setup, params));
  core::ScopedDevice device(setup.device);
  if (device.status() != PLX_OK) return device.status();
  const std::string who = fmt::format("p2p-tree: rank {} of {} (device {})", setup.rank, setup.nranks, setup.device);
  core::log_debug("{}: joining the rendezvous {}", who, id.name);
  if (plx_status s = core::Rendezvous::join(id, setup.nranks, setup.rank, setup.init_timeout_ms, &c->rendezvous_))
    return s;
  c->posted_word_ = c->rendezvous_->failure_word();
  // From here a failure is posted, so the other ranks stop waiting at once.
  auto fail_all = [&](plx_status s) {
    c->rendezvous_->post_failure(s, core::last_message());
    return s;
  };
  // Every kernel now, none at its first launch (core/kernel_loading.hpp says why).
  if (plx_status s = core::load_kernels(kernels::p2p_tree_modules(), who)) return fail_all(s);
  if (plx_status s = c->resolve_max_blocks()) return fail_all(s);
  core::log_debug("{}: allocating the exchange block ({} bytes per area)", who, params.slot_bytes);
  if (plx_status s = c->make_block()) return fail_all(s);
  if (plx_status s = c->make_control()) return fail_all(s);
  if (plx_status s = c->make_registry()) return fail_all(s);
  if (plx_status s = c->make_copy_engines()) return fail_all(s);
  std::vector<PeerCard> cards;
  core::log_debug("{}: exchanging IPC handles", who);
  if (plx_status s = c->exchange_cards(&cards)) return fail_all(s);
  if (plx_status s = c->check_cards(cards)) return fail_all(s);
  c->agree_max_blocks(cards);
  if (plx_status s = c->resolve_dependent_launch()) return fail_all(s);
  if (plx_status s = c->agree_links(cards)) return fail_all(s);
  c->imports_.resize(static_cast<size_t>(setup.nranks));
  for (int32_t q = 0; q < setup.nranks; ++q) {
    c->pids_.push_back(cards[q].pid);
    if (!c->routes_.links.linked(setup.rank, q)) continue;  // unlinked peers are never mapped
    core::log_debug("{}: mapping rank {}'s exchange block (device {}, {})", who, q, cards[q].device,
                    cards[q].pci_bus_id);
    if (plx_status s = c->map_peer(q, cards[q])) return fail_all(s);
    if (q == setup.rank) continue;
    if (plx_status s = c->registry_.attach(q, cards[q].registry_name)) return fail_all(s);
  }
  core::log_debug("{}: waiting for every rank to have mapped its peers", who);
  if (plx_status s = c->rendezvous_->barrier(setup.init_timeout_ms)) return fail_all(s);
  c->registry_.unlink_name();
  c->watchdog_ = std::thread([p = c.get()] { p->watchdog_main(); });
  core::log_debug("{}: ready", who);
  *out = std::move(c);
  return PLX_OK;
}

// The exchange block, from a private pool (plx_mem_stats shows the
// caller's blocks only); zeroed before any peer can see it: a block of a
// destroyed communicator may come back with LL lines whose flags a new
// epoch would match. cudaMalloc segments, because the block's export
// travels in the card through the rendezvous' shared memory: a legacy IPC
// handle is plain bytes, a VMM export is a file descriptor, whose number
// means nothing in another process (tried: the ranks waited at their
// first barrier, likely each with its own block, exported under the same
// number, imported as its peer's).
plx_status Comm::make_block() {
  core::DevicePoolConfig config;
  config.device = setup_.device;
  config.api = core::DeviceMemoryApi::cuda_malloc;
  config.defrag_threshold = 1.0;  // never releases the block's segment by itself
  block_bytes_ = kernels::block_bytes(static_cast<uint64_t>(setup_.nranks), peers_.ll_slot_bytes, params_.slot_bytes);
  config.min_segment_bytes = block_bytes_;
  if (plx_status s = core::DevicePool::create(config, &exchange_pool_)) return s;
  if (plx_status s = exchange_pool_->allocate(block_bytes_, 256, 0, &block_)) return s;
  cudaStream_t stream = nullptr;
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaError_t err = cudaMemsetAsync(block_, 0, block_bytes_, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  (void)cudaStreamDestroy(stream);
  if (err != cudaSuccess) return core::fail_cuda(err, "p2p-tree: zeroing the exchange block's flags");
  peers_.block[setup_.rank] = static_cast<char *>(block_);
  return PLX_OK;
}

// The Control words in host-mapped memory: the watchdog reads them with
// plain loads, the kernels through the device pointer.
plx_status Comm::make_control() {
  void *host = nullptr;
  PLX_CUDA_CHECK(cudaHostAlloc(&host, sizeof(kernels::Control), cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(host, 0, sizeof(kernels::Control));
  control_host_ = static_cast<kernels::Control *>(host);
  void *device = nullptr;
  PLX_CUDA_CHECK(cudaHostGetDevicePointer(&device, host, 0));
  peers_.control = static_cast<kernels::Control *>(device);
  return PLX_OK;
}

// The bulletin of registered buffers; the kernels read the peers' mapped
// registrations from the exchange block's table.
plx_status Comm::make_registry() {
  Registry::Setup r;
  r.rank = setup_.rank;
  r.nranks = setup_.nranks;
  r.device = setup_.device;
  r.device_table = reinterpret_cast<kernels::RegSlot *>(static_cast<char *>(block_) + kernels::kRegTableOffset);
  r.device_acked = reinterpret_cast<uint64_t *>(static_cast<char *>(block_) + kernels::kRegAckedOffset);
  r.peer_gone = [this](int32_t q) {
    return failure() != PLX_OK || !rendezvous_->peer_alive(q) || rendezvous_->peer_left(q);
  };
  r.barrier = [this](int32_t timeout_ms) { return rendezvous_->barrier(timeout_ms); };
  return registry_.create(r);
}

// The copy-engine two-shot's streams and events, for every communicator
// of more than one rank (a few of each; the path may be asked for by any
// call): a scatter and a gather stream per lane (COPY_STREAMS).
plx_status Comm::make_copy_engines() {
  if (setup_.nranks < 2) return PLX_OK;
  CopyEngines &ce = copy_engines_;
  const int32_t lanes = params_.copy_lanes(setup_.nranks);
  for (int32_t j = 0; j < lanes; ++j) {
    PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&ce.scatter[j], cudaStreamNonBlocking));
    PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&ce.gather[j], cudaStreamNonBlocking));
  }
  PLX_CUDA_CHECK(cudaEventCreateWithFlags(&ce.forked, cudaEventDisableTiming));
  for (cudaEvent_t &e : ce.summed) PLX_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  for (int32_t j = 0; j < 2 * lanes; ++j)
    PLX_CUDA_CHECK(cudaEventCreateWithFlags(&ce.joined[j], cudaEventDisableTiming));
  return PLX_OK;
}

// After the device is drained; nulls are skipped (a failed init).
void Comm::release_copy_engines() {
  CopyEngines &ce = copy_engines_;
  for (cudaStream_t *streams : {ce.scatter, ce.gather})
    for (int32_t j = 0; j < kernels::kMaxRanks - 1; ++j)
      if (streams[j] != nullptr) (void)cudaStreamDestroy(streams[j]);
  for (cudaEvent_t e : ce.summed)
    if (e != nullptr) (void)cudaEventDestroy(e);
  for (cudaEvent_t e : ce.joined)
    if (e != nullptr) (void)cudaEventDestroy(e);
  if (ce.forked != nullptr) (void)cudaEventDestroy(ce.forked);
  ce = CopyEngines{};
}

// MAX_BLOCKS=0 (the default): one block per SM, which measured best on
// H100/H200 (128 blocks: 275 GB/s at 128 MiB against 239 with 48), and
// on a smaller GPU still leaves room for a second communicator's grid.
plx_status Comm::resolve_max_blocks() {
  if (peers_.max_blocks > 0) return PLX_OK;
  int sms = 0;
  PLX_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, setup_.device));
  peers_.max_blocks = std::clamp(sms, 1, kernels::kMaxBlocks);
  return PLX_OK;
}

// Programmatic dependent launch needs compute capability 9.0 (griddepcontrol).
plx_status Comm::resolve_dependent_launch() {
  int major = 0;
  PLX_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, setup_.device));
  peers_.dependent_launch = params_.dependent_launch && major >= 9 ? 1 : 0;
  core::log_debug("p2p-tree: rank {}: dependent launch {}", setup_.rank, peers_.dependent_launch ? "on" : "off");
  return PLX_OK;
}

// Block b of a launch waits for block b of every peer, so every rank must
// launch the same grid: all take the smallest rank's limit.
void Comm::agree_max_blocks(const std::vector<PeerCard> &cards) {
  for (const PeerCard &card : cards) peers_.max_blocks = std::min(peers_.max_blocks, card.max_blocks);
  core::log_debug("p2p-tree: rank {}: at most {} thread blocks per launch", setup_.rank, peers_.max_blocks);
}

plx_status Comm::exchange_cards(std::vector<PeerCard> *cards) {
  PeerCard mine{};
  mine.pid = static_cast<uint64_t>(::getpid());
  mine.device = setup_.device;
  mine.slot_bytes = params_.slot_bytes;
  mine.ll_slot_bytes = peers_.ll_slot_bytes;
  mine.block_bytes = block_bytes_;
  mine.max_blocks = peers_.max_blocks;
  mine.bulk_max_bytes = params_.bulk_max_bytes;
  mine.forced_algo = params_.forced_algo;
  mine.tree_arity = params_.tree_arity;
  mine.rounds = params_.rounds;
  mine.unlinked = params_.unlinked;
  mine.ll128_min_bytes = params_.ll128_from();
  mine.ll128_two_shot_max_bytes = params_.ll128_two_shot_max_bytes;
  mine.copy_min_bytes = params_.copy_min_bytes;
  mine.copy_pieces = params_.copy_pieces;
  PLX_CUDA_CHECK(cudaDeviceGetPCIBusId(mine.pci_bus_id, sizeof(mine.pci_bus_id), setup_.device));
  if (plx_status s = exchange_pool_->export_segment(block_, &mine.segment)) return s;
  mine.process = this_process_token();
  mine.block_address = reinterpret_cast<uintptr_t>(block_);
  const std::string &name = registry_.name();
  if (name.size() >= sizeof(mine.registry_name))
    return core::fail(PLX_ERR_INTERNAL, "p2p-tree: registry name {} is too long", name);
  std::memcpy(mine.registry_name, name.c_str(), name.size() + 1);
  cards->resize(static_cast<size_t>(setup_.nranks));
  return rendezvous_->allgather(&mine, sizeof(mine), cards->data(), setup_.init_timeout_ms);
}

// Parameters from which every rank picks the same kernels and layout: a
// rank that differs would wait for kernels its peers never launch.
plx_status Comm::check_same_params(const PeerCard &card, int32_t q) const {
  const char *name = nullptr;
  if (card.slot_bytes != params_.slot_bytes) name = "SLOT_BYTES";
  else if (card.ll_slot_bytes != peers_.ll_slot_bytes) name = "ONESHOT_MAX_BYTES (or LL128_TWO_SHOT_MAX_BYTES)";
  else if (card.bulk_max_bytes != params_.bulk_max_bytes) name = "BULK_MAX_BYTES";
  else if (card.forced_algo != params_.forced_algo) name = "ALGO";
  else if (card.tree_arity != params_.tree_arity) name = "TREE_ARITY";
  else if (card.rounds != params_.rounds) name = "ROUNDS";
  else if (card.unlinked != params_.unlinked) name = "UNLINK";
  else if (card.ll128_min_bytes != params_.ll128_from()) name = "LL128(_MIN_BYTES)";
  else if (card.ll128_two_shot_max_bytes != params_.ll128_two_shot_max_bytes) name = "LL128_TWO_SHOT_MAX_BYTES";
  else if (card.copy_min_bytes != params_.copy_min_bytes) name = "COPY_MIN_BYTES";
  else if (card.copy_pieces != params_.copy_pieces) name = "COPY_PIECES";
  if (name == nullptr) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_USAGE, "p2p-tree: ranks {} and {} set PLEXUS_P2P_TREE_{} differently: "
                    "every rank must set the same", setup_.rank, q, name);
}

// Two ranks on one GPU: kernels of two processes there take turns, so
// waits for each other never end; threads of one process run side by side
// while the grids fit, which SHARED_GPU allows for tests on one GPU.
bool Comm::may_share_gpu(const PeerCard &card) const {
  return params_.shared_gpu && card.process == this_process_token();
}

plx_status Comm::check_cards(const std::vector<PeerCard> &cards) {
  for (int32_t q = 0; q < setup_.nranks; ++q) {
    if (plx_status s = check_same_params(cards[q], q)) return s;
    if (q != setup_.rank && !may_share_gpu(cards[q]) &&
        std::strncmp(cards[q].pci_bus_id, cards[setup_.rank].pci_bus_id, sizeof(cards[q].pci_bus_id)) == 0)
      return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: ranks {} and {} share the GPU {}; p2p-tree needs "
                        "one GPU per rank (kernels of two processes on one GPU wait for each other "
                        "but do not run together)", setup_.rank, q, cards[q].pci_bus_id);
  }
  return PLX_OK;
}

plx_status Comm::map_peer(int32_t peer, const PeerCard &card) {
  if (card.process == this_process_token()) return use_block_in_process(peer, card);
  if (plx_status s = enable_peer_access(peer, card)) return s;
  std::unique_ptr<core::ImportedSegment> segment;
  if (plx_status s = core::ImportedSegment::open(card.segment, setup_.device, &segment)) {
    const std::string why = core::last_message();
    return core::fail(s, "p2p-tree: rank {} (device {}) could not map rank {}'s exchange block "
                      "(device {} of its process, {}): {}", setup_.rank, setup_.device, peer,
                      card.device, card.pci_bus_id, why);
  }
  if (card.segment.offset + card.block_bytes > segment->bytes())
    return core::fail(PLX_ERR_INTERNAL, "p2p-tree: rank {}'s exchange block ({} bytes at {}) lies "
                      "outside its {}-byte segment", peer, card.block_bytes, card.segment.offset, segment->bytes());
  peers_.block[peer] = static_cast<char *>(segment->base()) + card.segment.offset;
  imports_[peer] = std::move(segment);
  return PLX_OK;
}

// A rank that is a thread of this process: its block already lies in this
// address space, where CUDA IPC would refuse to open its handle, and peer
// access (which no IPC open enables lazily here) makes it reachable from
// this device. Its GPU is visible: this process's other thread runs on it.
plx_status Comm::use_block_in_process(int32_t peer, const PeerCard &card) {
  int ordinal = -1;
  if (const cudaError_t err = cudaDeviceGetByPCIBusId(&ordinal, card.pci_bus_id); err != cudaSuccess)
    return core::fail_cuda(err, fmt::format("p2p-tree: rank {} (a thread of this process) is on GPU {}, which "
                                            "this thread cannot find", peer, card.pci_bus_id));
  if (plx_status s = enable_peer_access(peer, card)) return s;
  peers_.block[peer] = reinterpret_cast<char *>(static_cast<uintptr_t>(card.block_address));
  core::log_debug("p2p-tree: rank {}: rank {} is a thread of this process: its block at {} used directly",
                  setup_.rank, peer, static_cast<void *>(peers_.block[peer]));
  return PLX_OK;
}

// Peer access to the peer's GPU when this process sees it (a rank whose
// CUDA_VISIBLE_DEVICES hides it relies on the IPC open's lazy enable).
plx_status Comm::enable_peer_access(int32_t peer, const PeerCard &card) {
  int ordinal = -1;
  if (cudaDeviceGetByPCIBusId(&ordinal, card.pci_bus_id) != cudaSuccess) {
    (void)cudaGetLastError();
    core::log_debug("p2p-tree: rank {}: rank {}'s GPU {} is not visible here", setup_.rank, peer, card.pci_bus_id);
    return PLX_OK;
  }
  if (ordinal == setup_.device) return PLX_OK;
  int can = 0;
  PLX_CUDA_CHECK(cudaDeviceCanAccessPeer(&can, setup_.device, ordinal));
  if (!can)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: no peer access from device {} (rank {}) to "
                      "device {} ({}, rank {}); use pinned-host or nccl on this machine",
                      setup_.device, setup_.rank, ordinal, card.pci_bus_id, peer);
  const cudaError_t err = cudaDeviceEnablePeerAccess(ordinal, 0);
  if (err == cudaErrorPeerAccessAlreadyEnabled) {
    (void)cudaGetLastError();
    return PLX_OK;
  }
  if (err != cudaSuccess)
    return core::fail_cuda(err, fmt::format("p2p-tree: cudaDeviceEnablePeerAccess({}) on device {}",
                                            ordinal, setup_.device));
  return PLX_OK;
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
  // This rank's kernels give up their waits at their next look (a few us).
  if (control_host_ != nullptr) __atomic_store_n(&control_host_->host_abort, 1u, __ATOMIC_SEQ_CST);
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

// This device's queued kernels end by themselves (they finish, time out,
// or see the abort word); then the ranks meet once more, so no rank unmaps
// or frees a block a peer's kernel may still read.
void Comm::drain_and_release() {
  core::ScopedDevice device(setup_.device);
  if (const cudaError_t err = cudaDeviceSynchronize(); err != cudaSuccess)
    core::log_warn("p2p-tree: rank {}: cudaDeviceSynchronize before destroy: {}", setup_.rank,
                   cudaGetErrorString(err));
  (void)cudaGetLastError();
  registry_.close_all();  // before the meeting: a peer frees its registered buffers after it
  if (rendezvous_ != nullptr && failure() == PLX_OK) {
    const int32_t bound = setup_.timeout_ms >= 0 ? setup_.timeout_ms : 60000;
    if (rendezvous_->barrier(bound) != PLX_OK)
      core::log_warn("p2p-tree: rank {}: the peers did not meet at destroy: {}", setup_.rank, core::last_message());
  }
  imports_.clear();
  if (block_ != nullptr) (void)exchange_pool_->free(block_);
  block_ = nullptr;
  exchange_pool_.reset();
  user_pool_.reset();
  release_copy_engines();
  if (control_host_ != nullptr) (void)cudaFreeHost(control_host_);
  control_host_ = nullptr;
  (void)cudaGetLastError();
}

Comm::~Comm() {
  stop_watchdog();
  drain_and_release();
  posted_word_ = nullptr;
  rendezvous_.reset();  // leaving: this rank is gone cleanly, not lost
}

}  // namespace plexus::p2p_tree

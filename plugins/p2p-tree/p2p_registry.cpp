#include "plugins/p2p-tree/p2p_registry.hpp"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "core/cuda_status.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

namespace plexus::p2p_tree {
namespace {

constexpr uint64_t kBulletinMagic = 0x4745525032505850ull;  // "PXP2PREG"

uint32_t load_state(const BulletinEntry &e) { return __atomic_load_n(&e.state, __ATOMIC_ACQUIRE); }
void store_state(BulletinEntry &e, uint32_t s) { __atomic_store_n(&e.state, s, __ATOMIC_RELEASE); }
void bump(Bulletin *b) { __atomic_add_fetch(&b->generation, 1, __ATOMIC_ACQ_REL); }

// The CUDA allocation holding ptr (cuMemGetAddressRange, through the
// runtime's entry point, looked up once: a pool output not yet mapped by
// every peer asks on each two-shot call).
plx_status allocation_of(const void *ptr, char **base, uint64_t *bytes) {
  using Fn = int(unsigned long long *, size_t *, unsigned long long);
  static Fn *range = nullptr;
  static const plx_status found = core::driver_entry("cuMemGetAddressRange", &range);
  if (found != PLX_OK)
    return core::fail(found, "p2p-tree: the CUDA driver has no cuMemGetAddressRange: buffers cannot be registered");
  unsigned long long b = 0;
  size_t n = 0;
  if (range(&b, &n, reinterpret_cast<uintptr_t>(ptr)) != 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: {} is not device memory of a CUDA allocation", ptr);
  *base = reinterpret_cast<char *>(b);
  *bytes = n;
  return PLX_OK;
}

}  // namespace

uint64_t this_process_token() {
  static const uint64_t token = [] {
    std::random_device entropy;
    return (uint64_t{entropy()} << 32 | entropy()) ^ static_cast<uint64_t>(::getpid());
  }();
  return token;
}

Registry::~Registry() {
  close_all();
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

plx_status Registry::create(const Setup &setup) {
  setup_ = setup;
  if (plx_status s = core::ShmSegment::create(core::ShmSegment::make_name("p2p-reg"), sizeof(Bulletin), &own_))
    return s;
  std::memset(own_.data(), 0, sizeof(Bulletin));
  bulletin_of(own_)->magic = kBulletinMagic;
  bulletin_of(own_)->owner_process = this_process_token();
  peers_.resize(static_cast<size_t>(setup.nranks));
  seen_generation_.assign(static_cast<size_t>(setup.nranks), UINT64_MAX);
  imports_.assign(static_cast<size_t>(setup.nranks), std::vector<Import>(kernels::kRegSlots));
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  return PLX_OK;
}

plx_status Registry::attach(int32_t peer, const char *name) {
  if (plx_status s = core::ShmSegment::open(name, sizeof(Bulletin), &peers_[peer])) return s;
  if (bulletin_of(peers_[peer])->magic != kBulletinMagic)
    return core::fail(PLX_ERR_INTERNAL, "p2p-tree: rank {}'s registry {} has no bulletin", peer, name);
  return PLX_OK;
}

// The peers that map this rank's registrations: every attached one (an
// unlinked peer of a partly connected machine never does, and there the
// two-shot does not run).
uint64_t Registry::peers_mask() const {
  uint64_t mask = 0;
  for (int32_t q = 0; q < setup_.nranks; ++q)
    if (peers_[q].valid()) mask |= uint64_t{1} << q;
  return mask;
}

plx_status Registry::add(void *ptr, uint64_t bytes, uint64_t *id) {
  if (ptr == nullptr || bytes == 0 || id == nullptr)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: plx_mem_register needs a buffer, a size and a handle "
                      "(got {}, {} bytes, handle {})", ptr, bytes, static_cast<const void *>(id));
  plx_mem_kind kind = PLX_MEM_HOST;
  int device = -1;
  if (plx_status s = core::pointer_kind(ptr, &kind, &device)) return s;
  if (kind != PLX_MEM_DEVICE || device != setup_.device)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: plx_mem_register: {} is not device memory of "
                      "this communicator's GPU {} (p2p-tree registers device buffers)", ptr, setup_.device);
  char *alloc = nullptr;
  uint64_t alloc_bytes = 0;
  if (plx_status s = allocation_of(ptr, &alloc, &alloc_bytes)) return s;
  if (static_cast<char *>(ptr) + bytes > alloc + alloc_bytes)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: plx_mem_register: [{}, +{}) runs past the end of its "
                      "CUDA allocation ({} bytes at {})", ptr, bytes, alloc_bytes, static_cast<void *>(alloc));
  std::lock_guard lock(mutex_);
  return insert_locked(static_cast<char *>(ptr), bytes, alloc, alloc_bytes, id);
}

// A pool segment: the whole CUDA allocation holding ptr, once.
plx_status Registry::add_allocation(const void *ptr) {
  char *alloc = nullptr;
  uint64_t alloc_bytes = 0, id = 0;
  if (plx_status s = allocation_of(ptr, &alloc, &alloc_bytes)) return s;
  std::lock_guard lock(mutex_);
  for (const Local &l : locals_)
    if (l.begin == alloc && l.end == alloc + alloc_bytes) return PLX_OK;
  return insert_locked(alloc, alloc_bytes, alloc, alloc_bytes, &id);
}

plx_status Registry::insert_locked(char *begin, uint64_t bytes, char *alloc, uint64_t alloc_bytes, uint64_t *id) {
  int slot = 0;
  while (slot < kernels::kRegSlots && load_state(own_entry(slot)) != kFree) ++slot;
  if (slot == kernels::kRegSlots)
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: plx_mem_register: this communicator already holds {} "
                      "registrations; deregister one first", kernels::kRegSlots);
  const uint64_t new_id = next_id_;
  if (plx_status s = fill_entry(alloc, alloc_bytes, slot, new_id)) return s;
  ++next_id_;
  locals_.push_back(Local{new_id, begin, begin + bytes, alloc, slot, false});
  *id = new_id;
  core::log_debug("p2p-tree: rank {}: registered [{}, +{}) as {} (bulletin slot {})", setup_.rank,
                  static_cast<void *>(begin), bytes, new_id, slot);
  return PLX_OK;
}

// The entry goes live last, so a peer that sees kLive reads a whole entry.
plx_status Registry::fill_entry(void *alloc, uint64_t alloc_bytes, int slot, uint64_t id) {
  cudaIpcMemHandle_t handle;
  if (const cudaError_t err = cudaIpcGetMemHandle(&handle, alloc); err != cudaSuccess) {
    (void)cudaGetLastError();
    return core::fail(PLX_ERR_UNSUPPORTED, "p2p-tree: plx_mem_register: the allocation at {} cannot be shared "
                      "with CUDA IPC ({}); register memory from cudaMalloc or plx_mem_alloc",
                      alloc, cudaGetErrorString(err));
  }
  BulletinEntry &e = own_entry(slot);
  e.id = id;
  e.alloc_bytes = alloc_bytes;
  e.alloc_base = reinterpret_cast<uintptr_t>(alloc);
  __atomic_store_n(&e.mapped_by, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&e.closed_by, 0, __ATOMIC_RELAXED);
  static_assert(sizeof(handle) <= sizeof(e.handle));
  std::memcpy(e.handle, &handle, sizeof(handle));
  store_state(e, kLive);
  bump(bulletin_of(own_));
  return PLX_OK;
}

// The acknowledgement goes first: a launch that reads the table after it
// (a graph replayed later included) copies out; one that read it before
// is one whose peers still map the buffer, as their closes wait for it.
plx_status Registry::remove(uint64_t id, int32_t timeout_ms) {
  int slot = -1;
  {
    std::lock_guard lock(mutex_);
    for (auto it = locals_.begin(); it != locals_.end(); ++it) {
      if (it->id != id) continue;
      slot = it->slot;
      locals_.erase(it);  // a candidate no more from here
      break;
    }
    if (slot < 0)
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "p2p-tree: plx_mem_deregister: {} is not a live registration "
                        "of this communicator", id);
    if (plx_status s = write_acked(slot, 0)) return s;
    store_state(own_entry(slot), kDead);
    bump(bulletin_of(own_));
  }
  if (plx_status s = wait_closed(slot, id, timeout_ms)) return s;  // the entry stays dead: never reused
  // Collective: no rank returns (and enqueues collectives) before every
  // peer's watchdog has closed every rank's entry, so no close waits for a
  // device busy with a collective that needs a rank still in here.
  if (plx_status s = setup_.barrier(timeout_ms)) return s;
  std::lock_guard lock(mutex_);
  store_state(own_entry(slot), kFree);
  bump(bulletin_of(own_));
  return PLX_OK;
}

// Every peer closes its mapping on its watchdog's next poll (a few ms); a
// dead or departed peer maps nothing.
plx_status Registry::wait_closed(int slot, uint64_t id, int32_t timeout_ms) {
  const auto start = std::chrono::steady_clock::now();
  const BulletinEntry &e = own_entry(slot);
  for (;;) {
    uint64_t pending = peers_mask() & ~__atomic_load_n(&e.closed_by, __ATOMIC_ACQUIRE);
    for (int32_t q = 0; q < setup_.nranks; ++q)
      if ((pending >> q & 1) && setup_.peer_gone(q)) pending &= ~(uint64_t{1} << q);
    if (pending == 0) return PLX_OK;
    const auto waited = std::chrono::steady_clock::now() - start;
    if (timeout_ms >= 0 && waited > std::chrono::milliseconds(timeout_ms))
      return core::fail(PLX_ERR_TIMEOUT, "p2p-tree: plx_mem_deregister: rank {} did not release its mapping of "
                        "registration {} within {} ms; do not free the buffer", __builtin_ctzll(pending), id,
                        timeout_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool Registry::post_for(const void *out, uint64_t bytes, kernels::ReduceArgs *args) {
  const char *begin = static_cast<const char *>(out);
  std::lock_guard lock(mutex_);
  for (const Local &l : locals_) {
    if (begin < l.begin || begin + bytes > l.end) continue;
    const uint64_t offset = static_cast<uint64_t>(begin - l.alloc);
    if (offset % 16 != 0) continue;
    args->out_reg = l.id;
    args->out_slot = static_cast<uint64_t>(l.slot);
    args->out_offset = offset;
    return true;
  }
  return false;
}

void Registry::poll_own() {
  std::lock_guard lock(mutex_);
  for (Local &l : locals_) {
    const uint64_t mapped = __atomic_load_n(&own_entry(l.slot).mapped_by, __ATOMIC_ACQUIRE);
    if (l.acked || (mapped & peers_mask()) != peers_mask()) continue;
    if (write_acked(l.slot, l.id) != PLX_OK) {
      core::log_warn("p2p-tree: rank {}: {}", setup_.rank, core::last_message());
      continue;
    }
    l.acked = true;
    core::log_debug("p2p-tree: rank {}: registration {} mapped by every peer: two-shot outputs in it are "
                    "written in place", setup_.rank, l.id);
  }
}

plx_status Registry::write_acked(int slot, uint64_t id) {
  core::ScopedDevice device(setup_.device);
  PLX_CUDA_CHECK(cudaMemcpyAsync(setup_.device_acked + slot, &id, sizeof(id), cudaMemcpyHostToDevice, stream_));
  PLX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return PLX_OK;
}

void Registry::poll_peers() {
  std::lock_guard lock(peer_mutex_);
  for (int32_t q = 0; q < setup_.nranks; ++q)
    if (q != setup_.rank && peers_[q].valid()) poll_peer(q);
}

void Registry::poll_peer(int32_t q) {
  Bulletin *b = bulletin_of(peers_[q]);
  const uint64_t generation = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
  if (generation == seen_generation_[q]) return;
  seen_generation_[q] = generation;
  const uint64_t me = uint64_t{1} << setup_.rank;
  for (int s = 0; s < kernels::kRegSlots; ++s) {
    BulletinEntry &e = b->entries[s];
    const uint32_t state = load_state(e);
    const Import &mine = imports_[q][s];
    if (state == kLive && mine.id != e.id) {
      if (mine.id != 0) close_entry(q, s);
      map_entry(q, s, e);
    } else if (state != kLive) {
      if (mine.id != 0) close_entry(q, s);
      if (state == kDead) __atomic_fetch_or(&e.closed_by, me, __ATOMIC_ACQ_REL);
    }
  }
}

// A peer's registration that cannot be mapped is simply never acknowledged:
// its owner keeps copying through the result area.
void Registry::map_entry(int32_t q, int slot, BulletinEntry &e) {
  core::ScopedDevice device(setup_.device);
  Import import{e.id, reinterpret_cast<void *>(static_cast<uintptr_t>(e.alloc_base)), false};
  if (bulletin_of(peers_[q])->owner_process != this_process_token()) {  // else in this process
    cudaIpcMemHandle_t handle;
    std::memcpy(&handle, e.handle, sizeof(handle));
    if (const cudaError_t err = cudaIpcOpenMemHandle(&import.base, handle, cudaIpcMemLazyEnablePeerAccess);
        err != cudaSuccess) {
      (void)cudaGetLastError();
      core::log_warn("p2p-tree: rank {}: cannot map rank {}'s registration {} ({}); it is used through the "
                     "exchange areas", setup_.rank, q, e.id, cudaGetErrorString(err));
      return;
    }
    import.opened = true;
  }
  imports_[q][slot] = import;
  if (write_table(q, slot, e.id, import.base) != PLX_OK) {
    core::log_warn("p2p-tree: rank {}: {}", setup_.rank, core::last_message());
    close_entry(q, slot);
    return;
  }
  __atomic_fetch_or(&e.mapped_by, uint64_t{1} << setup_.rank, __ATOMIC_ACQ_REL);
}

// Base first, id second, each copy finished before the next: a kernel that
// reads the id (acquire) reads the base that goes with it.
plx_status Registry::write_table(int32_t q, int slot, uint64_t id, void *base) {
  kernels::RegSlot *dst = setup_.device_table + q * kernels::kRegSlots + slot;
  const uint64_t where = reinterpret_cast<uintptr_t>(base);
  PLX_CUDA_CHECK(cudaMemcpyAsync(&dst->base, &where, sizeof(where), cudaMemcpyHostToDevice, stream_));
  PLX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  PLX_CUDA_CHECK(cudaMemcpyAsync(&dst->id, &id, sizeof(id), cudaMemcpyHostToDevice, stream_));
  PLX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return PLX_OK;
}

// The table's id is cleared first: a post of the dead id (which the owner's
// acknowledged table no longer allows) then fails (kErrorRegistry) instead
// of writing into memory that is no longer mapped.
void Registry::close_entry(int32_t q, int slot) {
  Import &mine = imports_[q][slot];
  core::ScopedDevice device(setup_.device);
  const uint64_t none = 0;
  kernels::RegSlot *dst = setup_.device_table + q * kernels::kRegSlots + slot;
  if (cudaMemcpyAsync(&dst->id, &none, sizeof(none), cudaMemcpyHostToDevice, stream_) != cudaSuccess ||
      cudaStreamSynchronize(stream_) != cudaSuccess)
    core::log_warn("p2p-tree: rank {}: clearing rank {}'s registration {}: {}", setup_.rank, q, mine.id,
                   cudaGetErrorString(cudaGetLastError()));
  if (const cudaError_t err = mine.opened ? cudaIpcCloseMemHandle(mine.base) : cudaSuccess; err != cudaSuccess) {
    (void)cudaGetLastError();
    core::log_warn("p2p-tree: rank {}: closing rank {}'s registration {}: {}", setup_.rank, q, mine.id,
                   cudaGetErrorString(err));
  }
  mine = Import{};
}

void Registry::close_all() {
  std::lock_guard lock(peer_mutex_);
  for (int32_t q = 0; q < static_cast<int32_t>(imports_.size()); ++q)
    for (int s = 0; s < kernels::kRegSlots; ++s)
      if (imports_[q][s].id != 0) close_entry(q, s);
}

}  // namespace plexus::p2p_tree

// The handle objects' memory (handle_memory.hpp).
#include "loader/handle_memory.hpp"

#include <sys/mman.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

// AddressSanitizer's LeakSanitizer: gcc says so with a macro, clang with a feature.
#if defined(__SANITIZE_ADDRESS__)
#define PLX_LEAK_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PLX_LEAK_SANITIZER 1
#endif
#endif
#if defined(PLX_LEAK_SANITIZER)
#include <sanitizer/lsan_interface.h>
#endif

namespace plexus::loader {
namespace {

constexpr size_t kPage = 4096;
// 1 GiB of addresses, no access until opened: 16 million queues, or 4
// million communicators, before objects come from the heap (and stay). Not
// more: a process limited by RLIMIT_AS counts reserved addresses too.
constexpr size_t kReserveBytes = size_t{1} << 30;
constexpr size_t kOpenBytes = 64 << 10;            // opened for reading and writing this much at a time
constexpr size_t kSmallestSlot = 64;

// A slot holds one object: a power of two up to a page (so none straddles
// a page), whole pages beyond.
size_t slot_bytes(size_t bytes) {
  return bytes <= kPage ? std::bit_ceil(bytes < kSmallestSlot ? kSmallestSlot : bytes)
                        : (bytes + kPage - 1) / kPage * kPage;
}

class Range {
 public:
  void *take(size_t bytes);
  // False when `object` is not from the range (a heap fallback).
  bool give_back(void *object, size_t bytes);

 private:
  bool reserve();
  bool open_up_to(size_t end);
  void *carve(size_t slot);

  std::mutex mutex_;
  uint8_t *base_ = nullptr;
  bool tried_ = false;
  size_t used_ = 0, opened_ = 0;
  std::vector<uint32_t> live_;  // objects per page, for the pages opened so far
};

// Addresses only: no access and, on a host that does not overcommit, no
// commit charge until a stretch is opened.
bool Range::reserve() {
  if (tried_) return base_ != nullptr;
  tried_ = true;
  void *p = mmap(nullptr, kReserveBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) base_ = static_cast<uint8_t *>(p);
  return base_ != nullptr;
}

bool Range::open_up_to(size_t end) {
  if (end <= opened_) return true;
  const size_t to = (end + kOpenBytes - 1) / kOpenBytes * kOpenBytes;
  if (to > kReserveBytes || mprotect(base_ + opened_, to - opened_, PROT_READ | PROT_WRITE) != 0) return false;
#if defined(PLX_LEAK_SANITIZER)  // live objects hold heap pointers: LeakSanitizer must look in here
  __lsan_register_root_region(base_ + opened_, to - opened_);
#endif
  opened_ = to;
  live_.resize(opened_ / kPage, 0);
  return true;
}

void *Range::carve(size_t slot) {
  const size_t align = slot < kPage ? slot : kPage;
  const size_t start = (used_ + align - 1) / align * align;
  if (!open_up_to(start + slot)) return nullptr;
  used_ = start + slot;
  for (size_t page = start / kPage; page * kPage < start + slot; ++page) ++live_[page];
  return base_ + start;
}

void *Range::take(size_t bytes) {
  std::lock_guard lock(mutex_);
  return reserve() ? carve(slot_bytes(bytes)) : nullptr;
}

bool Range::give_back(void *object, size_t bytes) {
  auto *p = static_cast<uint8_t *>(object);
  std::lock_guard lock(mutex_);
  if (base_ == nullptr || p < base_ || p >= base_ + opened_) return false;
  std::memset(p, 0, sizeof(uint64_t));  // the magic: a stale handle is not live
  const size_t start = static_cast<size_t>(p - base_);
  for (size_t page = start / kPage; page * kPage < start + slot_bytes(bytes); ++page)
    if (--live_[page] == 0) (void)madvise(base_ + page * kPage, kPage, MADV_DONTNEED);  // reads zeros from now on
  return true;
}

Range &range() {
  static auto *r = new Range();  // never destroyed: objects may go during exit
  return *r;
}

}  // namespace

void *take_handle_memory(size_t bytes) {
  if (void *p = range().take(bytes)) return p;
  void *p = ::operator new(bytes, std::align_val_t{kSmallestSlot});
  std::memset(p, 0, bytes);
  return p;
}

void give_back_handle_memory(void *object, size_t bytes) {
  if (range().give_back(object, bytes)) return;
  // From the heap: kept, magic cleared, so that no object takes its address.
  std::memset(object, 0, sizeof(uint64_t));
  static std::mutex mutex;
  static auto *kept = new std::vector<void *>();  // reachable for LeakSanitizer
  std::lock_guard lock(mutex);
  kept->push_back(object);
}

}  // namespace plexus::loader

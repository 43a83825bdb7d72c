// A communicator's pool blocks, for the collectives' extent check (pool_blocks.hpp).
#include "loader/pool_blocks.hpp"

#include <mutex>

#include "core/status.hpp"

namespace plexus::loader {

// Blocks do not overlap, so the last by start ends last.
void PoolBlocks::update_span() {
  const bool none = blocks_.empty();
  span_begin_.store(none ? UINTPTR_MAX : blocks_.begin()->first, std::memory_order_relaxed);
  span_end_.store(none ? 0 : blocks_.rbegin()->first + blocks_.rbegin()->second, std::memory_order_relaxed);
}

void PoolBlocks::add(const void *block, uint64_t bytes) {
  std::unique_lock lock(mutex_);
  blocks_[reinterpret_cast<uintptr_t>(block)] = bytes;
  update_span();
}

void PoolBlocks::remove(const void *block) {
  std::unique_lock lock(mutex_);
  blocks_.erase(reinterpret_cast<uintptr_t>(block));
  update_span();
}

plx_status PoolBlocks::check(const char *fn, const char *arg, const void *p, uint64_t bytes) const {
  const auto address = reinterpret_cast<uintptr_t>(p);
  if (bytes == 0 || address < span_begin_.load(std::memory_order_relaxed) ||
      address >= span_end_.load(std::memory_order_relaxed))
    return PLX_OK;
  std::shared_lock lock(mutex_);
  auto next = blocks_.upper_bound(address);
  if (next == blocks_.begin()) return PLX_OK;
  const auto [start, size] = *std::prev(next);
  const uint64_t offset = address - start;
  if (offset >= size || bytes <= size - offset) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: {} ({}, {} bytes) runs {} bytes past the end of its pool block "
                    "({:#x}, {} bytes from plx_mem_alloc)", fn, arg, p, bytes, bytes - (size - offset), start, size);
}

}  // namespace plexus::loader

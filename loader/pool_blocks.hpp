// The pool blocks plx_mem_alloc has given on one communicator, so that a
// collective can refuse a buffer that starts inside a block and runs past
// its end (PLX-L-33). A plugin cannot tell that from the pointer: it would
// read a neighbouring block as input, or write over it as output. Plain
// pointers stay unchecked (nothing knows their size).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <shared_mutex>

#include "plexus/types.h"

namespace plexus::loader {

class PoolBlocks {
 public:
  // After a successful plx_mem_alloc of `bytes` (what the caller asked for).
  void add(const void *block, uint64_t bytes);
  // After a successful plx_mem_free.
  void remove(const void *block);
  // PLX_ERR_INVALID_ARGUMENT, naming `fn` and `arg`, when [p, p + bytes)
  // starts inside a live block and ends past it; PLX_OK otherwise. A pointer
  // outside the span of all blocks (every pointer while there is none) costs
  // two atomic loads; one inside takes the shared lock.
  plx_status check(const char *fn, const char *arg, const void *p, uint64_t bytes) const;

 private:
  void update_span();  // under the unique lock

  mutable std::shared_mutex mutex_;
  std::map<uintptr_t, uint64_t> blocks_;  // start -> bytes; blocks never overlap
  // [first block's start, last block's end), read without the lock; empty
  // (begin above end) while there is no block.
  std::atomic<uintptr_t> span_begin_{UINTPTR_MAX}, span_end_{0};
};

}  // namespace plexus::loader

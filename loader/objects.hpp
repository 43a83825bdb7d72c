// The objects behind the opaque handles of plexus.h, and the helpers every
// entry point uses: handle checks, the PLX_THREAD_SINGLE lock, slot calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.hpp"
#include "loader/handle_memory.hpp"
#include "loader/plugin_lib.hpp"
#include "loader/pool_blocks.hpp"
#include "loader/report.hpp"
#include "plexus/plexus.h"

namespace plexus::loader {

constexpr uint64_t backend_magic = 0x706c782d626b6e64ull;  // "plx-bknd"
constexpr uint64_t comm_magic = 0x706c782d636f6d6dull;     // "plx-comm"
constexpr uint64_t queue_magic = 0x706c782d71756575ull;    // "plx-queu"

// Adds to a counter that one thread at a time writes (a communicator's:
// plexus.h) and any thread may read: a relaxed load and store lose no count
// there and cost no locked instruction (a lock xadd is ~20 cycles; three of
// them a call, against a 2-rank 8-byte all-reduce of ~180 ns).
inline void add_relaxed(std::atomic<uint64_t> &counter, uint64_t amount) {
  counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
}

// time_ticks in loader/tick_clock.hpp's ticks, nanoseconds when read out.
struct OpCounters {
  std::atomic<uint64_t> calls{0}, bytes{0}, time_ticks{0};
};

}  // namespace plexus::loader

struct plx_backend {
  PLX_HANDLE_MEMORY
  uint64_t magic = plexus::loader::backend_magic;
  const plexus::loader::PluginLib *lib = nullptr;
  void *state = nullptr;
  plexus::loader::LoadReport report;
  std::atomic<int32_t> live_objects{0};
  // Set for auto's composite, which is no library: its PluginLib is its
  // own and goes with it (loader/composite.hpp).
  std::unique_ptr<plexus::loader::PluginLib> own_lib;
};

struct plx_comm {
  PLX_HANDLE_MEMORY
  uint64_t magic = plexus::loader::comm_magic;
  plx_backend *backend = nullptr;
  void *state = nullptr;
  int32_t rank = 0, size = 0, device = -1;
  std::atomic<plx_status> sticky{PLX_OK};
  std::mutex sticky_mutex;
  std::string sticky_message;
  plexus::loader::OpCounters counters[PLX_COLL_KIND_COUNT];
  std::atomic<int32_t> live_queues{0};
  plexus::loader::PoolBlocks blocks;  // from plx_mem_alloc, for PLX-L-33
};

struct plx_queue {
  PLX_HANDLE_MEMORY
  uint64_t magic = plexus::loader::queue_magic;
  plx_comm *comm = nullptr;
  void *state = nullptr;
};

namespace plexus::loader {

// Holds the plugin's lock for the call when it is single-threaded (PLX-L-13).
class CallGuard {
 public:
  explicit CallGuard(const PluginLib *lib) {
    if (lib->info->threading == PLX_THREAD_SINGLE) lock_.emplace(lib->serial);
  }

 private:
  std::optional<std::unique_lock<std::mutex>> lock_;
};

// Handle checks: PLX_ERR_INVALID_ARGUMENT naming the function and argument.
plx_status check_backend(const char *fn, plx_backend *b);
plx_status check_comm(const char *fn, plx_comm *c);  // also fails fast when sticky
plx_status check_not_null(const char *fn, const char *arg, const void *p);

// Records a sticky failure returned by the plugin (its message from the
// thread's last error); returns status.
plx_status note_result(plx_comm *c, plx_status status);
// The same for plx_queue_enqueue/dequeue: their PLX_ERR_TIMEOUT is not sticky.
plx_status note_queue_result(plx_comm *c, plx_status status);
void mark_sticky(plx_comm *c, plx_status status, const std::string &message);

// PLX_ERR_UNSUPPORTED naming the backend and the missing slot.
plx_status missing_slot(const char *fn, plx_backend *b, const char *slot);

}  // namespace plexus::loader

// Calls `slot` of the backend's vtable with the backend's lock when needed,
// or fails with PLX_ERR_UNSUPPORTED when the slot is absent (PLX-L-8).
#define PLX_CALL_SLOT(fn, backend, slot, ...)                                   \
  (PLX_VTABLE_HAS((backend)->lib->vtable, slot)                                 \
       ? (plexus::loader::CallGuard((backend)->lib), (backend)->lib->vtable->slot(__VA_ARGS__)) \
       : plexus::loader::missing_slot(fn, (backend), #slot))

// Registered outputs: buffers a rank's peers map once (CUDA IPC), so the
// two-shot stores its reduced chunks straight into them and skips the
// copy-out phase. A registration is plx_mem_register's buffer, or a
// plx_mem_alloc block on its first use as a two-shot output.
//
// Protocol (docs/plugins/p2p-tree.md, "Registered buffers"). Each rank owns
// a bulletin in shared memory that its peers map at init: kRegSlots
// entries of {state, id, IPC handle, mapped_by, closed_by}. Registering
// fills a free entry and marks it live. Each peer's watchdog maps live
// entries (cudaIpcOpenMemHandle; a peer of the same process, a thread
// rank, takes the owner's address as is), writes them into the kernels' table of
// its exchange block (kernels::RegSlot: base first, then id, each copy
// finished before the next) and sets its bit in mapped_by. Once every
// peer's bit is set, the owner's watchdog writes the id into its own
// acknowledged table (device memory, kernels.hpp); a two-shot launch posts
// its output's registration only when that table holds it, so every peer
// finds it mapped and all ranks agree on the path with no extra exchange,
// also in a CUDA graph captured before the peers mapped the buffer.
// Deregistering (collective) clears the acknowledgement, so launches from
// then on (graph replays included) copy out; it marks the entry dead; each peer's
// watchdog closes its mapping and sets its bit in closed_by; the owner
// returns once every live peer has (CUDA IPC forbids freeing memory a peer
// still maps) and every rank got there: closing a mapping waits for the
// device, so a rank that went on enqueueing collectives could block a
// peer's close behind a collective that needs the owner, still waiting.
//
// Ids grow and are never reused; an entry is reused only after every peer
// closed it, so a table slot never holds a mapping a kernel may still use.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/shm_segment.hpp"
#include "kernels/kernels.hpp"
#include "plexus/types.h"

namespace plexus::p2p_tree {

// A random number drawn once per process: equal in two ranks' cards (or
// bulletins) only when they are threads of one process. Process ids alone
// could match across PID namespaces (containers) on one host.
uint64_t this_process_token();

struct BulletinEntry {
  uint32_t state;            // kFree, kLive or kDead (release store, written last)
  uint32_t reserved;
  uint64_t id;               // the owner's, never 0
  uint64_t alloc_bytes;      // bytes of the CUDA allocation the handle maps
  uint64_t mapped_by;        // bit q: rank q mapped it (atomic or)
  uint64_t closed_by;        // bit q: rank q dropped it after kDead (atomic or)
  uint64_t alloc_base;       // the allocation's address in the owner's process
  uint64_t reserved2[2];
  unsigned char handle[64];  // cudaIpcMemHandle_t of the allocation
};

struct Bulletin {
  uint64_t magic;
  uint64_t generation;  // bumped at every state change
  uint64_t owner_process;  // this_process_token(): a peer of the same process uses alloc_base as is (no IPC open)
  uint64_t reserved[5];
  BulletinEntry entries[kernels::kRegSlots];
};

// One rank's registrations and its view of its peers'. Thread-safe: the
// calling threads register and look up, the watchdog maps and closes.
class Registry {
 public:
  static constexpr uint32_t kFree = 0, kLive = 1, kDead = 2;

  // Where this rank's kernels read the peers' mappings (its exchange
  // block's table) and how to tell a peer that is gone.
  struct Setup {
    int32_t rank = 0;
    int32_t nranks = 1;
    int device = 0;
    kernels::RegSlot *device_table = nullptr;
    uint64_t *device_acked = nullptr;  // this rank's acknowledged ids, [kRegSlots]
    std::function<bool(int32_t)> peer_gone;  // dead or left: it maps nothing any more
    std::function<plx_status(int32_t)> barrier;  // every rank (the init rendezvous), bounded
  };

  Registry() = default;
  ~Registry();
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;

  // Creates this rank's bulletin; its name goes to the peers.
  plx_status create(const Setup &setup);
  const std::string &name() const { return own_.name(); }
  // Maps peer's bulletin (init, after the names were exchanged).
  plx_status attach(int32_t peer, const char *name);
  // Every peer attached: the names go.
  void unlink_name() { (void)own_.unlink(); }

  // Registers [ptr, ptr + bytes) of one cudaMalloc allocation. *id is the
  // handle plx_mem_deregister takes.
  plx_status add(void *ptr, uint64_t bytes, uint64_t *id);
  // Registers the whole CUDA allocation holding ptr, unless it already is
  // (a pool segment; kept until the communicator goes).
  plx_status add_allocation(const void *ptr);
  // Collective (every rank deregisters at the same point of its calls, no
  // collective of this communicator in flight that a rank still has to
  // enqueue): marks it dead, waits (up to timeout_ms) until every live peer
  // has closed its mapping (a peer's close waits for its device), then for
  // every rank. INVALID_ARGUMENT for an unknown id.
  plx_status remove(uint64_t id, int32_t timeout_ms);
  // The live registration holding [out, out + bytes), when out is 16-byte
  // aligned in it: the candidate a launch writing there carries (posted
  // once the peers mapped it, see above).
  bool post_for(const void *out, uint64_t bytes, kernels::ReduceArgs *args);

  // The watchdog's duty: maps the peers' new registrations, closes their
  // dead ones, and acknowledges this rank's that every peer mapped. Makes
  // CUDA calls (capture mode relaxed by the caller).
  void poll_peers();
  void poll_own();
  // At destroy, after the device drained: closes every peer mapping.
  void close_all();

 private:
  struct Local {
    uint64_t id;
    char *begin, *end;  // what the caller registered
    char *alloc;        // its CUDA allocation's base (what the handle maps)
    int slot;
    bool acked = false;  // in the device's acknowledged table
  };
  struct Import {
    uint64_t id = 0;
    void *base = nullptr;
    bool opened = false;  // through CUDA IPC (a peer in another process), so closed through it
  };

  BulletinEntry &own_entry(int slot) const { return bulletin_of(own_)->entries[slot]; }
  static Bulletin *bulletin_of(const core::ShmSegment &s) { return static_cast<Bulletin *>(s.data()); }
  plx_status insert_locked(char *begin, uint64_t bytes, char *alloc, uint64_t alloc_bytes, uint64_t *id);
  plx_status fill_entry(void *alloc, uint64_t alloc_bytes, int slot, uint64_t id);
  plx_status wait_closed(int slot, uint64_t id, int32_t timeout_ms);
  uint64_t peers_mask() const;
  void poll_peer(int32_t q);
  void map_entry(int32_t q, int slot, BulletinEntry &e);
  void close_entry(int32_t q, int slot);
  plx_status write_table(int32_t q, int slot, uint64_t id, void *base);
  plx_status write_acked(int slot, uint64_t id);

  Setup setup_;
  core::ShmSegment own_;
  std::vector<core::ShmSegment> peers_;  // their bulletins (mine: empty)
  std::vector<uint64_t> seen_generation_;
  std::vector<std::vector<Import>> imports_;  // [peer][slot]
  mutable std::mutex mutex_;                  // locals_, next_id_, own entries
  std::mutex peer_mutex_;                     // imports_, the device table
  std::vector<Local> locals_;
  uint64_t next_id_ = 1;
  cudaStream_t stream_ = nullptr;  // the table's copies (non-blocking)
};

}  // namespace plexus::p2p_tree

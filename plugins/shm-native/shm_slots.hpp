// The staging slots of a shm-native communicator: the segments that hold
// them, their NUMA placement and their growth.
//
// Each rank's two data slots live in a segment of their own, apart from the
// control page. It is an anonymous memfd: no name ever exists in /dev/shm, so
// nothing is left behind after success, error or SIGKILL. Peers map it by
// opening /proc/<owner pid>/fd/<fd>, as they map pool segments (shm_pool.hpp).
//
// Slots start at PLEXUS_SHM_NATIVE_SLOT_MIN_BYTES and take sizes from the
// sequence min, min × 1.5, min × 1.5², … (each rounded up to a page) up to
// PLEXUS_SHM_NATIVE_SLOT_BYTES. Growth needs no message: every rank sees the
// same collective with the same count and dtype, so every rank decides to
// grow, and to the same size, at the same call (Comm::grow_slots). The new
// segment's (generation, fd, slot bytes) is published in the control page,
// double-buffered by generation parity, and the peers remap after the first
// exchange of the collective that grew (Comm::finish_growth).
//
// Without /proc access to the peers (another uid, a non-dumpable process)
// slots cannot grow: every rank then maps named segments of the cap at init,
// removed as soon as all have mapped them.
//
// NUMA: a segment's memory policy (preferred: its rank's node) is set on the
// file before any page exists, then every page is allocated and faulted, and
// a few pages are asked where they landed (Placement).
#pragma once

#include <cstdint>
#include <mutex>

#include "core/json.hpp"
#include "core/shm_segment.hpp"
#include "plexus/types.h"

namespace plexus::shm_native {

// A rank's slot segment as its peers need it; entry g % 2 of the control
// page holds generation g.
struct SlotSegmentRef {
  uint32_t generation = 0;
  int32_t fd = -1;          // the owner's descriptor of the memfd
  uint64_t slot_bytes = 0;  // bytes of one slot
};

// The first page of a slot segment, checked by every peer that maps it: the
// owner's descriptor number may have been reused by the time a peer opens it.
struct SlotHeader {
  static constexpr uint64_t magic_value = 0x706c78736c6f7431;  // "plxslot1"
  uint64_t magic;
  uint64_t generation;
  uint64_t slot_bytes;
  int64_t owner_pid;
};
inline constexpr size_t slot_header_bytes = 4096;
inline uint64_t slot_file_bytes(uint64_t slot_bytes) { return slot_header_bytes + 2 * slot_bytes; }

// The smallest size of the sequence min × 1.5^k (pages) that holds `want`
// bytes, at most cap.
uint64_t slot_size_for(uint64_t want, uint64_t min_bytes, uint64_t cap_bytes);

// Where a segment's pages are.
struct Placement {
  int32_t node = -1;    // the node asked for
  int32_t placed = -1;  // where the sampled pages are; -1: unknown or not all on one node
  const char *state() const {
    return placed < 0 ? "not verified" : placed == node ? "verified" : "elsewhere";
  }
};

// The node that the pages at the start, middle and end of [addr, addr +
// bytes) share, or -1 (no libnuma, not permitted, or spread over nodes).
int32_t node_of_range(const void *addr, size_t bytes);
// Moves the (faulted, so far unshared) pages of a named segment to `node`
// and reports where they are. Failing to move is logged, never fatal.
Placement place_existing(void *addr, size_t bytes, int32_t node);

// Creates this rank's slot segment of `generation` as a memfd on `node`.
plx_status create_slot_memfd(uint32_t generation, uint64_t slot_bytes, int32_t node,
                             core::ShmSegment *out, Placement *where);
// Creates it as the named segment `name` (the fallback without /proc), placed on node.
plx_status create_slot_named(const char *name, uint64_t slot_bytes, int32_t node, core::ShmSegment *out,
                             Placement *where);
// Writes the header of a fresh slot segment.
void write_slot_header(core::ShmSegment &segment, uint32_t generation, uint64_t slot_bytes);
// Maps a peer's slot segment through /proc/<pid>/fd/<fd> and checks that
// its header is the generation and size `ref` announces.
plx_status map_peer_slots(int32_t pid, const SlotSegmentRef &ref, core::ShmSegment *out);
// Checks the header of a peer's named slot segment.
plx_status check_slot_header(const core::ShmSegment &segment, uint32_t generation, uint64_t slot_bytes);

// The backend's record of its communicators' slots, for its topology
// report: topology is per backend, so this is the last placement and size.
class StagingReport {
 public:
  StagingReport(uint64_t min_bytes, uint64_t cap_bytes) : min_bytes_(min_bytes), cap_bytes_(cap_bytes) {}
  void placed(const Placement &where, uint64_t slot_bytes, bool growable);
  void grew(const Placement &where, uint64_t slot_bytes);
  // {"slot_min_bytes", "slot_max_bytes", "slot_bytes", "growths", "growable",
  //  "numa_node", "placed_node", "placement"}; null where no communicator was made.
  void write_json(core::JsonWriter &json) const;

 private:
  mutable std::mutex mutex_;
  const uint64_t min_bytes_, cap_bytes_;
  uint64_t slot_bytes_ = 0;
  uint64_t growths_ = 0;
  int32_t growable_ = -1;  // -1: no communicator yet
  Placement where_;
};

}  // namespace plexus::shm_native

// Inputs read in place from pool blocks (see shm_coll.hpp and shm_pool.hpp).
#include "core/status.hpp"
#include "plugins/shm-native/shm_coll.hpp"

namespace plexus::shm_native {

bool overlap(const void *a, const void *b, size_t bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + bytes && y < x + bytes;
}

// Reading in place saves the copy into the slot but adds a completion sync,
// whose cost grows with the ranks: below this size it loses with more than 2
// ranks (measured on 16 cores, 8 and 16 ranks: 4.2 against 3.3 us at 8 B,
// 6.3 against 13.3 us at 8 KiB; docs/performance.md).
constexpr size_t in_place_min_bytes = 2048;

// The entry is written at every call, also to clear it: peers read it for
// each step, and entry step % 2 still holds what step - 2 published.
bool Op::publish_input(uint32_t step, const void *ptr, size_t bytes, bool allowed) {
  BlockRef ref{};
  const bool worth_it = bytes >= in_place_min_bytes || comm.nranks() <= 2;
  const bool published = allowed && bytes > 0 && worth_it && comm.reads_in_place() &&
                         comm.pool().describe(ptr, bytes, &ref);
  comm.control(comm.rank()).input[step & 1u] = published ? ref : BlockRef{};
  return published;
}

plx_status Op::peer_input(int32_t r, uint32_t step, size_t bytes, const uint8_t **out) {
  const BlockRef ref = comm.control(r).input[step & 1u];
  *out = nullptr;
  if (ref.segment_id == 0) return PLX_OK;
  if (plx_status s = comm.peer_maps().resolve(r, ref, bytes, out))
    return comm.peer_open_failed(r, s, fmt::format("rank {} cannot read rank {}'s pool block in {} #{}",
                                                   comm.rank(), r, label.coll, label.seq));
  return PLX_OK;
}

}  // namespace plexus::shm_native

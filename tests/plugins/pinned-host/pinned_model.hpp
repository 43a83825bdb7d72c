// A pinned-host segment in ordinary memory, for CPU tests in which host
// threads play the GPUs' side of the protocols of kernels/pinned.hpp (step
// for step as the kernels do) against each other or against the real CPU
// helper: what the GPU cannot be asked in CI, whether every wait condition
// keeps every reader ahead of every writer, can be.
#pragma once

#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "kernels/pinned.hpp"
#include "plexus/plexus.h"

namespace plexus::test::pinned_model {

namespace kp = kernels::pinned;

struct Call {
  plx_dtype dtype;
  plx_reduce_op op;
  uint64_t count;
};

// The segment, its layout, and the first failure anybody reports.
struct World {
  kp::Layout layout;
  uint64_t rank_bytes;
  char *seg;
  int32_t max_blocks;
  std::mutex mutex;
  plx_status failure = PLX_OK;
  std::string message;

  World(int32_t nranks, uint32_t stages, uint64_t stage_bytes, int32_t blocks, uint64_t ll_bytes = 4096,
        uint32_t ce_stages = 0, uint64_t ce_bytes = 0)
      : layout{static_cast<uint32_t>(nranks), stages, stage_bytes, ll_bytes, ce_stages, ce_bytes},
        rank_bytes(kp::rank_bytes(layout)),
        seg(static_cast<char *>(std::aligned_alloc(4096, kp::segment_bytes(layout)))), max_blocks(blocks) {
    std::memset(seg, 0, kp::segment_bytes(layout));
  }
  ~World() { std::free(seg); }
  World(const World &) = delete;
  World &operator=(const World &) = delete;
  char *rank_base(int r) { return seg + kp::kHeaderBytes + r * rank_bytes; }
  uint64_t *flag(int r, uint64_t offset) { return reinterpret_cast<uint64_t *>(rank_base(r) + offset); }
  char *stage(int r, uint32_t s) { return rank_base(r) + kp::ring_offset(layout) + s * layout.stage_bytes; }
  uint64_t *ll_line(int r, uint64_t e, uint64_t u) {  // two 8-byte halves: data | tag << 32
    return reinterpret_cast<uint64_t *>(rank_base(r) + kp::ll_offset(layout) + (e & 1) * kp::ll_half_bytes(layout)) + 2 * u;
  }
  bool aborted() { return __atomic_load_n(reinterpret_cast<uint64_t *>(seg + kp::kAbortOffset), __ATOMIC_ACQUIRE) != 0; }
  // What Comm::set_failure does: record, stop every kernel.
  void fail(plx_status s, const std::string &m) {
    std::lock_guard lock(mutex);
    if (failure == PLX_OK) failure = s, message = m;
    __atomic_store_n(reinterpret_cast<uint64_t *>(seg + kp::kAbortOffset), uint64_t{1}, __ATOMIC_RELEASE);
  }
};

// A GPU's wait: false once the abort word is set.
inline bool wait_geq(World &w, const uint64_t *flag, uint64_t want) {
  while ((__atomic_load_n(flag, __ATOMIC_ACQUIRE) & ~kp::kSkip) < want) {
    if (w.aborted()) return false;
    sched_yield();
  }
  return true;
}

inline void publish(uint64_t *flag, uint64_t value) { __atomic_store_n(flag, value, __ATOMIC_RELEASE); }

inline std::vector<uint8_t> input_of(int rank, const Call &c, uint64_t salt) {
  std::mt19937_64 gen(salt * 977 + rank);
  const size_t es = plx_dtype_size(c.dtype);
  std::vector<uint8_t> v(c.count * es);
  for (uint64_t i = 0; i < c.count; ++i) {
    const uint64_t r = gen();
    if (c.dtype == PLX_FLOAT32) {
      const float f = static_cast<float>(static_cast<int64_t>(r % 2001) - 1000) / 64.0f;
      std::memcpy(v.data() + i * 4, &f, 4);
    } else {
      std::memcpy(v.data() + i * es, &r, es);
    }
  }
  return v;
}

}  // namespace plexus::test::pinned_model

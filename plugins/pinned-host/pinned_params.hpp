// pinned-host's parameters (PLEXUS_PINNED_HOST_*, declared with their help
// in pinned_plugin.cpp's table) and the choices they drive: which algorithm
// serves a collective and which dtype a reduction's data travels as. Pure
// functions of the call and the parameters, so every rank chooses alike
// (init checks that every rank has the same parameters).
#pragma once

#include <cstdint>

#include "kernels/pinned.hpp"
#include "plexus/plugin.h"

namespace plexus::pinned_host {

namespace kp = kernels::pinned;

struct Params {
  uint64_t ll_max_bytes = uint64_t{128} << 10;      // LL up to this payload per rank (and the LL area): beat one-shot to 128K on 2 H200
  uint64_t oneshot_max_bytes = uint64_t{512} << 10;  // bulk one-shot up to this, two-shot above
  uint64_t stage_bytes = uint64_t{256} << 10;
  uint64_t cpu_min_bytes = 0;  // CPU helper from this size up (0: never, unless ALGO=cpu)
  uint64_t copy_min_bytes = 0;  // copy engines from this size up (0: never, unless ALGO=copy)
  uint64_t copy_chunk_bytes = uint64_t{4} << 20;
  int32_t copy_stages = 4;
  int32_t stages = 16;
  int32_t forced_algo = PLX_ALGO_AUTO;  // PLEXUS_PINNED_HOST_ALGO
  int32_t wire = -1;                    // PLEXUS_PINNED_HOST_WIRE: float32 reductions' default wire dtype
  int32_t max_blocks = 16;
  int32_t ll_blocks = 16;  // LL launches: one 8-byte line per thread up to 16 x 512 lines (64 KiB)
  int32_t watchdog_poll_ms = 5;
  // PLEXUS_PINNED_HOST_ENABLE. On by default since its latency beat NCCL's host path on 2 H200;
  // auto puts nccl beside it anyway, each collective to the faster by size.
  bool enable = true;
  double defrag_threshold = 0.30;
};

// PLEXUS_PINNED_HOST_* into *params; INVALID_ARGUMENT naming the variable
// for a bad value (pinned_params.cpp).
plx_status read_params(const plx_host_services &services, Params *params);

// The shared segment's layout for nranks ranks.
kp::Layout layout_of(const Params &p, int32_t nranks);

// The dtype a reduction's data travels as: asked (opts->wire_dtype, -1 for
// the buffer's own), else WIRE for float32; -1 when that cannot be done
// (only float32 travels as bfloat16 or float16).
int32_t wire_of(int32_t dtype, int32_t asked, int32_t default_wire);

// Whether each rank runs a CPU helper thread (CPU_MIN_BYTES or ALGO=cpu),
// and whether the copy-engine path has its copy area (COPY_MIN_BYTES or
// ALGO=copy).
bool cpu_helper_runs(const Params &p);
bool copy_path_runs(const Params &p);

// What of a call, besides its size, bars the copy-engine path.
constexpr uint32_t kWireConverted = 1u;  // the data travels as another dtype
constexpr uint32_t kCapturing = 2u;      // the stream is capturing a graph (chunks are host-numbered)

// PLX_ALGO_LOW_LATENCY, _ONE_SHOT, _TWO_SHOT, _CPU_STAR or _COPY for a
// reduction of count elements of ws wire bytes (reduce-scatter: count per
// rank); `hint` is opts->algorithm, overridden by ALGO; `bars` is
// kWireConverted | kCapturing as they hold.
int32_t choose_reduction(const Params &p, int32_t coll, uint64_t count, uint64_t ws, int32_t nranks, int32_t hint,
                         uint32_t bars = 0);
// PLX_ALGO_LOW_LATENCY or _ONE_SHOT for copies whose largest part is `bytes`.
int32_t choose_copy(const Params &p, uint64_t bytes, int32_t hint);

}  // namespace plexus::pinned_host

// The raw-nccl peer column: NCCL called directly by the rank processes, on
// the same GPU, stream and device buffers as the plexus columns and through
// the same measurement (device.hpp), so `--backends nccl,raw-nccl` shows
// what the plexus nccl plugin costs over NCCL itself. Compiled only where
// NCCL is found.
//
// The unique id travels as the plexus ids do: the launcher makes it
// (ncclGetUniqueId; the launcher then hosts NCCL's bootstrap root until the
// ranks have joined) and passes it in PLEXUS_BENCH_IDS, in the first
// sizeof(ncclUniqueId) bytes of a plx_unique_id.
#pragma once

#include <string>

#include "tools/plexus-bench/device.hpp"

namespace plexus::bench {

// The launcher: a fresh NCCL unique id in *id and NCCL's version in
// *detail; false with *why.
bool raw_nccl_unique_id(plx_unique_id *id, std::string *detail, std::string *why);

// A rank: ncclCommInitRank on d's GPU, the sweep, ncclCommDestroy (or
// ncclCommAbort after a failure, so the peers stop waiting); false after
// printing why.
bool run_raw_nccl_column(const Options &o, int32_t column, const plx_unique_id &id, DeviceRank &d,
                         const Reporter &report);

}  // namespace plexus::bench

// The collectives, over a communicator's slots (comm.hpp).
#pragma once

#include <plexus/plugin.h>

#include "comm.hpp"

namespace example_shm {

// Runs one validated descriptor (the loader checked dtype, op, root,
// counts and pointers; plugin.h) on host memory; synchronous.
plx_status run_collective(Comm &c, const plx_coll_desc &d);

// Every rank of `parent` calls it; ranks of one color form a new
// communicator ordered by (key, old rank); PLX_SPLIT_NO_COLOR gets none.
plx_status split(Comm &parent, int32_t color, int32_t key, const plx_comm_config &config, Comm **out);

}  // namespace example_shm

// plexus-bench-launch --push: the NVLink bandwidth a collective can use
// (nvlink.cpp).
#pragma once

#include <cstdio>

namespace plexus::bench_launch {

// Measures and prints (and writes to csv, when not null) the egress of one
// GPU in GB/s while 2 and all GPUs each send 32 MiB to every other at once
// (a two-shot phase's traffic), and while GPU 0 sends to GPU 1 alone: by SM
// stores (push), SM loads (pull), copy engines issued by the sender or the
// receiver, and SM and copy engines splitting each transfer. Prints a
// skipped line with fewer than 2 GPUs or without peer access.
void nvlink_rates(std::FILE *csv);

}  // namespace plexus::bench_launch

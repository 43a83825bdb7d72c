// plexus-bench-launch --ce-model: how fast an all-reduce could be whose
// NVLink traffic all goes by copy engines (ce_model.cpp).
#pragma once

#include <cstdio>

namespace plexus::bench_launch {

// Runs a 128 MiB bfloat16 sum all-reduce on 2 GPUs and on the largest
// power of two of them (up to 8), enqueued call by call and as one
// multi-GPU CUDA graph: copy-engine reduce-scatter into scratch, SM sums,
// copy-engine all-gather into the outputs, pipelined over 1 to 16 chunks. Checks every element of every
// output against the exact sum once, then prints (and writes to csv, when
// not null) the bus bandwidth. Prints a skipped line with fewer than 2 GPUs
// (and returns true). False where a run could not be set up (a CUDA error
// on stderr) or any output element was wrong.
bool ce_all_reduce_model(std::FILE *csv);

}  // namespace plexus::bench_launch

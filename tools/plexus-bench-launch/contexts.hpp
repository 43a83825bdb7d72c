// --contexts: what a multi-GPU process does to the host's cost of one
// launch. p2p-tree's eager calls cost a bare launch on one rank and 1-2 us
// more on 2 and 4 ranks, the difference inside cuLaunchKernelEx
// (docs/performance.md, session 21). This times the same empty kernels on
// GPU 0 while the process takes on, one at a time, what a rank of p2p-tree
// holds: host-mapped memory, peer access to every other GPU, buffers of
// another process on the other GPUs opened by legacy CUDA IPC, a buffer of
// its own opened by that process, and that process launching kernels of
// its own at the same time. Each state keeps the ones before it.
#pragma once

#include <cstdio>

namespace plexus::bench_launch {

// Forks the helper process that owns the other GPUs' buffers. Call before
// this process touches CUDA (a child cannot use a CUDA its parent started).
// False (with a line on stderr) when the pipes or the fork fail.
bool start_context_helper();

// The host's cost of a launch in each state, printed and written to csv;
// ends the helper. False when a state could not be set up (printed).
bool launch_contexts(std::FILE *csv);

}  // namespace plexus::bench_launch

// The two roles of the plexus-bench program: the launcher a person runs,
// and the rank processes it starts by running itself again.
#pragma once

#include <functional>
#include <string>

#include "plexus/plexus.h"
#include "tools/plexus-bench/options.hpp"
#include "tools/plexus-bench/sweep.hpp"

namespace plexus::bench {

// A rank (PLEXUS_BENCH_RANK is set); returns the exit status.
int rank_main(const Options &o);

// The launcher: opens the columns, starts the ranks and the mpi peer,
// gathers their results and prints them; returns the exit status.
int launch(const Options &o, int argc, char **argv);

// What the host and the device ranks share (rank.cpp).
// True for PLX_OK; else prints "rank R, <label>: <call> failed: ...".
bool plexus_ok(int32_t rank, const std::string &label, const char *call, plx_status s);
// One collective of the run's op at size p; stream is NULL for host buffers.
plx_status plexus_collective(const Options &o, plx_comm_h comm, const SizePoint &p, const void *send, void *recv,
                             void *stream);
// "plx_all_reduce" and so on, for messages.
std::string plexus_call_name(const Options &o);
// Writes one result line into the launcher's pipe; false after printing why.
bool write_result(int fd, int32_t rank, const RankResult &r);
// Opens backend `spec`, joins its communicator as `rank` (on `cuda_device`,
// -1 for host buffers), runs body, and leaves: a failed body aborts the
// communicator first, so the other ranks stop waiting at once.
bool with_plexus_comm(const Options &o, const std::string &spec, const plx_unique_id &id, int32_t rank,
                      int32_t cuda_device, const std::function<bool(plx_comm_h)> &body);

}  // namespace plexus::bench

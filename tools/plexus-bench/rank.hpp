// The two roles of the plexus-bench program: the launcher a person runs,
// and the rank processes it starts by running itself again.
#pragma once

#include "tools/plexus-bench/options.hpp"

namespace plexus::bench {

// A rank (PLEXUS_BENCH_RANK is set); returns the exit status.
int rank_main(const Options &o);

// The launcher: opens the columns, starts the ranks and the mpi peer,
// gathers their results and prints them; returns the exit status.
int launch(const Options &o, int argc, char **argv);

}  // namespace plexus::bench

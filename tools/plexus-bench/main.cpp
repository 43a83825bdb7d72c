// plexus-bench: nccl-tests for plexus. One command sweeps an op over sizes
// on several backends side by side (and Open MPI as a peer), checks every
// size, and prints latency, algorithm and bus bandwidth and the ratios
// against the first backend (DESIGN §6). The same program is the launcher
// and, started again by it with PLEXUS_BENCH_RANK set, each rank.
#include <cstdlib>

#include "tools/plexus-bench/options.hpp"
#include "tools/plexus-bench/rank.hpp"

int main(int argc, char **argv) {
  plexus::bench::Options o;
  if (int done = plexus::bench::parse_options(argc, argv, &o); done >= 0) return done;
  if (std::getenv("PLEXUS_BENCH_RANK")) return plexus::bench::rank_main(o);
  return plexus::bench::launch(o, argc, argv);
}

// The columns of a run: plexus backends, opened and checked by the launcher
// before any rank starts, the Open MPI peer, and the raw-nccl peer (NCCL
// called directly in the rank processes, --mem device).
#pragma once

#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tools/plexus-bench/options.hpp"

namespace plexus::bench {

struct Column {
  std::string label;     // as printed: "shm-native", "mpi", "raw-nccl"
  bool mpi = false;      // runs under mpirun, not in the rank processes
  std::string open_spec; // what the ranks open: the plugin's name, or its absolute path
  // Held open until the ranks are done: a plugin's unique id may need the
  // process that made it (NCCL's bootstrap root does).
  plx_backend_h backend = nullptr;
  std::string id_hex;    // the communicator's unique id, 512 hex digits
  std::string mpirun, mpi_exe;  // the peer's launcher and program
  std::string detail;    // version and build, for the header
};

// Opens and checks every column of o.backends (the default backend when
// empty); 0, or 2 after printing why a column cannot run this op.
int open_columns(const Options &o, std::vector<Column> *out);
void close_columns(std::vector<Column> *cols);

// PLEXUS_BENCH_IDS for the ranks: "spec=hex,spec=hex" of the columns the
// rank processes run (plexus backends and raw-nccl), in column order.
std::string ids_env(const std::vector<Column> &cols);
// The inverse: (spec, id) pairs; false when the text is malformed.
bool parse_ids_env(const std::string &text, std::vector<std::pair<std::string, plx_unique_id>> *out);

// The column numbers of the columns the rank processes run, in order (the
// ranks map PLEXUS_BENCH_IDS' entries onto them).
std::vector<int32_t> plexus_column_numbers(const Options &o);

plx_coll_kind coll_kind(Coll c);

}  // namespace plexus::bench

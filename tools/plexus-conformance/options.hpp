// The command line of plexus-conformance.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plexus::conformance {

struct Options {
  std::string backend;  // a plugin name or an absolute path, as plx_backend_open takes it
  int32_t nranks = 0;
  std::string json_path;  // empty: no JSON report
  bool full = false;  // the 64 MiB size and both alignments for every group
  std::vector<std::string> only;  // run only these sessions (empty: all)
  int32_t timeout_ms = 1000;  // the communicator timeout of the error groups
  int32_t deadline_s = 1200;  // the whole run; ranks still running then are killed
  uint32_t mem_mask = ~0u;  // PLX_BIT(PLX_MEM_*) --mem allows; every kind the backend accepts by default
  bool mem_given = false;  // --mem was given
};

// Parses argv[1..]; false with *error set when it cannot.
bool parse_options(int argc, char **argv, Options *out, std::string *error);
// The sessions, in the order they run (see sessions.hpp).
const std::vector<std::string> &session_names();
const char *usage_text();

}  // namespace plexus::conformance

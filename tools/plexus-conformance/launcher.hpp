// The launcher: starts the ranks of a session as copies of this program
// (/proc/self/exe) with their rank, the unique ids and a pipe in the
// environment, collects what they report, and reaps them. It never waits
// for ever: ranks that report nothing for a session's quiet limit, or
// outlive the run's deadline, are killed with SIGKILL and the case they
// were in fails. Ranks die with the launcher (PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "options.hpp"
#include "plexus/plexus.h"
#include "results.hpp"

namespace plexus::conformance {

struct SessionSpec {
  std::string name;
  int32_t quiet_ms;  // no record from any rank for this long: kill them all
};

class Launcher {
 public:
  Launcher(const Options &opts, plx_backend_h backend, std::vector<std::string> argv, Results *results);
  // Runs one session to its end; returns its wall time in seconds.
  double run(const SessionSpec &spec);

 private:
  const Options &opts_;
  plx_backend_h backend_;
  std::vector<std::string> argv_;
  Results *results_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace plexus::conformance

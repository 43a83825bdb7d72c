#pragma once

#include <memory>
#include <string>
#include <vector>

#include "loader/plugin_lib.hpp"
#include "loader/report.hpp"
#include "loader/spec.hpp"
#include "plexus/plexus.h"

namespace plexus::loader {

// The work of plx_backend_open.
plx_status open_backend(const char *spec, plx_backend **out);

// This thread's most recent open attempt's report, or nullptr.
std::shared_ptr<const LoadReport> last_thread_report();

// Shared by the explicit open (open.cpp) and auto's (auto_open.cpp).
struct Plan {
  std::vector<Candidate> tries;  // in order; entries with a status set are already rejected
};
std::vector<FoundPlugin> named(const std::vector<FoundPlugin> &found, const std::string &name);
// The candidate of that name (the highest version among duplicates), or a
// rejected one when none is found.
void plan_name(const std::string &name, const std::vector<FoundPlugin> &found, LoadReport *r, Plan *plan);
// Loads and initialises one candidate, recording how far it got.
plx_status try_candidate(Candidate *c, plx_backend **backend);
// Fails the open with the report's decision naming every candidate tried.
plx_status fail_open(const BackendSpec &spec, const std::vector<Candidate> &tried,
                     const std::vector<FoundPlugin> &found, LoadReport *r);

// plx_backend_open for "auto" and "^..." (auto_open.cpp).
plx_status open_auto(const BackendSpec &spec, const std::vector<FoundPlugin> &found, LoadReport *r,
                     plx_backend **out);

}  // namespace plexus::loader

#pragma once

#include <memory>

#include "loader/report.hpp"
#include "plexus/plexus.h"

namespace plexus::loader {

// The work of plx_backend_open.
plx_status open_backend(const char *spec, plx_backend **out);

// This thread's most recent open attempt's report, or nullptr.
std::shared_ptr<const LoadReport> last_thread_report();

}  // namespace plexus::loader

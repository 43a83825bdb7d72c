// The host services this copy of core reports through. core is linked
// statically into the loader and into every plugin; each copy reports
// through one plx_host_services table: the loader installs its own, a plugin
// the table the loader handed it. Without one (core's own unit tests) a
// default writes warnings to stderr and keeps a thread-local last error.
#pragma once

#include <string>

#include "plexus/plugin.h"

namespace plexus::core {

// Installs the table this copy of core uses; component names the log lines
// ("shm-native"). Both must outlive every later call.
void set_services(const plx_host_services *services, const char *component);
const plx_host_services &services();
const char *component();

// The default table's thread-local last error (core's unit tests read it).
const std::string &default_last_error();

}  // namespace plexus::core

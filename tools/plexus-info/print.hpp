// The three views of plexus-info: the text report, the one JSON object
// (--json), and the parameter table (--params).
#pragma once

#include <string>

#include "tools/plexus-info/gather.hpp"

namespace plexus::info {

void print_text(const std::string &plugins_text, const Opened &opened, const HostPart &host, const GpuPart &gpus);

// {"version", "plugins", "load_report", "load_error", "host_topology",
//  "gpu_topology", "backend_topology", ...}: always one valid JSON object.
void print_json(const std::string &plugins_json, const Opened &opened, const HostPart &host, const GpuPart &gpus);

// Every parameter (the loader's, then each plugin's) from the describe JSON;
// false when that JSON cannot be read.
bool print_params(const std::string &plugins_json, bool as_json);

}  // namespace plexus::info

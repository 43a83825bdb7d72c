// What plexus-info shows, gathered once through the public C API (and core
// for the host and the GPUs): plugin descriptions, the load report of one
// open, the host, the GPUs and the opened backend's topology. Printing lives
// in print.cpp.
#pragma once

#include <optional>
#include <string>

#include "plexus/plexus.h"

namespace plexus::info {

struct Opened {
  std::string spec;                        // what was asked for ("" = PLEXUS_BACKEND)
  std::optional<std::string> report_text;  // absent when no report exists
  std::optional<std::string> report_json;
  std::optional<std::string> error;        // "PLX_ERR_...: message" when the open failed
  std::string backend_name;
  std::optional<std::string> topology_summary;  // absent when not opened or unsupported
  std::optional<std::string> topology_json;
  std::optional<std::string> topology_error;
};

struct HostPart {
  std::optional<std::string> text;
  std::optional<std::string> json;
  std::optional<std::string> error;
};

// plx_plugins_describe in `format`; nullopt (message on stderr) if it fails.
std::optional<std::string> describe_plugins(plx_format format);

// Opens `spec` (nullptr: PLEXUS_BACKEND), reads its report and topology and
// closes it again. A failed open is data for the report, not an error.
Opened open_and_probe(const char *spec);

HostPart probe_host();

// The GPUs and their links (core's probe, peer copies checked), in text and
// JSON, or why not ("no CUDA device: ..."). Built without CUDA, only
// `error` is set and `built` is false.
struct GpuPart {
  bool built = false;
  std::optional<std::string> text;
  std::optional<std::string> json;
  std::optional<std::string> error;
};

GpuPart probe_gpus();

}  // namespace plexus::info

#include "tools/plexus-info/print.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.hpp"
#include "tools/plexus-info/json_value.hpp"

namespace plexus::info {
namespace {

std::string with_newline(const std::string &s) { return s.empty() || s.back() == '\n' ? s : s + '\n'; }

std::string quoted(std::string_view s) { return "\"" + core::json_escape(s) + "\""; }

// JSON produced elsewhere (the loader, a plugin) goes in as it is when it
// parses, and as a string when it does not, so one bad plugin cannot make
// the whole document invalid.
std::string embed(const std::optional<std::string> &raw) {
  if (!raw) return "null";
  return parse_json(*raw) ? *raw : quoted(*raw);
}

std::string optional_string(const std::optional<std::string> &s) { return s ? quoted(*s) : "null"; }

std::string backend_label(const Opened &o) {
  return o.spec.empty() ? "the default backend (PLEXUS_BACKEND)" : fmt::format("backend '{}'", o.spec);
}

void print_backend_topology(const Opened &o) {
  if (o.error) return;
  std::printf("\nbackend topology (%s):\n", o.backend_name.c_str());
  if (o.topology_error) std::printf("  not available: %s\n", o.topology_error->c_str());
  if (o.topology_summary) std::printf("  %s\n%s", o.topology_summary->c_str(), with_newline(*o.topology_json).c_str());
}

// Only a tool built with CUDA has the section; without a device it says so.
void print_gpu_topology(const GpuPart &gpus) {
  if (!gpus.built) return;
  std::printf("\nGPU topology:\n");
  if (gpus.text) std::printf("%s", with_newline(*gpus.text).c_str());
  if (gpus.error) std::printf("  %s\n", gpus.error->c_str());
}

}  // namespace

void print_text(const std::string &plugins_text, const Opened &o, const HostPart &host, const GpuPart &gpus) {
  std::printf("%s\nload report of %s:\n", with_newline(plugins_text).c_str(), backend_label(o).c_str());
  std::printf("%s", o.report_text ? with_newline(*o.report_text).c_str() : "  (no report)\n");
  if (o.error) std::printf("open failed: %s\n", o.error->c_str());
  std::printf("\nhost topology:\n");
  if (host.text) std::printf("%s", with_newline(*host.text).c_str());
  if (host.error) std::printf("  not available: %s\n", host.error->c_str());
  print_gpu_topology(gpus);
  print_backend_topology(o);
}

void print_json(const std::string &plugins_json, const Opened &o, const HostPart &host, const GpuPart &gpus) {
  const std::pair<const char *, std::string> fields[] = {
      {"version", quoted(plx_version_string())},
      {"plugins", embed(plugins_json)},
      {"backend_spec", o.spec.empty() ? "null" : quoted(o.spec)},
      {"load_report", embed(o.report_json)},
      {"load_error", optional_string(o.error)},
      {"host_topology", embed(host.json)},
      {"host_topology_error", optional_string(host.error)},
      {"gpu_topology", embed(gpus.json)},
      {"gpu_topology_error", optional_string(gpus.error)},
      {"backend_topology", embed(o.topology_json)},
      {"backend_topology_error", optional_string(o.topology_error)},
  };
  std::string out = "{";
  for (const auto &[key, value] : fields) out += fmt::format("{}\n  \"{}\": {}", out.size() > 1 ? "," : "", key, value);
  std::printf("%s\n}\n", out.c_str());
}

}  // namespace plexus::info

#include "loader/report.hpp"

#include <fmt/format.h>


#include "core/json.hpp"
#include "core/status.hpp"

namespace plexus::loader {

std::string LoadReport::text() const {
  std::string out = fmt::format("plexus load report: spec '{}' (from {}), result {}\n", spec,
                                spec_source, core::status_name(status));
  out += "  search path:";
  for (const std::string &dir : search_dirs) out += " " + dir;
  out += search_dirs.empty() ? " (none)\n" : "\n";
  for (const Candidate &c : candidates) {
    out += fmt::format("  {} {:<14} {}", c.chosen ? "*" : "-", c.name.empty() ? "?" : c.name,
                       c.path.empty() ? "(no library)" : c.path);
    if (!c.version.empty()) out += fmt::format(" v{}", c.version);
    if (!c.abi.empty()) out += fmt::format(" ABI {}", c.abi);
    if (c.chosen) out += ": chosen\n";
    else if (c.status == PLX_OK) out += ": initialised, not chosen\n";  // auto tried it, then chose others
    else out += fmt::format(": rejected at {} ({}): {}\n", c.stage, core::status_name(c.status), c.reason);
  }
  if (!decision.empty()) out += "  " + decision + "\n";
  return out;
}

std::string LoadReport::json() const {
  core::JsonWriter w;
  w.begin_object().field("spec", std::string_view(spec)).field("spec_source", std::string_view(spec_source));
  w.field("status", core::status_name(status)).key("search_path").begin_array();
  for (const std::string &dir : search_dirs) w.value(std::string_view(dir));
  w.end_array().key("candidates").begin_array();
  for (const Candidate &c : candidates) {
    w.begin_object().field("name", std::string_view(c.name)).field("path", std::string_view(c.path));
    w.field("abi", std::string_view(c.abi)).field("version", std::string_view(c.version));
    w.field("build_info", std::string_view(c.build_info)).field("stage", std::string_view(c.stage));
    w.field("chosen", c.chosen).field("status", core::status_name(c.status));
    w.field("reason", std::string_view(c.reason)).end_object();
  }
  w.end_array().field("decision", std::string_view(decision));
  if (!auto_reason.empty()) {
    w.key("auto").begin_object().key("members").begin_array();
    for (const std::string &m : auto_members) w.value(std::string_view(m));
    w.end_array().field("reason", std::string_view(auto_reason)).end_object();
  }
  w.end_object();
  return w.str();
}


}  // namespace plexus::loader

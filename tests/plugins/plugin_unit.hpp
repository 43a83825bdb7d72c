// What the CPU unit tests of the CUDA plugins share: the text of
// plx_plugins_describe and one plugin's section of it, and a host-services
// table whose parameter lookup answers from a map (so read_params runs
// without the loader).
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "plexus/plexus.h"
#include "plexus/plugin.h"

namespace plexus::test {

inline std::string describe_text() {
  size_t needed = 0;
  REQUIRE(plx_plugins_describe(PLX_FORMAT_TEXT, nullptr, 0, &needed) == PLX_OK);
  std::vector<char> text(needed);
  REQUIRE(plx_plugins_describe(PLX_FORMAT_TEXT, text.data(), text.size(), &needed) == PLX_OK);
  return text.data();
}

// The lines describing one plugin, from its name to the next plugin.
inline std::string section_of(const std::string &text, const std::string &name) {
  const size_t start = text.find("  " + name + " ");
  if (start == std::string::npos) return {};
  size_t next = text.find("\n  ", text.find('\n', start) + 1);
  while (next != std::string::npos && text.compare(next + 3, 1, " ") == 0) next = text.find("\n  ", next + 1);
  return text.substr(start, next == std::string::npos ? std::string::npos : next - start);
}

// Parameters as "plugin/NAME" -> value, answered by fake_services.
inline std::map<std::string, std::string> fake_params;

inline const char *fake_param_get(const char *plugin, const char *param) {
  const auto it = fake_params.find(std::string(plugin ? plugin : "") + "/" + param);
  return it == fake_params.end() ? nullptr : it->second.c_str();
}
inline void fake_log(plx_log_level, const char *, const char *) {}
inline int32_t fake_log_enabled(plx_log_level) { return 0; }
inline plx_status fake_set_error(plx_status s, const char *) { return s; }
inline const plx_host_services fake_services = {sizeof(plx_host_services), 0, fake_log, fake_log_enabled,
                                                fake_set_error, fake_param_get};

// Runs read(fake_services, out) with exactly these parameters set.
template <class Read, class Params>
plx_status parse_with(std::map<std::string, std::string> values, Read read, Params *out) {
  fake_params = std::move(values);
  return read(fake_services, out);
}

}  // namespace plexus::test

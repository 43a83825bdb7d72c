#include "loader/spec.hpp"

#include "core/status.hpp"

namespace plexus::loader {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t comma = s.find(',', start);
    parts.push_back(trim(s.substr(start, comma - start)));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

plx_status reject(std::string_view source, std::string_view text, std::string_view why) {
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}='{}': {}. {}", source, text, why,
                    backend_grammar);
}

plx_status parse_entry(std::string_view source, std::string_view text, std::string_view part,
                       SpecEntry *entry) {
  if (part.empty()) return reject(source, text, "an entry is empty");
  if (part.find('^') != std::string_view::npos)
    return reject(source, text, "'^' may only stand first, before the whole list");
  if (part == "auto") return reject(source, text, "'auto' cannot be part of a list");
  if (part.front() == '/') {
    entry->path = std::string(part);
    return PLX_OK;
  }
  if (part.find('/') != std::string_view::npos || part.front() == '.')
    return reject(source, text, fmt::format("'{}' is a relative path; give an absolute path "
                                            "or a plugin name", part));
  if (!is_valid_plugin_name(part))
    return reject(source, text, fmt::format("'{}' is not a plugin name", part));
  entry->name = std::string(part);
  return PLX_OK;
}

}  // namespace

const char *const backend_grammar =
    "The grammar: 'auto' (the default), a comma list of plugin names or absolute paths of "
    "plugin libraries tried in order ('p2p-tree,nccl', '/opt/x/libplexus-x.so'), or '^' "
    "followed by names to exclude from auto ('^nccl,pinned-host'); names are lower case "
    "letters, digits and '-'";

bool is_valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > 31 || name.front() == '-') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

plx_status parse_backend_spec(std::string_view text, std::string_view source, BackendSpec *out) {
  BackendSpec spec;
  const std::string_view body = trim(text);
  if (body.empty() || body == "auto") {
    spec.automatic = true;
  } else if (body.front() == '^') {
    spec.automatic = true;
    for (std::string_view part : split_commas(body.substr(1))) {
      SpecEntry entry;
      if (plx_status s = parse_entry(source, text, part, &entry)) return s;
      if (!entry.path.empty()) return reject(source, text, "'^' excludes names, not paths");
      spec.excluded.push_back(entry.name);
    }
  } else {
    for (std::string_view part : split_commas(body)) {
      SpecEntry entry;
      if (plx_status s = parse_entry(source, text, part, &entry)) return s;
      spec.entries.push_back(std::move(entry));
    }
  }
  *out = std::move(spec);
  return PLX_OK;
}

}  // namespace plexus::loader

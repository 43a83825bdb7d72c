// The PLEXUS_BACKEND grammar (docs/abi.md, PLX-L-1):
//
//   spec     := "" | "auto" | list | "^" names
//   list     := entry ("," entry)*
//   entry    := name | absolute-path
//   name     := [a-z0-9][a-z0-9-]* (at most 31 characters)
//
// "auto" (or an empty spec) lets the loader choose; "^a,b" is auto without a
// and b. Anything else (a relative path, an empty entry, '^' other than
// first, "auto" inside a list) is rejected with the grammar in the message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "plexus/types.h"

namespace plexus::loader {

struct SpecEntry {
  std::string name;  // set for a name
  std::string path;  // set for an absolute path
};

struct BackendSpec {
  bool automatic = false;            // "auto", "", or "^..."
  std::vector<SpecEntry> entries;    // explicit list, in order
  std::vector<std::string> excluded; // names after '^'
};

extern const char *const backend_grammar;

// Parses `text`; on failure sets the last error (naming `source`, e.g.
// "PLEXUS_BACKEND") and returns PLX_ERR_INVALID_ARGUMENT.
plx_status parse_backend_spec(std::string_view text, std::string_view source, BackendSpec *out);

bool is_valid_plugin_name(std::string_view name);

}  // namespace plexus::loader

// The PLEXUS_BACKEND grammar (loader/spec.hpp) on arbitrary text. Promises:
// the parser returns PLX_OK or PLX_ERR_INVALID_ARGUMENT with the grammar in
// the message; what it accepts is well formed (names valid, paths absolute,
// auto and a list never together); and writing an accepted spec back out and
// parsing it again gives the same spec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.hpp"
#include "fuzz_check.hpp"
#include "loader/spec.hpp"

using plexus::loader::BackendSpec;

namespace {

// The spec as a user would write it; entries keep their order.
std::string spec_text(const BackendSpec &spec) {
  if (spec.automatic && spec.excluded.empty()) return "auto";
  std::string text = spec.automatic ? "^" : "";
  const size_t n = spec.automatic ? spec.excluded.size() : spec.entries.size();
  for (size_t i = 0; i < n; ++i) {
    if (i) text += ',';
    text += spec.automatic ? spec.excluded[i]
                           : (spec.entries[i].name.empty() ? spec.entries[i].path : spec.entries[i].name);
  }
  return text;
}

void check_well_formed(const BackendSpec &spec) {
  FUZZ_EXPECT(!spec.automatic || spec.entries.empty(), "auto spec with explicit entries", 0, nullptr);
  FUZZ_EXPECT(spec.automatic || !spec.entries.empty(), "explicit spec with no entry", 0, nullptr);
  for (const auto &e : spec.entries) {
    FUZZ_EXPECT(e.name.empty() != e.path.empty(), "entry is neither name nor path (or both)", 0, nullptr);
    FUZZ_EXPECT(e.path.empty() || e.path.front() == '/', "accepted a relative path", 0, nullptr);
    FUZZ_EXPECT(e.name.empty() || plexus::loader::is_valid_plugin_name(e.name), "accepted a bad name", 0,
                nullptr);
  }
  for (const auto &name : spec.excluded)
    FUZZ_EXPECT(plexus::loader::is_valid_plugin_name(name), "excluded a bad name", 0, nullptr);
}

bool same(const BackendSpec &a, const BackendSpec &b) {
  if (a.automatic != b.automatic || a.excluded != b.excluded || a.entries.size() != b.entries.size())
    return false;
  for (size_t i = 0; i < a.entries.size(); ++i)
    if (a.entries[i].name != b.entries[i].name || a.entries[i].path != b.entries[i].path) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // An environment variable ends at its first NUL; so does the C API's spec.
  std::string_view text(reinterpret_cast<const char *>(data), size);
  text = text.substr(0, text.find('\0'));
  BackendSpec spec;
  const plx_status s = plexus::loader::parse_backend_spec(text, "PLEXUS_BACKEND", &spec);
  const std::string &message = plexus::core::last_message();
  if (s != PLX_OK) {
    FUZZ_EXPECT(s == PLX_ERR_INVALID_ARGUMENT, "rejection is not PLX_ERR_INVALID_ARGUMENT", s, message.c_str());
    FUZZ_EXPECT(message.find(plexus::loader::backend_grammar) != std::string::npos,
                "rejection does not quote the grammar", s, message.c_str());
    return 0;
  }
  check_well_formed(spec);
  BackendSpec again;
  const std::string written = spec_text(spec);
  FUZZ_EXPECT(plexus::loader::parse_backend_spec(written, "PLEXUS_BACKEND", &again) == PLX_OK,
              "a spec written back out is rejected", -1, written.c_str());
  FUZZ_EXPECT(same(spec, again), "a spec written back out parses differently", 0, written.c_str());
  return 0;
}

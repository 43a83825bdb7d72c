// The PLEXUS_TUNE grammar (loader/tune.hpp) on arbitrary text. Promises:
// the parser returns PLX_OK or PLX_ERR_INVALID_ARGUMENT with the grammar in
// the message; what it accepts is well formed (at most 64 items, valid
// backend labels, non-empty ranges); and the accepted table written back
// out parses to the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.hpp"
#include "fuzz_check.hpp"
#include "loader/tune.hpp"

using namespace plexus::loader;

namespace {

bool valid_label(const std::string &label) {
  std::string name;
  int32_t instance = 0;
  return parse_backend_label(label, &name, &instance);
}

void check_well_formed(const TuneSpec &spec) {
  FUZZ_EXPECT(spec.added.size() + spec.rules.size() <= tune_max_items, "more items than allowed", 0, nullptr);
  for (const std::string &label : spec.added) FUZZ_EXPECT(valid_label(label), "added a bad label", 0, label.c_str());
  for (const TuneRule &r : spec.rules) {
    FUZZ_EXPECT(valid_label(r.backend), "a rule names a bad label", 0, r.backend.c_str());
    FUZZ_EXPECT(r.lo < r.hi, "accepted an empty range", 0, r.backend.c_str());
    FUZZ_EXPECT(r.op >= route_op_any && r.op <= route_op_p2p, "accepted an unknown op", r.op, nullptr);
    FUZZ_EXPECT(r.matches(r.op == route_op_any ? 0 : r.op, r.kind == MemClass::any ? MemClass::host : r.kind, r.lo),
                "a rule does not match its own lower bound", 0, r.backend.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // An environment variable ends at its first NUL.
  std::string_view text(reinterpret_cast<const char *>(data), size);
  text = text.substr(0, text.find('\0'));
  TuneSpec spec;
  const plx_status s = parse_tune(text, "PLEXUS_TUNE", &spec);
  const std::string &message = plexus::core::last_message();
  if (s != PLX_OK) {
    FUZZ_EXPECT(s == PLX_ERR_INVALID_ARGUMENT, "rejection is not PLX_ERR_INVALID_ARGUMENT", s, message.c_str());
    FUZZ_EXPECT(message.find(tune_grammar) != std::string::npos, "rejection does not quote the grammar", s,
                message.c_str());
    return 0;
  }
  check_well_formed(spec);
  const std::string written = tune_text(spec);
  TuneSpec again;
  FUZZ_EXPECT(parse_tune(written, "PLEXUS_TUNE", &again) == PLX_OK, "a table written back out is rejected", -1,
              written.c_str());
  FUZZ_EXPECT(tune_text(again) == written, "a table written back out parses differently", 0, written.c_str());
  return 0;
}

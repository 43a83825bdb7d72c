#include "options.hpp"

#include "memory_kinds.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace plexus::conformance {
namespace {

bool parse_int(std::string_view text, int32_t low, int32_t high, int32_t *out) {
  int32_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < low || v > high) return false;
  *out = v;
  return true;
}

// "a,b" -> {"a", "b"}
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    if (comma > at) out.emplace_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// Applies one option that takes a value; false when the value is bad.
bool apply(std::string_view name, std::string_view value, Options *o) {
  if (name == "--backend") return o->backend = value, !value.empty();
  if (name == "--ranks") return parse_int(value, 1, 256, &o->nranks);
  if (name == "--json") return o->json_path = value, !value.empty();
  if (name == "--only") return o->only = split_list(value), !o->only.empty();
  if (name == "--timeout-ms") return parse_int(value, 100, 600000, &o->timeout_ms);
  if (name == "--deadline-s") return parse_int(value, 10, 86400, &o->deadline_s);
  if (name == "--mem") return o->mem_given = true, parse_mem_kinds(value, &o->mem_mask);
  return false;
}

}  // namespace

const char *usage_text() {
  return "usage: plexus-conformance --backend NAME|/abs/path.so --ranks N [--json FILE]\n"
         "                          [--full] [--only SESSION,...] [--timeout-ms MS] [--deadline-s S]\n"
         "                          [--mem KIND,...]\n"
         "Runs a plexus backend through the plugin contract (docs/abi.md) with N rank\n"
         "processes it starts itself. Sessions: data, init, timeout, kill-before,\n"
         "kill-during, abort, abort-thread, leaks, threads; and where the backend declares\n"
         "the capability graph, topology, memory (pools), queues, groups, registration.\n"
         "--mem limits the memory kinds (host, shared_host, pinned_host, device) to test;\n"
         "by default every kind the backend accepts. Pinned-host and device memory need\n"
         "one GPU per rank (rank r uses GPU r % visible GPUs). Prints one line per case\n"
         "group and 'N passed, M failed'; exits 1 when any group failed, 2 on a usage\n"
         "error, 77 when the backend declines this machine (PLX_ERR_UNSUPPORTED at open,\n"
         "e.g. no CUDA device).\n";
}

const std::vector<std::string> &session_names() {
  static const std::vector<std::string> names = {
      "data",    "init",     "timeout", "kill-before", "kill-during", "abort", "abort-thread",
      "leaks",   "threads",  "graph",   "topology",    "memory",      "queues", "groups", "registration"};
  return names;
}

bool parse_options(int argc, char **argv, Options *out, std::string *error) {
  for (int k = 1; k < argc; ++k) {
    std::string_view arg = argv[k], value;
    if (arg == "--full") {
      out->full = true;
      continue;
    }
    if (const size_t eq = arg.find('='); eq != std::string_view::npos)
      value = arg.substr(eq + 1), arg = arg.substr(0, eq);
    else if (k + 1 < argc)
      value = argv[++k];
    if (!apply(arg, value, out)) return *error = "bad or unknown option " + std::string(arg), false;
  }
  if (out->backend.empty() || out->nranks == 0) return *error = "--backend and --ranks are required", false;
  for (const std::string &s : out->only)
    if (std::find(session_names().begin(), session_names().end(), s) == session_names().end())
      return *error = "--only: no session is called " + s, false;
  return true;
}

}  // namespace plexus::conformance

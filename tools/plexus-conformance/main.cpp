// plexus-conformance: runs a backend through the plugin contract of
// docs/abi.md with N rank processes it starts itself, and cites the
// requirement (PLX-P-n, PLX-L-n) of every failure. The same program is the
// launcher (run by a user) and each rank (run by the launcher, which sets
// PLXCONF_SESSION); see launcher.hpp and sessions.hpp.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "dtypes.hpp"
#include "elf_exports.hpp"
#include "launcher.hpp"
#include "rank.hpp"
#include "results.hpp"

using namespace plexus::conformance;

namespace {

// Why a session does not run on this backend with this many ranks, or "".
std::string skip_reason(const std::string &name, const Options &o, const plx_backend_props &p) {
  if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), name) == o.only.end())
    return "not asked for";
  const bool needs_peers = name != "data" && name != "leaks" && name != "threads";
  if (needs_peers && o.nranks < 2) return "needs 2 ranks or more";
  if (name.rfind("abort", 0) == 0 && !(p.capabilities & PLX_CAP_ABORT))
    return "PLX_CAP_ABORT is not declared (abort is local only)";
  if (name == "threads" && p.threading == PLX_THREAD_SINGLE) return "the backend is PLX_THREAD_SINGLE";
  return {};
}

// The sessions this backend and rank count call for, each with the quiet
// limit after which its ranks count as hung: the longest wait one of its
// cases makes for the backend, plus kMarginMs and a little.
std::vector<SessionSpec> plan_sessions(const Options &o, const plx_backend_props &p, Results *results) {
  const int32_t kill_quiet = 5000 + kMarginMs + 2000;
  const std::vector<SessionSpec> all = {{"data", 120000},
                                        {"init", 1000 + kMarginMs + 5000},
                                        {"timeout", o.timeout_ms + kMarginMs + 2000},
                                        {"kill-before", kill_quiet},
                                        {"kill-during", kill_quiet},
                                        {"abort", 10000},
                                        {"abort-thread", 10000},
                                        {"leaks", 60000},
                                        {"threads", 60000}};
  std::vector<SessionSpec> chosen;
  for (const SessionSpec &s : all) {
    const std::string why = skip_reason(s.name, o, p);
    if (why.empty())
      chosen.push_back(s);
    else if (why != "not asked for")
      results->note("session " + s.name + " skipped: " + why);
  }
  return chosen;
}

std::string tolerance_json() {
  std::string out;
  for (const plx_dtype d : {PLX_FLOAT16, PLX_BFLOAT16, PLX_FLOAT32, PLX_FLOAT64})
    out += fmt::format("{}\"{}\":{{\"u\":{:.6g},\"u_accumulator\":{:.6g}}}", out.empty() ? "" : ",",
                       plx_dtype_string(d), unit_roundoff(d), accumulator_roundoff(d));
  return "{\"rule\":\"|got - want| <= 2 u |want| + 2 nranks u_accumulator magnitude + smallest normal; "
         "magnitude = sum |x| (SUM), sum |x| / nranks (AVG), |want| (PROD); MIN, MAX and integers exact\","
         "\"dtypes\":{" +
         out + "}}";
}

std::string header_json(const Options &o, const plx_backend_props &p, const std::string &timings) {
  return fmt::format(
      "\"tool\":\"plexus-conformance\",\"plexus\":{},\"backend\":{{\"spec\":{},\"name\":{},\"path\":{},"
      "\"version\":\"{}.{}.{}\",\"threading\":{},\"capabilities\":{},\"mem_kind_mask\":{},\"alloc_kind_"
      "mask\":{},"
      "\"dtype_mask\":{},\"reduce_op_mask\":{}}},\"nranks\":{},\"full\":{},\"timeout_ms\":{},\"margin_ms\":{}"
      ","
      "\"tolerances\":{},\"sessions\":{{{}}}",
      json_quote(plx_version_string()), json_quote(o.backend), json_quote(p.name ? p.name : ""),
      json_quote(p.path ? p.path : ""), p.version_major, p.version_minor, p.version_patch, p.threading,
      p.capabilities, p.mem_kind_mask, p.alloc_kind_mask, p.dtype_mask, p.reduce_op_mask, o.nranks, o.full,
      o.timeout_ms, kMarginMs, tolerance_json(), timings);
}

// PLX-P-1: the library exports plx_plugin_query and nothing else.
void check_exports(const plx_backend_props &props, Results *results) {
  const auto names = elf_exports(props.path ? props.path : "");
  std::string others;
  for (const std::string &n : names.value_or(std::vector<std::string>{}))
    if (n != "plx_plugin_query") others += " " + n;
  const bool query = names && std::find(names->begin(), names->end(), "plx_plugin_query") != names->end();
  const bool ok = query && others.empty();
  results->add("PLX-P-1", "exports", "only plx_plugin_query", ok ? Verdict::pass : Verdict::fail,
               !names   ? "cannot read the ELF symbols of the library"
               : !query ? "plx_plugin_query is not exported"
                        : "also exported:" + others.substr(0, 300));
}

int launcher_main(const Options &opts, std::vector<std::string> argv) {
  Results results;
  plx_backend_h backend = nullptr;
  if (plx_status s = plx_backend_open(opts.backend.c_str(), &backend)) {
    fmt::print("FAIL  backend open  [PLX-L-3] {}: {}\n0 passed, 1 failed\n", plx_status_string(s),
               plx_last_error());
    return 1;
  }
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  plx_backend_props_get(backend, &props);
  fmt::print(stderr, "plexus-conformance: {} {}.{}.{} ({}) with {} ranks\n", props.name, props.version_major,
             props.version_minor, props.version_patch, props.path, opts.nranks);
  check_exports(props, &results);
  Launcher launcher(opts, backend, std::move(argv), &results);
  std::string timings;
  for (const SessionSpec &s : plan_sessions(opts, props, &results)) {
    const double seconds = launcher.run(s);
    fmt::print(stderr, "plexus-conformance: session {} took {:.1f} s\n", s.name, seconds);
    timings += fmt::format("{}\"{}\":{:.2f}", timings.empty() ? "" : ",", s.name, seconds);
  }
  const int failed = results.print(stdout);
  if (!opts.json_path.empty() && !results.write_json(opts.json_path, header_json(opts, props, timings)))
    fmt::print(stderr, "plexus-conformance: cannot write {}\n", opts.json_path);
  plx_backend_close(backend);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
  Options opts;
  std::string error;
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h"))
    return fmt::print("{}", usage_text()), 0;
  if (!parse_options(argc, argv, &opts, &error)) {
    fmt::print(stderr, "plexus-conformance: {}\n{}", error, usage_text());
    return 2;
  }
  if (std::getenv("PLXCONF_SESSION") != nullptr) {
    const std::optional<RankEnv> env = read_rank_env();
    if (!env) return fmt::print(stderr, "plexus-conformance: bad PLXCONF_* environment\n"), 3;
    return rank_main(opts, *env);
  }
  return launcher_main(opts, std::vector<std::string>(argv, argv + argc));
}

// plexus-conformance: runs a backend through the plugin contract of
// docs/abi.md with N rank processes it starts itself, and cites the
// requirement (PLX-P-n, PLX-L-n) of every failure. The same program is the
// launcher (run by a user) and each rank (run by the launcher, which sets
// PLXCONF_SESSION); see launcher.hpp and sessions.hpp.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "device.hpp"
#include "dtypes.hpp"
#include "elf_exports.hpp"
#include "launcher.hpp"
#include "memory_kinds.hpp"
#include "rank.hpp"
#include "results.hpp"
#include "sessions.hpp"

using namespace plexus::conformance;

namespace {

// meson's exit status for a skipped test.
constexpr int kExitSkip = 77;

bool plans_device_memory(const MemoryPlan &m) {
  return std::any_of(m.data.begin(), m.data.end(),
                     [](const MemSource &s) { return s.kind == PLX_MEM_DEVICE && !s.pool; });
}

// The capability a session tests, or 0 for sessions every backend runs.
uint64_t session_capability(const std::string &name) {
  if (name == "graph") return PLX_CAP_GRAPH_CAPTURE;
  if (name == "topology") return PLX_CAP_TOPOLOGY;
  if (name == "memory") return PLX_CAP_MEM_ALLOC;
  if (name == "queues") return PLX_CAP_QUEUE;
  if (name == "groups") return PLX_CAP_GROUP;
  if (name == "registration") return PLX_CAP_MEM_REGISTER;
  return 0;
}

// skip_reason() of a session whose capability the backend does not declare.
constexpr const char *kNotDeclared = "capability not declared";

bool is_one_of(const std::string &name, std::initializer_list<const char *> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Why a session's capability is declared but the memory it needs is not tested, or "".
std::string missing_memory(const std::string &name, const MemoryPlan &m) {
  MemSource registered;
  if (name == "graph" && !plans_device_memory(m))
    return "PLX_CAP_GRAPH_CAPTURE is declared but no device memory is tested (--mem, or built without CUDA)";
  if (name == "registration" && !registration_memory(m, &registered))
    return "PLX_CAP_MEM_REGISTER is declared but no memory kind the kit allocates itself is tested (--mem)";
  return {};
}

// Why a session does not run on this backend with this many ranks, or "".
std::string skip_reason(const std::string &name, const Options &o, const plx_backend_props &p,
                        const MemoryPlan &m) {
  if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), name) == o.only.end())
    return "not asked for";
  if ((p.capabilities & session_capability(name)) != session_capability(name)) return kNotDeclared;
  if (std::string why = missing_memory(name, m); !why.empty()) return why;
  const bool needs_peers = !is_one_of(name, {"data", "leaks", "threads", "topology", "memory", "registration"});
  if (needs_peers && o.nranks < 2) return "needs 2 ranks or more";
  const bool needs_work =
      !is_one_of(name, {"data", "init", "graph", "topology", "memory", "queues", "registration"});
  if (needs_work && m.work < 0) return "no memory kind the kit can allocate is tested";
  if (name.rfind("abort", 0) == 0 && !(p.capabilities & PLX_CAP_ABORT))
    return "PLX_CAP_ABORT is not declared (abort is local only)";
  if (name == "threads" && p.threading == PLX_THREAD_SINGLE) return "the backend is PLX_THREAD_SINGLE";
  return {};
}

// The sessions this backend and rank count call for, each with the quiet
// limit after which its ranks count as hung: the longest wait one of its
// cases makes for the backend, plus kMarginMs and a little.
std::vector<SessionSpec> plan_sessions(const Options &o, const plx_backend_props &p, const MemoryPlan &m,
                                       Results *results) {
  const int32_t kill_quiet = 5000 + kMarginMs + 2000;
  const std::vector<SessionSpec> all = {{"data", 120000},
                                        {"init", 1000 + kMarginMs + 5000},
                                        {"timeout", o.timeout_ms + kMarginMs + 2000},
                                        {"kill-before", kill_quiet},
                                        {"kill-during", kill_quiet},
                                        {"abort", 10000},
                                        {"abort-thread", 10000},
                                        {"leaks", 60000},
                                        {"threads", 60000},
                                        {"topology", 30000},
                                        {"memory", 60000},
                                        {"queues", 30000},
                                        {"groups", 60000},
                                        {"registration", 120000},
                                        {"graph", 120000}};
  std::vector<SessionSpec> chosen;
  std::string undeclared;  // one note for them all, as for undeclared collectives
  for (const SessionSpec &s : all) {
    const std::string why = skip_reason(s.name, o, p, m);
    if (why.empty())
      chosen.push_back(s);
    else if (why == kNotDeclared)
      undeclared += " " + s.name;
    else if (why != "not asked for")
      results->note("session " + s.name + " skipped: " + why);
  }
  if (!undeclared.empty()) results->note("capability not declared, session not run:" + undeclared);
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

// The memory the run tested: every data source, and the other sessions' kind.
std::string memory_json(const MemoryPlan &m) {
  std::string sources;
  for (const MemSource &s : m.data) sources += (sources.empty() ? "" : ",") + json_quote(mem_source_name(s));
  return fmt::format("{{\"data\":[{}],\"sessions\":{}}}", sources,
                     m.work < 0 ? "null" : json_quote(mem_kind_name(m.work)));
}

std::string header_json(const Options &o, const plx_backend_props &p, const MemoryPlan &m,
                        const std::string &timings) {
  return fmt::format(
      "\"tool\":\"plexus-conformance\",\"plexus\":{},\"backend\":{{\"spec\":{},\"name\":{},\"path\":{},"
      "\"version\":\"{}.{}.{}\",\"threading\":{},\"capabilities\":{},\"mem_kind_mask\":{},\"alloc_kind_"
      "mask\":{},"
      "\"dtype_mask\":{},\"reduce_op_mask\":{}}},\"nranks\":{},\"full\":{},\"timeout_ms\":{},\"margin_ms\":{}"
      ","
      "\"tolerances\":{},\"memory\":{},\"sessions\":{{{}}}",
      json_quote(plx_version_string()), json_quote(o.backend), json_quote(p.name ? p.name : ""),
      json_quote(p.path ? p.path : ""), p.version_major, p.version_minor, p.version_patch, p.threading,
      p.capabilities, p.mem_kind_mask, p.alloc_kind_mask, p.dtype_mask, p.reduce_op_mask, o.nranks, o.full,
      o.timeout_ms, kMarginMs, tolerance_json(), memory_json(m), timings);
}

// PLX-P-1: the library exports plx_plugin_query and nothing else. auto over
// several backends is no library: its path lists its members' libraries,
// separated by ':', and each is checked.
std::string export_problem(const std::string &path) {
  const auto names = elf_exports(path);
  std::string others;
  for (const std::string &n : names.value_or(std::vector<std::string>{}))
    if (n != "plx_plugin_query") others += " " + n;
  const bool query = names && std::find(names->begin(), names->end(), "plx_plugin_query") != names->end();
  if (!names) return "cannot read the ELF symbols of " + path;
  if (!query) return "plx_plugin_query is not exported by " + path;
  return others.empty() ? "" : path + " also exports:" + others.substr(0, 300);
}

void check_exports(const plx_backend_props &props, Results *results) {
  const std::string paths = props.path ? props.path : "";
  std::string problem;
  for (size_t start = 0; problem.empty() && start <= paths.size();) {
    const size_t end = std::min(paths.find(':', start), paths.size());
    problem = export_problem(paths.substr(start, end - start));
    start = end + 1;
  }
  results->add("PLX-P-1", "exports", "only plx_plugin_query", problem.empty() ? Verdict::pass : Verdict::fail, problem);
}

// The reason a backend gave when it declined this machine at init
// (PLX-P-6), from the load report; "" when the open failed otherwise.
std::string decline_reason() {
  size_t needed = 0;
  plx_load_report(nullptr, PLX_FORMAT_TEXT, nullptr, 0, &needed);
  std::string text(needed, '\0');
  if (needed == 0 || plx_load_report(nullptr, PLX_FORMAT_TEXT, text.data(), needed, &needed) != PLX_OK) return {};
  const std::string marker = ": rejected at init (PLX_ERR_UNSUPPORTED): ";
  const size_t at = text.find(marker);
  if (at == std::string::npos) return {};
  const size_t from = at + marker.size();
  return text.substr(from, text.find('\n', from) - from);
}

// A backend that declines this machine (no CUDA device) is a skip, not a
// failure: one line saying why, the totals, exit 77.
int report_open_failure(const Options &opts, plx_status s) {
  const std::string message = plx_last_error();
  const std::string declined = s == PLX_ERR_UNSUPPORTED ? decline_reason() : std::string();
  Results results;
  if (declined.empty())
    results.add("PLX-L-3", "backend open", opts.backend, Verdict::fail,
                fmt::format("{}: {}", plx_status_string(s), message));
  else
    fmt::print("skipped: {}\n", declined);
  results.print(stdout);
  const std::string header = fmt::format("\"tool\":\"plexus-conformance\",\"backend\":{{\"spec\":{}}},\"nranks\":{},"
                                         "\"skipped\":{}",
                                         json_quote(opts.backend), opts.nranks,
                                         declined.empty() ? "null" : json_quote(declined));
  if (!opts.json_path.empty() && !results.write_json(opts.json_path, header))
    fmt::print(stderr, "plexus-conformance: cannot write {}\n", opts.json_path);
  return declined.empty() ? 1 : kExitSkip;
}

// Pinned-host and device memory need a GPU per rank: rank r takes GPU
// r % count, and two ranks on one GPU is not what a backend must support.
// "" or the error that stops the run before anything starts.
std::string check_gpus(const Options &opts, const MemoryPlan &m) {
  if (!m.cuda) return {};
  std::string why;
  const int gpus = device::gpu_count(&why);
  const std::string kinds = m.work == PLX_MEM_PINNED_HOST ? "pinned-host" : "device";
  if (gpus == 0)
    return fmt::format("the backend's {} memory needs a CUDA device: {}; use --mem to test other kinds", kinds,
                       why);
  if (opts.nranks > gpus)
    return fmt::format("{} ranks but {} visible GPU{}: {} memory needs one GPU per rank; use --ranks {} "
                       "or fewer, or --mem to test host kinds only",
                       opts.nranks, gpus, gpus == 1 ? "" : "s", kinds, gpus);
  return {};
}

int launcher_main(const Options &opts, std::vector<std::string> argv) {
  plx_backend_h backend = nullptr;
  if (plx_status s = plx_backend_open(opts.backend.c_str(), &backend)) return report_open_failure(opts, s);
  Results results;
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  plx_backend_props_get(backend, &props);
  const MemoryPlan memory = plan_memory(props, opts.mem_mask, opts.mem_given);
  if (const std::string error = check_gpus(opts, memory); !error.empty()) {
    fmt::print(stderr, "plexus-conformance: {}\n", error);
    plx_backend_close(backend);
    return 2;
  }
  fmt::print(stderr, "plexus-conformance: {} {}.{}.{} ({}) with {} ranks\n", props.name, props.version_major,
             props.version_minor, props.version_patch, props.path, opts.nranks);
  for (const std::string &note : memory.notes) results.note(note);
  check_exports(props, &results);
  Launcher launcher(opts, backend, std::move(argv), &results);
  std::string timings;
  for (const SessionSpec &s : plan_sessions(opts, props, memory, &results)) {
    const double seconds = launcher.run(s);
    fmt::print(stderr, "plexus-conformance: session {} took {:.1f} s\n", s.name, seconds);
    timings += fmt::format("{}\"{}\":{:.2f}", timings.empty() ? "" : ",", s.name, seconds);
  }
  const int failed = results.print(stdout);
  if (!opts.json_path.empty() &&
      !results.write_json(opts.json_path, header_json(opts, props, memory, timings)))
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

// plx_backend_open: from a spec to a chosen, initialised plugin, recording
// every candidate in the load report (PLX-L-1 .. PLX-L-7).
#include <algorithm>
#include <map>
#include <memory>

#include "core/log.hpp"
#include "loader/errors.hpp"
#include "loader/objects.hpp"
#include "loader/open.hpp"
#include "loader/services.hpp"
#include "loader/spec.hpp"

namespace plexus::loader {
namespace {

thread_local std::shared_ptr<const LoadReport> thread_last_report;

std::string version_key(const Candidate &c) {
  int a = 0, b = 0, p = 0;
  std::sscanf(c.version.c_str(), "%d.%d.%d", &a, &b, &p);
  return fmt::format("{:08d}.{:08d}.{:08d}", a, b, p);
}

// Several libraries of one name: load each, keep the highest version (the
// first in search order on a tie), report the others as duplicates.
Candidate pick_among_duplicates(const std::vector<FoundPlugin> &same, LoadReport *report) {
  std::vector<Candidate> loaded(same.size());
  size_t best = same.size();
  for (size_t i = 0; i < same.size(); ++i) {
    const PluginLib *lib = nullptr;
    loaded[i].name = same[i].name;
    if (load_plugin(same[i].path, same[i].name, &loaded[i], &lib) != PLX_OK) continue;
    if (best == same.size() || version_key(loaded[i]) > version_key(loaded[best])) best = i;
  }
  for (size_t i = 0; i < same.size(); ++i) {
    if (i == best || loaded[i].status != PLX_OK) {
      if (i != best) report->candidates.push_back(loaded[i]);
      continue;
    }
    loaded[i].stage = "search";
    loaded[i].status = PLX_ERR_INVALID_USAGE;
    loaded[i].reason = fmt::format("duplicate name '{}': {} (v{}) is preferred, being the higher "
                                   "version or first in the search path", same[i].name,
                                   same[best].path, loaded[best].version);
    report->candidates.push_back(loaded[i]);
  }
  return best == same.size() ? Candidate{} : loaded[best];
}

}  // namespace

std::vector<FoundPlugin> named(const std::vector<FoundPlugin> &found, const std::string &name) {
  std::vector<FoundPlugin> out;
  for (const FoundPlugin &f : found)
    if (f.name == name) out.push_back(f);
  return out;
}

namespace {

std::string available_names(const std::vector<FoundPlugin> &found) {
  std::vector<std::string> names;
  for (const FoundPlugin &f : found)
    if (std::find(names.begin(), names.end(), f.name) == names.end()) names.push_back(f.name);
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

void plan_name(const std::string &name, const std::vector<FoundPlugin> &found, LoadReport *r,
               Plan *plan) {
  const std::vector<FoundPlugin> same = named(found, name);
  if (same.empty()) {
    Candidate c;
    c.name = name, c.stage = "search", c.status = PLX_ERR_NOT_FOUND;
    c.reason = fmt::format("no libplexus-{}.so in the search path", name);
    plan->tries.push_back(c);
    return;
  }
  Candidate best = same.size() == 1 ? make_candidate(same[0].name, same[0].path)
                                    : pick_among_duplicates(same, r);
  if (!best.path.empty()) plan->tries.push_back(best);
}

namespace {

Plan plan_explicit(const BackendSpec &spec, const std::vector<FoundPlugin> &found, LoadReport *r) {
  Plan plan;
  for (const SpecEntry &e : spec.entries) {
    if (!e.path.empty()) plan.tries.push_back(make_candidate(plugin_name_from_path(e.path), e.path));
    else plan_name(e.name, found, r, &plan);
  }
  return plan;
}

}  // namespace

// Loads and initialises one candidate; fills *backend on success.
plx_status try_candidate(Candidate *c, plx_backend **backend) {
  if (c->status != PLX_OK) return c->status;
  const PluginLib *lib = nullptr;
  const std::string file_name = plugin_name_from_path(c->path);
  if (plx_status s = load_plugin(c->path, file_name, c, &lib)) return s;
  void *state = nullptr;
  set_last_error(PLX_OK, "");
  if (plx_status s = (CallGuard(lib), lib->vtable->init(host_info(), &state))) {
    c->stage = "init", c->status = s;
    c->reason = *plx_last_error() ? plx_last_error() : "init failed without a message";
    return s;
  }
  c->stage = "ok", c->chosen = true;
  auto b = std::make_unique<plx_backend>();
  b->lib = lib;
  b->state = state;
  *backend = b.release();
  return PLX_OK;
}

namespace {

plx_status failure_status(const BackendSpec &spec, const std::vector<Candidate> &tried) {
  if (tried.empty()) return PLX_ERR_NOT_FOUND;
  if (!spec.automatic) return tried.front().status;
  for (const Candidate &c : tried)
    if (c.status != PLX_ERR_UNSUPPORTED) return c.status;
  return PLX_ERR_UNSUPPORTED;
}

}  // namespace

plx_status fail_open(const BackendSpec &spec, const std::vector<Candidate> &tried,
                     const std::vector<FoundPlugin> &found, LoadReport *r) {
  std::string why;
  for (const Candidate &c : tried) why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", c.name, c.reason);
  if (tried.empty()) why = "no plugin was found that auto may choose";
  r->status = failure_status(spec, tried);
  r->decision = fmt::format("no backend opened from {}='{}': {}; searched: {}; plugins available: {}",
                            r->spec_source, r->spec, why,
                            r->search_dirs.empty() ? "(nothing)" : fmt::format("{}", fmt::join(r->search_dirs, ":")),
                            available_names(found));
  // An explicit request that fails is worth a warning; auto finding nothing
  // on a machine is an answer the caller gets anyway.
  core::log(spec.automatic ? PLX_LOG_INFO : PLX_LOG_WARN, "{}", r->text());
  return core::fail(r->status, "plx_backend_open: {}", r->decision);
}

namespace {

void spec_text(const char *arg, LoadReport *r) {
  const char *env = secure_env("PLEXUS_BACKEND");
  r->spec = arg ? arg : (env ? env : "auto");
  r->spec_source = arg ? "the spec argument" : (env ? "PLEXUS_BACKEND" : "the default");
}

}  // namespace

plx_status open_backend(const char *spec_arg, plx_backend **out) {
  auto report = std::make_shared<LoadReport>();
  thread_last_report = report;
  spec_text(spec_arg, report.get());
  BackendSpec spec;
  if (plx_status s = parse_backend_spec(report->spec, report->spec_source, &spec)) {
    report->status = s, report->decision = plx_last_error();
    return core::fail(s, "plx_backend_open: {}", report->decision);
  }
  report->search_dirs = plugin_search_dirs();
  const std::vector<FoundPlugin> found = find_plugins(report->search_dirs);
  if (spec.automatic) return open_auto(spec, found, report.get(), out);
  Plan plan = plan_explicit(spec, found, report.get());
  std::vector<Candidate> tried;
  for (Candidate &c : plan.tries) {
    plx_backend *b = nullptr;
    const plx_status s = try_candidate(&c, &b);
    report->candidates.push_back(c);
    if (s == PLX_OK) {
      report->decision = fmt::format("chose {} {} from {} ({}='{}')", c.name, c.version, c.path,
                                     report->spec_source, report->spec);
      b->report = *report;
      core::log_info("{}", report->decision);
      *out = b;
      return PLX_OK;
    }
    core::log_warn("backend '{}' could not be opened: {}", c.name, c.reason);
    tried.push_back(c);
    // Only a decline moves on; a plugin that loaded and failed its init is the answer.
    if (c.stage == "init" && s != PLX_ERR_UNSUPPORTED) break;
  }
  return fail_open(spec, tried, found, report.get());
}

std::shared_ptr<const LoadReport> last_thread_report() { return thread_last_report; }

}  // namespace plexus::loader

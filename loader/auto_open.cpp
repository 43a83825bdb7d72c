// plx_backend_open for auto (PLX-L-11, docs/auto.md): initialise every
// shipped plugin the spec does not exclude, read the GPU topology from one
// that accepted the machine, let choose_backends decide, add what
// PLEXUS_TUNE names, and hand out one backend, or auto's composite when
// several are chosen. The load report says what each plugin answered and
// why the choice fell as it did.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "core/log.hpp"
#include "core/status.hpp"
#include "loader/auto_select.hpp"
#include "loader/composite.hpp"
#include "loader/open.hpp"
#include "loader/services.hpp"

namespace plexus::loader {
namespace {

struct Probed {
  std::string name;
  plx_backend *backend = nullptr;  // initialised, or nullptr
  std::string note;                // why not, when not
  size_t candidate = SIZE_MAX;     // its entry in the report
  plx_status status = PLX_ERR_NOT_FOUND;
};

struct AutoOpen {
  const BackendSpec &spec;
  const std::vector<FoundPlugin> &found;
  LoadReport *report;
  std::vector<Probed> probes;
  std::vector<Candidate> tried;  // rejected ones, for the failure's message
  TuneSpec tune;
};

bool excluded(const BackendSpec &spec, const std::string &name) {
  return std::find(spec.excluded.begin(), spec.excluded.end(), name) != spec.excluded.end();
}

void close_backend(plx_backend *b) {
  if (b == nullptr) return;
  (void)PLX_CALL_SLOT("plx_backend_open", b, finalize, b->state);
  delete b;
}

// Initialises one shipped plugin, recording it in the report.
Probed probe_one(AutoOpen *a, const std::string &name) {
  Probed p;
  p.name = name;
  Plan plan;
  plan_name(name, a->found, a->report, &plan);
  Candidate c = plan.tries.empty() ? make_candidate(name, "") : plan.tries.front();
  const plx_status s = plan.tries.empty() ? PLX_ERR_NOT_FOUND : try_candidate(&c, &p.backend);
  p.status = s;
  if (s == PLX_OK) {
    c.chosen = false, c.stage = "init", c.reason = "initialised";
  } else {
    p.note = fmt::format("{} at {}: {}", c.status == PLX_ERR_UNSUPPORTED ? "declined" : core::status_name(c.status),
                         c.stage, c.reason);
    a->tried.push_back(c);
  }
  p.candidate = a->report->candidates.size();
  a->report->candidates.push_back(c);
  return p;
}

void probe_all(AutoOpen *a) {
  for (const std::string &n : a->spec.excluded)
    if (named(a->found, n).empty()) core::log_warn("PLEXUS_BACKEND excludes '{}', which no plugin found is called", n);
  for (const char *name : auto_plugins) {
    if (named(a->found, name).empty()) {
      a->probes.push_back(Probed{name, nullptr, "not installed", SIZE_MAX, PLX_ERR_NOT_FOUND});
    } else if (excluded(a->spec, name)) {
      Candidate c = make_candidate(name, named(a->found, name).front().path);
      c.stage = "search", c.status = PLX_ERR_UNSUPPORTED, c.reason = "excluded by '^' in the spec";
      a->report->candidates.push_back(c);
      a->probes.push_back(Probed{name, nullptr, "excluded by '^' in the spec", SIZE_MAX, PLX_ERR_UNSUPPORTED});
    } else {
      a->probes.push_back(probe_one(a, name));
    }
  }
}

// The GPUs as the first GPU plugin that accepted the machine sees them.
AutoTopology topology_of(const AutoOpen &a) {
  std::string declined;
  for (const Probed &p : a.probes) {
    const plx_backend *b = p.backend;
    if (b == nullptr || !(b->lib->info->mem_kind_mask & PLX_BIT(PLX_MEM_DEVICE))) {
      if (declined.empty() && p.note.rfind("declined", 0) == 0) declined = p.name + " " + p.note;
      continue;
    }
    plx_topology_info info{};
    info.struct_size = sizeof(info);
    size_t needed = 0;
    if (!PLX_VTABLE_HAS(b->lib->vtable, topology) ||
        (CallGuard(b->lib), b->lib->vtable->topology(b->state, &info, nullptr, 0, &needed)) != PLX_OK)
      continue;
    return AutoTopology{info.gpu_count, info.p2p_all_pairs, info.nvlink_all_pairs, p.name + "'s topology"};
  }
  return AutoTopology{0, -1, -1, declined.empty() ? "no GPU backend is installed" : declined};
}

AutoInputs inputs_of(const AutoOpen &a) {
  AutoInputs in;
  in.topology = topology_of(a);
  in.hosts = hosts_from_environment([](const char *name) { return std::getenv(name); });
  for (const Probed &p : a.probes) in.plugins.push_back(AutoPlugin{p.name, p.backend != nullptr, p.note});
  return in;
}

// The chosen members, then what PLEXUS_TUNE names, each once.
std::vector<std::string> labels_of(const AutoChoice &choice, const TuneSpec &tune) {
  std::vector<std::string> labels = choice.members;
  auto add = [&labels](const std::string &l) {
    if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
  };
  for (const std::string &l : tune.added) add(l);
  for (const TuneRule &r : tune.rules) add(r.backend);
  return labels;
}

Probed *probe_of(AutoOpen *a, const std::string &name) {
  for (Probed &p : a->probes)
    if (p.name == name) return &p;
  return nullptr;
}

// A backend for a label no probe serves: another instance of a plugin
// ("shm-native#1"), or a plugin auto does not choose by itself. Named in
// PLEXUS_TUNE, so strict: one that cannot be opened fails the open.
plx_status open_instance(AutoOpen *a, const std::string &label, const std::string &name, plx_backend **out) {
  Plan plan;
  plan_name(name, a->found, a->report, &plan);
  Candidate c = plan.tries.empty() ? make_candidate(name, "") : plan.tries.front();
  if (plan.tries.empty()) c.stage = "search", c.status = PLX_ERR_NOT_FOUND, c.reason = "no usable library";
  const plx_status s = try_candidate(&c, out);
  a->report->candidates.push_back(c);
  if (s == PLX_OK) return PLX_OK;
  return core::fail(s, "plx_backend_open: PLEXUS_TUNE names {}, which could not be opened: {}", label, c.reason);
}

// The probe's backend for `label`, or a new one; unwrapped into a Member.
plx_status member_of(AutoOpen *a, const std::string &label, Member *m) {
  std::string name;
  int32_t instance = 0;
  (void)parse_backend_label(label, &name, &instance);  // checked by parse_tune or chosen by auto
  if (excluded(a->spec, name))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_backend_open: PLEXUS_TUNE names {}, which {}='{}' excludes",
                      label, a->report->spec_source, a->report->spec);
  Probed *p = instance == 0 ? probe_of(a, name) : nullptr;
  plx_backend *b = nullptr;
  if (p && p->backend) {
    std::swap(b, p->backend);
    a->report->candidates[p->candidate].chosen = true;
  } else if (p) {
    return core::fail(p->status, "plx_backend_open: PLEXUS_TUNE names {}, which is not available: {}", label, p->note);
  } else if (plx_status s = open_instance(a, label, name, &b)) {
    return s;
  }
  *m = Member{label, b->lib, b->state};
  delete b;  // the wrapper only: the member owns the plugin's backend now
  return PLX_OK;
}

void close_probes(AutoOpen *a) {
  for (Probed &p : a->probes) close_backend(std::exchange(p.backend, nullptr));
}

plx_status read_tune(AutoOpen *a) {
  const char *text = std::getenv("PLEXUS_TUNE");
  if (text == nullptr || *text == '\0') return PLX_OK;
  if (plx_status s = parse_tune(text, "PLEXUS_TUNE", &a->tune)) {
    a->report->status = s, a->report->decision = plx_last_error();
    return core::fail(s, "plx_backend_open: {}", a->report->decision);
  }
  return PLX_OK;
}

plx_status fail_auto(AutoOpen *a, const AutoChoice &choice) {
  plx_status status = choice.status;
  for (const Candidate &c : a->tried)
    if (c.status != PLX_ERR_UNSUPPORTED && c.status != PLX_ERR_NOT_FOUND) {
      status = c.status;  // a plugin that failed, not declined, says more than "nothing fits"
      break;
    }
  LoadReport &r = *a->report;
  r.status = status;
  r.decision = fmt::format("no backend opened from {}='{}': {}", r.spec_source, r.spec, choice.reason);
  core::log_info("{}", r.text());
  return core::fail(status, "plx_backend_open: {}", r.decision);
}

plx_status open_single(AutoOpen *a, const AutoChoice &choice, plx_backend **out) {
  Probed *p = probe_of(a, choice.members.front());
  plx_backend *b = std::exchange(p->backend, nullptr);
  LoadReport &r = *a->report;
  Candidate &c = r.candidates[p->candidate];
  c.chosen = true, c.stage = "ok", c.reason.clear();
  r.decision = fmt::format("chose {} {} from {} ({}='{}'): {}", c.name, c.version, c.path, r.spec_source, r.spec,
                           choice.reason);
  b->report = r;
  core::log_info("{}", r.decision);
  *out = b;
  return PLX_OK;
}

std::string routing_text(const TuneSpec &tune) {
  if (!tune.rules.empty()) return fmt::format("PLEXUS_TUNE '{}', then member order", tune_text(tune));
  return "the tuning file's table for this machine, else one measured at the first communicator "
         "(PLEXUS_TUNING_FILE), then member order; plx_comm_routes shows a communicator's table";
}

plx_status open_composite(AutoOpen *a, const std::vector<std::string> &labels, const AutoInputs &in,
                          const AutoChoice &choice, plx_backend **out) {
  std::vector<Member> members;
  for (const std::string &label : labels) {
    Member m;
    if (plx_status s = member_of(a, label, &m)) {
      for (const Member &made : members) (void)PLX_MEMBER_CALL(made, finalize, made.backend);
      a->report->status = s, a->report->decision = plx_last_error();
      return s;
    }
    members.push_back(m);
  }
  plx_backend *b = nullptr;
  (void)make_composite_backend(std::move(members), a->tune, in.topology, in.hosts, &b);
  LoadReport &r = *a->report;
  const bool added = labels.size() > choice.members.size();
  r.decision = fmt::format("chose auto over {} ({}='{}'): {}{}; routing: {}", fmt::join(labels, " + "), r.spec_source,
                           r.spec, choice.reason, added ? "; PLEXUS_TUNE adds the others" : "", routing_text(a->tune));
  b->report = r;
  core::log_info("{}", r.decision);
  *out = b;
  return PLX_OK;
}

}  // namespace

plx_status open_auto(const BackendSpec &spec, const std::vector<FoundPlugin> &found, LoadReport *r,
                     plx_backend **out) {
  AutoOpen a{spec, found, r, {}, {}, {}};
  if (plx_status s = read_tune(&a)) return s;
  probe_all(&a);
  const bool none = std::all_of(a.probes.begin(), a.probes.end(), [](const Probed &p) { return p.note == "not installed"; });
  if (none) return fail_open(spec, {}, found, r);
  const AutoInputs in = inputs_of(a);
  const AutoChoice choice = choose_backends(in);
  r->auto_reason = choice.reason;
  r->auto_members = choice.status == PLX_OK ? labels_of(choice, a.tune) : std::vector<std::string>{};
  plx_status s = PLX_OK;
  if (choice.status != PLX_OK) s = fail_auto(&a, choice);
  else if (r->auto_members.size() == 1) s = open_single(&a, choice, out);
  else s = open_composite(&a, r->auto_members, in, choice, out);
  close_probes(&a);
  return s;
}

}  // namespace plexus::loader

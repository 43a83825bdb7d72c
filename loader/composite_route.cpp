// Routing of auto's composite: each collective goes to the backend of the
// first route that matches its op, size and memory kind and whose backend
// can take it (capability, dtype, operator, options, memory kind); the
// members in order are the last routes. Every rank computes the same route
// from the same call, so the ranks of a collective meet on one backend.
#include <fmt/format.h>

#include "core/json.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "loader/composite.hpp"
#include "loader/cuda_driver.hpp"
#include "loader/errors.hpp"

namespace plexus::loader {
namespace {

constexpr size_t no_route = SIZE_MAX;

bool has_rank_args(const plx_coll_desc &d) { return d.coll != PLX_COLL_BARRIER; }

// Whether member m can run the call at all: what the loader checked against
// the composite's union, checked against the member alone.
bool can_take(const Member &m, const plx_coll_desc &d, MemClass kind, bool in_group) {
  const plx_plugin_info &i = m.info();
  const plx_coll_options &o = *d.options;
  if (!(i.capabilities & PLX_CAP_COLL(d.coll)) || !m.takes(kind)) return false;
  if (in_group && !(i.capabilities & PLX_CAP_GROUP)) return false;
  if (has_rank_args(d) && !(i.dtype_mask & PLX_BIT(d.dtype))) return false;
  if (d.op >= 0 && !(i.reduce_op_mask & PLX_BIT(d.op))) return false;
  // No per-rank option (PLX_COLL_FLAG_NO_CONTRIBUTION) may decide: every
  // rank must pick the same member (the composite offers it only when all do).
  return o.wire_dtype == -1 || o.wire_dtype == d.dtype || (i.capabilities & PLX_CAP_WIRE_PRECISION);
}

// Host or device: a stream means device memory; with stream NULL the
// pointer says (PyTorch's default stream is NULL); a rank that passes no
// buffer keeps the kind of its previous call, as its peers' calls do.
MemClass kind_of(CompositeComm &c, const plx_coll_desc &d) {
  if (!c.has_device) return MemClass::host;
  if (!c.has_host || d.stream != nullptr) return MemClass::device;
  const void *p = d.send ? d.send : d.recv;
  if (p == nullptr) return c.last_kind;
  return c.last_kind = cuda_driver::is_device_pointer(p) ? MemClass::device : MemClass::host;
}

// The size a table speaks of: every rank's whole buffer, the same on
// every rank (all-gather's output, reduce-scatter's input, gather's sum).
uint64_t bytes_of(const plx_coll_desc &d, int32_t nranks) {
  if (!has_rank_args(d)) return 0;
  const uint64_t element = plx_dtype_size(d.dtype);
  if (d.coll == PLX_COLL_ALL_GATHER || d.coll == PLX_COLL_REDUCE_SCATTER) return d.count * nranks * element;
  if (d.coll != PLX_COLL_GATHER) return d.count * element;
  if (d.counts == nullptr) return d.count * nranks * element;
  uint64_t total = 0;
  for (int32_t r = 0; r < nranks; ++r) total += d.counts[r];
  return total * element;
}

size_t pick(const CompositeComm &c, const plx_coll_desc &d, MemClass kind, uint64_t bytes) {
  const int32_t op = route_op_of(d.coll);
  for (size_t r = 0; r < c.routes.size(); ++r) {
    const Route &route = c.routes[r];
    if (route.rule.matches(op, kind, bytes) && can_take(c.backend->members[route.member], d, kind, c.in_group))
      return r;
  }
  return no_route;
}

[[gnu::cold]] plx_status no_member(const CompositeComm &c, const plx_coll_desc &d, MemClass kind) {
  std::vector<std::string> labels;
  for (const Member &m : c.backend->members) labels.push_back(m.label);
  return core::fail(PLX_ERR_UNSUPPORTED, "auto: none of its backends ({}) takes this {} on {} memory "
                    "(dtype {}, options as given{})", fmt::join(labels, ", "), coll_name(d.coll),
                    mem_class_name(kind), dtype_name(d.dtype) ? dtype_name(d.dtype) : "-",
                    c.in_group ? ", inside a group" : "");
}

[[gnu::cold]] void log_decision(const CompositeComm &c, size_t r, const plx_coll_desc &d, MemClass kind,
                                uint64_t bytes, plx_log_level level) {
  const Route &route = c.routes[r];
  core::log(level, "auto: rank {}: {} of {} B on {} memory -> {} (route {} '{}', from {})", c.rank,
            coll_name(d.coll), bytes, mem_class_name(kind), c.backend->members[route.member].label, r,
            tune_text(route.rule), route.source);
}

void count(CompositeComm &c, size_t r, const plx_coll_desc &d, MemClass kind, uint64_t bytes) {
  RouteCounter &counter = c.counters[r];
  add_relaxed(counter.calls, 1);  // one thread at a time per communicator (objects.hpp)
  add_relaxed(counter.bytes, bytes);
  c.last_member[d.coll].store(static_cast<int32_t>(c.routes[r].member), std::memory_order_relaxed);
  // A load first: the exchange is a locked RMW, paid only on a route's first call.
  if (!counter.logged.load(std::memory_order_relaxed) && !counter.logged.exchange(true, std::memory_order_relaxed))
    log_decision(c, r, d, kind, bytes, PLX_LOG_DEBUG);
  else if (core::services().log_enabled(PLX_LOG_TRACE)) log_decision(c, r, d, kind, bytes, PLX_LOG_TRACE);
}

}  // namespace

plx_status composite_collective(void *comm, const plx_coll_desc *desc) {
  CompositeComm &c = *static_cast<CompositeComm *>(comm);
  const MemClass kind = kind_of(c, *desc);
  const uint64_t bytes = bytes_of(*desc, c.size);
  const size_t r = pick(c, *desc, kind, bytes);
  if (r == no_route) [[unlikely]] return no_member(c, *desc, kind);
  count(c, r, *desc, kind, bytes);
  const size_t m = c.routes[r].member;
  return PLX_MEMBER_CALL(c.backend->members[m], collective, c.comms[m], desc);
}

plx_status resolve_routes(CompositeComm *c, const std::vector<TuneRule> &rules, const std::string &source) {
  const std::vector<Member> &members = c->backend->members;
  for (const TuneRule &rule : rules) {
    size_t m = 0;
    while (m < members.size() && members[m].label != rule.backend) ++m;
    if (m == members.size())
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "auto: the {} rule '{}' names {}, which is not one of its "
                        "backends", source, tune_text(rule), rule.backend);
    c->routes.push_back(Route{rule, m, source});
  }
  return PLX_OK;
}

void add_member_order(CompositeComm *c) {
  for (size_t m = 0; m < c->backend->members.size(); ++m) {
    TuneRule any;
    any.backend = c->backend->members[m].label;
    c->routes.push_back(Route{any, m, "member order"});
  }
  c->counters = std::make_unique<RouteCounter[]>(c->routes.size());
}

std::string routes_report(const CompositeComm &c, plx_format format) {
  if (format == PLX_FORMAT_TEXT) {
    std::string out = fmt::format("auto over {} backends; table from {}\n", c.backend->members.size(), c.table_source);
    for (size_t r = 0; r < c.routes.size(); ++r)
      out += fmt::format("  {:>2} {:<44} {:<16} calls {:>10}  bytes {:>14}  ({})\n", r, tune_text(c.routes[r].rule),
                         c.backend->members[c.routes[r].member].label, c.counters[r].calls.load(),
                         c.counters[r].bytes.load(), c.routes[r].source);
    return out;
  }
  core::JsonWriter w;
  w.begin_object().field("backend", "auto").field("table_source", std::string_view(c.table_source)).key("members").begin_array();
  for (const Member &m : c.backend->members)
    w.begin_object().field("label", std::string_view(m.label)).field("path", std::string_view(m.lib->path)).end_object();
  w.end_array().key("routes").begin_array();
  for (size_t r = 0; r < c.routes.size(); ++r)
    w.begin_object().field("rule", std::string_view(tune_text(c.routes[r].rule)))
        .field("backend", std::string_view(c.backend->members[c.routes[r].member].label))
        .field("source", std::string_view(c.routes[r].source)).field("calls", c.counters[r].calls.load())
        .field("bytes", c.counters[r].bytes.load()).end_object();
  w.end_array().end_object();
  return w.str();
}

}  // namespace plexus::loader

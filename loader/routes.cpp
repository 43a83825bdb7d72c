// plx_comm_routes: where a communicator sends its collectives. auto's
// composite has a table (composite_route.cpp); a plugin's own communicator
// has one route, to that plugin.
#include "core/json.hpp"
#include "loader/composite.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

std::string one_backend(const plx_comm &comm, plx_format format) {
  const PluginLib &lib = *comm.backend->lib;
  uint64_t calls = 0, bytes = 0;
  for (const OpCounters &c : comm.counters) calls += c.calls.load(), bytes += c.bytes.load();
  if (format == PLX_FORMAT_TEXT)
    return fmt::format("one backend, {} ({}): every call goes to it; calls {}, bytes {}\n", lib.info->name, lib.path,
                       calls, bytes);
  core::JsonWriter w;
  w.begin_object().field("backend", lib.info->name).field("table_source", "one backend").key("members").begin_array();
  w.begin_object().field("label", lib.info->name).field("path", std::string_view(lib.path)).end_object();
  w.end_array().key("routes").begin_array().begin_object().field("rule", fmt::format("*:*:{}", lib.info->name).c_str());
  w.field("backend", lib.info->name).field("source", "one backend").field("calls", calls).field("bytes", bytes);
  w.end_object().end_array().end_object();
  return w.str();
}

}  // namespace

extern "C" plx_status plx_comm_routes(plx_comm_h comm, plx_format format, char *buf, size_t capacity,
                                      size_t *needed) {
  const char *fn = "plx_comm_routes";
  if (comm == nullptr || comm->magic != comm_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: comm is NULL or not a live communicator", fn);
  if (format != PLX_FORMAT_TEXT && format != PLX_FORMAT_JSON)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: format {} is neither PLX_FORMAT_TEXT nor PLX_FORMAT_JSON", fn, format);
  if (buf == nullptr && capacity > 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: buf is NULL but capacity is {}", fn, capacity);
  const std::string text = is_composite(comm->backend)
                               ? routes_report(*static_cast<const CompositeComm *>(comm->state), format)
                               : one_backend(*comm, format);
  return core::copy_text_out(text, buf, capacity, needed);
}

#include "tools/plexus-info/gather.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <functional>

#include "core/host_topology.hpp"
#include "core/json.hpp"
#include "core/services.hpp"

namespace plexus::info {
namespace {

// The C API's "ask for the size, then fill" buffer protocol.
using FillFn = std::function<plx_status(char *, size_t, size_t *)>;

plx_status read_buffer(const FillFn &fill, std::string *out) {
  size_t needed = 0;
  plx_status s = fill(nullptr, 0, &needed);
  // The size can grow between the calls (a plugin appears): retry until it fits.
  for (int attempt = 0; s == PLX_OK && attempt < 4; ++attempt) {
    std::string buf(needed, '\0');
    size_t again = 0;
    s = fill(buf.data(), buf.size(), &again);
    if (s == PLX_OK && again <= buf.size()) {
      buf.resize(again > 0 ? again - 1 : 0);  // drop the NUL
      *out = std::move(buf);
      return PLX_OK;
    }
    needed = again;
  }
  return s == PLX_OK ? PLX_ERR_INTERNAL : s;
}

std::string error_line(plx_status s) { return fmt::format("{}: {}", plx_status_string(s), plx_last_error()); }

std::string tristate(int32_t v) { return v < 0 ? "not probed" : v ? "yes" : "no"; }

std::string topology_summary(const plx_topology_info &t) {
  return fmt::format("GPUs {}, NUMA nodes {}, cores {}, hardware threads {}, "
                     "peer access on all pairs: {}, NVLink on all pairs: {}",
                     t.gpu_count, t.numa_node_count, t.core_count, t.pu_count,
                     tristate(t.p2p_all_pairs), tristate(t.nvlink_all_pairs));
}

void read_report(plx_backend_h backend, Opened *o) {
  std::string text, json;
  auto fill = [backend](plx_format f) {
    return [backend, f](char *b, size_t c, size_t *n) { return plx_load_report(backend, f, b, c, n); };
  };
  if (read_buffer(fill(PLX_FORMAT_TEXT), &text) == PLX_OK) o->report_text = text;
  if (read_buffer(fill(PLX_FORMAT_JSON), &json) == PLX_OK) o->report_json = json;
}

void read_topology(plx_backend_h backend, Opened *o) {
  plx_topology_info info{};
  info.struct_size = sizeof info;
  std::string json;
  const plx_status s = read_buffer(
      [&](char *b, size_t c, size_t *n) { return plx_backend_topology(backend, &info, b, c, n); }, &json);
  if (s != PLX_OK) {
    o->topology_error = error_line(s);
    return;
  }
  o->topology_summary = topology_summary(info);
  o->topology_json = json;
}

}  // namespace

std::optional<std::string> describe_plugins(plx_format format) {
  std::string out;
  const plx_status s = read_buffer(
      [format](char *b, size_t c, size_t *n) { return plx_plugins_describe(format, b, c, n); }, &out);
  if (s == PLX_OK) return out;
  std::fprintf(stderr, "plexus-info: plx_plugins_describe failed: %s\n", error_line(s).c_str());
  return std::nullopt;
}

Opened open_and_probe(const char *spec) {
  Opened o;
  o.spec = spec ? spec : "";
  plx_backend_h backend = nullptr;
  const plx_status s = plx_backend_open(spec, &backend);
  if (s != PLX_OK) {
    o.error = error_line(s);  // copied first: later calls may replace it
    read_report(nullptr, &o);
    return o;
  }
  read_report(backend, &o);
  plx_backend_props props{};
  props.struct_size = sizeof props;
  if (plx_backend_props_get(backend, &props) == PLX_OK && props.name) o.backend_name = props.name;
  read_topology(backend, &o);
  plx_backend_close(backend);
  return o;
}

HostPart probe_host() {
  HostPart h;
  core::HostTopology topology;
  const plx_status s = core::probe_host_topology(&topology);
  if (s != PLX_OK) {
    h.error = fmt::format("{}: {}", plx_status_string(s), core::default_last_error());
    return h;
  }
  core::JsonWriter w;
  core::write_host_topology_json(topology, w);
  h.json = w.str();
  h.text = core::host_topology_text(topology);
  return h;
}

}  // namespace plexus::info

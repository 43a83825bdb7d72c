#include "loader/describe.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "core/json.hpp"
#include "loader/errors.hpp"
#include "loader/plugin_lib.hpp"
#include "loader/services.hpp"
#include "plexus/plexus.h"

namespace plexus::loader {
namespace {

const char *const capability_bits[] = {
    "split", "abort", "async_status", "stream_ordered", "graph_capture", "mem_alloc",
    "mem_register", "defragment", "topology", "queue", "thread_ranks", "wire_precision",
    "no_contribution", "group", "multi_node"};

const char *const type_names[] = {"int", "size", "double", "bool", "string"};
const char *const threading_names[] = {"single", "per_comm", "multiple"};
const char *const mem_kind_names[] = {"host", "shared_host", "pinned_host", "device"};

const char *mem_kind_name(int32_t k) { return k >= 0 && k < PLX_MEM_KIND_COUNT ? mem_kind_names[k] : nullptr; }

struct Described {
  Candidate candidate;
  const PluginLib *lib = nullptr;
};

std::vector<Described> query_all(const std::vector<std::string> &dirs) {
  std::vector<Described> out;
  for (const FoundPlugin &f : find_plugins(dirs)) {
    Described d;
    d.candidate.name = f.name;
    load_plugin(f.path, f.name, &d.candidate, &d.lib);
    out.push_back(d);
  }
  return out;
}

void write_params(core::JsonWriter &w, const char *plugin, const std::vector<plx_param_decl> &decls) {
  w.begin_array();
  for (const plx_param_decl &p : decls) {
    const std::string env = param_env_name(plugin, p.name);
    const char *value = std::getenv(env.c_str());
    w.begin_object().field("name", std::string_view(env));
    w.field("type", p.type >= 0 && p.type <= 4 ? type_names[p.type] : "?");
    w.field("default", p.default_value).field("value", value ? value : p.default_value);
    w.field("help", p.help).end_object();
  }
  w.end_array();
}

std::vector<plx_param_decl> decls_of(const plx_plugin_info &info) {
  std::vector<plx_param_decl> decls;
  for (uint32_t i = 0; info.params && i < info.param_count; ++i) decls.push_back(info.params[i]);
  return decls;
}

void write_names(core::JsonWriter &w, const std::vector<std::string> &names) {
  w.begin_array();
  for (const std::string &n : names) w.value(std::string_view(n));
  w.end_array();
}

void write_plugin(core::JsonWriter &w, const Described &d) {
  const Candidate &c = d.candidate;
  w.begin_object().field("name", std::string_view(c.name)).field("path", std::string_view(c.path));
  w.field("usable", d.lib != nullptr).field("version", std::string_view(c.version));
  w.field("abi", std::string_view(c.abi)).field("build_info", std::string_view(c.build_info));
  if (d.lib == nullptr) {
    w.field("status", plx_status_string(c.status)).field("reason", std::string_view(c.reason)).end_object();
    return;
  }
  const plx_plugin_info &i = *d.lib->info;
  w.field("threading", i.threading >= 0 && i.threading <= 2 ? threading_names[i.threading] : "?");
  w.key("capabilities"), write_names(w, capability_names(i.capabilities));
  w.key("memory_kinds"), write_names(w, mask_names(i.mem_kind_mask, PLX_MEM_KIND_COUNT, mem_kind_name));
  w.key("alloc_kinds"), write_names(w, mask_names(i.alloc_kind_mask, PLX_MEM_KIND_COUNT, mem_kind_name));
  w.key("dtypes"), write_names(w, mask_names(i.dtype_mask, PLX_DTYPE_COUNT, dtype_name));
  w.key("reduce_ops"), write_names(w, mask_names(i.reduce_op_mask, PLX_REDUCE_OP_COUNT, reduce_op_name));
  w.key("params"), write_params(w, i.name, decls_of(i));
  w.end_object();
}

std::string text_of(const std::vector<std::string> &dirs, const std::vector<Described> &all) {
  std::string out = fmt::format("plexus {}\nplugin search path: {}\n", plx_version_string(),
                                dirs.empty() ? "(none)" : fmt::format("{}", fmt::join(dirs, ":")));
  if (all.empty()) out += "no plugins found\n";
  for (const Described &d : all) {
    const Candidate &c = d.candidate;
    if (d.lib == nullptr) {
      out += fmt::format("  {:<14} {}\n    unusable: {}\n", c.name, c.path, c.reason);
      continue;
    }
    const plx_plugin_info &i = *d.lib->info;
    out += fmt::format("  {:<14} v{} ABI {} {}\n    built with: {}\n    threading: {}\n", c.name,
                       c.version, c.abi, c.path, c.build_info.empty() ? "-" : c.build_info,
                       i.threading >= 0 && i.threading <= 2 ? threading_names[i.threading] : "?");
    out += fmt::format("    capabilities: {}\n", fmt::join(capability_names(i.capabilities), " "));
    out += fmt::format("    dtypes: {}\n", fmt::join(mask_names(i.dtype_mask, PLX_DTYPE_COUNT, dtype_name), " "));
    for (const plx_param_decl &p : decls_of(i))
      out += fmt::format("    {} (default {}): {}\n", param_env_name(i.name, p.name),
                         p.default_value ? p.default_value : "-", p.help ? p.help : "");
  }
  return out;
}

}  // namespace

std::vector<std::string> capability_names(uint64_t caps) {
  std::vector<std::string> names;
  for (int32_t k = 0; k < PLX_COLL_KIND_COUNT; ++k)
    if (caps & PLX_CAP_COLL(k)) names.push_back(coll_name(k));
  for (size_t b = 0; b < sizeof(capability_bits) / sizeof(*capability_bits); ++b)
    if (caps & (1ull << (16 + b))) names.push_back(capability_bits[b]);
  return names;
}

std::vector<std::string> mask_names(uint32_t mask, int32_t count, const char *(*name_of)(int32_t)) {
  std::vector<std::string> names;
  for (int32_t v = 0; v < count; ++v)
    if (mask & PLX_BIT(v)) names.push_back(name_of(v));
  return names;
}

std::string describe_plugins(plx_format format) {
  const std::vector<std::string> dirs = plugin_search_dirs();
  const std::vector<Described> all = query_all(dirs);
  if (format == PLX_FORMAT_TEXT) return text_of(dirs, all);
  core::JsonWriter w;
  w.begin_object().field("version", plx_version_string()).key("search_path").begin_array();
  for (const std::string &d : dirs) w.value(std::string_view(d));
  w.end_array().key("loader_params"), write_params(w, nullptr, loader_params());
  w.key("plugins").begin_array();
  for (const Described &d : all) write_plugin(w, d);
  w.end_array().end_object();
  return w.str();
}

}  // namespace plexus::loader

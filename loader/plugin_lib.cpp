#include "loader/plugin_lib.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/status.hpp"
#include "loader/errors.hpp"
#include "loader/services.hpp"
#include "loader/spec.hpp"
#include "plexus/plexus.h"

namespace plexus::loader {
namespace {

struct LibCache {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<PluginLib>> loaded;  // by path, only valid ones
};

LibCache &cache() {
  static LibCache instance;
  return instance;
}

plx_status reject(Candidate *c, const char *stage, plx_status status, std::string reason) {
  c->stage = stage;
  c->status = status;
  c->reason = std::move(reason);
  return status;
}

std::string abi_text(uint16_t major, uint16_t minor) { return fmt::format("{}.{}", major, minor); }

// The slots without which a plugin is no plugin (PLX-P-5).
const char *missing_required_slot(const plx_plugin_vtable *vt) {
#define PLX_REQUIRE(slot) \
  if (!PLX_VTABLE_HAS(vt, slot)) return #slot;
  PLX_REQUIRE(init) PLX_REQUIRE(finalize) PLX_REQUIRE(get_unique_id) PLX_REQUIRE(comm_init)
  PLX_REQUIRE(comm_destroy) PLX_REQUIRE(comm_query) PLX_REQUIRE(collective)
#undef PLX_REQUIRE
  return nullptr;
}

plx_status check_info(const plx_plugin_info *info, std::string_view file_name, Candidate *c) {
  if (info == nullptr || info->struct_size < sizeof(plx_plugin_info))
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  "PLX-P-2: the query answered no plx_plugin_info or one too small");
  c->abi = abi_text(info->abi_major, info->abi_minor);
  const plx_host_info *host = host_info();
  if (info->abi_major < host->min_abi_major || info->abi_major > host->abi_major)
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-2: the plugin speaks ABI {}, this loader {}.0 to {}.{}",
                              c->abi, host->min_abi_major, host->abi_major, host->abi_minor));
  const std::string name = info->name ? info->name : "";
  c->name = name;
  c->version = fmt::format("{}.{}.{}", info->version_major, info->version_minor, info->version_patch);
  c->build_info = info->build_info ? info->build_info : "";
  if (!is_valid_plugin_name(name) || (!file_name.empty() && name != file_name))
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-3: the plugin calls itself '{}' but its file says '{}'; a "
                              "name is lower case, digits and '-' and matches libplexus-<name>.so",
                              name, file_name));
  return PLX_OK;
}

plx_status check_vtable(const plx_plugin_info *info, Candidate *c) {
  const plx_plugin_vtable *vt = info->vtable;
  if (vt == nullptr || vt->struct_size < PLX_PLUGIN_VTABLE_MIN_SIZE)
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-4: the vtable is missing or smaller ({} bytes) than the "
                              "required slots ({} bytes)", vt ? vt->struct_size : 0,
                              PLX_PLUGIN_VTABLE_MIN_SIZE));
  if (vt->abi_major != info->abi_major)
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-4: the vtable says ABI {} but the plugin answered {}",
                              abi_text(vt->abi_major, vt->abi_minor), c->abi));
  if (const char *slot = missing_required_slot(vt))
    return reject(c, "validate", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-5: the required slot '{}' is NULL", slot));
  return PLX_OK;
}

plx_status query(void *handle, const std::string &path, Candidate *c, const plx_plugin_info **info) {
  auto fn = reinterpret_cast<plx_plugin_query_fn>(dlsym(handle, PLX_PLUGIN_QUERY_SYMBOL));
  if (fn == nullptr)
    return reject(c, "query", PLX_ERR_INCOMPATIBLE_ABI,
                  fmt::format("PLX-P-1: {} exports no {} symbol: not a plexus plugin", path,
                              PLX_PLUGIN_QUERY_SYMBOL));
  set_last_error(PLX_OK, "");
  const plx_status s = fn(host_info(), info);
  if (s != PLX_OK) {
    const std::string why = *plx_last_error() ? plx_last_error() : "no message";
    return reject(c, "query", s, fmt::format("the query returned {}: {}", core::status_name(s), why));
  }
  return PLX_OK;
}

}  // namespace

plx_status load_plugin(const std::string &path, std::string_view file_name, Candidate *c,
                       const PluginLib **out) {
  c->path = path;
  LibCache &lc = cache();
  std::lock_guard lock(lc.mutex);
  if (auto it = lc.loaded.find(path); it != lc.loaded.end()) {
    const PluginLib &lib = *it->second;
    c->name = lib.info->name;
    c->abi = abi_text(lib.abi_major, lib.abi_minor);
    c->version = fmt::format("{}.{}.{}", lib.info->version_major, lib.info->version_minor,
                             lib.info->version_patch);
    c->build_info = lib.info->build_info ? lib.info->build_info : "";
    *out = &lib;
    return PLX_OK;
  }
  warn_if_writable_by_others(path, WritableCheck::file);
  warn_if_writable_by_others(path.substr(0, std::max<size_t>(path.rfind('/'), 1)), WritableCheck::folder_of_named_file);
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never closed (PLX-L-9)
  if (handle == nullptr) return reject(c, "dlopen", PLX_ERR_SYSTEM, dlerror());
  const plx_plugin_info *info = nullptr;
  if (plx_status s = query(handle, path, c, &info)) return s;
  if (plx_status s = check_info(info, file_name, c)) return s;
  if (plx_status s = check_vtable(info, c)) return s;
  // Braces, not make_unique: clang before 16 cannot initialise an aggregate
  // from parentheses (the fuzz build uses clang 14).
  std::unique_ptr<PluginLib> lib(new PluginLib{path, info, info->vtable, info->abi_major,
                                               std::min(info->abi_minor, host_info()->abi_minor), {}});
  declare_plugin_params(info->name, info->params, info->param_count);
  *out = lib.get();
  lc.loaded.emplace(path, std::move(lib));
  c->stage = "query";
  return PLX_OK;
}

std::string plugin_name_from_path(std::string_view path) {
  const size_t slash = path.rfind('/');
  std::string_view file = slash == std::string_view::npos ? path : path.substr(slash + 1);
  constexpr std::string_view prefix = "libplexus-", suffix = ".so";
  if (file.size() <= prefix.size() + suffix.size() || file.substr(0, prefix.size()) != prefix ||
      file.substr(file.size() - suffix.size()) != suffix)
    return "";
  return std::string(file.substr(prefix.size(), file.size() - prefix.size() - suffix.size()));
}

}  // namespace plexus::loader

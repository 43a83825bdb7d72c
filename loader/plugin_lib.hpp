// A plugin library: found on disk, dlopen'ed (RTLD_NOW | RTLD_LOCAL, never
// unloaded), queried and checked against the plugin rules before anything
// else of it runs (PLX-L-4 .. PLX-L-6).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "loader/report.hpp"
#include "plexus/plugin.h"

namespace plexus::loader {

struct PluginLib {
  std::string path;
  const plx_plugin_info *info = nullptr;
  const plx_plugin_vtable *vtable = nullptr;
  uint16_t abi_major = 0;  // negotiated
  uint16_t abi_minor = 0;
  // Taken around every call into a PLX_THREAD_SINGLE plugin: its globals are
  // shared by every backend opened from it, so the lock is the library's.
  mutable std::mutex serial;
};

// Loads the library at `path`, queries and validates it. `file_name` is the
// plugin name its file name implies ("" when it does not follow the
// libplexus-<name>.so pattern). Records every step in `candidate`. Returns
// PLX_OK and sets *out (owned by the loader, valid for the life of the
// process), or the reason's status.
plx_status load_plugin(const std::string &path, std::string_view file_name, Candidate *candidate,
                       const PluginLib **out);

// Search: the folders plugins are looked for in, in order (PLX-L-2):
// PLEXUS_PLUGIN_PATH if set, else the build tree's plugin folders when the
// loader runs from its build tree, else <libdir of libplexus>/plexus/1/.
std::vector<std::string> plugin_search_dirs();

struct FoundPlugin {
  std::string name;  // from the file name libplexus-<name>.so
  std::string path;
};

// Every libplexus-*.so in `dirs`, in search order.
std::vector<FoundPlugin> find_plugins(const std::vector<std::string> &dirs);

// Warns (once per path) when every user may write `path`: a folder that is
// searched (sticky or not), the folder of a plugin about to be loaded (not
// when sticky), or a plugin file (PLX-L-2).
enum class WritableCheck { searched_folder, folder_of_named_file, file };
void warn_if_writable_by_others(const std::string &path, WritableCheck check);

// "libplexus-<name>.so" -> "<name>", or "" for another file name.
std::string plugin_name_from_path(std::string_view path);

}  // namespace plexus::loader

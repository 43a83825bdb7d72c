// Where plugins are looked for (PLX-L-2).
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>

#include "core/log.hpp"
#include "loader/plugin_lib.hpp"
#include "loader/services.hpp"
#include "plexus_config.h"

namespace plexus::loader {
namespace {

std::string dir_of(const std::string &path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// The folder libplexus.so.1 itself was loaded from.
std::string loader_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void *>(&plugin_search_dirs), &info) == 0 || !info.dli_fname)
    return "";
  char resolved[PATH_MAX];
  return realpath(info.dli_fname, resolved) ? dir_of(resolved) : dir_of(info.dli_fname);
}

std::vector<std::string> split_colons(const char *text) {
  std::vector<std::string> dirs;
  for (const char *p = text; *p;) {
    const char *colon = std::strchr(p, ':');
    const std::string dir(p, colon ? colon - p : std::strlen(p));
    if (!dir.empty()) dirs.push_back(dir);
    if (!colon) break;
    p = colon + 1;
  }
  return dirs;
}

std::vector<std::string> subdirs_of(const std::string &dir) {
  std::vector<std::string> out;
  if (DIR *d = opendir(dir.c_str())) {
    while (const dirent *e = readdir(d))
      if (e->d_name[0] != '.' && e->d_type == DT_DIR) out.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Others who can write a searched folder can add a plugin to it, sticky bit
// or not (the bit only keeps them from replacing files already there);
// others who can write a plugin file can change its code. Either lets them
// run code in this process. Each path is named once per process.
void warn_if_writable_by_others(const std::string &path, WritableCheck check) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0 || !(st.st_mode & S_IWOTH)) return;
  const bool sticky = st.st_mode & S_ISVTX;
  if (check == WritableCheck::folder_of_named_file && sticky) return;  // the file itself cannot be replaced
  static std::mutex mutex;
  static std::set<std::string> named;
  std::lock_guard lock(mutex);
  if (!named.insert(path).second) return;
  if (check == WritableCheck::file)
    core::log_warn("plugin file {} is writable by every user: anyone could change its code", path);
  else
    core::log_warn("plugin folder {} is writable by every user: anyone could plant a plugin{}", path,
                   sticky ? " (the sticky bit does not stop adding one)" : "");
}

std::vector<std::string> plugin_search_dirs() {
  if (const char *env = secure_env("PLEXUS_PLUGIN_PATH"); env && *env) return split_colons(env);
  const std::string here = loader_dir();
  char build_loader[PATH_MAX];
  if (realpath(PLEXUS_BUILD_LOADER_DIR, build_loader) && here == build_loader)
    return subdirs_of(PLEXUS_BUILD_PLUGIN_DIR);
  std::vector<std::string> dirs;
  if (!here.empty()) dirs.push_back(here + "/plexus/" + std::to_string(PLEXUS_ABI_MAJOR));
  if (std::find(dirs.begin(), dirs.end(), PLEXUS_INSTALL_PLUGIN_DIR) == dirs.end())
    dirs.push_back(PLEXUS_INSTALL_PLUGIN_DIR);
  return dirs;
}

std::vector<FoundPlugin> find_plugins(const std::vector<std::string> &dirs) {
  std::vector<FoundPlugin> found;
  for (const std::string &dir : dirs) {
    DIR *d = opendir(dir.c_str());
    if (d == nullptr) continue;
    warn_if_writable_by_others(dir, WritableCheck::searched_folder);
    std::vector<FoundPlugin> here;
    while (const dirent *e = readdir(d)) {
      const std::string name = plugin_name_from_path(e->d_name);
      if (!name.empty()) here.push_back({name, dir + "/" + e->d_name});
    }
    closedir(d);
    std::sort(here.begin(), here.end(), [](auto &a, auto &b) { return a.path < b.path; });
    found.insert(found.end(), here.begin(), here.end());
  }
  return found;
}

}  // namespace plexus::loader

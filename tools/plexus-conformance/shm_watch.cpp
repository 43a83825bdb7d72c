#include "shm_watch.hpp"

#include <dirent.h>
#include <sys/mman.h>

#include <string_view>

namespace plexus::conformance {

std::set<std::string> plexus_shm_names() {
  std::set<std::string> names;
  DIR *dir = ::opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent *e = ::readdir(dir))
    if (std::string_view(e->d_name).find("plexus") != std::string_view::npos) names.insert(e->d_name);
  ::closedir(dir);
  return names;
}

ShmLeaks find_shm_leaks(const std::set<std::string> &before, const std::vector<pid_t> &pids) {
  ShmLeaks leaks;
  for (const std::string &name : plexus_shm_names()) {
    if (before.count(name)) continue;
    bool ours = false;
    for (const pid_t pid : pids) ours |= name.find("-" + std::to_string(pid) + "-") != std::string::npos;
    (ours ? leaks.ours : leaks.others).push_back(name);
  }
  return leaks;
}

void remove_shm_names(const std::vector<std::string> &names) {
  for (const std::string &name : names) ::shm_unlink(("/" + name).c_str());
}

}  // namespace plexus::conformance

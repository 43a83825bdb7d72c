#include "loader/services.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "core/params.hpp"
#include "core/services.hpp"
#include "loader/errors.hpp"
#include "plexus_config.h"

namespace plexus::loader {
namespace {

const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

plx_log_level parse_level(const char *text) {
  if (text == nullptr || *text == '\0') return PLX_LOG_WARN;
  for (int i = 0; i < 5; ++i)
    if (std::strcmp(text, level_names[i]) == 0) return static_cast<plx_log_level>(i);
  std::fprintf(stderr, "plexus: PLEXUS_LOG_LEVEL='%s' is not one of error|warn|info|debug|trace; "
               "using warn\n", text);
  return PLX_LOG_WARN;
}

// "%p" becomes the pid and "%h" the host name, so ranks can log apart.
std::string expand_log_path(const char *pattern) {
  std::string out;
  for (const char *p = pattern; *p; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      out += std::to_string(getpid()), ++p;
    } else if (p[0] == '%' && p[1] == 'h') {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      out += host, ++p;
    } else {
      out += *p;
    }
  }
  return out;
}

struct LogSink {
  plx_log_level threshold = parse_level(std::getenv("PLEXUS_LOG_LEVEL"));
  std::FILE *file = stderr;
  std::mutex mutex;
  LogSink() {
    const char *path = secure_env("PLEXUS_LOG_FILE");
    if (path == nullptr || *path == '\0') return;
    if (std::FILE *f = std::fopen(expand_log_path(path).c_str(), "ae")) file = f;
    else std::fprintf(stderr, "plexus: cannot open PLEXUS_LOG_FILE '%s'; logging to stderr\n", path);
  }
};

LogSink &sink() {
  static LogSink instance;
  return instance;
}

int32_t log_enabled(plx_log_level level) { return level <= sink().threshold ? 1 : 0; }

void log_line(plx_log_level level, const char *component, const char *message) {
  LogSink &s = sink();
  if (level > s.threshold) return;
  const auto now = std::chrono::system_clock::now();
  const std::string line = fmt::format("[plexus {:%H:%M:%S} pid {} {} {}] {}\n", now, getpid(),
                                       component ? component : "loader",
                                       level >= 0 && level < 5 ? level_names[level] : "?",
                                       message ? message : "");
  std::lock_guard lock(s.mutex);
  std::fputs(line.c_str(), s.file);
  std::fflush(s.file);
}

struct ParamRegistry {
  std::mutex mutex;
  std::map<std::string, std::vector<plx_param_decl>> by_plugin;
  std::set<std::string> interned;  // values handed out live as long as the process
};

ParamRegistry &registry() {
  static ParamRegistry instance;
  return instance;
}

const plx_param_decl *find_decl(const std::vector<plx_param_decl> &decls, const char *name) {
  for (const plx_param_decl &d : decls)
    if (std::strcmp(d.name, name) == 0) return &d;
  return nullptr;
}

const char *param_get(const char *plugin, const char *param) {
  if (param == nullptr) return nullptr;
  ParamRegistry &r = registry();
  std::lock_guard lock(r.mutex);
  const std::vector<plx_param_decl> *decls = &loader_params();
  if (plugin != nullptr) {
    auto it = r.by_plugin.find(plugin);
    if (it == r.by_plugin.end()) return nullptr;
    decls = &it->second;
  }
  const plx_param_decl *decl = find_decl(*decls, param);
  if (decl == nullptr) return nullptr;
  const char *value = std::getenv(param_env_name(plugin, param).c_str());
  if (value == nullptr) value = decl->default_value;
  return value ? r.interned.insert(value).first->c_str() : nullptr;
}

plx_status set_error(plx_status status, const char *message) {
  return set_last_error(status, message);
}

const plx_host_services services_table = {sizeof(plx_host_services), 0, log_line, log_enabled,
                                          set_error, param_get};

const plx_host_info info_table = {sizeof(plx_host_info), PLX_PLUGIN_ABI_MAJOR,
                                  PLX_PLUGIN_ABI_MINOR, 1, 0, 0, &services_table,
                                  PLEXUS_VERSION};

// The loader's own copy of core reports through the same services.
[[maybe_unused]] const bool core_wired = [] {
  core::set_services(&services_table, "loader");
  return true;
}();

int32_t timeout_param(const char *name, int32_t fallback) {
  const char *text = param_get(nullptr, name);
  const auto value = text ? core::parse_int(text) : std::nullopt;
  if (!value || *value < -1 || *value > INT32_MAX || *value == 0) {
    if (text) log_line(PLX_LOG_WARN, "loader", fmt::format("PLEXUS_{}='{}' is not a timeout in ms "
                       "(a positive integer or -1); using {}", name, text, fallback).c_str());
    return fallback;
  }
  return static_cast<int32_t>(*value);
}

}  // namespace

const plx_host_services *host_services() { return &services_table; }
const plx_host_info *host_info() { return &info_table; }

std::string param_env_name(const char *plugin, const char *param) {
  std::string name = "PLEXUS_";
  for (const char *p = plugin; p && *p; ++p)
    name += (*p == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
  if (plugin) name += '_';
  return name + param;
}

void declare_plugin_params(const char *plugin, const plx_param_decl *params, uint32_t count) {
  ParamRegistry &r = registry();
  std::lock_guard lock(r.mutex);
  if (r.by_plugin.count(plugin)) return;
  std::vector<plx_param_decl> &decls = r.by_plugin[plugin];
  for (uint32_t i = 0; params && i < count; ++i)
    if (params[i].name) decls.push_back(params[i]);
}

const std::vector<plx_param_decl> &loader_params() {
  static const std::vector<plx_param_decl> table = {
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "BACKEND", "auto",
       "Ordered comma list of plugin names or absolute paths, 'auto', or '^a,b' (auto without a, b)."},
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "PLUGIN_PATH", "",
       "Colon list of folders searched for plugins; replaces the default search."},
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "LOG_LEVEL", "warn",
       "error, warn, info, debug or trace."},
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "LOG_FILE", "",
       "Write log lines to this file instead of stderr (%p: pid, %h: host name)."},
      {sizeof(plx_param_decl), PLX_PARAM_INT, "TIMEOUT_MS", "60000",
       "A collective's wait for its peers before PLX_ERR_TIMEOUT; -1 waits forever."},
      {sizeof(plx_param_decl), PLX_PARAM_INT, "INIT_TIMEOUT_MS", "60000",
       "plx_comm_init's wait for every rank to join; -1 waits forever."},
      {sizeof(plx_param_decl), PLX_PARAM_DOUBLE, "DEFRAG_THRESHOLD", "0.30",
       "Fragmentation (1 - largest free block / free bytes) above which pools defragment."},
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "TUNE", "",
       "auto's routing table, 'OP[@KIND]:RANGE:BACKEND;...' (docs/auto.md); '+BACKEND' adds a backend."},
      {sizeof(plx_param_decl), PLX_PARAM_STRING, "TUNING_FILE", "",
       "Where auto keeps measured tables (default $XDG_CACHE_HOME or ~/.cache/plexus/tuning.txt); 'none': never measure."},
      {sizeof(plx_param_decl), PLX_PARAM_INT, "AUTO_HOSTS", "0",
       "Hosts the job spans, for auto; 0 reads the launcher's variables (Open MPI, MPICH, torchrun, Slurm)."},
  };
  return table;
}

int32_t default_timeout_ms() { return timeout_param("TIMEOUT_MS", 60000); }
int32_t default_init_timeout_ms() { return timeout_param("INIT_TIMEOUT_MS", 60000); }

const char *secure_env(const char *name) { return secure_getenv(name); }

}  // namespace plexus::loader

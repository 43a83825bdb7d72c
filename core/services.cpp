#include "core/services.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace plexus::core {
namespace {

thread_local std::string default_error;

plx_log_level default_threshold() {
  static const plx_log_level level = [] {
    const char *v = std::getenv("PLEXUS_LOG_LEVEL");
    if (v == nullptr) return PLX_LOG_WARN;
    static const char *names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; ++i)
      if (std::strcmp(v, names[i]) == 0) return static_cast<plx_log_level>(i);
    return PLX_LOG_WARN;
  }();
  return level;
}

int32_t default_log_enabled(plx_log_level level) { return level <= default_threshold() ? 1 : 0; }

void default_log(plx_log_level level, const char *plugin, const char *message) {
  if (default_log_enabled(level)) std::fprintf(stderr, "plexus %s: %s\n", plugin ? plugin : "core", message);
}

plx_status default_set_error(plx_status status, const char *message) {
  default_error = message ? message : "";
  return status;
}

const char *default_param_get(const char *, const char *) { return nullptr; }

const plx_host_services default_services = {sizeof(plx_host_services), 0, default_log,
                                             default_log_enabled, default_set_error,
                                             default_param_get};

// Stored again by every backend_init, maybe on several threads at once.
std::atomic<const plx_host_services *> current{&default_services};
std::atomic<const char *> current_component{"core"};

}  // namespace

void set_services(const plx_host_services *services, const char *component) {
  current = services ? services : &default_services;
  current_component = component ? component : "core";
}

const plx_host_services &services() { return *current.load(std::memory_order_acquire); }
const char *component() { return current_component.load(std::memory_order_acquire); }
const std::string &default_last_error() { return default_error; }

}  // namespace plexus::core

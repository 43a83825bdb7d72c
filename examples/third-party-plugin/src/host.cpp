#include "host.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace example_shm {
namespace {

// Every backend open stores it again, possibly on several threads at once.
std::atomic<const plx_host_services *> host_services{nullptr};

void format_message(char *text, size_t size, const char *format, va_list args) {
  const int used = std::snprintf(text, size, "%s: ", kName);
  std::vsnprintf(text + used, size - static_cast<size_t>(used), format, args);
}

}  // namespace

void set_services(const plx_host_services *s) { host_services.store(s, std::memory_order_release); }
const plx_host_services *services() { return host_services.load(std::memory_order_acquire); }

plx_status fail(plx_status status, const char *format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  format_message(text, sizeof(text), format, args);
  va_end(args);
  return services()->set_error(status, text);
}

void log(plx_log_level level, const char *format, ...) {
  if (!services()->log_enabled(level)) return;
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  services()->log(level, kName, text);  // the loader adds the name, pid and time
}

uint64_t param_bytes(const char *name, uint64_t fallback, uint64_t low, uint64_t high) {
  const char *text = services()->param_get(kName, name);
  char *end = nullptr;
  const unsigned long long value = text ? std::strtoull(text, &end, 10) : 0;
  const char *suffixes = "KMG";
  uint64_t scale = 1;
  if (end != nullptr && *end != '\0' && end[1] == '\0')
    for (int k = 0; k < 3; ++k)
      if (*end == suffixes[k]) scale = 1ull << (10 * (k + 1)), ++end;
  const uint64_t bytes = value * scale;
  if (text == nullptr || end == text || *end != '\0' || bytes < low || bytes > high) {
    log(PLX_LOG_WARN, "%s='%s' is not a size in %llu..%llu bytes; using %llu", name, text ? text : "",
        static_cast<unsigned long long>(low), static_cast<unsigned long long>(high),
        static_cast<unsigned long long>(fallback));
    return fallback;
  }
  return bytes;
}

}  // namespace example_shm

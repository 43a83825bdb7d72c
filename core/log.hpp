// Logging through the host services: the loader filters by PLEXUS_LOG_LEVEL
// and writes to stderr or PLEXUS_LOG_FILE. Formatting is skipped when the
// level is off.
#pragma once

#include <fmt/format.h>

#include "core/services.hpp"

namespace plexus::core {

template <typename... Args>
void log(plx_log_level level, fmt::format_string<Args...> format, Args &&...args) {
  const plx_host_services &s = services();
  if (!s.log_enabled(level)) return;
  s.log(level, component(), fmt::format(format, std::forward<Args>(args)...).c_str());
}

#define PLEXUS_CORE_LOG_FN(fn, level)                                  \
  template <typename... Args>                                          \
  void fn(fmt::format_string<Args...> format, Args &&...args) {        \
    log(level, format, std::forward<Args>(args)...);                   \
  }
PLEXUS_CORE_LOG_FN(log_error, PLX_LOG_ERROR)
PLEXUS_CORE_LOG_FN(log_warn, PLX_LOG_WARN)
PLEXUS_CORE_LOG_FN(log_info, PLX_LOG_INFO)
PLEXUS_CORE_LOG_FN(log_debug, PLX_LOG_DEBUG)
PLEXUS_CORE_LOG_FN(log_trace, PLX_LOG_TRACE)
#undef PLEXUS_CORE_LOG_FN

}  // namespace plexus::core

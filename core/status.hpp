// Status helpers: every failure in plexus goes through fail(), which sets the
// thread's last-error message (through the host services) and returns the
// status, so that `return fail(PLX_ERR_TIMEOUT, "...")` reports and returns.
#pragma once

#include <fmt/format.h>

#include <string_view>

#include "core/services.hpp"
#include "plexus/types.h"

namespace plexus::core {

// "PLX_ERR_TIMEOUT"; "PLX_ERR_<unknown>" for a code outside the table.
const char *status_name(plx_status status);

// Reports `message` as the thread's last error and returns status.
plx_status fail_message(plx_status status, const std::string &message);

// The message of this thread's most recent fail() in this copy of core, so
// a plugin can pass it on (to its peers, into a sticky state).
const std::string &last_message();

template <typename... Args>
plx_status fail(plx_status status, fmt::format_string<Args...> format, Args &&...args) {
  return fail_message(status, fmt::format(format, std::forward<Args>(args)...));
}

// PLX_ERR_SYSTEM (PLX_ERR_OUT_OF_MEMORY for ENOMEM/ENOSPC) with
// "<what>: <strerror(err)>".
plx_status fail_errno(int err, std::string_view what);

// True for the codes after which a communicator is unusable (sticky).
inline bool is_sticky(plx_status status) {
  return status == PLX_ERR_TIMEOUT || status == PLX_ERR_PEER_LOST || status == PLX_ERR_ABORTED;
}

}  // namespace plexus::core

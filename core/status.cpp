#include "core/status.hpp"

#include <cerrno>
#include <cstring>

namespace plexus::core {

namespace {
thread_local std::string last;
}  // namespace

plx_status fail_message(plx_status status, const std::string &message) {
  last = message;
  return services().set_error(status, message.c_str());
}

const std::string &last_message() { return last; }

const char *status_name(plx_status status) {
  switch (status) {
    case PLX_OK: return "PLX_OK";
    case PLX_IN_PROGRESS: return "PLX_IN_PROGRESS";
    case PLX_ERR_INVALID_ARGUMENT: return "PLX_ERR_INVALID_ARGUMENT";
    case PLX_ERR_INVALID_USAGE: return "PLX_ERR_INVALID_USAGE";
    case PLX_ERR_UNSUPPORTED: return "PLX_ERR_UNSUPPORTED";
    case PLX_ERR_NOT_FOUND: return "PLX_ERR_NOT_FOUND";
    case PLX_ERR_INCOMPATIBLE_ABI: return "PLX_ERR_INCOMPATIBLE_ABI";
    case PLX_ERR_OUT_OF_MEMORY: return "PLX_ERR_OUT_OF_MEMORY";
    case PLX_ERR_TIMEOUT: return "PLX_ERR_TIMEOUT";
    case PLX_ERR_PEER_LOST: return "PLX_ERR_PEER_LOST";
    case PLX_ERR_ABORTED: return "PLX_ERR_ABORTED";
    case PLX_ERR_DEVICE: return "PLX_ERR_DEVICE";
    case PLX_ERR_SYSTEM: return "PLX_ERR_SYSTEM";
    case PLX_ERR_REMOTE: return "PLX_ERR_REMOTE";
    case PLX_ERR_INTERNAL: return "PLX_ERR_INTERNAL";
    default: return "PLX_ERR_<unknown>";
  }
}

plx_status fail_errno(int err, std::string_view what) {
  const plx_status status =
      (err == ENOMEM || err == ENOSPC) ? PLX_ERR_OUT_OF_MEMORY : PLX_ERR_SYSTEM;
  return fail(status, "{}: {} (errno {})", what, std::strerror(err), err);
}

}  // namespace plexus::core

#include "plugins/nccl/nccl_status.hpp"

#include <cstdio>

#include "core/status.hpp"

namespace plexus::nccl {

plx_status status_of(ncclResult_t result, NcclPhase phase) {
  switch (result) {
    case ncclUnhandledCudaError: return PLX_ERR_DEVICE;
    case ncclSystemError: return phase == NcclPhase::running ? PLX_ERR_PEER_LOST : PLX_ERR_SYSTEM;
    case ncclRemoteError: return phase == NcclPhase::running ? PLX_ERR_PEER_LOST : PLX_ERR_REMOTE;
    case ncclInvalidArgument: return PLX_ERR_INVALID_ARGUMENT;
    case ncclInvalidUsage: return PLX_ERR_INVALID_USAGE;
    case ncclInternalError: return PLX_ERR_INTERNAL;
    default: return PLX_ERR_INTERNAL;
  }
}

plx_status fail_nccl(ncclResult_t result, ncclComm_t comm, std::string_view what, NcclPhase phase) {
  const char *detail = ncclGetLastError(comm);
  return core::fail(status_of(result, phase), "nccl: {} failed: {}{}{}", what,
                    ncclGetErrorString(result), detail && *detail ? ": " : "", detail ? detail : "");
}

void format_nccl_version(int code, char *out, size_t capacity) {
  // NCCL_VERSION(): X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z after.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code % 10000 / 100 : code % 1000 / 100;
  std::snprintf(out, capacity, "%d.%d.%d", major, minor, code % 100);
}

}  // namespace plexus::nccl

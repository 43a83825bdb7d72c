// NCCL results as plexus statuses, with NCCL's own words in the message.
#pragma once

#include <nccl.h>

#include <string_view>

#include "plexus/types.h"

namespace plexus::nccl {

// Where a result came from decides what a network or system error means:
// while joining (init, split) it is the caller's set-up (an address that
// cannot be reached); on a live communicator it is a peer that went away.
enum class NcclPhase { setup, running };

// The plexus status of an NCCL result (never ncclSuccess/ncclInProgress).
plx_status status_of(ncclResult_t result, NcclPhase phase);

// Reports "nccl: <what> failed: <ncclGetErrorString>: <ncclGetLastError>"
// (comm may be NULL) with status_of(result) and returns that status.
plx_status fail_nccl(ncclResult_t result, ncclComm_t comm, std::string_view what, NcclPhase phase);

// "2.28.9" from an NCCL version code (both encodings NCCL has used).
void format_nccl_version(int code, char *out, size_t capacity);

}  // namespace plexus::nccl

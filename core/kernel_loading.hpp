// Every kernel of a plugin loaded when a communicator is created, not at
// its first launch. Since CUDA 12.2 the runtime loads each kernel lazily,
// at its first launch, and a load may wait for the whole context to go
// idle. A collective kernel spins until its peers' kernels run; when a
// rank's first launch of some kernel is a lazy load while its previous
// kernel spins for a peer in the same context (ranks as threads of one
// process, two of them on one GPU), the load waits for the spinning kernel
// and holds up the peer's launch that kernel waits for: both ranks hang
// until the communicator's timeout. NCCL touches every kernel at init too.
// A launch that needs more local memory than the context reserved waits for
// the context the same way, so loading also reserves what the kernels need.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "plexus/types.h"

namespace plexus::core {

// Loads, on the current device's context, every kernel of the modules that
// hold `anchors` (one kernel's address from each .cu file: a file is a
// module), raises the context's stack limit (cudaLimitStackSize) to the most
// local memory a thread of one of them needs where it is lower, and logs at
// debug level, as `who`, how many it loaded, in what time and how the device
// memory in use grew (the GPU's, other processes' changes included); kernels
// already loaded cost two queries each. PLX_OK without loading anything or
// touching the limit when the driver predates CUDA 12.4's module
// enumeration (logged: its kernels then still load lazily); PLX_ERR_DEVICE
// naming the driver or runtime call that failed.
plx_status load_kernels(std::span<const void *const> anchors, std::string_view who);

// The kernels of those modules on the current device, and how many of them
// are not loaded yet (the tests' view of load_kernels). UNSUPPORTED when
// the driver predates the enumeration.
struct KernelCount {
  int total = 0;
  int unloaded = 0;
  size_t local_bytes_max = 0;  // the most local memory a thread of a loaded one needs
};
plx_status count_kernels(std::span<const void *const> anchors, KernelCount *count);

}  // namespace plexus::core

// The two things auto's composite needs from CUDA, without linking it: is a
// pointer device memory (to route a call made with stream NULL, as
// PyTorch's default stream is), and wait for a device (to time device
// collectives when measuring the table). The driver (libcuda.so.1) is
// opened on first use with dlopen; only composites with a device member get
// here, and their plugins have initialised CUDA already. Without a driver
// every pointer is host memory and synchronising is unsupported.
#pragma once

#include <cstdint>

#include "plexus/types.h"

namespace plexus::loader::cuda_driver {

bool available();

// True for device and managed memory; false for host memory of any kind
// (malloc, pinned, shared) and without a driver.
bool is_device_pointer(const void *ptr);

// Waits for all work on the device's primary context (CUDA ordinal as the
// plugins see it). PLX_ERR_UNSUPPORTED without a driver, PLX_ERR_DEVICE
// when the driver fails.
plx_status synchronize(int32_t device);

}  // namespace plexus::loader::cuda_driver

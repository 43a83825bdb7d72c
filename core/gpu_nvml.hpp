// NVLink as NVML sees it. NVML is loaded at run time (dlopen of
// libnvidia-ml.so.1, the driver's copy) with the few declarations plexus
// needs written out in gpu_nvml.cpp, so building needs no nvml.h and a
// machine without the driver only loses the NVLink counts.
#pragma once

#include <string>
#include <vector>

#include "core/gpu_pci.hpp"

namespace plexus::core {

struct NvmlLinks {
  bool used = false;        // the links below are NVML's answer
  std::string description;  // "NVML <driver version>", or why NVML was not used
  // Per GPU (in the order asked), its active NVLinks.
  std::vector<std::vector<NvlinkEndpoint>> active;
};

// The active NVLinks of each GPU at `addresses`. Never fails: without NVML,
// or when NVML does not know one of the GPUs, used is false and
// description says why.
NvmlLinks read_nvlinks(const std::vector<PciAddress> &addresses);

}  // namespace plexus::core

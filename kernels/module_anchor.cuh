// The name of a .cu file's module: PLEXUS_KERNEL_MODULE(copy), once at the
// file's end, defines an empty kernel and kernels::copy_module() returning
// its address (modules.hpp), from which core::load_kernels finds and loads
// every kernel of the file (a .cu file is one module) when a communicator
// is created rather than at each kernel's first launch.
#pragma once

#include <cuda_runtime.h>

#define PLEXUS_KERNEL_MODULE(name)                                                                         \
  namespace plexus::kernels {                                                                               \
  __global__ void name##_module_anchor() {}                                                                 \
  const void *name##_module() { return reinterpret_cast<const void *>(&name##_module_anchor); }             \
  }

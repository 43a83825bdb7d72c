// One kernel launch through cudaLaunchKernelEx, with or without
// programmatic dependent launch (PDL, sm_90+): the plugins' kernels and
// plexus-bench-launch's probes launch alike.
#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace plexus::kernels::device {

// kernel<<<blocks, threads, 0, stream>>>(args...); `dependent`: the grid may
// start before the previous kernel on the stream ends (it must wait for it
// with griddepcontrol.wait before touching that kernel's memory).
template <class... Expected, class... Actual>
cudaError_t launch_kernel(void (*kernel)(Expected...), unsigned blocks, unsigned threads, bool dependent,
                          cudaStream_t stream, Actual &&...args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(threads);
  config.stream = stream;
  cudaLaunchAttribute serialization = {};
  serialization.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  serialization.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &serialization;
  config.numAttrs = dependent ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Actual>(args)...);
}

}  // namespace plexus::kernels::device

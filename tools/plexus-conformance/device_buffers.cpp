// device.hpp with the CUDA runtime (linked statically through
// core_cuda_dep; the driver is found at run time, so the kit still starts,
// and says "no CUDA device", on machines without one).
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "core/cuda_status.hpp"
#include "device.hpp"

namespace plexus::conformance::device {
namespace {

cudaStream_t as_stream(void *stream) { return static_cast<cudaStream_t>(stream); }

// false with "<what>: <cudaErrorName>: <message>"; clears CUDA's last error.
bool failed(cudaError_t err, std::string_view what, std::string *error) {
  (void)cudaGetLastError();
  if (error) *error = fmt::format("{}: {}: {}", what, cudaGetErrorName(err), cudaGetErrorString(err));
  return false;
}

}  // namespace

bool built() { return true; }

int gpu_count(std::string *why) {
  int count = 0;
  if (core::require_cuda_device(&count) != PLX_OK) {
    if (why) *why = core::last_message();
    return 0;
  }
  return count;
}

bool select(int ordinal, std::string *error) {
  if (const cudaError_t err = cudaSetDevice(ordinal); err != cudaSuccess)
    return failed(err, fmt::format("cudaSetDevice({})", ordinal), error);
  if (const cudaError_t err = cudaFree(nullptr); err != cudaSuccess)  // creates the primary context
    return failed(err, fmt::format("creating the context of GPU {}", ordinal), error);
  return true;
}

void *create_stream(std::string *error) {
  cudaStream_t stream = nullptr;
  if (const cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); err != cudaSuccess)
    return failed(err, "cudaStreamCreateWithFlags(cudaStreamNonBlocking)", error), nullptr;
  return stream;
}

void destroy_stream(void *stream) {
  if (stream) (void)cudaStreamDestroy(as_stream(stream));
}

void *allocate(plx_mem_kind kind, uint64_t bytes, std::string *error) {
  void *ptr = nullptr;
  const cudaError_t err = kind == PLX_MEM_DEVICE ? cudaMalloc(&ptr, bytes)
                                                 : cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
  if (err != cudaSuccess)
    return failed(err, fmt::format("{} of {} bytes", kind == PLX_MEM_DEVICE ? "cudaMalloc" : "cudaHostAlloc", bytes),
                  error),
           nullptr;
  return ptr;
}

bool release(plx_mem_kind kind, void *ptr, void *stream) {
  if (ptr == nullptr) return true;
  if (stream && cudaStreamQuery(as_stream(stream)) == cudaErrorNotReady) return false;
  (void)(kind == PLX_MEM_DEVICE ? cudaFree(ptr) : cudaFreeHost(ptr));
  (void)cudaGetLastError();
  return true;
}

bool copy(void *dst, const void *src, uint64_t bytes, void *stream, std::string *error) {
  if (bytes == 0) return true;
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, as_stream(stream));
  return err == cudaSuccess || failed(err, fmt::format("cudaMemcpyAsync of {} bytes", bytes), error);
}

bool fill(void *dst, uint8_t value, uint64_t bytes, void *stream, std::string *error) {
  const cudaError_t err = cudaMemsetAsync(dst, value, bytes, as_stream(stream));
  return err == cudaSuccess || failed(err, fmt::format("cudaMemsetAsync of {} bytes", bytes), error);
}

int query(void *stream, std::string *error) {
  const cudaError_t err = cudaStreamQuery(as_stream(stream));
  if (err == cudaSuccess) return 1;
  if (err == cudaErrorNotReady) return 0;
  return failed(err, "cudaStreamQuery", error), -1;
}

bool synchronize(void *stream, std::string *error) {
  const cudaError_t err = cudaStreamSynchronize(as_stream(stream));
  return err == cudaSuccess || failed(err, "cudaStreamSynchronize", error);
}

}  // namespace plexus::conformance::device

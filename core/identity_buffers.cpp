// Identity buffers for ranks that contribute nothing (identity_buffers.hpp).
#include "core/identity_buffers.hpp"

#include <cuda_runtime_api.h>

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "core/cuda_status.hpp"
#include "core/dtype.hpp"
#include "core/names.hpp"

namespace plexus::core {
namespace {

// A buffer is filled from one host block of this size, and is never smaller.
constexpr uint64_t kBlockBytes = 64 << 10;

// Twice what was there (a run of growing calls allocates log2 times), in
// whole blocks.
uint64_t grown_bytes(uint64_t need, uint64_t had) {
  const uint64_t bytes = std::max({need, 2 * had, kBlockBytes});
  return (bytes + kBlockBytes - 1) / kBlockBytes * kBlockBytes;
}

// While this thread captures a stream into a graph (global mode), CUDA
// refuses cudaMalloc and stream synchronisation, and the refusal ends the
// capture; relaxed mode allows them for the scope.
class RelaxedCapture {
 public:
  RelaxedCapture() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  ~RelaxedCapture() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCapture(const RelaxedCapture &) = delete;
  RelaxedCapture &operator=(const RelaxedCapture &) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

// Fills `bytes` (whole blocks) at dst with `pattern`: one host block copied
// in, then doubled on the device, on a stream of its own that is never
// captured, and waited for.
plx_status fill(void *dst, uint64_t bytes, uint64_t pattern) {
  const std::vector<uint64_t> block(kBlockBytes / sizeof(uint64_t), pattern);
  cudaStream_t stream = nullptr;
  PLX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto *d = static_cast<char *>(dst);
  cudaError_t err = cudaMemcpyAsync(d, block.data(), kBlockBytes, cudaMemcpyHostToDevice, stream);
  for (uint64_t done = kBlockBytes; err == cudaSuccess && done < bytes; done *= 2)
    err = cudaMemcpyAsync(d + done, d, std::min(done, bytes - done), cudaMemcpyDeviceToDevice, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  return err == cudaSuccess ? PLX_OK : fail_cuda(err, "filling an identity buffer");
}

}  // namespace

IdentityBuffers::~IdentityBuffers() {
  if (current_.empty()) return;
  ScopedDevice device(device_);
  for (const Buffer &b : current_) cudaFree(b.ptr);
  for (const Buffer &b : retired_) cudaFree(b.ptr);
}

plx_status IdentityBuffers::make(uint64_t pattern, uint64_t bytes, Buffer *made) {
  ScopedDevice device(device_);
  if (device.status() != PLX_OK) return device.status();
  RelaxedCapture relaxed;
  void *ptr = nullptr;
  if (const cudaError_t err = cudaMalloc(&ptr, bytes); err != cudaSuccess)
    return fail_cuda(err, fmt::format("cudaMalloc of {} bytes for an identity buffer", bytes));
  if (plx_status s = fill(ptr, bytes, pattern)) {
    cudaFree(ptr);
    return s;
  }
  *made = {pattern, bytes, ptr};
  return PLX_OK;
}

plx_status IdentityBuffers::get(plx_dtype dtype, plx_reduce_op op, uint64_t count, const void **out) {
  uint64_t pattern = 0;
  if (!identity_pattern(dtype, op, &pattern))
    return fail(PLX_ERR_INVALID_ARGUMENT, "identity buffer: dtype {} or op {} is unknown", dtype, op);
  const uint64_t need = count * kDtypeBytes[dtype];
  auto it = std::find_if(current_.begin(), current_.end(), [&](const Buffer &b) { return b.pattern == pattern; });
  if (it != current_.end() && it->bytes >= need) [[likely]] {
    *out = it->ptr;
    return PLX_OK;
  }
  Buffer made{};
  if (plx_status s = make(pattern, grown_bytes(need, it == current_.end() ? 0 : it->bytes), &made)) return s;
  if (it == current_.end()) {
    current_.push_back(made);
  } else {
    retired_.push_back(*it);
    *it = made;
  }
  *out = made.ptr;
  return PLX_OK;
}

uint64_t IdentityBuffers::bytes_held() const {
  uint64_t bytes = 0;
  for (const Buffer &b : current_) bytes += b.bytes;
  for (const Buffer &b : retired_) bytes += b.bytes;
  return bytes;
}

plx_status stand_in_for_absent_rank(IdentityBuffers &buffers, const plx_coll_desc &desc, int32_t nranks,
                                    const char *plugin, plx_coll_options *options, plx_coll_desc *stand_in) {
  if (!is_reduction(desc.coll))
    return fail(PLX_ERR_UNSUPPORTED, "{}: PLX_COLL_FLAG_NO_CONTRIBUTION applies to all-reduce, reduce and "
                "reduce-scatter, not to {}", plugin, coll_name(desc.coll));
  const uint64_t count = desc.coll == PLX_COLL_REDUCE_SCATTER ? desc.count * static_cast<uint64_t>(nranks) : desc.count;
  const void *identity = nullptr;
  if (count > 0)
    if (plx_status s = buffers.get(desc.dtype, desc.op, count, &identity)) return s;
  *options = *desc.options;
  options->flags &= ~PLX_COLL_FLAG_NO_CONTRIBUTION;
  *stand_in = desc;
  stand_in->send = identity;
  stand_in->options = options;
  return PLX_OK;
}

}  // namespace plexus::core

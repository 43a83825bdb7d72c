#include "buffers.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "device.hpp"

namespace plexus::conformance {
namespace {

// Bytes from `from` up to `end` that are not the poison, counted from the
// side nearest the data: the distance an overrun or underrun reached.
uint64_t poisoned_run(const uint8_t *p, uint64_t length, bool from_start) {
  for (uint64_t k = 0; k < length; ++k) {
    const uint8_t b = from_start ? p[k] : p[length - 1 - k];
    if (b != Buffer::kPoison) return length - k;
  }
  return 0;
}

}  // namespace

Buffer::Buffer(plx_comm_h comm, MemSource source, uint64_t bytes, uint64_t offset, void *stream)
    : comm_(comm), source_(source), stream_(stream), bytes_(bytes), offset_(offset) {
  total_ = (kGuard + offset + bytes + kGuard + 255) / 256 * 256;
  allocate();
  if (status_ == PLX_OK && is_device_memory(source_.kind)) {
    image_ = static_cast<uint8_t *>(std::aligned_alloc(256, total_));
    if (image_ == nullptr)
      status_ = PLX_ERR_OUT_OF_MEMORY, error_ = fmt::format("malloc of {} bytes (host image) failed", total_);
  } else {
    image_ = base_;
  }
  if (image_ != nullptr) std::memset(image_, kPoison, total_);
}

void Buffer::allocate() {
  if (source_.pool) {
    plx_mem_alloc_params params{sizeof(plx_mem_alloc_params), source_.kind, total_, 256, 0, 0};
    void *p = nullptr;
    status_ = plx_mem_alloc(comm_, &params, &p);
    if (status_ != PLX_OK) error_ = fmt::format("plx_mem_alloc of {} bytes: {}", total_, plx_last_error());
    base_ = static_cast<uint8_t *>(p);
  } else if (source_.kind == PLX_MEM_HOST) {
    base_ = static_cast<uint8_t *>(std::aligned_alloc(256, total_));
    if (base_ == nullptr)
      status_ = PLX_ERR_OUT_OF_MEMORY, error_ = fmt::format("malloc of {} bytes failed", total_);
  } else {
    base_ = static_cast<uint8_t *>(device::allocate(source_.kind, total_, &error_));
    if (base_ == nullptr) status_ = PLX_ERR_OUT_OF_MEMORY;
  }
}

Buffer::~Buffer() {
  if (image_ != base_) std::free(image_);
  if (base_ == nullptr) return;
  if (source_.pool)
    plx_mem_free(comm_, base_);
  else if (source_.kind == PLX_MEM_HOST)
    std::free(base_);
  else
    device::release(source_.kind, base_, stream_);
}

bool Buffer::upload() {
  if (image_ == base_) return true;
  if (device::copy(base_, image_, total_, stream_, &error_)) return true;
  status_ = PLX_ERR_DEVICE;
  return false;
}

bool Buffer::download() {
  if (image_ == base_) return true;
  if (device::copy(image_, base_, total_, stream_, &error_) && device::synchronize(stream_, &error_)) return true;
  status_ = PLX_ERR_DEVICE;
  return false;
}

std::string Buffer::guard_damage() const {
  const uint64_t before = kGuard + offset_, after = total_ - before - bytes_;
  // An underrun reaches back from the data, an overrun forward from its end.
  if (const uint64_t n = poisoned_run(image_, before, true))
    return fmt::format("{} bytes before the buffer were overwritten", n);
  if (const uint64_t n = poisoned_run(data() + bytes_, after, false))
    return fmt::format("{} bytes past the end of the buffer were overwritten", n);
  return {};
}

bool Buffer::untouched(uint64_t from, uint64_t length) const {
  const uint8_t *p = data() + from;
  for (uint64_t k = 0; k < length; ++k)
    if (p[k] != kPoison) return false;
  return true;
}

}  // namespace plexus::conformance

// Test buffers: the data sits `offset` bytes past a 256-byte boundary (so a
// few bytes of offset break 16-byte alignment) between two guard zones, and
// every byte starts as the poison 0xA5, so an output that is not written,
// or written past its end, shows.
//
// Device memory has a host image of the whole buffer, guards included:
// inputs are written to the image, upload() copies it to the device before
// the call, download() copies it back after, and every check reads the
// image. Host, shared and pinned memory is its own image.
#pragma once

#include <cstdint>
#include <string>

#include "memory_kinds.hpp"
#include "plexus/plexus.h"

namespace plexus::conformance {

class Buffer {
 public:
  static constexpr uint8_t kPoison = 0xA5;
  static constexpr uint64_t kGuard = 256;

  // From the communicator's pool of that kind (plx_mem_alloc) when
  // source.pool, else the kit's: the C library for host memory, CUDA for
  // pinned-host and device memory, whose copies go on `stream`.
  Buffer(plx_comm_h comm, MemSource source, uint64_t bytes, uint64_t offset, void *stream);
  ~Buffer();
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;

  // PLX_OK, or why the memory could not be had (message in error()).
  plx_status status() const { return status_; }
  const std::string &error() const { return error_; }
  // The host image of the data (see above).
  uint8_t *data() const { return image_ + kGuard + offset_; }
  uint64_t bytes() const { return bytes_; }
  // The address a collective gets for an address of the image.
  void *target(const void *in_image) const {
    return base_ + (static_cast<const uint8_t *>(in_image) - image_);
  }
  // Device memory: the image to the device (on the stream) and back (after
  // the stream has finished the call; waits). No-ops for host memory.
  bool upload();
  bool download();

  // "" while both guard zones (and the offset bytes) hold the poison, else
  // which side was overwritten and how far.
  std::string guard_damage() const;
  // True when data()[from .. from + length) is still all poison.
  bool untouched(uint64_t from, uint64_t length) const;

 private:
  void allocate();

  plx_comm_h comm_;
  MemSource source_;
  void *stream_;
  uint64_t bytes_, offset_, total_;
  uint8_t *base_ = nullptr;  // the memory the collective gets
  uint8_t *image_ = nullptr;  // base_, or a host copy of device memory
  plx_status status_ = PLX_OK;
  std::string error_;
};

}  // namespace plexus::conformance

// Test buffers: the data sits `offset` bytes past a 256-byte boundary (so a
// few bytes of offset break 16-byte alignment) between two guard zones, and
// every byte starts as the poison 0xA5, so an output that is not written,
// or written past its end, shows.
#pragma once

#include <cstdint>
#include <string>

#include "plexus/plexus.h"

namespace plexus::conformance {

class Buffer {
 public:
  static constexpr uint8_t kPoison = 0xA5;
  static constexpr uint64_t kGuard = 256;

  // Host memory from the C library for PLX_MEM_HOST, else a block of the
  // communicator's pool of that kind (plx_mem_alloc).
  Buffer(plx_comm_h comm, plx_mem_kind kind, uint64_t bytes, uint64_t offset);
  ~Buffer();
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;

  // PLX_OK, or why the memory could not be had (message in error()).
  plx_status status() const { return status_; }
  const std::string &error() const { return error_; }
  uint8_t *data() const { return base_ + kGuard + offset_; }
  uint64_t bytes() const { return bytes_; }

  // "" while both guard zones (and the offset bytes) hold the poison, else
  // which side was overwritten and how far.
  std::string guard_damage() const;
  // True when data()[from .. from + length) is still all poison.
  bool untouched(uint64_t from, uint64_t length) const;

 private:
  plx_comm_h comm_;
  plx_mem_kind kind_;
  uint64_t bytes_, offset_, total_;
  uint8_t *base_ = nullptr;
  plx_status status_ = PLX_OK;
  std::string error_;
};

}  // namespace plexus::conformance

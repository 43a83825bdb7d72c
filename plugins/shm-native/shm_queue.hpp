// The queue family on shm-native: a single-writer, many-reader ring of byte
// messages in one shared segment (the role of vLLM's MessageQueue and
// ExLlamaV3's shared-memory producer/consumer). The writer appends chunks of
// at most slot_bytes without waiting for readers until the ring is full;
// every reader consumes every message at its own pace. Each reader has its
// own tail, so the writer knows when a slot is free, and a reader that died
// is noticed while the writer waits for its slot (PLX_ERR_PEER_LOST).
#pragma once

#include <memory>

#include "core/shm_segment.hpp"
#include "plugins/shm-native/shm_comm.hpp"

namespace plexus::shm_native {

struct QueueHeader;

class Queue {
 public:
  static plx_status create(Comm &comm, const plx_queue_config &config, std::unique_ptr<Queue> *out);

  plx_status enqueue(const void *msg, uint64_t bytes, int32_t timeout_ms);
  plx_status dequeue(void *buf, uint64_t capacity, uint64_t *bytes, int32_t timeout_ms);

 private:
  Queue(Comm &comm, int32_t writer) : comm_(comm), writer_(writer) {}
  plx_status map(const plx_queue_config &config);
  plx_status open_ring(const char *name);
  uint8_t *chunk(uint32_t index);
  plx_status wait_for_room(int32_t timeout_ms);
  plx_status wait_for_chunk(int32_t timeout_ms);
  plx_status put_chunk(const uint8_t *data, uint32_t bytes, uint64_t message_bytes);

  Comm &comm_;
  int32_t writer_;
  core::ShmSegment segment_;
  QueueHeader *header_ = nullptr;
  uint32_t slot_bytes_ = 0, slot_count_ = 0;
  uint32_t next_ = 0;  // the writer's head, or this reader's tail
};

}  // namespace plexus::shm_native

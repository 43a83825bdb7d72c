#include "plugins/shm-native/shm_queue.hpp"

#include <sys/mman.h>

#include <cstring>
#include <new>

#include "core/status.hpp"
#include "plugins/shm-native/shm_wait.hpp"

namespace plexus::shm_native {

struct ChunkHeader {
  uint32_t bytes;          // payload bytes in this chunk
  uint32_t reserved;
  uint64_t message_bytes;  // the whole message; set in its first chunk
};

struct QueueHeader {
  uint32_t slot_bytes, slot_count;
  Counter head;      // chunks the writer has published
  Counter tails[1];  // chunks each rank has consumed (nranks of them)
};

namespace {

constexpr size_t header_bytes(int32_t nranks) {
  return (sizeof(QueueHeader) + (nranks - 1) * sizeof(Counter) + 4095) / 4096 * 4096;
}

constexpr size_t chunk_stride(uint32_t slot_bytes) {
  return (sizeof(ChunkHeader) + slot_bytes + 63) / 64 * 64;
}

struct QueueName {
  char name[128];
};

}  // namespace

plx_status Queue::create(Comm &comm, const plx_queue_config &config, std::unique_ptr<Queue> *out) {
  std::unique_ptr<Queue> q(new Queue(comm, config.writer_rank));
  if (plx_status s = q->map(config)) return s;
  *out = std::move(q);
  return PLX_OK;
}

// The writer announces the ring's name before it creates the ring; once
// every reader has mapped it, or on a failure, every rank removes the name,
// so nothing of the queue is left in /dev/shm, not even when the writer is
// killed in between.
plx_status Queue::map(const plx_queue_config &config) {
  slot_bytes_ = config.slot_bytes ? static_cast<uint32_t>(config.slot_bytes) : 4096;
  slot_count_ = config.slot_count ? config.slot_count : 64;
  if (config.slot_bytes > (1u << 30) || slot_count_ > (1u << 20))
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "shm-native: slot_bytes {} or slot_count {} is too large: a "
                      "queue slot is at most 1 GiB and a ring at most 2^20 slots", config.slot_bytes, slot_count_);
  QueueName name{};
  if (comm_.rank() == writer_)
    std::strncpy(name.name, core::ShmSegment::make_name("queue").c_str(), sizeof(name.name) - 1);
  std::vector<QueueName> all(comm_.nranks());
  if (plx_status s = comm_.rendezvous().allgather(&name, sizeof(name), all.data(), comm_.timeout_ms())) return s;
  const plx_status s = open_ring(all[writer_].name);
  ::shm_unlink(all[writer_].name);
  segment_.unlink();
  return s;
}

// The writer creates the ring, the readers map it once it exists, and all
// wait until every reader has.
plx_status Queue::open_ring(const char *name) {
  const size_t bytes = header_bytes(comm_.nranks()) + size_t{slot_count_} * chunk_stride(slot_bytes_);
  if (comm_.rank() == writer_) {
    if (plx_status s = core::ShmSegment::create(name, bytes, &segment_)) return comm_.fail_all(s, core::last_message());
    header_ = new (segment_.data()) QueueHeader{slot_bytes_, slot_count_, {}, {}};
    for (int32_t r = 1; r < comm_.nranks(); ++r) new (&header_->tails[r]) Counter();
  }
  if (plx_status s = comm_.rendezvous().barrier(comm_.timeout_ms())) return s;
  if (comm_.rank() != writer_) {
    if (plx_status s = core::ShmSegment::open(name, bytes, &segment_)) {
      // A rank whose barrier failed (abort, a lost peer) removes the name
      // after posting why: that failure is the cause, not the missing name.
      if (plx_status posted = comm_.posted_failure()) return posted;
      return comm_.fail_all(s, core::last_message());
    }
    header_ = static_cast<QueueHeader *>(segment_.data());
  }
  return comm_.rendezvous().barrier(comm_.timeout_ms());
}

uint8_t *Queue::chunk(uint32_t index) {
  return static_cast<uint8_t *>(segment_.data()) + header_bytes(comm_.nranks()) +
         size_t{index % slot_count_} * chunk_stride(slot_bytes_);
}

// Waits on every reader whose tail keeps the next slot busy.
plx_status Queue::wait_for_room(int32_t timeout_ms) {
  const Deadline deadline(timeout_ms);
  for (int32_t r = 0; r < comm_.nranks(); ++r) {
    if (r == writer_) continue;
    const uint32_t needed = next_ - slot_count_ + 1;
    LivenessClock liveness;
    auto check = [&]() -> plx_status {
      if (plx_status s = comm_.posted_failure()) return s;
      // A reader that consumed enough and then left has made room anyway.
      // A poll (timeout 0) looks at once: its caller sets the pace.
      if ((timeout_ms == 0 || liveness.due()) && !comm_.rendezvous().peer_alive(r) &&
          !reached(header_->tails[r].value.load(std::memory_order_acquire), needed))
        return comm_.fail_all(PLX_ERR_PEER_LOST, fmt::format("shm-native queue: reader rank {} died", r));
      if (timeout_ms == 0) return PLX_IN_PROGRESS;
      if (deadline.expired())
        return core::fail(PLX_ERR_TIMEOUT, "shm-native queue: the ring stayed full for {} ms: reader rank {} "
                          "does not consume", timeout_ms, r);
      return PLX_OK;
    };
    if (plx_status s = wait_on(header_->tails[r], comm_.params(),
                               [&](uint32_t tail) { return reached(tail, needed); }, check))
      return s;
  }
  return PLX_OK;
}

plx_status Queue::put_chunk(const uint8_t *data, uint32_t bytes, uint64_t message_bytes) {
  uint8_t *slot = chunk(next_);
  const ChunkHeader h{bytes, 0, message_bytes};
  std::memcpy(slot, &h, sizeof(h));
  if (bytes) std::memcpy(slot + sizeof(h), data, bytes);
  publish_counter(header_->head, ++next_);
  return PLX_OK;
}

plx_status Queue::enqueue(const void *msg, uint64_t bytes, int32_t timeout_ms) {
  if (comm_.rank() != writer_)
    return core::fail(PLX_ERR_INVALID_USAGE, "plx_queue_enqueue: rank {} reads this queue; rank {} writes it",
                      comm_.rank(), writer_);
  const int32_t first_wait = timeout_ms < 0 ? comm_.timeout_ms() : timeout_ms;
  const auto *data = static_cast<const uint8_t *>(msg);
  uint64_t sent = 0;
  do {
    // Only the first chunk may give up at once; the rest of a message started
    // must follow, within the communicator's timeout.
    if (plx_status s = wait_for_room(sent == 0 ? first_wait : comm_.timeout_ms())) return s;
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(slot_bytes_, bytes - sent));
    put_chunk(data + sent, n, bytes);
    sent += n;
  } while (sent < bytes);
  return PLX_OK;
}

plx_status Queue::wait_for_chunk(int32_t timeout_ms) {
  const Deadline deadline(timeout_ms);
  const uint32_t wanted = next_ + 1;
  LivenessClock liveness;
  auto check = [&]() -> plx_status {
    // A poll (timeout 0) only says whether a message is there.
    if (timeout_ms == 0) return PLX_IN_PROGRESS;
    if (plx_status s = comm_.posted_failure()) return s;
    if (liveness.due() && !comm_.rendezvous().peer_alive(writer_) &&
        !reached(header_->head.value.load(std::memory_order_acquire), wanted))
      return comm_.fail_all(PLX_ERR_PEER_LOST, fmt::format("shm-native queue: the writer, rank {}, "
                            "left or died", writer_));
    if (deadline.expired())
      return core::fail(PLX_ERR_TIMEOUT, "shm-native queue: no message from rank {} within {} ms", writer_, timeout_ms);
    return PLX_OK;
  };
  return wait_on(header_->head, comm_.params(), [&](uint32_t head) { return reached(head, wanted); }, check);
}

plx_status Queue::dequeue(void *buf, uint64_t capacity, uint64_t *bytes, int32_t timeout_ms) {
  if (comm_.rank() == writer_)
    return core::fail(PLX_ERR_INVALID_USAGE, "plx_queue_dequeue: rank {} writes this queue", writer_);
  if (plx_status s = wait_for_chunk(timeout_ms < 0 ? comm_.timeout_ms() : timeout_ms)) return s;
  ChunkHeader h;
  std::memcpy(&h, chunk(next_), sizeof(h));
  *bytes = h.message_bytes;
  if (h.message_bytes > capacity)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_queue_dequeue: the next message has {} bytes but "
                      "the buffer only {}; nothing was consumed", h.message_bytes, capacity);
  auto *out = static_cast<uint8_t *>(buf);
  for (uint64_t got = 0;;) {
    std::memcpy(&h, chunk(next_), sizeof(h));
    if (h.bytes) std::memcpy(out + got, chunk(next_) + sizeof(h), h.bytes);
    got += h.bytes;
    publish_counter(header_->tails[comm_.rank()], ++next_);
    if (got >= *bytes) return PLX_OK;
    if (plx_status s = wait_for_chunk(comm_.timeout_ms())) return s;
  }
}

}  // namespace plexus::shm_native

#include "work_memory.hpp"

#include <cstdlib>
#include <cstring>
#include <thread>

#include "device.hpp"
#include "memory_kinds.hpp"

namespace plexus::conformance {
namespace {

// Polls briefly first (most calls finish within microseconds), then
// sleeps a millisecond at a time.
void pause(int round) {
  if (round < 200)
    std::this_thread::sleep_for(std::chrono::microseconds(10));
  else
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

plx_status async_state(plx_comm_h comm) {
  plx_status state = PLX_OK;
  if (plx_status s = plx_comm_async_status(comm, &state)) return s;
  return state;
}

Outcome deferred(plx_status status, Clock::time_point start, std::string detail) {
  return Outcome{status, ms_since(start), true, std::move(detail)};
}

// After the stream finished: the backend's own bookkeeping (events on
// streams of its own) may trail it a little; PLX_IN_PROGRESS for up to a
// second is not yet an answer.
plx_status state_after_stream(plx_comm_h comm) {
  const Clock::time_point done = Clock::now();
  plx_status state = async_state(comm);
  for (int round = 0; state == PLX_IN_PROGRESS && ms_since(done) < 1000; ++round)
    pause(round), state = async_state(comm);
  return state;
}

}  // namespace

std::string Outcome::text() const {
  if (status == PLX_IN_PROGRESS) return detail;
  const std::string name = status == PLX_OK ? "PLX_OK" : plx_status_string(status);
  if (!deferred) return detail.empty() ? name : fmt::format("{} ({})", name, detail);
  return fmt::format("{} after the call returned PLX_OK{}", name, detail.empty() ? "" : " (" + detail + ")");
}

Outcome settle(plx_comm_h comm, plx_status called, Clock::time_point start, void *stream, int32_t max_ms) {
  if (called != PLX_OK || stream == nullptr)
    return Outcome{called, ms_since(start), false, called == PLX_OK ? "" : plx_last_error()};
  for (int round = 0;; ++round) {
    if (const plx_status state = async_state(comm); state < 0)
      return deferred(state, start, "plx_comm_async_status");
    std::string error;
    const int done = device::query(stream, &error);
    if (done < 0) return deferred(PLX_ERR_DEVICE, start, error);
    if (done > 0) {
      const plx_status state = state_after_stream(comm);
      return deferred(state, start,
                      state == PLX_IN_PROGRESS ? "plx_comm_async_status still PLX_IN_PROGRESS 1 s after the "
                                                 "stream finished"
                                               : "plx_comm_async_status once the stream finished");
    }
    if (ms_since(start) > max_ms)
      return deferred(PLX_IN_PROGRESS, start,
                      fmt::format("the stream had not finished the call after {:.0f} ms and "
                                  "plx_comm_async_status reported no error",
                                  ms_since(start)));
    pause(round);
  }
}

Work::Work(plx_mem_kind kind) : kind_(kind) {
  if (kind < 0) error_ = "no memory kind usable for this session";
  if (needs_cuda(kind) && (stream_ = device::create_stream(&error_)) == nullptr && error_.empty())
    error_ = "no stream";
}

Work::~Work() { device::destroy_stream(stream_); }

WorkBuffer::WorkBuffer(const Work &work, uint64_t bytes) : work_(work) {
  if (!work.ok()) {
    error_ = work.error();
    return;
  }
  if (!needs_cuda(work.kind())) {
    ptr_ = std::calloc(bytes, 1);
    if (ptr_ == nullptr) error_ = fmt::format("calloc of {} bytes failed", bytes);
    return;
  }
  ptr_ = device::allocate(work.kind(), bytes, &error_);
  if (ptr_ && device::fill(ptr_, 0, bytes, work.stream(), &error_)) device::synchronize(work.stream(), &error_);
}

WorkBuffer::~WorkBuffer() {
  if (!needs_cuda(work_.kind()))
    std::free(ptr_);
  else
    device::release(work_.kind(), ptr_, work_.stream());
}

bool WorkBuffer::put(const void *src, uint64_t bytes) {
  if (!is_device_memory(work_.kind())) return std::memcpy(ptr_, src, bytes), true;
  return device::copy(ptr_, src, bytes, work_.stream(), &error_);
}

bool WorkBuffer::get(void *dst, uint64_t bytes) {
  if (!is_device_memory(work_.kind())) return std::memcpy(dst, ptr_, bytes), true;
  return device::copy(dst, ptr_, bytes, work_.stream(), &error_) && device::synchronize(work_.stream(), &error_);
}

Outcome small_call(plx_comm_h comm, const Work &work, const WorkBuffer &buffer, int32_t max_ms, bool barrier) {
  const Clock::time_point start = Clock::now();
  void *x = buffer.ptr();
  const plx_status s = barrier ? plx_barrier(comm, nullptr, work.stream())
                               : plx_all_reduce(comm, x, x, 16, PLX_FLOAT32, PLX_SUM, nullptr, work.stream());
  return settle(comm, s, start, work.stream(), max_ms);
}

std::string sum_over_ranks(plx_comm_h comm, const Work &work, int32_t *value, int32_t max_ms) {
  WorkBuffer buffer(work, sizeof(*value));
  if (!buffer.ok() || !buffer.put(value, sizeof(*value))) return "work memory: " + buffer.error();
  const Clock::time_point start = Clock::now();
  void *x = buffer.ptr();
  const plx_status s = plx_all_reduce(comm, x, x, 1, PLX_INT32, PLX_SUM, nullptr, work.stream());
  const Outcome o = settle(comm, s, start, work.stream(), max_ms);
  if (!o.ok()) return fmt::format("all_reduce: {}", o.text());
  return buffer.get(value, sizeof(*value)) ? "" : "copying the sum back: " + buffer.error();
}

}  // namespace plexus::conformance

// The memory and stream of a session's own calls (everything but the data
// cases), and how a call's outcome is awaited. Host memory: a call's
// status is its outcome. Pinned-host and device memory: the call enqueues
// on a stream; its outcome is known once the stream has finished it, or
// once plx_comm_async_status reports an error, whichever comes first; a
// deadline turns a stream that never finishes into a failure instead of a
// hang.
#pragma once

#include <cstdint>
#include <string>

#include "rank.hpp"

namespace plexus::conformance {

struct Outcome {
  plx_status status = PLX_OK;  // PLX_IN_PROGRESS: still pending at the deadline
  double ms = 0;  // from the call to the outcome
  bool deferred = false;  // the call returned PLX_OK and the error came later (async status, stream)
  std::string detail;  // the message that came with it
  std::string text() const;  // "PLX_ERR_TIMEOUT (message), through plx_comm_async_status"
  bool ok() const { return status == PLX_OK; }
};

// The outcome of a call that returned `called`, started at `start`, on
// `stream` (nullptr: host memory, the status is the outcome). Waits at most
// max_ms from start.
Outcome settle(plx_comm_h comm, plx_status called, Clock::time_point start, void *stream, int32_t max_ms);

// `kind` memory for a session's calls, with a stream of its own for CUDA
// kinds (threads each make one: a stream shared by threads of different
// communicators would order their collectives differently on each rank).
class Work {
 public:
  explicit Work(plx_mem_kind kind);
  ~Work();
  Work(const Work &) = delete;
  Work &operator=(const Work &) = delete;
  plx_mem_kind kind() const { return kind_; }
  void *stream() const { return stream_; }
  bool ok() const { return error_.empty(); }
  const std::string &error() const { return error_; }

 private:
  plx_mem_kind kind_;
  void *stream_ = nullptr;
  std::string error_;
};

// `bytes` of a Work's memory, zeroed. put and get copy from and to the
// host (on the stream for device memory; get waits for it). Never put or
// get after a call that failed: the stream may never finish it.
class WorkBuffer {
 public:
  WorkBuffer(const Work &work, uint64_t bytes);
  ~WorkBuffer();
  WorkBuffer(const WorkBuffer &) = delete;
  WorkBuffer &operator=(const WorkBuffer &) = delete;
  void *ptr() const { return ptr_; }
  bool ok() const { return error_.empty(); }
  const std::string &error() const { return error_; }
  bool put(const void *src, uint64_t bytes);
  bool get(void *dst, uint64_t bytes);

 private:
  const Work &work_;
  void *ptr_ = nullptr;
  std::string error_;
};

// One small float32 sum all-reduce (16 elements of `buffer`, which must
// hold 64 bytes), or a barrier when `barrier`; its settled outcome.
Outcome small_call(plx_comm_h comm, const Work &work, const WorkBuffer &buffer, int32_t max_ms,
                   bool barrier = false);

// *value summed over the ranks of `comm` (int32 sum all-reduce on the
// work's memory, copied in and out); "" or what went wrong.
std::string sum_over_ranks(plx_comm_h comm, const Work &work, int32_t *value, int32_t max_ms);

}  // namespace plexus::conformance

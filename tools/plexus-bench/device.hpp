// Device buffers (--mem device, device_pool): one rank's GPU, stream and
// buffers, and the sweep that times a column on them the way nccl-tests
// does. Compiled only where CUDA is found; the interface has no CUDA types,
// so the rank code includes it in every build.
//
// Per size: the same random input as the host sweep, copied host to
// device; poisoned outputs; a barrier; the warm-up calls; with --graph the
// iters calls of one sample captured once in a CUDA graph (and launched
// once, unmeasured); a barrier; then per sample iters calls back to back on
// the stream (or one graph launch) and one cudaStreamSynchronize, timed on
// the host, divided by iters. After the samples one more call on freshly
// poisoned outputs, copied back and checked element by element (data.hpp).
// After every synchronisation the column's asynchronous status is checked,
// so an error a kernel met is a failure, never a fast wrong number.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tools/plexus-bench/options.hpp"
#include "tools/plexus-bench/sweep.hpp"

namespace plexus::bench {

// What a column does on device buffers. Every call prints why it failed
// (naming the rank and the column) and returns false.
class DeviceColumn {
 public:
  virtual ~DeviceColumn() = default;
  virtual const std::string &label() const = 0;
  // One collective of the run's op at size p, enqueued on `stream` (a
  // cudaStream_t).
  virtual bool enqueue(const SizePoint &p, const void *send, void *recv, void *stream) = 0;
  // A barrier enqueued on `stream`; complete once the stream has synchronised.
  virtual bool barrier(void *stream) = 0;
  // After a stream synchronisation: false when the communicator holds an
  // asynchronous error.
  virtual bool healthy() = 0;
  // True when the column's buffers come from its backend's device pool
  // (--mem device_pool); allocate gives one, or nullptr after printing why.
  virtual bool pooled() const { return false; }
  virtual void *allocate(uint64_t) { return nullptr; }
  virtual void release(void *) {}
};

using Reporter = std::function<bool(const RankResult &)>;

// One rank's GPU: chosen as rank % visible GPUs and made current before
// anything else in the rank; one non-blocking stream; cudaMalloc'ed send
// and receive buffers for the largest size, shared by every column, and a
// small device scratch for barriers of columns that have none.
class DeviceRank {
 public:
  // nullptr after printing why.
  static std::unique_ptr<DeviceRank> open(const Options &o, int32_t rank);
  ~DeviceRank();
  DeviceRank(const DeviceRank &) = delete;
  DeviceRank &operator=(const DeviceRank &) = delete;

  int32_t rank() const { return rank_; }
  int32_t device() const { return device_; }
  void *stream() const { return stream_; }
  void *send() const { return send_; }
  void *recv() const { return recv_; }
  void *scratch() const { return scratch_; }  // 256 zero bytes
  // The rank's device current again (a plugin may have moved it); false
  // after printing why.
  bool make_current() const;

 private:
  DeviceRank() = default;
  bool allocate(const Options &o);

  int32_t rank_ = -1, device_ = -1;
  void *stream_ = nullptr, *send_ = nullptr, *recv_ = nullptr, *scratch_ = nullptr;
};

// The CUDA devices this process sees; 0 and *why ("no CUDA device: ...")
// when none can be used.
int visible_gpus(std::string *why);

// Sweeps every size of o on column c with d's stream (and d's buffers, or
// the column's pool); false when a call, a synchronisation, the column's
// asynchronous status or a report failed (printed).
bool run_device_sweep(const Options &o, int32_t column, DeviceColumn &c, DeviceRank &d, const Reporter &report);

// The ranks' side of a device run (device_rank.cpp): opens the rank's GPU
// and runs every column of ids (plexus backends and raw-nccl) in order.
// Returns the exit status.
int device_rank_main(const Options &o, int32_t rank, int fd,
                     const std::vector<std::pair<std::string, plx_unique_id>> &ids,
                     const std::vector<int32_t> &columns);

}  // namespace plexus::bench

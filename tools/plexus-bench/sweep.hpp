// One rank's side of a sweep, the same for every transport (a plexus
// communicator, MPI), so every column is measured the same way.
//
// Per size: fill the input, poison the output, one checked run, a barrier,
// the warm-up iterations, a barrier, then the timed iterations back to back
// (no barrier between them, as nccl-tests), each timed on its own with
// steady_clock. A rank's time for iteration i includes waiting for the
// slowest peer, so the launcher takes per iteration the maximum over ranks
// and reports its median and spread (results.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/plexus-bench/options.hpp"

namespace plexus::bench {

// What one rank measured at one size. Travels to the launcher as a line:
// "R <column> <rank> <bytes> <count> <wrong> <ns> <ns> ...", followed on
// device buffers in eager mode by " h <host_ns> <host_ns> ...", or for a
// queue "Q <column> <rank> <bytes> <count> <wrong> <burst_msgs> <burst_ns>
// <ns> ...", so the collectives' line stays as it was.
struct RankResult {
  int32_t column = 0;
  int32_t rank = 0;
  uint64_t bytes = 0;
  uint64_t count = 0;
  uint64_t wrong = 0;  // elements of this rank's output that failed the check
  std::vector<int64_t> ns;
  int64_t burst_msgs = 0;  // queue only: messages in the burst, and the
  int64_t burst_ns = 0;    // time until this rank had them all (0: writer)
  // Device buffers, eager mode: per sample, the host time of its calls
  // (enqueued, not yet run) divided by their number; empty elsewhere.
  std::vector<int64_t> host_ns = {};
};

std::string result_line(const RankResult &r);
// False when the line is not a result line.
bool parse_result_line(std::string_view line, RankResult *out);

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int32_t rank() const = 0;
  virtual int32_t nranks() const = 0;
  // One collective of the run's op at size p; false after printing why.
  virtual bool run(const SizePoint &p, const void *send, void *recv) = 0;
  virtual bool barrier() = 0;
  // True when buffers come from the backend's pool (--mem shared_host on a
  // plexus column); allocate then gives one or nullptr after printing why.
  virtual bool pooled() const { return false; }
  virtual void *allocate(uint64_t) { return nullptr; }
  virtual void release(void *) {}
  // Hands this rank's result of one size on; false after printing why.
  virtual bool report(const RankResult &r) = 0;
};

// The largest send and receive buffers of the sweep, in bytes.
void largest_buffers(const Options &o, uint64_t *send_bytes, uint64_t *recv_bytes);

// Sweeps every size of o on t as column `column`; false when a collective
// or a report failed (printed by the transport).
bool run_sweep(const Options &o, int32_t column, Transport &t);

}  // namespace plexus::bench

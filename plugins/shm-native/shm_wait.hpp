// Waiting on peers' counters in shared memory: spin briefly, then yield,
// then sleep on a futex, so that many ranks on few cores still progress.
// Every wait watches the communicator's deadline, the failure word every
// rank can post (abort, timeout, lost peer) and the liveness of the rank it
// waits for, so nothing waits forever (PLX-P-9, PLX-P-10, PLX-P-11).
#pragma once

#include <chrono>
#include <cstdint>

#include "plugins/shm-native/shm_comm.hpp"

namespace plexus::shm_native {

class Deadline {
 public:
  explicit Deadline(int32_t timeout_ms);
  bool expired() const;
  int32_t timeout_ms() const { return timeout_ms_; }

 private:
  int32_t timeout_ms_;  // negative: forever
  std::chrono::steady_clock::time_point end_;
};

using CounterField = Counter RankControl::*;

// Names a collective in messages ("all_reduce #17"); formatted only when
// something fails, so the hot path pays nothing for it.
struct OpLabel {
  const char *coll;
  uint64_t seq;
};

// Stores `value` into this rank's counter and wakes any rank sleeping on it.
void publish(Comm &comm, CounterField field, uint32_t value);

// Waits until rank r's counter has reached `target` (wrap-safe).
plx_status wait_rank(Comm &comm, int32_t r, CounterField field, uint32_t target,
                     const Deadline &deadline, const OpLabel &what);

// Waits for every rank but this one.
plx_status wait_all(Comm &comm, CounterField field, uint32_t target, const Deadline &deadline,
                    const OpLabel &what);

}  // namespace plexus::shm_native

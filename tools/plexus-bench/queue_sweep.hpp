// The queue mode (--op queue): rank 0 writes one plx_queue, every other
// rank reads it; per size a latency phase, then a burst.
//
// Latency: before each message a plx_barrier, so the writer stamps and
// enqueues the next message only once every reader has consumed (and
// checked) the previous one: what is timed is delivery, never queueing
// behind earlier messages. The stamp is steady_clock (CLOCK_MONOTONIC, one
// clock for the whole machine, so a stamp taken by the writer compares with
// a time taken by a reader), in the message's first 8 bytes, taken just
// before plx_queue_enqueue; a reader takes its time as soon as
// plx_queue_dequeue returns. A reader reports receive - stamp per message,
// the writer zeros, so the launcher's maximum over ranks is the latency of
// the message to all readers.
//
// Burst: after a barrier the writer enqueues burst_messages() messages
// back to back; a reader reports the time from the first message's stamp
// until it has the last one (each checked on the way, as a consumer reads
// what it takes).
//
// Check: every byte of every message. Bytes 8..15 hold the sequence number
// (the count of messages since the sweep began, the same on every rank),
// the rest one of four patterns of (size, sequence % 4); the stamp must lie
// between the size's start on the reader and its receive time.
#pragma once

#include "plexus/plexus.h"
#include "tools/plexus-bench/sweep.hpp"

namespace plexus::bench {

// Messages in one size's burst: clamp(64M / size, 64, 10000), enough to
// fill the ring many times over without taking long at large sizes.
int64_t burst_messages(uint64_t bytes);

// Sweeps every size of o as column `column` on a queue of comm (the
// barriers and reports go through t); false after printing why.
bool run_queue_sweep(const Options &o, int32_t column, plx_comm_h comm, Transport &t);

}  // namespace plexus::bench

// One rank of a fault trial, in its own forked process: the same random
// collectives as every other rank until one fails, then the checks that the
// failure stays. It writes what it saw into its RankReport; the parent
// judges (trial.cpp).
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "tests/faults/trial.hpp"

namespace plexus::faults {
namespace {

constexpr int kMaxCountBits = 18;  // up to 2^18 elements of 8 bytes: 2 MiB per rank's block
constexpr uint64_t kMaxCount = 1ull << kMaxCountBits;

struct Op {
  plx_coll_kind kind;
  uint64_t count;
  plx_dtype dtype;
  plx_reduce_op op;
  int32_t root;
};

// Not a collective kind: a queue made, one message through it, destroyed.
constexpr plx_coll_kind kQueueRound = 100;
constexpr uint64_t kQueueMaxBytes = 1 << 16;  // through a ring of 8 x 4 KiB: chunked, and it fills

// Sizes are log-uniform so that one-shot, slot-sized and pipelined
// collectives all come up; every rank draws the same sequence. Queue rounds
// are left out of never_arrives trials: a queue's own timeout is not sticky.
Op next_op(std::mt19937_64 &gen, const Plan &plan) {
  const int bits = static_cast<int>(gen() % (kMaxCountBits + 1));
  const uint64_t count = bits == 0 ? 0 : (1ull << (bits - 1)) + gen() % (1ull << (bits - 1));
  const bool queues = plan.fault != Fault::never_arrives;
  const uint64_t kind = gen() % (PLX_COLL_BARRIER + 2);
  return {kind > PLX_COLL_BARRIER ? (queues ? kQueueRound : PLX_COLL_BARRIER) : static_cast<plx_coll_kind>(kind),
          count, static_cast<plx_dtype>(gen() % PLX_DTYPE_COUNT), static_cast<plx_reduce_op>(gen() % PLX_REDUCE_OP_COUNT),
          static_cast<int32_t>(gen() % static_cast<uint64_t>(plan.nranks))};
}

// The writer is the op's root; the queue is destroyed whatever happened,
// since a communicator with a live queue cannot be destroyed.
plx_status queue_round(plx_comm_h c, const Op &o, int32_t rank, void *buf) {
  plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  qc.writer_rank = o.root, qc.slot_bytes = 4096, qc.slot_count = 8;
  plx_queue_h q = nullptr;
  if (plx_status s = plx_queue_create(c, &qc, &q)) return s;
  const uint64_t bytes = std::min(o.count, kQueueMaxBytes);
  uint64_t got = 0;
  const plx_status s = rank == o.root ? plx_queue_enqueue(q, buf, bytes, -1)
                                      : plx_queue_dequeue(q, buf, kQueueMaxBytes, &got, -1);
  plx_queue_destroy(q);  // succeeds, so plx_last_error() still tells why s failed
  return s;
}

plx_status call(plx_comm_h c, const Op &o, int32_t rank, void *send, void *recv) {
  switch (o.kind) {
    case PLX_COLL_ALL_REDUCE: return plx_all_reduce(c, send, recv, o.count, o.dtype, o.op, nullptr, nullptr);
    case PLX_COLL_REDUCE: return plx_reduce(c, send, recv, o.count, o.dtype, o.op, o.root, nullptr, nullptr);
    case PLX_COLL_BROADCAST: return plx_broadcast(c, send, recv, o.count, o.dtype, o.root, nullptr, nullptr);
    case PLX_COLL_ALL_GATHER: return plx_all_gather(c, send, recv, o.count, o.dtype, nullptr, nullptr);
    case PLX_COLL_GATHER: return plx_gather(c, send, recv, o.count, nullptr, o.dtype, o.root, nullptr, nullptr);
    case PLX_COLL_REDUCE_SCATTER:
      return plx_reduce_scatter(c, send, recv, o.count, o.dtype, o.op, nullptr, nullptr);
    case kQueueRound: return queue_round(c, o, rank, send);
    default: return plx_barrier(c, nullptr, nullptr);
  }
}

int count_fds() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

// Send and receive buffers big enough for any op of the sequence: malloc'd
// (copied through the slots) or pool blocks (peers read them in place).
struct Buffers {
  Buffers(plx_comm_h comm, const Plan &plan) : comm_(comm), bytes_(kMaxCount * 8 * plan.nranks) {
    if (!plan.pool_buffers) {
      own_send_.assign(bytes_, 0), own_recv_.assign(bytes_, 0);
      send = own_send_.data(), recv = own_recv_.data();
      return;
    }
    plx_mem_alloc_params p = {sizeof(p), PLX_MEM_SHARED_HOST, bytes_, 0, 1, 0};
    status = plx_mem_alloc(comm, &p, &send);
    if (status == PLX_OK) status = plx_mem_alloc(comm, &p, &recv);
    if (status == PLX_OK) std::memset(send, 0, bytes_), std::memset(recv, 0, bytes_);
  }
  // Pool blocks go back before destroy, which also works after a failure.
  void release() {
    if (own_send_.empty()) plx_mem_free(comm_, send), plx_mem_free(comm_, recv);
    send = recv = nullptr;
  }
  plx_comm_h comm_;
  uint64_t bytes_;
  std::vector<uint8_t> own_send_, own_recv_;
  void *send = nullptr, *recv = nullptr;
  plx_status status = PLX_OK;
};

void note_failure(RankReport *me, plx_status s) {
  me->fail_status = s;
  me->fail_ns = now_ns();
  std::snprintf(me->message, sizeof(me->message), "%s", plx_last_error());
}

// A rank that stays away waits, alive, until every other rank has failed
// (or far past the timeout), so that what they see is a timeout.
void wait_for_the_others(const Plan &plan, int32_t rank, RankReport *reports) {
  const int64_t give_up = now_ns() + 4ll * (plan.timeout_ms + kMarginMs) * 1000000;
  for (;;) {
    bool all = true;
    for (int32_t r = 0; r < plan.nranks; ++r)
      all &= r == rank || __atomic_load_n(&reports[r].fail_status, __ATOMIC_ACQUIRE) != 0;
    if (all || now_ns() > give_up) return;
    usleep(2000);
  }
}

// After the first failure: two more calls of other kinds must fail at once
// with the same status, and the async status must report it.
void check_after_failure(plx_comm_h comm, Buffers &buf, RankReport *me) {
  const int64_t start = now_ns();
  me->sticky_status = plx_barrier(comm, nullptr, nullptr);
  me->sticky_ns = now_ns() - start;
  me->again_status = plx_all_reduce(comm, buf.send, buf.recv, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  plx_status state = PLX_OK;
  me->async_status = plx_comm_async_status(comm, &state) == PLX_OK ? state : 1;
}

// The collectives until one fails (or, without a failure, until long
// after every planned fault should have struck).
void run_collectives(plx_comm_h comm, const Plan &plan, int32_t rank, Buffers &buf, RankReport *reports) {
  RankReport *me = &reports[rank];
  std::mt19937_64 gen(plan.seed);
  const int64_t give_up = now_ns() + (plan.moment_ms + 3ll * (plan.timeout_ms + kMarginMs)) * 1000000;
  for (int32_t i = 0; now_ns() < give_up; ++i) {
    const Op op = next_op(gen, plan);
    if (plan.fault == Fault::never_arrives && rank == plan.victim && i == plan.stall_op) {
      me->event_ns = now_ns();
      wait_for_the_others(plan, rank, reports);
    }
    if (plx_status s = call(comm, op, rank, buf.send, buf.recv)) return note_failure(me, s);
    me->ops_done = i + 1;
  }
}

// The abort of an abort trial, from a second thread at the planned moment,
// while the first is (most likely) inside a collective.
std::thread abort_later(plx_comm_h comm, const Plan &plan, RankReport *me) {
  return std::thread([comm, moment = plan.moment_ms, me] {
    usleep(static_cast<useconds_t>(moment) * 1000);
    me->event_ns = now_ns();
    plx_comm_abort(comm);
  });
}

int joined_rank(plx_comm_h comm, const Plan &plan, int32_t rank, RankReport *reports) {
  RankReport *me = &reports[rank];
  Buffers buf(comm, plan);
  if (buf.status != PLX_OK) {
    note_failure(me, buf.status);
    return 3;
  }
  std::thread aborter;
  if (plan.fault == Fault::abort && rank == plan.victim) aborter = abort_later(comm, plan, me);
  run_collectives(comm, plan, rank, buf, reports);
  if (aborter.joinable()) aborter.join();
  if (me->fail_status != 0) check_after_failure(comm, buf, me);
  buf.release();
  return 0;
}

}  // namespace

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int run_rank(plx_backend_h backend, const plx_unique_id &id, const Plan &plan, int32_t rank,
             RankReport *reports) {
  RankReport *me = &reports[rank];
  me->started = 1;
  me->fds_before = count_fds();
  if (plan.fault == Fault::never_arrives && rank == plan.victim && plan.stall_op < 0) {
    me->event_ns = now_ns();
    wait_for_the_others(plan, rank, reports);
    me->fds_after = count_fds();
    return 0;
  }
  plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
  cfg.timeout_ms = cfg.init_timeout_ms = plan.timeout_ms;
  plx_comm_h comm = nullptr;
  me->init_status = plx_comm_init(backend, &id, plan.nranks, rank, &cfg, &comm);
  int code = 0;
  if (me->init_status != PLX_OK) note_failure(me, me->init_status);
  else code = joined_rank(comm, plan, rank, reports);
  me->destroy_status = comm ? plx_comm_destroy(comm) : PLX_OK;
  me->fds_after = count_fds();
  return code;
}

}  // namespace plexus::faults

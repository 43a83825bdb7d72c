// Thread stress at the declared threading level (PLX-P-14): PER_COMM gives
// every thread a communicator of its own, all running at once on host
// memory; on CUDA memory the threads take turns in one order on every rank,
// as NCCL requires of communicators sharing a GPU (kernels that wait for
// their peers on the GPU deadlock when two GPUs run two communicators'
// kernels in opposite orders, e.g. behind each other in one of the GPU's
// hardware queues; docs/plugins/p2p-tree.md); MULTIPLE has
// the threads share one, taking turns so that every rank still issues the
// same collectives in the same order, while another thread keeps asking for
// its status. With PLX_CAP_THREAD_RANKS, rank 0 also runs a communicator
// whose ranks are threads of its process.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "device.hpp"
#include "memory_kinds.hpp"
#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr int32_t kThreads = 4;
constexpr int32_t kIterations = 200;
constexpr int32_t kTimeoutMs = 30000;

constexpr size_t kMaxElems = 5000;

// A thread's memory: its own stream on CUDA memory (work_memory.hpp).
struct ThreadMemory {
  explicit ThreadMemory(plx_mem_kind kind) : work(kind), buffer(work, kMaxElems * sizeof(int32_t)) {}
  Work work;
  WorkBuffer buffer;
  std::string error() const { return !work.ok() ? work.error() : buffer.error(); }
};

// Iteration `it` of thread `t`: an int32 sum whose result every rank knows.
std::string iterate(plx_comm_h comm, ThreadMemory &m, int32_t rank, int32_t nranks, int32_t t, int32_t it) {
  const size_t n = 1 + static_cast<size_t>(it * 997 + t * 131) % kMaxElems;
  std::vector<int32_t> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = rank * 7 + t * 3 + it + static_cast<int32_t>(i % 11);
  if (!m.buffer.put(x.data(), n * sizeof(int32_t))) return "copy in: " + m.buffer.error();
  void *p = m.buffer.ptr(), *stream = m.work.stream();
  const Clock::time_point start = Clock::now();
  const plx_status s = plx_all_reduce(comm, p, p, n, PLX_INT32, PLX_SUM, nullptr, stream);
  const Outcome o = settle(comm, s, start, stream, kTimeoutMs + kMarginMs);
  if (!o.ok()) return fmt::format("all_reduce #{}: {}", it, o.text());
  if (!m.buffer.get(x.data(), n * sizeof(int32_t))) return "copy out: " + m.buffer.error();
  for (size_t i = 0; i < n; ++i) {
    const int32_t want = 7 * nranks * (nranks - 1) / 2 + nranks * (t * 3 + it + static_cast<int32_t>(i % 11));
    if (x[i] != want) return fmt::format("all_reduce #{} element {} got {} want {}", it, i, x[i], want);
  }
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats);
  return {};
}

// CUDA memory: a new thread starts on device 0; it takes the rank's.
bool thread_device(int32_t device, CaseScope *c) {
  std::string error;
  return device < 0 || c->expect(device::select(device, &error), "{}", error);
}

// Iteration turns across threads: thread t's iteration `it` is turn
// it * kThreads + t. Unordered (host memory): every turn is free.
class Turns {
 public:
  explicit Turns(bool ordered) : ordered_(ordered) {}
  void wait(int64_t turn) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ordered_ || turn_ == turn; });
  }
  void done() {
    std::lock_guard lock(mutex_);
    ++turn_;
    changed_.notify_all();
  }

 private:
  const bool ordered_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t turn_ = 0;
};

// A thread that cannot run passes its turns, so the others go on.
void skip_turns(Turns &turns, int32_t t) {
  for (int32_t it = 0; it < kIterations; ++it) {
    turns.wait(int64_t{it} * kThreads + t);
    turns.done();
  }
}

void per_comm_thread(const RankContext &ctx, int32_t t, CaseScope *c, Turns &turns) {
  if (!thread_device(ctx.cuda_device, c)) return skip_turns(turns, t);
  ThreadMemory m(ctx.memory.work);
  if (!c->expect(m.buffer.ok(), "memory for the thread's calls: {}", m.error())) return skip_turns(turns, t);
  plx_comm_h comm = nullptr;
  const plx_status s = join(ctx, static_cast<size_t>(1 + t), kTimeoutMs, kTimeoutMs, &comm);
  if (!c->expect(s == PLX_OK, "plx_comm_init returned {}", status_text(s))) return skip_turns(turns, t);
  for (int32_t it = 0; it < kIterations; ++it) {
    turns.wait(int64_t{it} * kThreads + t);
    if (!c->failed()) {
      const std::string error = iterate(comm, m, ctx.rank(), ctx.nranks(), t, it);
      c->expect(error.empty(), "{}", error);
    }
    turns.done();
  }
  c->expect(plx_comm_destroy(comm) == PLX_OK, "plx_comm_destroy: {}", plx_last_error());
}

// Runs body(t, scope) on kThreads threads, each with a case of its own.
template <typename Body>
void on_threads(RankContext &ctx, const std::string &what, Body body) {
  std::vector<std::unique_ptr<CaseScope>> cases;
  for (int32_t t = 0; t < kThreads; ++t)
    cases.push_back(
        std::make_unique<CaseScope>(ctx.out, "PLX-P-14", "threads", fmt::format("{}, thread {}", what, t)));
  std::vector<std::thread> threads;
  for (int32_t t = 0; t < kThreads; ++t) threads.emplace_back(body, t, cases[t].get());
  for (std::thread &th : threads) th.join();
}

// Threads share `comm` and take iterations in turn: thread it % kThreads.
void run_multiple(RankContext &ctx, plx_comm_h comm) {
  std::mutex mutex;
  std::condition_variable turn_changed;
  int32_t turn = 0;
  std::atomic<bool> done = false;
  std::thread poller([&] {
    for (plx_status st; !done; std::this_thread::yield()) plx_comm_async_status(comm, &st);
  });
  on_threads(ctx, "one shared communicator", [&](int32_t t, CaseScope *c) {
    if (!thread_device(ctx.cuda_device, c)) return;
    ThreadMemory m(ctx.memory.work);
    if (!c->expect(m.buffer.ok(), "memory for the thread's calls: {}", m.error())) return;
    for (int32_t it = t; it < kIterations; it += kThreads) {
      std::unique_lock lock(mutex);
      turn_changed.wait(lock, [&] { return turn == it; });
      const std::string error = iterate(comm, m, ctx.rank(), ctx.nranks(), t, it);
      c->expect(error.empty(), "{}", error);
      ++turn;
      turn_changed.notify_all();
    }
  });
  done = true;
  poller.join();
}

// The thread rank's own GPU (r % visible GPUs) on CUDA memory, and its
// memory; "" or why not.
std::string thread_rank_setup(RankContext &mine, int32_t r, std::unique_ptr<ThreadMemory> *m) {
  std::string error;
  if (mine.cuda_device >= 0) {
    const int gpus = device::gpu_count(&error);
    if (gpus < 1) return error;
    mine.cuda_device = r % gpus;
    if (!device::select(mine.cuda_device, &error)) return error;
  }
  *m = std::make_unique<ThreadMemory>(mine.memory.work);
  return (*m)->buffer.ok() ? "" : (*m)->error();
}

// Rank 0 alone: nranks threads of this process form one communicator.
void run_thread_ranks(RankContext &ctx) {
  CaseScope c(ctx.out, "PLX-P-14", "threads", "ranks as threads of one process");
  std::vector<std::string> errors(ctx.nranks());
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < ctx.nranks(); ++r)
    threads.emplace_back([&, r] {
      RankContext mine{ctx};
      std::unique_ptr<ThreadMemory> m;
      if (errors[r] = thread_rank_setup(mine, r, &m); !errors[r].empty()) return;
      plx_comm_h comm = nullptr;
      if (plx_status s = join(mine, 7, kTimeoutMs, kTimeoutMs, &comm, ctx.nranks(), r))
        return void(errors[r] = status_text(s));
      for (int32_t it = 0; it < 50 && errors[r].empty(); ++it)
        errors[r] = iterate(comm, *m, r, ctx.nranks(), 0, it);
      plx_comm_destroy(comm);
    });
  for (std::thread &th : threads) th.join();
  for (int32_t r = 0; r < ctx.nranks(); ++r) c.expect(errors[r].empty(), "thread rank {}: {}", r, errors[r]);
}

}  // namespace

void run_thread_session(RankContext &ctx) {
  if (ctx.props.threading == PLX_THREAD_MULTIPLE) {
    const plx_comm_h comm = join_checked(ctx, 1, kTimeoutMs);
    if (comm == nullptr) return;
    run_multiple(ctx, comm);
    plx_comm_destroy(comm);
  } else {
    Turns turns(needs_cuda(ctx.memory.work));
    const char *what = needs_cuda(ctx.memory.work) ? "a communicator each, in turns" : "a communicator each";
    on_threads(ctx, what, [&](int32_t t, CaseScope *c) { per_comm_thread(ctx, t, c, turns); });
  }
  if (ctx.has_cap(PLX_CAP_THREAD_RANKS) && ctx.rank() == 0) run_thread_ranks(ctx);
}

}  // namespace plexus::conformance

// Leaks (PLX-P-13, PLX-P-17): descriptors counted around three
// init / use / destroy cycles and around a whole backend open / close, and
// each pool's bytes in use after freeing everything. Shared-memory names
// are the launcher's to check, once every rank has exited.
#include <algorithm>
#include <thread>
#include <vector>

#include "sessions.hpp"
#include "work_memory.hpp"

namespace plexus::conformance {
namespace {

constexpr uint64_t kElems = (1u << 20) + 3;

// One call of every advertised collective, large enough to use whatever
// staging the backend has, on the session's work memory; the first failure
// is reported (on a stream, once the stream has run them all).
Outcome exercise(const RankContext &ctx, plx_comm_h comm, const Work &work) {
  const uint64_t n = kElems, all = n * static_cast<uint64_t>(ctx.nranks());
  const WorkBuffer send_buffer(work, all * sizeof(int32_t)), recv_buffer(work, all * sizeof(int32_t));
  if (!send_buffer.ok() || !recv_buffer.ok())
    return Outcome{PLX_ERR_OUT_OF_MEMORY, 0, false, send_buffer.ok() ? recv_buffer.error() : send_buffer.error()};
  const void *send = send_buffer.ptr();
  void *recv = recv_buffer.ptr(), *stream = work.stream();
  auto has = [&](plx_coll_kind k) { return ctx.has_cap(PLX_CAP_COLL(k)); };
  const Clock::time_point start = Clock::now();
  plx_status s = PLX_OK;
  if (has(PLX_COLL_ALL_REDUCE)) s = plx_all_reduce(comm, send, recv, n, PLX_INT32, PLX_SUM, nullptr, stream);
  if (!s && has(PLX_COLL_REDUCE)) s = plx_reduce(comm, send, recv, n, PLX_INT32, PLX_SUM, 0, nullptr, stream);
  if (!s && has(PLX_COLL_REDUCE_SCATTER))
    s = plx_reduce_scatter(comm, send, recv, n, PLX_INT32, PLX_SUM, nullptr, stream);
  if (!s && has(PLX_COLL_BROADCAST)) s = plx_broadcast(comm, send, recv, n, PLX_INT32, 0, nullptr, stream);
  if (!s && has(PLX_COLL_ALL_GATHER)) s = plx_all_gather(comm, send, recv, n, PLX_INT32, nullptr, stream);
  if (!s && has(PLX_COLL_GATHER))
    s = plx_gather(comm, send, recv, n, nullptr, PLX_INT32, 0, nullptr, stream);
  if (!s && has(PLX_COLL_BARRIER)) s = plx_barrier(comm, nullptr, stream);
  return settle(comm, s, start, stream, 30000 + kMarginMs);
}

plx_status split_and_destroy(plx_comm_h comm, const Work &work) {
  plx_comm_h child = nullptr;
  if (plx_status s = plx_comm_split(comm, 0, 0, nullptr, &child)) return s;
  const Outcome o =
      settle(child, plx_barrier(child, nullptr, work.stream()), Clock::now(), work.stream(), 30000 + kMarginMs);
  plx_status s = o.status;
  if (plx_status d = plx_comm_destroy(child); s == PLX_OK) s = d;
  return s;
}

// Allocates blocks of a few sizes from every pool (at least 256-byte
// aligned, PLX-P-17), frees them, and checks that the pool's bytes in use
// are back to zero.
void check_pools(const RankContext &ctx, plx_comm_h comm, CaseScope &c) {
  for (plx_mem_kind kind = PLX_MEM_SHARED_HOST; kind < PLX_MEM_KIND_COUNT; ++kind) {
    if (!((ctx.props.alloc_kind_mask >> kind) & 1u)) continue;
    std::vector<void *> blocks;
    for (const uint64_t bytes : {1ull, 4096ull, 100000ull, 3ull << 20}) {
      const uint64_t alignment = bytes == 4096 ? 4096 : 0;  // 0: the default, at least 256
      plx_mem_alloc_params p{sizeof(plx_mem_alloc_params), kind, bytes, alignment, 0, 0};
      void *ptr = nullptr;
      if (!c.expect(plx_mem_alloc(comm, &p, &ptr) == PLX_OK, "plx_mem_alloc({} bytes): {}", bytes,
                    plx_last_error()))
        continue;
      blocks.push_back(ptr);
      c.expect(reinterpret_cast<uintptr_t>(ptr) % std::max<uint64_t>(alignment, 256) == 0,
               "[PLX-P-17] a block of {} bytes at {} is not {}-byte aligned", bytes, ptr,
               std::max<uint64_t>(alignment, 256));
    }
    for (void *b : blocks) plx_mem_free(comm, b);
    plx_mem_stats stats{};
    stats.struct_size = sizeof(stats);
    const plx_status s = plx_mem_stats_get(comm, kind, PLX_MEM_TAG_ALL, &stats);
    c.expect(s == PLX_OK && stats.bytes_in_use == 0,
             "memory kind {}: {} bytes in use after freeing every block ({})", kind, stats.bytes_in_use,
             status_text(s));
  }
}

// Descriptors open now, once those a backend's background threads are
// still closing (an earlier communicator's teardown) have gone, up to 1 s:
// fewer than `before` is no leak of this cycle.
int settled_fds(int before) {
  int now = count_open_fds();
  for (int k = 0; k < 100 && now > before; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(10)), now = count_open_fds();
  return now;
}

void cycle(RankContext &ctx, int k, const Work &work) {
  CaseScope c(ctx.out, "PLX-P-13", "leaks",
              k < 0 ? std::string("warm-up init, use and destroy (descriptors not counted)")
                    : fmt::format("descriptors after init, use and destroy #{}", k + 1));
  const int before = count_open_fds();
  plx_comm_h comm = nullptr;
  const plx_status s = join(ctx, static_cast<size_t>(k < 0 ? 3 : k), 30000, 30000, &comm);
  if (!c.expect(s == PLX_OK, "plx_comm_init returned {}", status_text(s))) return;
  const Outcome used = exercise(ctx, comm, work);
  c.expect(used.ok(), "a collective: {}", used.text());
  if (ctx.has_cap(PLX_CAP_SPLIT))
    c.expect(split_and_destroy(comm, work) == PLX_OK, "split: {}", plx_last_error());
  check_pools(ctx, comm, c);
  c.expect(plx_comm_destroy(comm) == PLX_OK, "plx_comm_destroy: {}", plx_last_error());
  if (k < 0) return;
  const int after = settled_fds(before);
  c.expect(after <= before, "{} file descriptors open before plx_comm_init, {} after plx_comm_destroy",
           before, after);
}

}  // namespace

// A second backend of the same plugin: the first open's one-time costs
// (the library, the log file, the CUDA context, the work stream) stay
// outside the counts, and so do those of a first communicator (a wrapped
// library's process-wide state, such as NCCL's, made at its first init):
// one cycle runs on the first backend before counting starts.
void run_leak_session(RankContext &ctx) {
  if (ctx.rank() == 0 && ctx.props.alloc_kind_mask == 0)
    ctx.out.note("pool statistics not checked: the backend allocates no memory kind (alloc_kind_mask 0)");
  const Work work(ctx.memory.work);
  cycle(ctx, -1, work);
  const int fds_start = count_open_fds();
  plx_backend_h backend = nullptr;
  {
    CaseScope c(ctx.out, "PLX-P-13", "leaks", "descriptors after backend open and close");
    if (!c.expect(plx_backend_open(ctx.opts.backend.c_str(), &backend) == PLX_OK, "plx_backend_open: {}",
                  plx_last_error()))
      return;
    RankContext inner{ctx};
    inner.backend = backend;
    for (int k = 0; k < 3; ++k) cycle(inner, k, work);
    c.expect(plx_backend_close(backend) == PLX_OK, "plx_backend_close: {}", plx_last_error());
    const int fds_end = settled_fds(fds_start);
    c.expect(fds_end <= fds_start,
             "{} file descriptors open before plx_backend_open, {} after plx_backend_close", fds_start,
             fds_end);
  }
}

}  // namespace plexus::conformance

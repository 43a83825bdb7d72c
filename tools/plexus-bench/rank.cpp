// A rank process: started by the launcher (launcher.cpp) with
// PLEXUS_BENCH_RANK, PLEXUS_BENCH_NRANKS, PLEXUS_BENCH_IDS and
// PLEXUS_BENCH_FD (its pipe back to the launcher). It runs every column of
// PLEXUS_BENCH_IDS in order, one communicator at a time: on host buffers
// here, on device buffers in device_rank.cpp (--mem device).
#include "tools/plexus-bench/rank.hpp"

#include <errno.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "plexus/plexus.h"
#include "tools/plexus-bench/columns.hpp"
#include "tools/plexus-bench/queue_sweep.hpp"
#include "tools/plexus-bench/sweep.hpp"
#if PLEXUS_BENCH_HAVE_CUDA
#include "tools/plexus-bench/device.hpp"
#endif

namespace plexus::bench {
namespace {

class PlexusTransport final : public Transport {
 public:
  PlexusTransport(const Options &o, plx_comm_h comm, std::string label, int32_t rank, int fd)
      : o_(o), comm_(comm), label_(std::move(label)), rank_(rank), fd_(fd) {}
  int32_t rank() const override { return rank_; }
  int32_t nranks() const override { return o_.ranks; }
  bool run(const SizePoint &p, const void *send, void *recv) override {
    return ok("a collective", call(p, send, recv));
  }
  bool barrier() override { return ok("plx_barrier", plx_barrier(comm_, nullptr, nullptr)); }
  bool pooled() const override { return o_.mem == Mem::shared_host; }
  void *allocate(uint64_t bytes) override;
  void release(void *p) override { plx_mem_free(comm_, p); }
  bool report(const RankResult &r) override;

 private:
  plx_status call(const SizePoint &p, const void *send, void *recv);
  bool ok(const char *what, plx_status s);

  const Options &o_;
  plx_comm_h comm_;
  std::string label_;
  int32_t rank_;
  int fd_;
};

plx_status PlexusTransport::call(const SizePoint &p, const void *send, void *recv) {
  return plexus_collective(o_, comm_, p, send, recv, nullptr);
}

// A pool buffer for --mem shared_host; a backend without that pool fails
// the run (printed here), never falls back to ordinary memory silently.
void *PlexusTransport::allocate(uint64_t bytes) {
  plx_mem_alloc_params params{sizeof(params), PLX_MEM_SHARED_HOST, bytes, 4096, 0, 0};
  void *p = nullptr;
  return ok("plx_mem_alloc (--mem shared_host)", plx_mem_alloc(comm_, &params, &p)) ? p : nullptr;
}

bool PlexusTransport::ok(const char *what, plx_status s) {
  if (s == PLX_OK) return true;
  std::fprintf(stderr, "plexus-bench: rank %d, %s: %s (%s) failed: %s: %s\n", rank_, label_.c_str(), what,
               coll_name(o_.coll), plx_status_string(s), plx_last_error());
  return false;
}

bool write_all(int fd, const std::string &text) {
  for (size_t at = 0; at < text.size();) {
    const ssize_t n = write(fd, text.data() + at, text.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

bool PlexusTransport::report(const RankResult &r) { return write_result(fd_, rank_, r); }

// One column on host buffers: open, join, sweep, leave.
bool run_column(const Options &o, int32_t column, const std::string &spec, const plx_unique_id &id,
                int32_t rank, int fd) {
  return with_plexus_comm(o, spec, id, rank, -1, [&](plx_comm_h comm) {
    PlexusTransport t(o, comm, spec, rank, fd);
    return is_queue(o) ? run_queue_sweep(o, column, comm, t) : run_sweep(o, column, t);
  });
}

// The ranks' side of --mem device; cudaSetDevice is its first CUDA call.
int device_columns(const Options &o, int32_t rank, int fd,
                   const std::vector<std::pair<std::string, plx_unique_id>> &ids,
                   const std::vector<int32_t> &columns) {
#if PLEXUS_BENCH_HAVE_CUDA
  return device_rank_main(o, rank, fd, ids, columns);
#else
  (void)fd, (void)ids, (void)columns;
  std::fprintf(stderr, "plexus-bench: rank %d: --mem %s: plexus-bench was built without CUDA\n", rank,
               mem_name(o.mem));
  return 2;
#endif
}

int env_int(const char *name) {
  const char *v = std::getenv(name);
  return v ? std::atoi(v) : -1;
}

}  // namespace

int rank_main(const Options &o) {
  const int32_t rank = env_int("PLEXUS_BENCH_RANK"), nranks = env_int("PLEXUS_BENCH_NRANKS");
  const int fd = env_int("PLEXUS_BENCH_FD");
  const char *ids_text = std::getenv("PLEXUS_BENCH_IDS");
  std::vector<std::pair<std::string, plx_unique_id>> ids;
  const std::vector<int32_t> columns = plexus_column_numbers(o);
  if (rank < 0 || rank >= o.ranks || nranks != o.ranks || fd < 0 || !ids_text ||
      !parse_ids_env(ids_text, &ids) || ids.size() != columns.size()) {
    std::fprintf(stderr, "plexus-bench: PLEXUS_BENCH_RANK is set but the rank's environment is incomplete "
                         "(ranks are started by plexus-bench itself)\n");
    return 2;
  }
  if (on_device(o)) return device_columns(o, rank, fd, ids, columns);
  for (size_t i = 0; i < ids.size(); ++i)
    if (!run_column(o, columns[i], ids[i].first, ids[i].second, rank, fd)) return 3;
  return 0;
}

bool plexus_ok(int32_t rank, const std::string &label, const char *call, plx_status s) {
  if (s != PLX_OK)
    std::fprintf(stderr, "plexus-bench: rank %d, %s: %s failed: %s: %s\n", rank, label.c_str(), call,
                 plx_status_string(s), plx_last_error());
  return s == PLX_OK;
}

plx_status plexus_collective(const Options &o, plx_comm_h comm, const SizePoint &p, const void *send, void *recv,
                             void *stream) {
  const uint64_t per = p.count / static_cast<uint64_t>(o.ranks);
  plx_coll_options wire = PLX_COLL_OPTIONS_INIT;
  wire.wire_dtype = o.wire;
  const plx_coll_options *reduced = o.wire >= 0 ? &wire : nullptr;
  switch (o.coll) {
    case Coll::all_reduce: return plx_all_reduce(comm, send, recv, p.count, o.dtype, o.redop, reduced, stream);
    case Coll::reduce: return plx_reduce(comm, send, recv, p.count, o.dtype, o.redop, 0, reduced, stream);
    case Coll::broadcast: return plx_broadcast(comm, send, recv, p.count, o.dtype, 0, nullptr, stream);
    case Coll::all_gather: return plx_all_gather(comm, send, recv, per, o.dtype, nullptr, stream);
    case Coll::gather: return plx_gather(comm, send, recv, per, nullptr, o.dtype, 0, nullptr, stream);
    default: return plx_reduce_scatter(comm, send, recv, per, o.dtype, o.redop, reduced, stream);
  }
}

std::string plexus_call_name(const Options &o) { return fmt::format("plx_{}", coll_name(o.coll)); }

bool write_result(int fd, int32_t rank, const RankResult &r) {
  if (write_all(fd, result_line(r))) return true;
  std::fprintf(stderr, "plexus-bench: rank %d: the launcher's pipe is gone\n", rank);
  return false;
}

bool with_plexus_comm(const Options &o, const std::string &spec, const plx_unique_id &id, int32_t rank,
                      int32_t cuda_device, const std::function<bool(plx_comm_h)> &body) {
  plx_backend_h backend = nullptr;
  if (!plexus_ok(rank, spec, "plx_backend_open", plx_backend_open(spec.c_str(), &backend))) return false;
  plx_comm_config config = PLX_COMM_CONFIG_INIT;
  config.cuda_device = cuda_device;
  plx_comm_h comm = nullptr;
  bool ok = plexus_ok(rank, spec, "plx_comm_init", plx_comm_init(backend, &id, o.ranks, rank, &config, &comm));
  if (ok) {
    ok = body(comm);
    if (!ok) plx_comm_abort(comm);
    plx_comm_destroy(comm);
  }
  plx_backend_close(backend);
  return ok;
}

}  // namespace plexus::bench

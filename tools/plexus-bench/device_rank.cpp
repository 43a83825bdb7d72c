// A rank's side of --mem device: the rank's GPU first (cudaSetDevice before
// any backend is opened, so every plugin and NCCL see it current), then
// every column in order on that GPU's stream: plexus backends through their
// communicator (plx_comm_config.cuda_device names the GPU), raw-nccl through
// NCCL itself.
#include <fmt/format.h>

#include <cstdio>

#include "plexus/plexus.h"
#include "tools/plexus-bench/device.hpp"
#include "tools/plexus-bench/rank.hpp"
#if PLEXUS_BENCH_HAVE_NCCL
#include "tools/plexus-bench/raw_nccl.hpp"
#endif

namespace plexus::bench {
namespace {

class PlexusDeviceColumn final : public DeviceColumn {
 public:
  PlexusDeviceColumn(const Options &o, plx_comm_h comm, std::string label, int32_t rank)
      : o_(o), comm_(comm), label_(std::move(label)), call_(plexus_call_name(o)), rank_(rank) {}
  const std::string &label() const override { return label_; }
  bool enqueue(const SizePoint &p, const void *send, void *recv, void *stream) override {
    return plexus_ok(rank_, label_, call_.c_str(), plexus_collective(o_, comm_, p, send, recv, stream));
  }
  bool barrier(void *stream) override {
    return plexus_ok(rank_, label_, "plx_barrier", plx_barrier(comm_, nullptr, stream));
  }
  bool healthy() override;
  bool pooled() const override { return o_.mem == Mem::device_pool; }
  void *allocate(uint64_t bytes) override;
  void release(void *p) override { plx_mem_free(comm_, p); }

 private:
  const Options &o_;
  plx_comm_h comm_;
  std::string label_, call_;
  int32_t rank_;
};

// PLX_IN_PROGRESS is no error: the rank's stream is idle, but a backend may
// still be tidying up on its own.
bool PlexusDeviceColumn::healthy() {
  plx_status state = PLX_OK;
  if (!plexus_ok(rank_, label_, "plx_comm_async_status", plx_comm_async_status(comm_, &state))) return false;
  if (state >= PLX_OK) return true;
  std::fprintf(stderr, "plexus-bench: rank %d, %s: plx_comm_async_status after the stream synchronised: %s: %s\n",
               rank_, label_.c_str(), plx_status_string(state), plx_last_error());
  return false;
}

// A device pool buffer for --mem device_pool; a backend without that pool
// fails the run, never falls back to cudaMalloc silently.
void *PlexusDeviceColumn::allocate(uint64_t bytes) {
  plx_mem_alloc_params params{sizeof(params), PLX_MEM_DEVICE, bytes, 4096, 0, 0};
  void *p = nullptr;
  return plexus_ok(rank_, label_, "plx_mem_alloc (PLX_MEM_DEVICE, --mem device_pool)",
                   plx_mem_alloc(comm_, &params, &p)) ? p : nullptr;
}

bool run_plexus(const Options &o, int32_t column, const std::string &spec, const plx_unique_id &id, DeviceRank &d,
                const Reporter &report) {
  return with_plexus_comm(o, spec, id, d.rank(), d.device(), [&](plx_comm_h comm) {
    PlexusDeviceColumn c(o, comm, spec, d.rank());
    return run_device_sweep(o, column, c, d, report);
  });
}

bool run_raw_nccl(const Options &o, int32_t column, const plx_unique_id &id, DeviceRank &d, const Reporter &report) {
#if PLEXUS_BENCH_HAVE_NCCL
  return run_raw_nccl_column(o, column, id, d, report);
#else
  (void)o, (void)column, (void)id, (void)report;
  std::fprintf(stderr, "plexus-bench: rank %d: the raw-nccl peer: plexus-bench was built without NCCL\n", d.rank());
  return false;
#endif
}

}  // namespace

int device_rank_main(const Options &o, int32_t rank, int fd,
                     const std::vector<std::pair<std::string, plx_unique_id>> &ids,
                     const std::vector<int32_t> &columns) {
  const std::unique_ptr<DeviceRank> d = DeviceRank::open(o, rank);
  if (!d) return 3;
  const Reporter report = [&](const RankResult &r) { return write_result(fd, rank, r); };
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto &[spec, id] = ids[i];
    const bool ok = spec == raw_nccl_peer ? run_raw_nccl(o, columns[i], id, *d, report)
                                          : run_plexus(o, columns[i], spec, id, *d, report);
    if (!ok) return 3;
  }
  return 0;
}

}  // namespace plexus::bench

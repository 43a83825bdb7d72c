// The measurement behind a composite's table: in-place all-reduce on every
// member that could serve a memory kind, at sizes from 8 bytes up (device:
// to 256 MiB in steps of 2; host: to 2 MiB in steps of 4). Every rank makes
// exactly the same calls in the same order, with iteration counts fixed by
// the size alone, so the members' collectives always meet.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "core/log.hpp"
#include "core/status.hpp"
#include "loader/composite_tuning.hpp"
#include "loader/cuda_driver.hpp"

namespace plexus::loader {
namespace {

constexpr double infinite = std::numeric_limits<double>::infinity();

bool all_take(const CompositeComm &c, const std::vector<size_t> &members, int32_t dtype) {
  for (size_t m : members)
    if (!(c.backend->members[m].info().dtype_mask & PLX_BIT(dtype))) return false;
  return true;
}

std::vector<uint64_t> sizes_for(MemClass kind) {
  std::vector<uint64_t> sizes;
  const uint64_t last = kind == MemClass::device ? uint64_t{256} << 20 : uint64_t{2} << 20;
  for (uint64_t s = 8; s <= last; s *= kind == MemClass::device ? 2 : 4) sizes.push_back(s);
  return sizes;
}

// Enough calls to see past a clock tick, few enough that large sizes stay
// cheap; the same on every rank.
int iterations_for(MemClass kind, uint64_t bytes) {
  const uint64_t budget = kind == MemClass::device ? uint64_t{1} << 30 : uint64_t{16} << 20;
  return static_cast<int>(std::clamp<uint64_t>(budget / bytes, 3, 40));
}

// A buffer of the sweep's largest size: host memory, or a device block from
// a member's pool.
struct SweepBuffer {
  std::vector<uint8_t> host;
  void *device = nullptr;
  size_t owner = 0;
  void *data() { return device ? device : host.data(); }
};

plx_status allocate(const CompositeComm &c, const Sweep &s, SweepBuffer *buf) {
  const uint64_t bytes = s.sizes.back();
  if (s.kind == MemClass::host) return buf->host.assign(bytes, 0), PLX_OK;
  for (size_t m = 0; m < c.backend->members.size(); ++m) {
    const Member &member = c.backend->members[m];
    if (!(member.info().alloc_kind_mask & PLX_BIT(PLX_MEM_DEVICE)) || !PLX_MEMBER_HAS(member, mem_alloc)) continue;
    const plx_mem_alloc_params params = {sizeof(plx_mem_alloc_params), PLX_MEM_DEVICE, bytes, 0, 0, 0};
    buf->owner = m;
    return PLX_MEMBER_CALL(member, mem_alloc, c.comms[m], &params, &buf->device);
  }
  return core::fail(PLX_ERR_UNSUPPORTED, "auto: no backend has a device pool to measure with");
}

void release(const CompositeComm &c, SweepBuffer *buf) {
  if (buf->device) (void)PLX_MEMBER_CALL(c.backend->members[buf->owner], mem_free, c.comms[buf->owner], buf->device);
  buf->device = nullptr;
}

plx_status wait_for(const CompositeComm &c, MemClass kind) {
  return kind == MemClass::device ? cuda_driver::synchronize(c.device) : PLX_OK;
}

// Seconds per call of member m at `bytes`; infinite when it declines.
plx_status time_one(const CompositeComm &c, size_t m, const Sweep &s, void *buf, uint64_t bytes, double *seconds) {
  const plx_coll_desc d = desc_of(PLX_COLL_ALL_REDUCE, buf, bytes / plx_dtype_size(s.dtype), s.dtype, PLX_SUM, -1);
  const int iterations = iterations_for(s.kind, bytes);
  *seconds = infinite;
  for (int warm = 0; warm < 2; ++warm) {
    const plx_status st = member_call(c, m, d);
    if (st == PLX_ERR_UNSUPPORTED) return PLX_OK;  // the same answer on every rank: the member sits out
    if (st != PLX_OK) return st;
  }
  if (plx_status st = wait_for(c, s.kind)) return st;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i)
    if (plx_status st = member_call(c, m, d)) return st;
  if (plx_status st = wait_for(c, s.kind)) return st;
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
  return PLX_OK;
}

plx_status time_sweep(const CompositeComm &c, const Sweep &s, void *buf, std::vector<double> *seconds) {
  seconds->assign(s.sizes.size() * s.members.size(), infinite);
  for (size_t i = 0; i < s.sizes.size(); ++i)
    for (size_t j = 0; j < s.members.size(); ++j)
      if (plx_status st = time_one(c, s.members[j], s, buf, s.sizes[i], &(*seconds)[i * s.members.size() + j])) return st;
  return PLX_OK;
}

// Whether every rank got its buffer: a rank that did not must not leave
// the others waiting in calls it will not make.
plx_status agree_allocated(const CompositeComm &c, size_t host, plx_status mine, bool *all) {
  std::vector<double> failed = {mine == PLX_OK ? 0.0 : 1.0};
  if (plx_status s = max_over_ranks(c, host, &failed)) return s;
  *all = failed[0] == 0.0;
  return PLX_OK;
}

plx_status measure_one(const CompositeComm &c, size_t host, const Sweep &s, std::vector<TuneRule> *rules) {
  SweepBuffer buf;
  const plx_status allocated = allocate(c, s, &buf);
  bool all = false;
  if (plx_status st = agree_allocated(c, host, allocated, &all)) return release(c, &buf), st;
  if (!all) {
    core::log_warn("auto: {} memory not measured: a rank could not allocate {} bytes", mem_class_name(s.kind), s.sizes.back());
    return release(c, &buf), PLX_OK;
  }
  std::vector<double> seconds;
  plx_status st = time_sweep(c, s, buf.data(), &seconds);
  release(c, &buf);
  if (st == PLX_OK) st = max_over_ranks(c, host, &seconds);
  if (st != PLX_OK) return st;
  std::vector<std::string> labels;
  for (size_t m : s.members) labels.push_back(c.backend->members[m].label);
  for (TuneRule &r : rules_from_times(s.kind, s.sizes, labels, seconds)) rules->push_back(std::move(r));
  return PLX_OK;
}

}  // namespace

std::vector<Sweep> sweeps_of(const CompositeComm &c) {
  std::vector<Sweep> sweeps;
  for (MemClass kind : {MemClass::device, MemClass::host}) {
    if (kind == MemClass::device && !cuda_driver::available()) continue;
    Sweep s;
    s.kind = kind;
    for (size_t m = 0; m < c.backend->members.size(); ++m) {
      const Member &member = c.backend->members[m];
      if ((member.info().capabilities & PLX_CAP_COLL(PLX_COLL_ALL_REDUCE)) && member.takes(kind) &&
          (member.info().reduce_op_mask & PLX_BIT(PLX_SUM)))
        s.members.push_back(m);
    }
    s.dtype = kind == MemClass::device && all_take(c, s.members, PLX_BFLOAT16) ? PLX_BFLOAT16 : PLX_FLOAT32;
    s.sizes = sizes_for(kind);
    if (s.members.size() >= 2 && all_take(c, s.members, s.dtype)) sweeps.push_back(s);
  }
  return sweeps;
}

plx_status measure_table(const CompositeComm &c, size_t host, const std::vector<Sweep> &sweeps,
                         std::vector<TuneRule> *rules) {
  const auto start = std::chrono::steady_clock::now();
  for (const Sweep &s : sweeps)
    if (plx_status st = measure_one(c, host, s, rules)) return st;
  if (c.rank == 0)
    core::log_info("auto: measured the table in {:.1f} s: {}",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                 tune_text(TuneSpec{{}, *rules}));
  return PLX_OK;
}

}  // namespace plexus::loader

// pinned-host's CPU helper (plugins/pinned-host/pinned_helper.hpp), the
// real class, on a segment in ordinary memory, against host threads that
// play the GPUs' side of kernels/pinned_cpu.cu step for step: post the
// job, wait for the stage to be free, stage, post, wait for every helper's
// part, copy the parts out, publish done. Several "blocks" per rank take
// steps b, b + blocks, ... as the kernel's do. Checks every element against
// core's reduction, many times around the ring and the job ring, and that a
// rank that never stages fails the communicator with PLX_ERR_TIMEOUT.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "plugins/pinned-host/pinned_helper.hpp"
#include "tests/plugins/pinned-host/pinned_model.hpp"

namespace {

using namespace plexus::test::pinned_model;
using plexus::pinned_host::CpuHelper;

CpuHelper::Setup setup_of(World &w, int32_t rank, int32_t timeout_ms) {
  CpuHelper::Setup s;
  s.seg = w.seg, s.layout = w.layout, s.rank_bytes = w.rank_bytes, s.rank = rank;
  s.nranks = static_cast<int32_t>(w.layout.nranks), s.timeout_ms = timeout_ms;
  s.fail = [&w](plx_status st, const std::string &m) { w.fail(st, m); };
  return s;
}

// One step of pinned_cpu.cu's cpu_step, on the host.
bool gpu_step(World &w, int rank, uint64_t n, const uint8_t *in, uint8_t *out, uint64_t len, size_t es) {
  const int nranks = static_cast<int>(w.layout.nranks);
  const uint32_t s = n % w.layout.stages;
  for (int q = 0; q < nranks && n >= w.layout.stages; ++q)  // this rank's own blocks too: it reads its stage back
    if (!wait_geq(w, w.flag(q, kp::done_offset(w.layout, s)), n + 1 - w.layout.stages)) return false;
  std::memcpy(w.stage(rank, s), in, len * es);
  publish(w.flag(rank, kp::posted_offset(s)), n + 1);
  for (int q = 0; q < nranks; ++q)
    if (!wait_geq(w, w.flag(q, kp::reduced_offset(w.layout, s)), n + 1)) return false;
  const uint64_t part = kp::part_elems(len, nranks, es);
  for (int q = 0; q < nranks; ++q) {
    const kp::Range r = kp::part_of(len, part, q);
    std::memcpy(out + r.begin * es, w.stage(q, s) + r.begin * es, (r.end - r.begin) * es);
  }
  publish(w.flag(rank, kp::done_offset(w.layout, s)), n + 1);
  return true;
}

// One call of launch_cpu_star on the host: the job, then the blocks.
bool gpu_call(World &w, int rank, uint64_t *step, uint64_t *job, const Call &c, const uint8_t *in, uint8_t *out) {
  const size_t es = plx_dtype_size(c.dtype);
  const kp::Plan plan = kp::plan_two_shot(w.layout, w.max_blocks, c.count, es);
  if (*job >= kp::kJobSlots && !wait_geq(w, w.flag(rank, kp::jobs_done_offset(w.layout)), *job + 1 - kp::kJobSlots))
    return false;
  auto *slot = reinterpret_cast<kp::CpuJob *>(w.flag(rank, kp::job_offset(w.layout, *job)));
  slot->base = *step, slot->steps = plan.steps, slot->count = c.count, slot->step = plan.step;
  slot->wire = c.dtype, slot->op = c.op, slot->coll = PLX_COLL_ALL_REDUCE;
  publish(&slot->seq, *job + 1);
  std::atomic<bool> ok{true};
  std::vector<std::thread> blocks;
  for (uint32_t b = 0; b < plan.blocks; ++b)
    blocks.emplace_back([&, b] {
      for (uint64_t i = b; ok && i < plan.steps; i += plan.blocks) {
        const uint64_t first = i * plan.step, len = std::min(plan.step, c.count - first);
        if (!gpu_step(w, rank, *step + i, in + first * es, out + first * es, len, es)) ok = false;
      }
    });
  for (std::thread &t : blocks) t.join();
  *step += plan.steps, *job += 1;
  return ok;
}

std::vector<Call> calls() {
  std::vector<Call> out;
  const plx_dtype dtypes[] = {PLX_FLOAT32, PLX_INT32, PLX_UINT8, PLX_INT64};
  const uint64_t counts[] = {1, 1000, 70001, 300000};
  for (int i = 0; i < 40; ++i) out.push_back({dtypes[i % 4], i % PLX_REDUCE_OP_COUNT, counts[(i / 4) % 4]});
  return out;
}

// Every rank runs every call; rank r checks its outputs.
void run_ranks(World &w, const std::vector<Call> &cs, std::atomic<int> *mismatches) {
  const int nranks = static_cast<int>(w.layout.nranks);
  std::vector<std::thread> ranks;
  for (int r = 0; r < nranks; ++r)
    ranks.emplace_back([&, r] {
      uint64_t step = 0, job = 0;
      for (size_t k = 0; k < cs.size(); ++k) {
        const Call &c = cs[k];
        std::vector<std::vector<uint8_t>> in;
        std::vector<const void *> srcs;
        for (int q = 0; q < nranks; ++q) in.push_back(input_of(q, c, k));
        for (const auto &x : in) srcs.push_back(x.data());
        std::vector<uint8_t> out(in[r].size()), want(in[r].size());
        if (plexus::core::reduce_into(c.dtype, c.op, want.data(), srcs.data(), nranks, c.count,
                                      plexus::core::CpuIsa::scalar) != PLX_OK)
          return void(++*mismatches);  // no REQUIRE off the test's thread
        if (!gpu_call(w, r, &step, &job, c, in[r].data(), out.data())) return void(++*mismatches);
        if (out != want) w.fail(PLX_ERR_INTERNAL, "rank " + std::to_string(r) + ": call " + std::to_string(k) + " differs");
      }
    });
  for (std::thread &t : ranks) t.join();
}

}  // namespace

TEST_CASE("plugins.pinned_host.cpu_helper_reduces_every_part") {
  for (int nranks : {1, 2, 3}) {
    World w(nranks, 4, 64 << 10, 3);  // 4 stages of 64 KiB: many times around the ring
    std::vector<std::unique_ptr<CpuHelper>> helpers;
    for (int r = 0; r < nranks; ++r) helpers.push_back(std::make_unique<CpuHelper>(setup_of(w, r, 20000)));
    std::atomic<int> mismatches{0};
    const std::vector<Call> cs = calls();  // 40 calls: more than the job ring's 32 slots
    run_ranks(w, cs, &mismatches);
    INFO("ranks ", nranks, ": ", w.message);
    CHECK(mismatches == 0);
    CHECK(w.failure == PLX_OK);
    for (const auto &h : helpers) CHECK(h->jobs_finished() == cs.size());
  }
}

TEST_CASE("plugins.pinned_host.cpu_helper_times_out_on_a_missing_rank") {
  World w(2, 4, 64 << 10, 1);
  CpuHelper helper(setup_of(w, 0, 200));
  uint64_t step = 0, job = 0;
  std::vector<uint8_t> in(4000), out(4000);
  // Rank 0 alone: its helper waits for rank 1's data, gives up, fails the
  // communicator (abort word), and rank 0's wait for the parts ends.
  CHECK_FALSE(gpu_call(w, 0, &step, &job, {PLX_FLOAT32, PLX_SUM, 1000}, in.data(), out.data()));
  CHECK(w.failure == PLX_ERR_TIMEOUT);
  CHECK(w.message.find("waited more than 200 ms for rank 1") != std::string::npos);
}

TEST_CASE("plugins.pinned_host.cpu_helper_stops_when_idle") {
  World w(2, 4, 64 << 10, 1);
  auto helper = std::make_unique<CpuHelper>(setup_of(w, 1, 1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  helper.reset();  // joins at once: an idle helper waits for no deadline
  CHECK(w.failure == PLX_OK);
}

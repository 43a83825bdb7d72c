// The shared segment's layout and the launch plans of pinned-host
// (kernels/pinned.hpp: the very constexpr functions the plugin and the
// kernels use), checked on the CPU: regions never overlap and keep their
// alignment, every element of a collective lands in exactly one step (and
// one part), no step overflows its stage, and host-side packs stay 16-byte
// aligned. The GPU cannot be run in CI; this is the part that can.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "kernels/pinned.hpp"

namespace {

namespace kp = plexus::kernels::pinned;

std::vector<kp::Layout> layouts() {
  std::vector<kp::Layout> out;
  for (uint32_t n : {1u, 2u, 3u, 8u, 16u})
    for (uint32_t stages : {2u, 16u, 64u})
      for (uint64_t stage : {uint64_t{64} << 10, uint64_t{256} << 10, uint64_t{1} << 20})
        for (uint32_t ce : {0u, 4u})
          out.push_back({n, stages, stage, uint64_t{64} << 10, ce, ce == 0 ? 0 : uint64_t{4} << 20});
  return out;
}

constexpr uint64_t kCounts[] = {1, 7, 1000, 4099, 65537, (1u << 20) + 5, 3000001};

void check_common(const kp::Layout &l, const kp::Plan &p, uint64_t count, int32_t max_blocks) {
  REQUIRE(p.steps * p.step >= count);
  REQUIRE((p.steps - 1) * p.step < count);
  REQUIRE(p.blocks >= 1);
  REQUIRE(p.blocks <= l.stages);
  REQUIRE(p.blocks <= static_cast<uint32_t>(max_blocks));
  REQUIRE(p.blocks <= p.steps);
}

void check_two_shot(const kp::Layout &l, const kp::Plan &p, uint64_t count, uint64_t ws) {
  const uint64_t pack = kp::pack_elems(ws);
  REQUIRE(p.step % (pack * l.nranks) == 0);
  for (uint64_t i = 0; i < p.steps; ++i) {
    const uint64_t len = kp::min_u(p.step, count - i * p.step);
    const uint64_t part = kp::part_elems(len, l.nranks, ws);
    REQUIRE(part % pack == 0);  // every part starts on a pack of the stage
    REQUIRE(l.nranks * part * ws <= l.stage_bytes);
    uint64_t next = 0;
    for (uint32_t r = 0; r < l.nranks; ++r) {
      const kp::Range range = kp::part_of(len, part, r);
      REQUIRE(range.begin == next);
      REQUIRE(range.end >= range.begin);
      next = range.end;
    }
    REQUIRE(next == len);
    if (i + 1 < p.steps) i = p.steps - 2;  // the middle steps are alike: check the first and the last
  }
}

}  // namespace

TEST_CASE("plugins.pinned_host.layout_regions") {
  for (const kp::Layout &l : layouts()) {
    INFO("nranks ", l.nranks, " stages ", l.stages, " stage_bytes ", l.stage_bytes);
    CHECK(sizeof(kp::SegmentHeader) <= kp::kAbortOffset);
    CHECK(kp::kAbortOffset + 8 <= kp::kHeaderBytes);
    CHECK(kp::kErrorOffset + sizeof(kp::ErrorRecord) <= kp::kAckOffset);
    CHECK(kp::kAckOffset + 8 <= kp::posted_offset(0));
    CHECK(kp::posted_offset(l.stages - 1) + kp::kFlagBytes == kp::reduced_offset(l, 0));
    CHECK(kp::reduced_offset(l, l.stages - 1) + kp::kFlagBytes == kp::done_offset(l, 0));
    CHECK(kp::done_offset(l, l.stages - 1) + kp::kFlagBytes == kp::jobs_done_offset(l));
    CHECK(kp::jobs_done_offset(l) + kp::kFlagBytes == kp::job_offset(l, 0));
    CHECK(kp::job_offset(l, kp::kJobSlots - 1) + kp::kFlagBytes == kp::ce_posted_offset(l, 0));
    CHECK(kp::ce_posted_offset(l, kp::kMaxCeStages - 1) + kp::kFlagBytes == kp::ce_done_offset(l, 0));
    CHECK(kp::ce_done_offset(l, kp::kMaxCeStages - 1) + kp::kFlagBytes <= kp::control_bytes(l));
    CHECK(kp::ce_offset(l) % kp::kPage == 0);
    CHECK(kp::ce_offset(l) + l.ce_stages * l.ce_bytes == kp::rank_bytes(l));
    CHECK(kp::ll_offset(l) % kp::kPage == 0);
    CHECK(kp::ll_half_bytes(l) >= kp::ll_lines(l) * 16);
    CHECK(kp::ring_offset(l) % kp::kPage == 0);
    CHECK(kp::rank_bytes(l) % kp::kPage == 0);
    CHECK(kp::segment_bytes(l) == kp::kHeaderBytes + l.nranks * kp::rank_bytes(l));
  }
}

TEST_CASE("plugins.pinned_host.plans_cover_every_element") {
  for (const kp::Layout &l : layouts())
    for (int32_t max_blocks : {1, 16, 64})
      for (uint64_t ws : {1u, 2u, 4u, 8u})
        for (uint64_t count : kCounts) {
          INFO("nranks ", l.nranks, " stages ", l.stages, " stage_bytes ", l.stage_bytes, " max_blocks ", max_blocks,
               " ws ", ws, " count ", count);
          const uint64_t pack = kp::pack_elems(ws);
          const kp::Plan one = kp::plan_one_shot(l, max_blocks, count, ws);
          check_common(l, one, count, max_blocks);
          REQUIRE(one.step % pack == 0);
          REQUIRE(one.step * ws <= l.stage_bytes);
          const kp::Plan two = kp::plan_two_shot(l, max_blocks, count, ws);
          check_common(l, two, count, max_blocks);
          check_two_shot(l, two, count, ws);
          const kp::Plan rs = kp::plan_reduce_scatter(l, max_blocks, count, ws);
          check_common(l, rs, count, max_blocks);
          REQUIRE(rs.step % pack == 0);
          REQUIRE(l.nranks * rs.step * ws <= l.stage_bytes);
          const kp::Plan copy = kp::plan_copy(l, max_blocks, count * ws);
          check_common(l, copy, count * ws, max_blocks);
          REQUIRE(copy.step % 16 == 0);
          REQUIRE(copy.step <= l.stage_bytes);
        }
}

TEST_CASE("plugins.pinned_host.plans_spread_over_blocks") {
  const kp::Layout l{2, 16, uint64_t{256} << 10, uint64_t{64} << 10};
  // 512 KiB of float32: 16 steps of 32 KiB, one per block.
  const kp::Plan p = kp::plan_one_shot(l, 16, 131072, 4);
  CHECK(p.steps == 16);
  CHECK(p.blocks == 16);
  // Small messages keep steps of at least kMinStepBytes.
  CHECK(kp::plan_one_shot(l, 16, 8192, 4).steps == 2);
  // Large ones use whole stages.
  CHECK(kp::plan_one_shot(l, 16, 64u << 20, 4).step * 4 == l.stage_bytes);
}

TEST_CASE("plugins.pinned_host.ll_lines_and_tags") {
  CHECK(kp::ll_lines_for(1, 1) == 1);
  CHECK(kp::ll_lines_for(8, 1) == 1);
  CHECK(kp::ll_lines_for(3, 4) == 2);
  CHECK(kp::ll_blocks(1, 16) == 1);
  CHECK(kp::ll_blocks(8192, 16) == 16);
  CHECK(kp::ll_blocks(1u << 20, 64) == 64);
  CHECK(kp::ll_blocks(8193, 16) == 16);  // beyond 16 x 512 lines: batches
  for (uint64_t e : {uint64_t{1}, uint64_t{2}, uint64_t{0xFFFFFFFE}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                     uint64_t{0x1FFFFFFFE}}) {
    CHECK(kp::ll_tag(e) != 0);  // a line never written (zero) matches no epoch
    CHECK(kp::ll_tag(e) != kp::ll_tag(e + 2));  // a half's lines change tag every use
  }
}

// The LL kernels' loops (pinned_ll.cu): thread t reads batches starting at
// t, t + kLLBatch * G, ... (G threads); every line exactly once.
TEST_CASE("plugins.pinned_host.ll_batches_cover_every_line") {
  for (uint64_t lines : {uint64_t{1}, uint64_t{511}, uint64_t{512}, uint64_t{513}, uint64_t{8192}, uint64_t{8193},
                         uint64_t{40000}, uint64_t{131072}})
    for (int32_t max_blocks : {1, 3, 16, 64}) {
      const uint64_t G = uint64_t{kp::ll_blocks(lines, max_blocks)} * kp::kThreads;
      std::vector<int> seen(lines, 0);
      for (uint64_t t = 0; t < G; ++t)
        for (uint64_t base = t; base < lines; base += kp::kLLBatch * G)
          for (uint32_t i = 0; i < kp::ll_batch_lines(base, G, lines); ++i) ++seen[base + i * G];
      INFO("lines ", lines, " max_blocks ", max_blocks);
      CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<long>(lines));
    }
}

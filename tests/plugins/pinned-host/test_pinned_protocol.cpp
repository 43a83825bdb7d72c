// The protocols of kernels/pinned.hpp played by host threads on a segment
// in ordinary memory, transliterating the kernels step for step: bulk
// one-shot and two-shot (pinned_reduce.cuh, several "blocks" per rank),
// bulk broadcast (pinned_copy.cu), the low-latency all-reduce and broadcast
// with their acks (pinned_ll.cu), the copy engines' two streams
// (pinned_copy_engine.cpp, pinned_ce.cu), interleaved in one random sequence that every rank
// issues alike, with small rings so that every stage and LL half is reused
// many times, sometimes in place, and sometimes a rank that adds nothing. Every output is
// checked against core's reduction. x86 orders memory more strongly than a
// GPU over PCIe, so this checks the wait conditions, not the fences.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "tests/plugins/pinned-host/pinned_model.hpp"

namespace {

using namespace plexus::test::pinned_model;

struct Rank {
  World &w;
  int r, R;
  uint64_t step = 0, ll_epoch = 0, ll_known = 0, ce_next = 0;
};

bool stage_free(Rank &k, uint64_t n) {
  const uint32_t S = k.w.layout.stages;
  for (int q = 0; q < k.R && n >= S; ++q)
    if (q != k.r && !wait_geq(k.w, k.w.flag(q, kp::done_offset(k.w.layout, n % S)), n + 1 - S)) return false;
  return true;
}

// Waits for the peers' flag at `offset`; *skips gets those that add nothing.
bool wait_peers(Rank &k, uint64_t offset, uint64_t want, uint32_t *skips) {
  *skips = 0;
  for (int q = 0; q < k.R; ++q) {
    if (q == k.r) continue;
    if (!wait_geq(k.w, k.w.flag(q, offset), want)) return false;
    if (__atomic_load_n(k.w.flag(q, offset), __ATOMIC_ACQUIRE) & kp::kSkip) *skips |= 1u << q;
  }
  return true;
}

// Reduces n elements in rank order over the ranks that add something (a
// failure shows as a wrong output: no REQUIRE off the test's thread).
void reduce(const Call &c, const std::vector<const uint8_t *> &srcs, uint8_t *dst, uint64_t n) {
  std::vector<const void *> given;
  for (const uint8_t *s : srcs)
    if (s != nullptr) given.push_back(s);
  if (given.empty()) (void)plexus::core::fill_identity(c.dtype, c.op, dst, n);
  else (void)plexus::core::reduce_into(c.dtype, c.op, dst, given.data(), static_cast<int>(given.size()), n);
}

// one_shot_step of pinned_reduce.cuh.
bool one_shot_step(Rank &k, const Call &c, uint64_t n, const uint8_t *in, uint8_t *out, uint64_t len) {
  const size_t es = plx_dtype_size(c.dtype);
  const uint32_t s = n % k.w.layout.stages;
  if (!stage_free(k, n)) return false;
  if (in != nullptr) std::memcpy(k.w.stage(k.r, s), in, len * es);
  publish(k.w.flag(k.r, kp::posted_offset(s)), (n + 1) | (in == nullptr ? kp::kSkip : 0));
  uint32_t skips = 0;
  if (!wait_peers(k, kp::posted_offset(s), n + 1, &skips)) return false;
  std::vector<const uint8_t *> srcs;
  for (int q = 0; q < k.R; ++q)
    srcs.push_back(q == k.r ? in : (skips >> q) & 1u ? nullptr : reinterpret_cast<uint8_t *>(k.w.stage(q, s)));
  reduce(c, srcs, out, len);
  publish(k.w.flag(k.r, kp::done_offset(k.w.layout, s)), n + 1);
  return true;
}

// two_shot_step of pinned_reduce.cuh.
bool two_shot_step(Rank &k, const Call &c, uint64_t n, const uint8_t *in, uint8_t *out, uint64_t len) {
  const size_t es = plx_dtype_size(c.dtype);
  const uint32_t s = n % k.w.layout.stages;
  const uint64_t part = kp::part_elems(len, k.R, es);
  if (!stage_free(k, n)) return false;
  auto *mine = reinterpret_cast<uint8_t *>(k.w.stage(k.r, s));
  for (int q = 0; in != nullptr && q < k.R; ++q) {
    const kp::Range g = kp::part_of(len, part, q);
    if (q != k.r) std::memcpy(mine + g.begin * es, in + g.begin * es, (g.end - g.begin) * es);
  }
  publish(k.w.flag(k.r, kp::posted_offset(s)), (n + 1) | (in == nullptr ? kp::kSkip : 0));
  uint32_t skips = 0;
  if (!wait_peers(k, kp::posted_offset(s), n + 1, &skips)) return false;
  const kp::Range m = kp::part_of(len, part, k.r);
  std::vector<const uint8_t *> srcs;
  for (int q = 0; q < k.R; ++q)
    srcs.push_back(q == k.r ? (in ? in + m.begin * es : nullptr)
                            : (skips >> q) & 1u ? nullptr : reinterpret_cast<uint8_t *>(k.w.stage(q, s)) + m.begin * es);
  reduce(c, srcs, mine + m.begin * es, m.end - m.begin);
  std::memcpy(out + m.begin * es, mine + m.begin * es, (m.end - m.begin) * es);
  publish(k.w.flag(k.r, kp::reduced_offset(k.w.layout, s)), n + 1);
  if (!wait_peers(k, kp::reduced_offset(k.w.layout, s), n + 1, &skips)) return false;
  for (int q = 0; q < k.R; ++q) {
    const kp::Range g = kp::part_of(len, part, q);
    if (q != k.r) std::memcpy(out + g.begin * es, k.w.stage(q, s) + g.begin * es, (g.end - g.begin) * es);
  }
  publish(k.w.flag(k.r, kp::done_offset(k.w.layout, s)), n + 1);
  return true;
}

// A bulk launch: blocks take steps b, b + blocks, ...; the counter moves on.
template <class Step>
bool launch(Rank &k, const kp::Plan &plan, Step step) {
  std::atomic<bool> ok{true};
  std::vector<std::thread> blocks;
  for (uint32_t b = 0; b < plan.blocks; ++b)
    blocks.emplace_back([&, b] {
      for (uint64_t i = b; ok && i < plan.steps; i += plan.blocks)
        if (!step(k.step + i, i)) ok = false;
    });
  for (std::thread &t : blocks) t.join();
  k.step += plan.steps;
  return ok;
}

// may_write of pinned_ll.cu: every peer has acked epoch e - 2 (known
// without asking after reading every peer's e - 1).
bool ll_may_write(Rank &k, uint64_t e) {
  if (e < 3 || k.ll_known >= e - 2) return true;
  for (int q = 0; q < k.R; ++q)
    if (q != k.r && !wait_geq(k.w, k.w.flag(q, kp::kAckOffset), e - 2)) return false;
  k.ll_known = e - 2;
  return true;
}

void ll_write(Rank &k, uint64_t e, const std::vector<uint8_t> &payload) {
  for (uint64_t u = 0; u < payload.size() / 8; ++u)
    for (int h = 0; h < 2; ++h) {
      uint32_t d;
      std::memcpy(&d, payload.data() + 8 * u + 4 * h, 4);
      __atomic_store_n(k.w.ll_line(k.r, e, u) + h, d | uint64_t{kp::ll_tag(e)} << 32, __ATOMIC_RELAXED);
    }
}

bool ll_read(Rank &k, int q, uint64_t e, std::vector<uint8_t> *payload) {
  for (uint64_t u = 0; u < payload->size() / 8; ++u)
    for (int h = 0; h < 2; ++h) {
      uint64_t v;
      while (((v = __atomic_load_n(k.w.ll_line(q, e, u) + h, __ATOMIC_RELAXED)) >> 32) != kp::ll_tag(e))
        if (k.w.aborted()) return false;
      std::memcpy(payload->data() + 8 * u + 4 * h, &v, 4);
    }
  return true;
}

// end_epoch of pinned_ll.cu.
void ll_end(Rank &k, uint64_t e, bool read_all) {
  if (read_all) k.ll_known = std::max(k.ll_known, e - 1);
  k.ll_epoch = e;
  publish(k.w.flag(k.r, kp::kAckOffset), e);
}

// ll_reduce_kernel of pinned_ll.cu, one thread.
bool ll_all_reduce(Rank &k, const Call &c, const uint8_t *in, uint8_t *out) {
  const size_t es = plx_dtype_size(c.dtype);
  const uint64_t e = k.ll_epoch + 1, lines = kp::ll_lines_for(c.count, es);
  if (!ll_may_write(k, e)) return false;
  std::vector<uint8_t> payload(lines * 8, 0);
  if (in != nullptr) std::memcpy(payload.data(), in, c.count * es);
  else (void)plexus::core::fill_identity(c.dtype, c.op, payload.data(), c.count);
  ll_write(k, e, payload);
  std::vector<std::vector<uint8_t>> got(k.R, std::vector<uint8_t>(lines * 8));
  for (int q = 0; q < k.R; ++q)
    if (q != k.r && !ll_read(k, q, e, &got[q])) return false;
  got[k.r] = payload;
  std::vector<const uint8_t *> srcs;
  for (const auto &g : got) srcs.push_back(g.data());
  reduce(c, srcs, out, c.count);
  ll_end(k, e, true);
  return true;
}

// ll_copy_kernel of pinned_ll.cu for a broadcast: the root only writes, so
// it learns from the acks when a half is free again.
bool ll_broadcast(Rank &k, int root, const uint8_t *in, uint8_t *out, uint64_t bytes) {
  const uint64_t e = k.ll_epoch + 1;
  std::vector<uint8_t> payload(kp::div_up(bytes, 8) * 8, 0);
  if (k.r == root) {
    if (!ll_may_write(k, e)) return false;
    std::memcpy(payload.data(), in, bytes);
    ll_write(k, e, payload);
  } else if (!ll_read(k, root, e, &payload)) {
    return false;
  }
  std::memcpy(out, payload.data(), bytes);
  ll_end(k, e, false);
  return true;
}

// copy_step of pinned_copy.cu for a broadcast from `root` of `bytes`.
bool broadcast(Rank &k, int root, const uint8_t *in, uint8_t *out, uint64_t bytes) {
  const kp::Plan plan = kp::plan_copy(k.w.layout, k.w.max_blocks, bytes);
  return launch(k, plan, [&](uint64_t n, uint64_t i) {
    const uint32_t s = n % k.w.layout.stages;
    const uint64_t off = i * plan.step, len = std::min(plan.step, bytes - off);
    if (!stage_free(k, n)) return false;
    if (k.r == root) std::memcpy(k.w.stage(k.r, s), in + off, len);
    publish(k.w.flag(k.r, kp::posted_offset(s)), n + 1);
    if (k.r != root && !wait_geq(k.w, k.w.flag(root, kp::posted_offset(s)), n + 1)) return false;
    std::memcpy(out + off, k.r == root ? in + off : reinterpret_cast<uint8_t *>(k.w.stage(root, s)), len);
    publish(k.w.flag(k.r, kp::done_offset(k.w.layout, s)), n + 1);
    return true;
  });
}

// pinned_copy_engine.cpp with pinned_ce.cu: an upload thread (the copy
// stream) and the caller's thread (downloads and the reduction), chunks
// numbered on the host.
bool copy_engines(Rank &k, const Call &c, const uint8_t *in, uint8_t *out) {
  const kp::Layout &l = k.w.layout;
  const size_t es = plx_dtype_size(c.dtype);
  const uint64_t per = l.ce_bytes / es, base = k.ce_next, chunks = kp::div_up(c.count, per);
  auto slot_of = [&](int q, uint64_t m) { return k.w.rank_base(q) + kp::ce_offset(l) + (m % l.ce_stages) * l.ce_bytes; };
  std::atomic<bool> ok{true};
  std::thread up([&] {
    for (uint64_t i = 0; ok && i < chunks; ++i) {
      const uint64_t m = base + i, len = std::min(per, c.count - i * per);
      for (int q = 0; q < k.R && m >= l.ce_stages; ++q)
        if (q != k.r && !wait_geq(k.w, k.w.flag(q, kp::ce_done_offset(l, m % l.ce_stages)), m + 1 - l.ce_stages))
          return void(ok = false);
      if (in != nullptr) std::memcpy(slot_of(k.r, m), in + i * per * es, len * es);
      publish(k.w.flag(k.r, kp::ce_posted_offset(l, m % l.ce_stages)), (m + 1) | (in ? 0 : kp::kSkip));
    }
  });
  std::vector<std::vector<uint8_t>> scratch(k.R, std::vector<uint8_t>(l.ce_bytes));
  for (uint64_t i = 0; ok && i < chunks; ++i) {
    const uint64_t m = base + i, len = std::min(per, c.count - i * per);
    uint32_t skips = 0;  // this rank's own upload too (in place it reads what the reduction writes)
    if (!wait_peers(k, kp::ce_posted_offset(l, m % l.ce_stages), m + 1, &skips) ||
        !wait_geq(k.w, k.w.flag(k.r, kp::ce_posted_offset(l, m % l.ce_stages)), m + 1))
      ok = false;
    std::vector<const uint8_t *> srcs;
    for (int q = 0; ok && q < k.R; ++q) {
      if (q != k.r) std::memcpy(scratch[q].data(), slot_of(q, m), len * es);
      srcs.push_back(q == k.r ? (in ? in + i * per * es : nullptr) : (skips >> q) & 1u ? nullptr : scratch[q].data());
    }
    if (ok) reduce(c, srcs, out + i * per * es, len);
    publish(k.w.flag(k.r, kp::ce_done_offset(l, m % l.ce_stages)), m + 1);
  }
  up.join();
  k.ce_next += chunks;
  return ok;
}

enum Kind { kLL, kOne, kTwo, kBroadcast, kLLBroadcast, kCopy };

// Call `index` of the sequence, the same on every rank.
bool run_call(Rank &k, int index, Kind kind, const Call &c, int absent, bool in_place) {
  std::vector<std::vector<uint8_t>> in;
  for (int q = 0; q < k.R; ++q) in.push_back(input_of(q, c, index));
  const size_t es = plx_dtype_size(c.dtype);
  std::vector<uint8_t> out(c.count * es), want(c.count * es);
  const int root = index % k.R;
  if (kind == kBroadcast || kind == kLLBroadcast) {
    const bool ok = kind == kBroadcast ? broadcast(k, root, in[root].data(), out.data(), c.count * es)
                                       : ll_broadcast(k, root, in[root].data(), out.data(), c.count * es);
    return ok && out == in[root];
  }
  std::vector<const uint8_t *> srcs;
  for (int q = 0; q < k.R; ++q) srcs.push_back(q == absent ? nullptr : in[q].data());
  reduce(c, srcs, want.data(), c.count);
  if (in_place) out = in[k.r];  // the input is the output buffer
  const uint8_t *mine = k.r == absent ? nullptr : in_place ? out.data() : in[k.r].data();
  bool ok = true;
  if (kind == kLL) {
    ok = ll_all_reduce(k, c, mine, out.data());
  } else if (kind == kCopy) {
    ok = copy_engines(k, c, mine, out.data());
  } else {
    const kp::Plan plan = kind == kOne ? kp::plan_one_shot(k.w.layout, k.w.max_blocks, c.count, es)
                                       : kp::plan_two_shot(k.w.layout, k.w.max_blocks, c.count, es);
    ok = launch(k, plan, [&](uint64_t n, uint64_t i) {
      const uint64_t first = i * plan.step, len = std::min(plan.step, c.count - first);
      const uint8_t *at = mine == nullptr ? nullptr : mine + first * es;
      return kind == kOne ? one_shot_step(k, c, n, at, out.data() + first * es, len)
                          : two_shot_step(k, c, n, at, out.data() + first * es, len);
    });
  }
  return ok && out == want;
}

void run_sequence(int nranks, uint64_t seed) {
  World w(nranks, 3, 64 << 10, 3, 8192, 2, 64 << 10);  // and 2 copy slots of 64 KiB
  std::atomic<int> bad{0};
  std::vector<std::thread> ranks;
  for (int r = 0; r < nranks; ++r)
    ranks.emplace_back([&, r] {
      Rank k{w, r, nranks};
      std::mt19937_64 gen(seed);  // the same sequence on every rank
      const plx_dtype dtypes[] = {PLX_FLOAT32, PLX_INT32, PLX_UINT8, PLX_INT64};
      for (int i = 0; i < 80 && bad == 0; ++i) {
        const Kind kind = static_cast<Kind>(gen() % 6);
        const uint64_t count = kind == kLL || kind == kLLBroadcast ? 1 + gen() % 1024 : 1 + gen() % 200000;
        const Call c{dtypes[gen() % 4], static_cast<plx_reduce_op>(gen() % PLX_AVG), count};
        const int absent = gen() % 3 == 0 ? static_cast<int>(gen() % nranks) : -1;
        const bool in_place = gen() % 2 == 0;
        if (!run_call(k, i, kind, c, absent, in_place)) w.fail(PLX_ERR_INTERNAL, "call " + std::to_string(i) + " differs"), ++bad;
      }
    });
  for (std::thread &t : ranks) t.join();
  INFO(nranks, " ranks, seed ", seed, ": ", w.message);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("plugins.pinned_host.protocols_keep_readers_ahead_of_writers") {
  for (int nranks : {2, 3})
    for (uint64_t seed : {1u, 2u, 3u}) run_sequence(nranks, seed);
}

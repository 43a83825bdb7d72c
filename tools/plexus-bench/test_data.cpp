// The bench's correctness check must pass right results computed another
// way (plexus' CPU reduction, in another order) and catch wrong ones: a
// changed element, an output never written, blocks in the wrong place.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_reduce.hpp"
#include "tools/plexus-bench/data.hpp"
#include "tools/plexus-bench/results.hpp"
#include "tools/plexus-bench/sweep.hpp"

namespace pb = plexus::bench;

namespace {

constexpr uint64_t seed = 12345;

struct Case {
  pb::Options o;
  pb::SizePoint p;
};

Case make_case(pb::Coll coll, plx_dtype dtype, plx_reduce_op redop, int32_t ranks, uint64_t count) {
  Case c;
  c.o.coll = coll, c.o.dtype = dtype, c.o.redop = redop, c.o.ranks = ranks;
  c.p.count = count, c.p.bytes = count * pb::dtype_bytes(dtype);
  return c;
}

std::vector<std::vector<uint8_t>> inputs(const Case &c) {
  std::vector<std::vector<uint8_t>> in(static_cast<size_t>(c.o.ranks));
  for (int32_t r = 0; r < c.o.ranks; ++r) {
    in[r].resize(pb::send_count(c.o, c.p) * pb::dtype_bytes(c.o.dtype));
    pb::fill_input(c.o.dtype, seed, r, 0, pb::send_count(c.o, c.p), in[r].data());
  }
  return in;
}

// What a correct all-reduce gives, combined from the last rank to the first.
std::vector<uint8_t> reduced_backwards(const Case &c) {
  const auto in = inputs(c);
  std::vector<const void *> srcs;
  for (auto it = in.rbegin(); it != in.rend(); ++it) srcs.push_back(it->data());
  std::vector<uint8_t> out(in[0].size());
  REQUIRE(plexus::core::reduce_into(c.o.dtype, c.o.redop, out.data(), srcs.data(), c.o.ranks, c.p.count) == PLX_OK);
  return out;
}

}  // namespace

TEST_CASE("Bench.Check.right_reductions_pass_and_a_changed_element_fails") {
  for (plx_dtype d = PLX_INT8; d <= PLX_FLOAT64; ++d)
    for (plx_reduce_op op = PLX_SUM; op <= PLX_AVG; ++op) {
      CAPTURE(d);
      CAPTURE(op);
      const Case c = make_case(pb::Coll::all_reduce, d, op, 5, 999);
      std::vector<uint8_t> out = reduced_backwards(c);
      CHECK(pb::count_wrong(c.o, c.p, 3, seed, out.data()) == 0);
      out[17 * pb::dtype_bytes(d)] ^= 0x40;  // a bit far above any rounding error
      CHECK(pb::count_wrong(c.o, c.p, 3, seed, out.data()) == 1);
      pb::poison(d, out.data(), c.p.count);
      // An 8-bit product wraps onto any value, the poison's too, 1 in 256.
      CHECK(pb::count_wrong(c.o, c.p, 3, seed, out.data()) >= c.p.count - c.p.count / 64);
    }
}

TEST_CASE("Bench.Check.half_types_may_round_every_step") {
  // bfloat16 summed pairwise with a rounding after each addition, as a
  // ring sending bfloat16 would: within the documented tolerance.
  const Case c = make_case(pb::Coll::all_reduce, PLX_BFLOAT16, PLX_SUM, 8, 4096);
  const auto in = inputs(c);
  std::vector<uint8_t> out = in[0];
  for (int32_t r = 1; r < c.o.ranks; ++r) {
    const void *srcs[] = {out.data(), in[r].data()};
    REQUIRE(plexus::core::reduce_into(PLX_BFLOAT16, PLX_SUM, out.data(), srcs, 2, c.p.count) == PLX_OK);
  }
  CHECK(pb::count_wrong(c.o, c.p, 0, seed, out.data()) == 0);
}

// float32 sent as bfloat16 (every input rounded, and the result): wrong to
// float32's rounding, right to bfloat16's once --wire names it.
TEST_CASE("Bench.Check.wire_dtype_widens_the_tolerance") {
  Case c = make_case(pb::Coll::all_reduce, PLX_FLOAT32, PLX_SUM, 4, 4096);
  const auto in = inputs(c);
  std::vector<float> out(c.p.count);
  const auto to_bf16 = [](float v) {
    uint32_t b = std::bit_cast<uint32_t>(v);
    b += 0x7FFF + ((b >> 16) & 1);
    return std::bit_cast<float>(b & 0xFFFF0000u);
  };
  for (uint64_t j = 0; j < c.p.count; ++j) {
    float sum = 0;
    for (const auto &rank_in : in) sum += to_bf16(reinterpret_cast<const float *>(rank_in.data())[j]);
    out[j] = to_bf16(sum);
  }
  CHECK(pb::count_wrong(c.o, c.p, 0, seed, out.data()) > c.p.count / 2);
  c.o.wire = PLX_BFLOAT16;
  CHECK(pb::count_wrong(c.o, c.p, 0, seed, out.data()) == 0);
  out[5] += 0.5f;  // a misplaced contribution is still caught
  CHECK(pb::count_wrong(c.o, c.p, 0, seed, out.data()) == 1);
}

TEST_CASE("Bench.Check.data_movement_is_exact_and_placed") {
  const Case c = make_case(pb::Coll::all_gather, PLX_FLOAT32, PLX_SUM, 4, 4000);
  const auto in = inputs(c);
  std::vector<uint8_t> out;
  for (const auto &block : in) out.insert(out.end(), block.begin(), block.end());
  CHECK(pb::count_wrong(c.o, c.p, 2, seed, out.data()) == 0);
  std::swap_ranges(out.begin(), out.begin() + in[0].size(), out.begin() + in[0].size());
  CHECK(pb::count_wrong(c.o, c.p, 2, seed, out.data()) == 2000);
  const Case g = make_case(pb::Coll::gather, PLX_FLOAT32, PLX_SUM, 4, 4000);
  CHECK(pb::count_wrong(g.o, g.p, 1, seed, out.data()) == 0);  // only root 0 receives
}

TEST_CASE("Bench.Check.reduce_scatter_checks_this_ranks_block") {
  const Case c = make_case(pb::Coll::reduce_scatter, PLX_FLOAT32, PLX_SUM, 4, 4000);
  const auto in = inputs(c);
  std::vector<const void *> srcs;
  for (const auto &x : in) srcs.push_back(x.data() + 2 * 1000 * sizeof(float));  // block 2
  std::vector<float> out(1000);
  REQUIRE(plexus::core::reduce_into(PLX_FLOAT32, PLX_SUM, out.data(), srcs.data(), 4, 1000) == PLX_OK);
  CHECK(pb::count_wrong(c.o, c.p, 2, seed, out.data()) == 0);
  CHECK(pb::count_wrong(c.o, c.p, 1, seed, out.data()) == 1000);
}

TEST_CASE("Bench.Sweep.sizes_follow_nccl_tests") {
  pb::Options o;
  o.coll = pb::Coll::all_gather, o.ranks = 3, o.min_bytes = 8, o.max_bytes = 4096, o.factor = 8;
  const std::vector<pb::SizePoint> points = pb::sweep_points(o);
  REQUIRE(points.size() == 3);  // 8 bytes hold 2 floats: no whole share for 3 ranks
  CHECK(points[0].bytes == 60);  // 64 bytes = 16 floats, rounded down to 5 per rank
  CHECK(points[2].count == 1023);
  CHECK(points[0].iters == 200);
  CHECK(points[0].warmup == 20);
  CHECK(pb::bus_factor(pb::Coll::all_reduce, 4) == doctest::Approx(1.5));
}

TEST_CASE("Bench.Results.result_lines_carry_the_host_times") {
  pb::RankResult r{2, 1, 4096, 1024, 3, {5000, 6000, 7000}};
  pb::RankResult back;
  REQUIRE(pb::parse_result_line(pb::result_line(r), &back));
  CHECK(back.ns == r.ns);
  CHECK(back.host_ns.empty());
  r.host_ns = {1500, 1700, 1600};
  REQUIRE(pb::parse_result_line(pb::result_line(r), &back));
  CHECK(back.column == 2);
  CHECK(back.wrong == 3);
  CHECK(back.ns == r.ns);
  CHECK(back.host_ns == r.host_ns);
}

// Per sample the slowest rank counts, for the host time as for the time.
TEST_CASE("Bench.Results.host_time_is_the_median_of_the_slowest_rank") {
  pb::Options o;
  o.ranks = 2, o.min_bytes = 4096, o.max_bytes = 4096, o.mem = pb::Mem::device, o.samples = 3;
  const std::vector<pb::SizePoint> points = pb::sweep_points(o);
  REQUIRE(points.size() == 1);
  REQUIRE(points[0].samples == 3);
  pb::Collector collector(o, 1);
  std::string error;
  const pb::RankResult r0{0, 0, 4096, points[0].count, 0, {9000, 8000, 7000}, 0, 0, {1000, 4000, 1000}};
  const pb::RankResult r1{0, 1, 4096, points[0].count, 0, {8000, 9000, 7000}, 0, 0, {2000, 1000, 6000}};
  CHECK(collector.add(r0, &error) == nullptr);
  const pb::Stat *s = collector.add(r1, &error);
  REQUIRE(s != nullptr);
  CHECK(error.empty());
  CHECK(s->median_us == doctest::Approx(9.0));  // per sample 9, 9, 7
  CHECK(s->host_us == doctest::Approx(4.0));    // per sample 2, 4, 6
  pb::RankResult short_host = r0;
  short_host.host_ns.pop_back();
  pb::Collector other(o, 1);
  CHECK(other.add(short_host, &error) == nullptr);
  CHECK(error.find("unexpected result") != std::string::npos);
}

namespace {

// One rank whose all-reduce copies send to recv (the sum of one input), with
// faults to inject: a call that writes over its input afterwards, outputs
// wrong from some call on. It counts the calls that found the input as the
// first call did.
class OneRankCopy : public pb::Transport {
 public:
  bool scribble_on_send = false;
  int32_t corrupt_from_call = -1;
  int32_t calls = 0, intact_inputs = 0;
  std::vector<pb::RankResult> reports;

  int32_t rank() const override { return 0; }
  int32_t nranks() const override { return 1; }
  bool barrier() override { return true; }
  bool report(const pb::RankResult &r) override { return reports.push_back(r), true; }
  bool run(const pb::SizePoint &p, const void *send, void *recv) override {
    const size_t bytes = p.count * sizeof(float);
    const auto *in = static_cast<const uint8_t *>(send);
    if (first_input_.empty()) first_input_.assign(in, in + bytes);
    intact_inputs += std::memcmp(send, first_input_.data(), bytes) == 0;
    std::memcpy(recv, send, bytes);
    if (corrupt_from_call >= 0 && calls >= corrupt_from_call) static_cast<float *>(recv)[0] += 1.0f;
    if (scribble_on_send) std::memset(const_cast<void *>(send), 0x7f, bytes);
    return ++calls, true;
  }

 private:
  std::vector<uint8_t> first_input_;
};

pb::Options one_size_on_one_rank(bool rewrite_input) {
  pb::Options o;
  o.ranks = 1, o.min_bytes = o.max_bytes = 4096, o.iters = 5, o.warmup = 1, o.rewrite_input = rewrite_input;
  return o;
}

}  // namespace

// Without --rewrite-input only the first call is checked; with it the
// last one too, so outputs that go wrong after the first call are caught.
TEST_CASE("Bench.Sweep.rewritten_inputs_check_the_last_call") {
  for (const bool rewrite : {false, true}) {
    CAPTURE(rewrite);
    OneRankCopy t;
    t.corrupt_from_call = 1;
    REQUIRE(pb::run_sweep(one_size_on_one_rank(rewrite), 0, t));
    REQUIRE(t.reports.size() == 1);
    CHECK(t.calls == (rewrite ? 8 : 7));  // checked, warm-up, 5 timed (, checked)
    CHECK(t.reports[0].ns.size() == 5);
    CHECK(t.reports[0].wrong == (rewrite ? 1u : 0u));
  }
}

// Every call finds its input as first written, even after a call wrote
// over it; without the option the calls after such a call do not.
TEST_CASE("Bench.Sweep.rewrite_restores_the_input_before_every_call") {
  for (const bool rewrite : {false, true}) {
    CAPTURE(rewrite);
    OneRankCopy t;
    t.scribble_on_send = true;
    REQUIRE(pb::run_sweep(one_size_on_one_rank(rewrite), 0, t));
    CHECK(t.intact_inputs == (rewrite ? t.calls : 1));
    CHECK(t.reports[0].wrong == 0);
  }
}

TEST_CASE("Bench.Options.rewrite_input_takes_host_collectives_only") {
  const auto parse = [](std::vector<const char *> args, pb::Options *o) {
    args.insert(args.begin(), "plexus-bench");
    return pb::parse_options(static_cast<int>(args.size()), const_cast<char **>(args.data()), o);
  };
  pb::Options o;
  CHECK(parse({"--rewrite-input", "--mem", "shared_host"}, &o) == -1);
  CHECK(o.rewrite_input);
  CHECK(std::string(pb::mode_name(o)) == "rewrite");
  pb::Options device, queue;
  CHECK(parse({"--rewrite-input", "--mem", "device"}, &device) == 2);
  CHECK(parse({"--rewrite-input", "--op", "queue"}, &queue) == 2);
}

// The pinned-host plugin on a machine without a GPU (CI): it loads,
// declines with "no CUDA device", never crashes or hangs; its description
// lists its parameters and capabilities; its parameters are parsed
// strictly; the choices every rank must make alike (wire dtype, algorithm)
// follow the documented rules. On a machine with a GPU the decline test
// is skipped (the gpu suite runs).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "core/status.hpp"
#include "plexus/plexus.h"
#include "plugins/pinned-host/pinned_params.hpp"
#include "tests/plugins/plugin_unit.hpp"

namespace {

using plexus::pinned_host::Params;

using plexus::test::describe_text;
using plexus::test::section_of;

plx_status parse(std::map<std::string, std::string> values, Params *p) {
  return plexus::test::parse_with(std::move(values), plexus::pinned_host::read_params, p);
}

}  // namespace

TEST_CASE("plugins.pinned_host.declines_without_cuda_device") {
  plx_backend_h backend = nullptr;
  const plx_status s = plx_backend_open("pinned-host", &backend);
  if (s == PLX_OK) {
    plx_backend_close(backend);
    MESSAGE("a CUDA device is present: the decline is not tested here");
    return;
  }
  CHECK(s == PLX_ERR_UNSUPPORTED);
  const std::string why = plx_last_error();
  CHECK((why.find("no CUDA device") != std::string::npos || why.find("not enabled") != std::string::npos));
  char report[8192];
  size_t needed = 0;
  REQUIRE(plx_load_report(nullptr, PLX_FORMAT_TEXT, report, sizeof(report), &needed) == PLX_OK);
  CHECK(std::string(report).find("pinned-host") != std::string::npos);
}

TEST_CASE("plugins.pinned_host.description_lists_params_and_caps") {
  const std::string text = section_of(describe_text(), "pinned-host");
  REQUIRE_MESSAGE(!text.empty(), "libplexus-pinned-host.so was not found by plx_plugins_describe");
  for (const char *param : {"LL_MAX_BYTES", "ONESHOT_MAX_BYTES", "CPU_MIN_BYTES", "COPY_MIN_BYTES",
                            "COPY_CHUNK_BYTES", "COPY_STAGES", "ALGO", "WIRE", "STAGE_BYTES", "STAGES",
                            "MAX_BLOCKS", "LL_BLOCKS", "WATCHDOG_POLL_MS", "ENABLE"})
    CHECK_MESSAGE(text.find(std::string("PLEXUS_PINNED_HOST_") + param) != std::string::npos, param);
  for (const char *cap : {"all_reduce", "reduce", "broadcast", "all_gather", "gather", "reduce_scatter", "barrier",
                          "abort", "async_status", "stream_ordered", "graph_capture", "mem_alloc", "defragment",
                          "topology", "thread_ranks", "wire_precision", "no_contribution"})
    CHECK_MESSAGE(text.find(cap) != std::string::npos, cap);
  CHECK(text.find("CUDA ") != std::string::npos);
  CHECK(text.find("bfloat16") != std::string::npos);
}

TEST_CASE("plugins.pinned_host.params_parse_strictly") {
  Params p;
  REQUIRE(parse({}, &p) == PLX_OK);
  CHECK(p.ll_max_bytes == 128u << 10);
  CHECK(p.oneshot_max_bytes == 512u << 10);
  CHECK(p.stage_bytes == 256u << 10);
  CHECK(p.stages == 16);
  CHECK(p.ll_blocks == 16);
  CHECK(p.forced_algo == PLX_ALGO_AUTO);
  CHECK(p.wire == -1);
  CHECK(p.cpu_min_bytes == 0);
  CHECK_FALSE(plexus::pinned_host::cpu_helper_runs(p));
  CHECK(p.enable);
  REQUIRE(parse({{"pinned-host/ALGO", "two_shot"}, {"pinned-host/STAGE_BYTES", "64K"}, {"pinned-host/STAGES", "4"},
                 {"pinned-host/LL_MAX_BYTES", "0"}, {"pinned-host/WIRE", "bf16"}, {"pinned-host/MAX_BLOCKS", "8"},
                 {"pinned-host/ENABLE", "0"}, {"pinned-host/LL_BLOCKS", "32"}}, &p) == PLX_OK);
  CHECK(p.forced_algo == PLX_ALGO_TWO_SHOT);
  CHECK(p.stage_bytes == 64u << 10);
  CHECK(p.stages == 4);
  CHECK(p.ll_max_bytes == 0);
  CHECK(p.wire == PLX_BFLOAT16);
  CHECK(p.max_blocks == 8);
  CHECK(p.ll_blocks == 32);
  CHECK_FALSE(p.enable);
  REQUIRE(parse({{"pinned-host/ALGO", "ll"}, {"pinned-host/WIRE", "fp16"}}, &p) == PLX_OK);
  CHECK(p.forced_algo == PLX_ALGO_LOW_LATENCY);
  CHECK(p.wire == PLX_FLOAT16);
  REQUIRE(parse({{"pinned-host/ALGO", "cpu"}}, &p) == PLX_OK);
  CHECK(p.forced_algo == PLX_ALGO_CPU_STAR);
  CHECK(plexus::pinned_host::cpu_helper_runs(p));
  REQUIRE(parse({{"pinned-host/CPU_MIN_BYTES", "8M"}}, &p) == PLX_OK);
  CHECK(p.cpu_min_bytes == 8u << 20);
  REQUIRE(parse({{"pinned-host/ALGO", "copy"}, {"pinned-host/COPY_CHUNK_BYTES", "1M"}, {"pinned-host/COPY_STAGES", "8"}},
                &p) == PLX_OK);
  CHECK(p.forced_algo == PLX_ALGO_COPY);
  CHECK(plexus::pinned_host::copy_path_runs(p));
  CHECK(plexus::pinned_host::layout_of(p, 2).ce_stages == 8);
  CHECK(plexus::pinned_host::layout_of(p, 2).ce_bytes == 1u << 20);
  CHECK(plexus::pinned_host::layout_of(Params{}, 2).ce_stages == 0);  // no copy area unless asked for
  for (const auto &[name, value] : std::vector<std::pair<std::string, std::string>>{
           {"ALGO", "ring"}, {"WIRE", "fp8"}, {"CPU_MIN_BYTES", "lots"}, {"COPY_CHUNK_BYTES", "4097"},
           {"COPY_STAGES", "1"}, {"COPY_STAGES", "17"}, {"STAGE_BYTES", "32K"}, {"STAGE_BYTES", "65537"},
           {"STAGES", "1"}, {"STAGES", "65"}, {"LL_MAX_BYTES", "12"}, {"MAX_BLOCKS", "0"}, {"LL_BLOCKS", "65"},
           {"ENABLE", "maybe"}}) {
    Params q;
    CHECK_MESSAGE(parse({{"pinned-host/" + name, value}}, &q) == PLX_ERR_INVALID_ARGUMENT, name, "=", value);
    CHECK(plexus::core::last_message().find("PLEXUS_PINNED_HOST_" + name) != std::string::npos);
  }
  Params q;
  CHECK(parse({{"/DEFRAG_THRESHOLD", "1.5"}}, &q) == PLX_ERR_INVALID_ARGUMENT);
}

TEST_CASE("plugins.pinned_host.wire_dtype") {
  using plexus::pinned_host::wire_of;
  CHECK(wire_of(PLX_FLOAT32, -1, -1) == PLX_FLOAT32);
  CHECK(wire_of(PLX_FLOAT32, PLX_BFLOAT16, -1) == PLX_BFLOAT16);
  CHECK(wire_of(PLX_FLOAT32, PLX_FLOAT16, -1) == PLX_FLOAT16);
  CHECK(wire_of(PLX_FLOAT32, -1, PLX_BFLOAT16) == PLX_BFLOAT16);  // WIRE=bf16
  CHECK(wire_of(PLX_FLOAT32, PLX_FLOAT32, PLX_BFLOAT16) == PLX_FLOAT32);  // the caller asks for its own
  CHECK(wire_of(PLX_FLOAT16, -1, PLX_BFLOAT16) == PLX_FLOAT16);  // WIRE is for float32 only
  CHECK(wire_of(PLX_BFLOAT16, PLX_BFLOAT16, -1) == PLX_BFLOAT16);
  CHECK(wire_of(PLX_FLOAT64, PLX_FLOAT32, -1) == -1);
  CHECK(wire_of(PLX_FLOAT16, PLX_BFLOAT16, -1) == -1);
  CHECK(wire_of(PLX_INT32, PLX_BFLOAT16, -1) == -1);
}

TEST_CASE("plugins.pinned_host.algorithm_choice") {
  using plexus::pinned_host::choose_copy;
  using plexus::pinned_host::choose_reduction;
  Params p;  // LL up to 128K, one-shot up to 512K
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 32768, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_LOW_LATENCY);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 32769, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_ONE_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 65536, 2, 2, PLX_ALGO_AUTO) == PLX_ALGO_LOW_LATENCY);  // bf16 wire
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 131072, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_ONE_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 131073, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 100, 4, 2, PLX_ALGO_TWO_SHOT) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1 << 20, 4, 2, PLX_ALGO_LOW_LATENCY) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 100, 4, 2, PLX_ALGO_RING) == PLX_ALGO_LOW_LATENCY);  // unknown hint
  // Reduce-scatter's LL payload is every rank's block, each padded to lines.
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 8192, 4, 4, PLX_ALGO_AUTO) == PLX_ALGO_LOW_LATENCY);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 8193, 4, 4, PLX_ALGO_AUTO) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 10, 4, 4, PLX_ALGO_ONE_SHOT) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_copy(p, 131072, PLX_ALGO_AUTO) == PLX_ALGO_LOW_LATENCY);
  CHECK(choose_copy(p, 131073, PLX_ALGO_AUTO) == PLX_ALGO_ONE_SHOT);
  CHECK(choose_copy(p, 8, PLX_ALGO_ONE_SHOT) == PLX_ALGO_ONE_SHOT);
  p.forced_algo = PLX_ALGO_ONE_SHOT;  // ALGO beats the hint
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 100, 4, 2, PLX_ALGO_LOW_LATENCY) == PLX_ALGO_ONE_SHOT);
  p = Params{};
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 100, 4, 2, PLX_ALGO_CPU_STAR) == PLX_ALGO_LOW_LATENCY);  // no helper
  p.cpu_min_bytes = 8 << 20;  // a helper per rank, from 8 MiB up
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 2 << 20, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_CPU_STAR);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, (2 << 20) - 1, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE, 100, 4, 2, PLX_ALGO_CPU_STAR) == PLX_ALGO_CPU_STAR);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 4 << 20, 4, 2, PLX_ALGO_TWO_SHOT) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 100, 4, 2, PLX_ALGO_CPU_STAR) == PLX_ALGO_LOW_LATENCY);
  p = Params{};
  p.forced_algo = PLX_ALGO_CPU_STAR;  // ALGO=cpu: reductions but reduce-scatter, copies as auto
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_CPU_STAR);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 1 << 20, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_copy(p, 100, PLX_ALGO_AUTO) == PLX_ALGO_LOW_LATENCY);
  p = Params{};
  p.copy_min_bytes = 4 << 20;  // the copy engines from 4 MiB up, where nothing bars them
  using plexus::pinned_host::kCapturing;
  using plexus::pinned_host::kWireConverted;
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1 << 20, 4, 2, PLX_ALGO_AUTO) == PLX_ALGO_COPY);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1 << 20, 4, 2, PLX_ALGO_AUTO, kCapturing) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 2 << 20, 2, 2, PLX_ALGO_AUTO, kWireConverted) == PLX_ALGO_TWO_SHOT);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE, 100, 4, 2, PLX_ALGO_COPY) == PLX_ALGO_COPY);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE, 100, 4, 2, PLX_ALGO_COPY, kCapturing) == PLX_ALGO_LOW_LATENCY);
  CHECK(choose_reduction(p, PLX_COLL_REDUCE_SCATTER, 1 << 20, 4, 2, PLX_ALGO_COPY) == PLX_ALGO_TWO_SHOT);
  p = Params{};
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1 << 20, 4, 2, PLX_ALGO_COPY) == PLX_ALGO_TWO_SHOT);  // no copy area
  p.ll_max_bytes = 0;  // data never takes LL
  CHECK(choose_reduction(p, PLX_COLL_ALL_REDUCE, 1, 1, 2, PLX_ALGO_LOW_LATENCY) == PLX_ALGO_ONE_SHOT);
  CHECK(choose_copy(p, 1, PLX_ALGO_AUTO) == PLX_ALGO_ONE_SHOT);
}

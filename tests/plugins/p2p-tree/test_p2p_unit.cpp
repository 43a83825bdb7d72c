// The p2p-tree plugin on a machine without a GPU (CI): it loads, declines
// with "no CUDA device", never crashes or hangs; its description lists its
// parameters and capabilities; its parameters are parsed strictly. On a
// machine with a GPU the decline test is skipped (the gpu suite runs).
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/status.hpp"
#include "plexus/plexus.h"
#include "plugins/p2p-tree/p2p_backend.hpp"
#include "tests/plugins/plugin_unit.hpp"

namespace {

using plexus::test::describe_text;
using plexus::test::section_of;

plx_status parse(std::map<std::string, std::string> values, plexus::p2p_tree::Params *p) {
  return plexus::test::parse_with(std::move(values), plexus::p2p_tree::read_params, p);
}

}  // namespace

TEST_CASE("plugins.p2p_tree.declines_without_cuda_device") {
  plx_backend_h backend = nullptr;
  const plx_status s = plx_backend_open("p2p-tree", &backend);
  if (s == PLX_OK) {
    plx_backend_close(backend);
    MESSAGE("a CUDA device with peer access is present: the decline is not tested here");
    return;
  }
  CHECK(s == PLX_ERR_UNSUPPORTED);
  const std::string why = plx_last_error();
  CHECK((why.find("no CUDA device") != std::string::npos || why.find("peer access") != std::string::npos));
  char report[8192];
  size_t needed = 0;
  REQUIRE(plx_load_report(nullptr, PLX_FORMAT_TEXT, report, sizeof(report), &needed) == PLX_OK);
  CHECK(std::string(report).find("p2p-tree") != std::string::npos);
}

TEST_CASE("plugins.p2p_tree.description_lists_params_and_caps") {
  const std::string p2p = section_of(describe_text(), "p2p-tree");
  REQUIRE_MESSAGE(!p2p.empty(), "libplexus-p2p-tree.so was not found by plx_plugins_describe");
  for (const char *param : {"PLEXUS_P2P_TREE_ONESHOT_MAX_BYTES", "PLEXUS_P2P_TREE_ALGO", "PLEXUS_P2P_TREE_LL128",
                            "PLEXUS_P2P_TREE_SLOT_BYTES", "PLEXUS_P2P_TREE_MAX_BLOCKS",
                            "PLEXUS_P2P_TREE_WATCHDOG_POLL_MS", "PLEXUS_P2P_TREE_PROBE_PEER_COPIES",
                            "PLEXUS_P2P_TREE_PDL"})
    CHECK_MESSAGE(p2p.find(param) != std::string::npos, param);
  for (const char *cap : {"all_reduce", "reduce", "broadcast", "all_gather", "gather", "reduce_scatter", "barrier",
                          "abort", "async_status", "stream_ordered", "graph_capture", "mem_alloc",
                          "defragment", "topology", "thread_ranks", "no_contribution", "wire_precision"})
    CHECK_MESSAGE(p2p.find(cap) != std::string::npos, cap);
  CHECK(p2p.find("CUDA ") != std::string::npos);
  CHECK(p2p.find("bfloat16") != std::string::npos);
}

TEST_CASE("plugins.p2p_tree.params_parse_strictly") {
  using plexus::p2p_tree::Params;
  Params p;
  REQUIRE(parse({}, &p) == PLX_OK);
  CHECK(p.oneshot_max_bytes == 512u << 10);
  CHECK(p.slot_bytes == 64u << 20);
  CHECK(p.forced_algo == PLX_ALGO_AUTO);
  REQUIRE(parse({{"p2p-tree/ALGO", "two_shot"}, {"p2p-tree/SLOT_BYTES", "64K"},
                 {"p2p-tree/ONESHOT_MAX_BYTES", "1M"}, {"p2p-tree/MAX_BLOCKS", "8"}}, &p) == PLX_OK);
  CHECK(p.forced_algo == PLX_ALGO_TWO_SHOT);
  CHECK(p.slot_bytes == 64u << 10);
  CHECK(p.oneshot_max_bytes == 1u << 20);
  CHECK(p.max_blocks == 8);
  CHECK(p.bulk_max_bytes == 4u << 20);
  Params bulk;
  REQUIRE(parse({{"p2p-tree/ALGO", "one_shot_bulk"}, {"p2p-tree/BULK_MAX_BYTES", "8M"}}, &bulk) == PLX_OK);
  CHECK(bulk.forced_algo == plexus::p2p_tree::kAlgoOneShotBulk);
  CHECK(bulk.bulk_max_bytes == 8u << 20);
  Params automatic;
  REQUIRE(parse({{"p2p-tree/MAX_BLOCKS", "0"}}, &automatic) == PLX_OK);
  CHECK(automatic.max_blocks == 0);  // one per SM, resolved on the device at init
  CHECK(automatic.dependent_launch);
  CHECK(automatic.ll_threads == 128);
  CHECK(automatic.copy_blocks == 128);
  CHECK(automatic.rounds == 4);
  Params dependent;
  REQUIRE(parse({{"p2p-tree/PDL", "0"}, {"p2p-tree/LL_THREADS", "512"}, {"p2p-tree/COPY_BLOCKS", "32"}},
                &dependent) == PLX_OK);
  CHECK_FALSE(dependent.dependent_launch);
  CHECK(dependent.ll_threads == 512);
  CHECK(dependent.copy_blocks == 32);
  CHECK(automatic.ll128);
  CHECK(automatic.ll128_min_bytes == 0);
  CHECK(automatic.ll128_two_shot_max_bytes == 4u << 20);
  CHECK(automatic.ll_slot_bytes(2) == 1u << 20);  // 2 x ONESHOT_MAX_BYTES
  CHECK(automatic.ll_slot_bytes(4) >= 2 * 2185 * 512);  // both halves of a 1 MiB chunk's tiles
  CHECK(automatic.ll_slot_bytes(8) >= 2 * 1093 * 512);
  for (int n : {3, 4, 8})  // a 4 MiB LL128 two-shot is one launch
    CHECK(plexus::kernels::ll128_two_shot_capacity(automatic.ll_slot_bytes(n), n) >= 4u << 20);
  Params lines;
  REQUIRE(parse({{"p2p-tree/LL128", "0"}, {"p2p-tree/LL128_MIN_BYTES", "16K"}},
                &lines) == PLX_OK);
  CHECK_FALSE(lines.ll128);
  CHECK(lines.ll128_min_bytes == 16u << 10);
  Params forced;
  REQUIRE(parse({{"p2p-tree/ALGO", "ll128_two_shot"}, {"p2p-tree/LL128_TWO_SHOT_MAX_BYTES", "2M"}}, &forced) == PLX_OK);
  CHECK(forced.forced_algo == plexus::p2p_tree::kAlgoLL128TwoShot);
  CHECK(forced.ll128_two_shot_max_bytes == 2u << 20);
  CHECK(automatic.copy_min_bytes == 128u << 20);
  CHECK(automatic.copy_pieces == 2);
  CHECK(automatic.copy_lanes(4) == 1);
  Params copy;
  REQUIRE(parse({{"p2p-tree/ALGO", "copy"}, {"p2p-tree/COPY_MIN_BYTES", "64M"}, {"p2p-tree/COPY_PIECES", "7"},
                 {"p2p-tree/COPY_STREAMS", "0"}},
                &copy) == PLX_OK);
  CHECK(copy.forced_algo == PLX_ALGO_COPY);
  CHECK(copy.copy_min_bytes == 64u << 20);
  CHECK(copy.copy_pieces == 7);
  CHECK(copy.copy_lanes(4) == 3);
  CHECK(copy.copy_lanes(2) == 1);
  Params two;
  REQUIRE(parse({{"p2p-tree/COPY_STREAMS", "2"}}, &two) == PLX_OK);
  CHECK(two.copy_lanes(8) == 2);
  CHECK(two.copy_lanes(2) == 1);
  Params never;
  REQUIRE(parse({{"p2p-tree/COPY_MIN_BYTES", "off"}}, &never) == PLX_OK);
  CHECK_FALSE(never.copy_by_size(UINT64_MAX - 1, 2));
}

// The copy engines by size: on 2 ranks only (4 H100 ran them 2.3x slower).
TEST_CASE("plugins.p2p_tree.copy_engines_by_size_on_two_ranks") {
  const plexus::p2p_tree::Params p;
  constexpr uint64_t M = 1024 * 1024;
  CHECK_FALSE(p.copy_by_size(128 * M - 1, 2));
  CHECK(p.copy_by_size(128 * M, 2));
  CHECK(p.copy_by_size(1024 * M, 2));
  CHECK_FALSE(p.copy_by_size(1024 * M, 3));
  CHECK_FALSE(p.copy_by_size(1024 * M, 4));
  CHECK_FALSE(p.copy_by_size(1024 * M, 8));
}

// The sizes at which auto changes algorithm, with the defaults, on 2, 4 and
// 8 ranks, with and without LL128 lines.
TEST_CASE("plugins.p2p_tree.auto_algorithm_by_size") {
  using plexus::p2p_tree::kAlgoLL128TwoShot;
  using plexus::p2p_tree::kAlgoOneShotBulk;
  const plexus::p2p_tree::Params p;
  constexpr uint64_t K = 1024, M = K * K;
  CHECK(p.auto_algo(8, 2, true) == PLX_ALGO_ONE_SHOT);
  CHECK(p.auto_algo(512 * K, 2, true) == PLX_ALGO_ONE_SHOT);
  CHECK(p.auto_algo(512 * K + 2, 2, true) == kAlgoOneShotBulk);  // no LL128 two-shot on 2 ranks
  CHECK(p.auto_algo(4 * M, 2, true) == kAlgoOneShotBulk);
  CHECK(p.auto_algo(4 * M + 2, 2, true) == PLX_ALGO_TWO_SHOT);
  CHECK(p.auto_algo(256 * K, 4, true) == PLX_ALGO_ONE_SHOT);
  CHECK(p.auto_algo(256 * K + 2, 4, true) == kAlgoLL128TwoShot);
  CHECK(p.auto_algo(4 * M, 4, true) == kAlgoLL128TwoShot);
  CHECK(p.auto_algo(4 * M + 2, 4, true) == PLX_ALGO_TWO_SHOT);
  CHECK(p.auto_algo(256 * K + 2, 4, false) == kAlgoOneShotBulk);  // 683 KiB on 4 ranks
  CHECK(p.auto_algo(700 * K, 4, false) == PLX_ALGO_TWO_SHOT);
  CHECK(p.auto_algo(128 * K, 8, true) == PLX_ALGO_ONE_SHOT);
  CHECK(p.auto_algo(128 * K + 2, 8, true) == kAlgoLL128TwoShot);
  CHECK(p.auto_algo(4 * M + 2, 8, true) == PLX_ALGO_TWO_SHOT);
}

// Each bad value is parsed into fresh Params (a failed parse may leave a
// value behind that would fail the next parse for the wrong reason), and
// the message must name the variable.
TEST_CASE("plugins.p2p_tree.params_reject_bad_values") {
  const std::pair<const char *, const char *> bad[] = {
      {"ALGO", "spiral"},      {"SLOT_BYTES", "1K"},          {"SLOT_BYTES", "65537"},
      {"MAX_BLOCKS", "129"},   {"MAX_BLOCKS", "-1"},          {"MAX_BLOCKS", "many"},
      {"ONESHOT_MAX_BYTES", "2T"}, {"BULK_MAX_BYTES", "lots"}, {"PROBE_PEER_COPIES", "maybe"},
      {"ENABLE", "2"},         {"PDL", "on2"},
      {"LL_THREADS", "100"},   {"LL_THREADS", "16"},         {"LL_THREADS", "1024"},
      {"LL128", "sometimes"},  {"LL128_MIN_BYTES", "-1"},     {"COPY_BLOCKS", "129"},
      {"COPY_BLOCKS", "-1"},    {"ROUNDS", "0"},              {"ROUNDS", "9"},
      {"COPY_MIN_BYTES", "never"}, {"COPY_PIECES", "0"},      {"COPY_PIECES", "8"},
      {"COPY_STREAMS", "-1"},  {"COPY_STREAMS", "8"}};
  for (const auto &[name, value] : bad) {
    CAPTURE(name);
    CAPTURE(value);
    plexus::p2p_tree::Params fresh;
    CHECK(parse({{std::string("p2p-tree/") + name, value}}, &fresh) == PLX_ERR_INVALID_ARGUMENT);
    CHECK(plexus::core::last_message().find(std::string("PLEXUS_P2P_TREE_") + name) != std::string::npos);
  }
  plexus::p2p_tree::Params fresh;
  CHECK(parse({{"/DEFRAG_THRESHOLD", "1.5"}}, &fresh) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(plexus::core::last_message().find("PLEXUS_DEFRAG_THRESHOLD") != std::string::npos);
}

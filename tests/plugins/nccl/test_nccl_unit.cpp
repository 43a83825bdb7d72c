// The nccl plugin on a machine without a GPU (CI): it loads, declines with
// "no CUDA device", never crashes or hangs; its description lists what it
// declares. On a machine with a GPU the decline test is skipped (the gpu
// suite covers that machine).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/plugin_unit.hpp"

using plexus::test::describe_text;
using plexus::test::section_of;

TEST_CASE("plugins.nccl.declines_without_cuda_device") {
  plx_backend_h backend = nullptr;
  const plx_status s = plx_backend_open("nccl", &backend);
  if (s == PLX_OK) {
    plx_backend_close(backend);
    MESSAGE("a CUDA device is present: the decline is not tested here (the gpu suite runs)");
    return;
  }
  CHECK(s == PLX_ERR_UNSUPPORTED);
  CHECK(std::string(plx_last_error()).find("no CUDA device") != std::string::npos);
  char report[8192];
  size_t needed = 0;
  REQUIRE(plx_load_report(nullptr, PLX_FORMAT_TEXT, report, sizeof(report), &needed) == PLX_OK);
  CHECK(std::string(report).find("no CUDA device") != std::string::npos);
}

TEST_CASE("plugins.nccl.description_lists_params_and_caps") {
  const std::string nccl = section_of(describe_text(), "nccl");
  REQUIRE_MESSAGE(!nccl.empty(), "libplexus-nccl.so was not found by plx_plugins_describe");
  for (const char *param : {"PLEXUS_NCCL_WARMUP", "PLEXUS_NCCL_WATCHDOG_POLL_MS", "PLEXUS_NCCL_EVENT_EVERY"})
    CHECK_MESSAGE(nccl.find(param) != std::string::npos, param);
  for (const char *cap : {"all_reduce", "gather", "send", "recv", "split", "abort", "async_status",
                          "stream_ordered", "graph_capture", "mem_alloc", "defragment", "topology",
                          "thread_ranks", "group", "multi_node", "no_contribution"})
    CHECK_MESSAGE(nccl.find(cap) != std::string::npos, cap);
  CHECK(nccl.find("NCCL 2.") != std::string::npos);  // build info names NCCL's version
  CHECK(nccl.find("bfloat16") != std::string::npos);
}

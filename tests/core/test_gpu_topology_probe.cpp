// The GPU topology probe on the real machine (suite 'gpu'; gpu_main skips
// it without a CUDA device). Prints what it found, so a run's log shows the
// machine's matrix.
#include <doctest/doctest.h>

#include <cstdio>
#include <regex>
#include <sstream>

#include "core/cuda_status.hpp"
#include "core/gpu_topology.hpp"
#include "tools/plexus-info/json_value.hpp"

using namespace plexus::core;

namespace {

GpuTopology probed(bool check_copies) {
  GpuTopology topology;
  const plx_status s = probe_gpu_topology(&topology, check_copies);
  REQUIRE_MESSAGE(s == PLX_OK, last_message());
  return topology;
}

size_t matrix_rows(const std::string &text, size_t n) {
  size_t rows = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    for (size_t i = 0; i < n; ++i)
      if (line.rfind("GPU" + std::to_string(i) + " ", 0) == 0) ++rows;
  return rows;
}

void check_shape(const GpuTopology &t) {
  const size_t n = t.gpus.size();
  REQUIRE(t.links.size() == n);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(t.links[i].size() == n);
    CHECK(t.links[i][i].pcie == PciePath::same_device);
    for (size_t j = 0; j < n; ++j) {
      const GpuLink &link = t.links[i][j];
      CHECK((!link.p2p_works || link.p2p_reported));
      CHECK(link.nvlinks == t.links[j][i].nvlinks);
      CHECK(link.p2p_works == t.links[j][i].p2p_works);
      if (i != j && link.p2p_reported && !link.p2p_works) CHECK(!link.note.empty());
    }
  }
}

}  // namespace

TEST_CASE("core.gpu_topology_gpu.probe_sees_every_gpu") {
  int count = 0;
  REQUIRE(require_cuda_device(&count) == PLX_OK);
  REQUIRE(cudaSetDevice(count - 1) == cudaSuccess);
  const GpuTopology t = probed(true);
  int current = -1;
  CHECK(cudaGetDevice(&current) == cudaSuccess);
  CHECK(current == count - 1);  // the probe put the caller's device back
  REQUIRE(t.gpus.size() == static_cast<size_t>(count));
  const std::regex bus_id("^[0-9a-f]{8}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-9]$");
  const std::regex uuid("^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  for (size_t i = 0; i < t.gpus.size(); ++i) {
    const GpuInfo &g = t.gpus[i];
    CHECK(g.ordinal == static_cast<int>(i));
    CHECK_MESSAGE(std::regex_match(g.pci_bus_id, bus_id), g.pci_bus_id);
    CHECK_MESSAGE(std::regex_match(g.uuid, uuid), g.uuid);
    CHECK(!g.name.empty());
    CHECK(g.memory_bytes > 0);
    CHECK(g.compute_major >= 5);
  }
  check_shape(t);
  CHECK(t.peer_copies_checked);
  CHECK(!t.nvml.empty());
  const std::string text = gpu_topology_matrix(t);
  CHECK(matrix_rows(text, t.gpus.size()) == t.gpus.size());
  plx_topology_info info{};
  fill_gpu_topology_info(t, &info);
  CHECK(info.gpu_count == count);
  CHECK(info.p2p_all_pairs != -1);
  JsonWriter json;
  json.begin_object();
  write_gpu_topology_json(t, json);
  json.end_object();
  CHECK_MESSAGE(plexus::info::parse_json(json.str()).has_value(), json.str());
  std::printf("%s\n%s\n", gpu_topology_text(t).c_str(), json.str().c_str());
}

TEST_CASE("core.gpu_topology_gpu.without_copies_p2p_is_as_reported") {
  const GpuTopology t = probed(false);
  check_shape(t);
  CHECK(!t.peer_copies_checked);
  for (size_t i = 0; i < t.gpus.size(); ++i)
    for (size_t j = 0; j < t.gpus.size(); ++j)
      if (i != j) CHECK(t.links[i][j].p2p_works == t.links[i][j].p2p_reported);
}

TEST_CASE("core.gpu_topology_gpu.null_out_is_rejected") {
  CHECK(probe_gpu_topology(nullptr, false) == PLX_ERR_INVALID_ARGUMENT);
}

// Placeholder until the probe lands (being written now).
#include "core/gpu_topology.hpp"

#include "core/status.hpp"

namespace plexus::core {

plx_status probe_gpu_topology(GpuTopology *, bool) {
  return fail(PLX_ERR_UNSUPPORTED, "GPU topology probe not built yet");
}
void write_gpu_topology_json(const GpuTopology &, JsonWriter &) {}
std::string gpu_topology_matrix(const GpuTopology &) { return {}; }
std::string link_label(const GpuLink &) { return "?"; }
void fill_gpu_topology_info(const GpuTopology &, plx_topology_info *) {}

}  // namespace plexus::core

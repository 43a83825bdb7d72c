// The GPU part of plexus-info: core's GPU topology probe when the tool is
// built with CUDA (PLEXUS_INFO_HAVE_CUDA), a plain "not built" without.
// cudart is linked statically, so the tool still starts on a machine
// without a driver and says "no CUDA device" there.
#include <fmt/format.h>

#include "tools/plexus-info/gather.hpp"

#if PLEXUS_INFO_HAVE_CUDA
#include "core/gpu_topology.hpp"
#include "core/json.hpp"
#include "core/status.hpp"
#endif

namespace plexus::info {

#if PLEXUS_INFO_HAVE_CUDA
GpuPart probe_gpus() {
  GpuPart part;
  part.built = true;
  core::GpuTopology topology;
  const plx_status s = core::probe_gpu_topology(&topology, true);
  if (s != PLX_OK) {
    // "no CUDA device: ..." already says it all; other failures name their code.
    const std::string &why = core::last_message();
    part.error = s == PLX_ERR_UNSUPPORTED ? why : fmt::format("{}: {}", plx_status_string(s), why);
    return part;
  }
  core::JsonWriter json;
  json.begin_object();
  core::write_gpu_topology_json(topology, json);
  json.end_object();
  part.json = json.str();
  part.text = core::gpu_topology_text(topology);
  return part;
}
#else
GpuPart probe_gpus() {
  GpuPart part;
  part.error = "plexus-info was built without CUDA";
  return part;
}
#endif

}  // namespace plexus::info

// What `auto` chooses from the topology (DESIGN §5, docs/auto.md): a pure
// function of what the shipped plugins said when initialised, the GPU
// topology one of them probed and how many hosts the job spans, so CI
// decides fixture machines (2/4/8 GPUs on NVLink, PCIe without peer access,
// several hosts, no GPU) without any of them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plexus/types.h"

namespace plexus::loader {

// The shipped plugins auto may choose, in its order of preference.
extern const char *const auto_plugins[4];  // p2p-tree, pinned-host, nccl, shm-native

struct AutoPlugin {
  std::string name;
  bool available = false;  // found, not excluded, and its init accepted this machine
  std::string note;        // why not, when not ("declined: no CUDA device")
};

struct AutoTopology {
  int32_t gpu_count = 0;
  int32_t p2p_all_pairs = -1;   // as plx_topology_info: 1, 0, or -1 when not probed
  int32_t nvlink_all_pairs = -1;
  std::string source;           // "nccl's topology", or why there is none
};

struct AutoHosts {
  int32_t hosts = 1;
  bool known = false;           // false: no launcher said, one host assumed
  std::string source;           // "OMPI_COMM_WORLD_SIZE=8, OMPI_COMM_WORLD_LOCAL_SIZE=4"
};

struct AutoInputs {
  AutoTopology topology;
  AutoHosts hosts;
  std::vector<AutoPlugin> plugins;  // the shipped ones, any order
};

struct AutoChoice {
  plx_status status = PLX_OK;        // PLX_ERR_UNSUPPORTED when nothing fits
  std::vector<std::string> members;  // device backends first, by preference, then the host one
  std::string reason;                // one sentence per decision, for the load report
};

AutoChoice choose_backends(const AutoInputs &in);

// How many hosts the job spans, from PLEXUS_AUTO_HOSTS, else from what the
// usual launchers export (Open MPI, MPICH/Hydra, torchrun, Slurm's srun).
// `env` looks a variable up (nullptr when unset).
AutoHosts hosts_from_environment(const std::function<const char *(const char *)> &env);

}  // namespace plexus::loader

// Every kernel module of the plugins' kernel libraries, one per .cu file
// (module_anchor.cuh), for core::load_kernels (core/kernel_loading.hpp):
// each plugin loads its own when a communicator is created.
#pragma once

#include <array>

namespace plexus::kernels {

// plexus-kernels (kernels.hpp, pipe.hpp, ce.hpp): p2p-tree's collectives.
const void *allreduce_module();
const void *ll128_module();
const void *copy_module();
const void *ring_module();
const void *tree_module();
const void *ce_module();
// plexus-kernels-pinned (pinned.hpp): pinned-host's.
const void *pinned_ll_module();
const void *pinned_one_shot_module();
const void *pinned_two_shot_module();
const void *pinned_scatter_module();
const void *pinned_copy_module();
const void *pinned_cpu_module();
const void *pinned_ce_module();
// plexus-kernels-widen (widen.hpp): the half-type wire's conversions.
const void *widen_module();

inline std::array<const void *, 7> p2p_tree_modules() {
  return {allreduce_module(), ll128_module(), copy_module(), ring_module(), tree_module(), ce_module(),
          widen_module()};
}

inline std::array<const void *, 7> pinned_host_modules() {
  return {pinned_ll_module(),      pinned_one_shot_module(), pinned_two_shot_module(), pinned_scatter_module(),
          pinned_copy_module(),    pinned_cpu_module(),      pinned_ce_module()};
}

inline std::array<const void *, 1> widen_modules() { return {widen_module()}; }

}  // namespace plexus::kernels

// core::load_kernels on the kernel libraries' modules, linked into this
// binary, which launches none of their kernels: under CUDA's lazy loading
// (meson runs it with CUDA_MODULE_LOADING=LAZY) almost none is loaded at
// first; after load_kernels every one is, and a second call loads none.
// load_kernels also raises a stack limit set below what the kernels need.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include "core/kernel_loading.hpp"
#include "core/status.hpp"
#include "kernels/modules.hpp"
#include "tests/gpu_skip.hpp"

namespace {

using plexus::core::KernelCount;

// The counts of `modules`, or false after marking the case skipped where
// this driver cannot enumerate a module's kernels.
template <class Modules>
bool count_or_skip(const Modules &modules, KernelCount *count) {
  const plx_status s = plexus::core::count_kernels(modules, count);
  if (s == PLX_ERR_UNSUPPORTED) {
    plexus::test::skip_case(plexus::core::last_message());
    return false;
  }
  INFO(plexus::core::last_message());
  REQUIRE(s == PLX_OK);
  return true;
}

template <class Modules>
void check_loads_every_kernel(const Modules &modules, int at_least) {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  KernelCount before, after;
  if (!count_or_skip(modules, &before)) return;
  CHECK(before.total >= at_least);
  if (before.unloaded == 0) {  // run by hand with CUDA_MODULE_LOADING=EAGER: nothing left to load
    plexus::test::skip_case("every kernel is loaded already (CUDA_MODULE_LOADING=EAGER?)");
    return;
  }
  CHECK(before.unloaded >= before.total - static_cast<int>(modules.size()));  // only the anchors, to find them
  REQUIRE(plexus::core::load_kernels(modules, "test") == PLX_OK);
  REQUIRE(count_or_skip(modules, &after));
  CHECK(after.total == before.total);
  CHECK(after.unloaded == 0);
  REQUIRE(plexus::core::load_kernels(modules, "test again") == PLX_OK);
}

}  // namespace

TEST_CASE("core.kernel_loading.p2p_tree_modules") {
  check_loads_every_kernel(plexus::kernels::p2p_tree_modules(), 400);
}

TEST_CASE("core.kernel_loading.pinned_host_modules") {
  check_loads_every_kernel(plexus::kernels::pinned_host_modules(), 300);
}

// The application set a stack limit below what the tree kernels need (832
// bytes a thread on sm_90): a first launch of one would resize local memory
// while a peer's kernel spins, and wait for it. load_kernels raises it, also
// when every kernel is loaded already (the cases above ran first).
TEST_CASE("core.kernel_loading.raises_a_low_stack_limit") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  const auto modules = plexus::kernels::p2p_tree_modules();
  REQUIRE(cudaDeviceSetLimit(cudaLimitStackSize, 64) == cudaSuccess);
  size_t low = 0;
  REQUIRE(cudaDeviceGetLimit(&low, cudaLimitStackSize) == cudaSuccess);
  KernelCount loaded;
  REQUIRE(plexus::core::load_kernels(modules, "test") == PLX_OK);
  if (!count_or_skip(modules, &loaded)) return;
  REQUIRE(loaded.unloaded == 0);
  REQUIRE(loaded.local_bytes_max > low);  // else this case would not test anything
  size_t raised = 0;
  REQUIRE(cudaDeviceGetLimit(&raised, cudaLimitStackSize) == cudaSuccess);
  CHECK(raised >= loaded.local_bytes_max);
}

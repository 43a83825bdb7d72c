// The main of every GPU test: without a usable CUDA device the whole
// executable reports itself skipped (exit 77, which meson counts as SKIP),
// never passed and never failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "core/cuda_status.hpp"
#include "core/status.hpp"

int main(int argc, char **argv) {
  int devices = 0;
  if (plexus::core::require_cuda_device(&devices) != PLX_OK) {
    std::printf("SKIP: %s\n", plexus::core::last_message().c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

// plexus-bench-alloc's command line.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/device_pool.hpp"

namespace plexus::bench_alloc {

enum class PoolSource { device, host };

struct Options {
  std::vector<size_t> sizes;
  std::vector<int> threads;
  size_t iters = 100000;          // pairs per thread and size
  size_t cuda_malloc_iters = 200; // cudaMalloc is ~70 us to ~1 ms a pair
  core::DeviceMemoryApi api = core::DeviceMemoryApi::cuda_malloc;
  PoolSource source = PoolSource::device;
  std::vector<std::string> columns;
  int device = 0;
  std::string csv;
};

// 0 and *options filled, or the exit status (0 for --help, 2 for bad usage)
// after printing why.
int parse_options(int argc, char **argv, Options *options, bool *done);

}  // namespace plexus::bench_alloc

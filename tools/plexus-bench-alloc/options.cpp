#include "tools/plexus-bench-alloc/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string_view>

#include "core/params.hpp"

namespace plexus::bench_alloc {
namespace {

constexpr const char *kUsage =
    "usage: plexus-bench-alloc [options]\n"
    "\n"
    "Times allocate+free pairs, one size and thread count at a time, in three columns:\n"
    "  plexus-pool      core::DevicePool (or, with --source host, the same HostPool over\n"
    "                   host memory: no GPU needed)\n"
    "  cudaMalloc       cudaMalloc + cudaFree\n"
    "  cudaMallocAsync  cudaMallocFromPoolAsync + cudaFreeAsync on a warm cudaMemPool\n"
    "                   (release threshold UINT64_MAX), one stream per thread, one sync\n"
    "                   at the end, counted\n"
    "\n"
    "  --sizes S,...     block sizes (default 512,64K,1M,2M,32M,256M; K, M, G suffixes)\n"
    "  --threads N,...   thread counts (default 1,8)\n"
    "  --iters N         pairs per thread and size (default 100000); cudaMalloc does at\n"
    "                    most --cuda-malloc-iters (default 200)\n"
    "  --cuda-malloc-iters N\n"
    "  --api NAME        plexus-pool segments: cuda_malloc (default) or vmm\n"
    "  --source NAME     plexus-pool memory: device (default) or host\n"
    "  --columns A,...   a subset of the columns above\n"
    "  --device N        CUDA device (default 0)\n"
    "  --csv FILE        one row per size, thread count and column\n"
    "  -h, --help        this help\n"
    "\n"
    "Each thread times its own loop in batches; per pair, 'median' and 'p99' are over\n"
    "all threads' batch means, 'pairs/s' is all pairs over the wall time, 'x pool' the\n"
    "column's median over plexus-pool's. Without a CUDA device the CUDA columns (and a\n"
    "device-backed pool) print 'skipped: no CUDA device'.\n"
    "Exit status: 0 all good, 1 a column failed, 2 usage.\n";

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    parts.emplace_back(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return parts;
}

template <typename T>
std::optional<std::vector<T>> parse_list(std::string_view text, uint64_t max) {
  std::vector<T> values;
  for (const std::string &part : split(text)) {
    const std::optional<uint64_t> value = core::parse_size(part);
    if (!value || *value == 0 || *value > max) return std::nullopt;
    values.push_back(static_cast<T>(*value));
  }
  if (values.empty()) return std::nullopt;
  return values;
}

bool known_column(const std::string &name) {
  return name == "plexus-pool" || name == "cudaMalloc" || name == "cudaMallocAsync";
}

// One option with its value; false on bad usage.
bool apply(std::string_view name, std::string_view value, Options *o) {
  if (name == "--sizes") {
    auto sizes = parse_list<size_t>(value, uint64_t{1} << 40);
    if (sizes) o->sizes = *sizes;
    return sizes.has_value();
  }
  if (name == "--threads") {
    auto threads = parse_list<int>(value, 1024);
    if (threads) o->threads = *threads;
    return threads.has_value();
  }
  if (name == "--iters" || name == "--cuda-malloc-iters") {
    const std::optional<uint64_t> n = core::parse_size(value);
    if (!n || *n == 0) return false;
    (name == "--iters" ? o->iters : o->cuda_malloc_iters) = *n;
    return true;
  }
  if (name == "--api") {
    if (value != "cuda_malloc" && value != "vmm") return false;
    o->api = value == "vmm" ? core::DeviceMemoryApi::vmm : core::DeviceMemoryApi::cuda_malloc;
    return true;
  }
  if (name == "--source") {
    if (value != "device" && value != "host") return false;
    o->source = value == "host" ? PoolSource::host : PoolSource::device;
    return true;
  }
  if (name == "--columns") {
    o->columns = split(value);
    return !o->columns.empty() && std::all_of(o->columns.begin(), o->columns.end(), known_column);
  }
  if (name == "--device") {
    const std::optional<uint64_t> n = core::parse_size(value);
    if (n) o->device = static_cast<int>(*n);
    return n.has_value() && *n < 1024;
  }
  if (name == "--csv") {
    o->csv = value;
    return !value.empty();
  }
  return false;
}

}  // namespace

int parse_options(int argc, char **argv, Options *options, bool *done) {
  *done = false;
  options->sizes = {512, 64 << 10, 1 << 20, 2 << 20, 32 << 20, 256 << 20};
  options->threads = {1, 8};
  options->columns = {"plexus-pool", "cudaMalloc", "cudaMallocAsync"};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      *done = true;
      return 0;
    }
    std::string_view name = arg, value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    if (!apply(name, value, options)) {
      fmt::print(stderr, "plexus-bench-alloc: bad option {} '{}'\n\n{}", name, value, kUsage);
      *done = true;
      return 2;
    }
  }
  return 0;
}

}  // namespace plexus::bench_alloc

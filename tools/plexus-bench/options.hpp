// What one plexus-bench run measures. The launcher, its rank processes and
// plexus-bench-mpi all parse the same command line with parse_options(), so
// every column sweeps exactly the same sizes with the same iteration counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plexus/types.h"

namespace plexus::bench {

// queue is not a collective: plx_queue_* with rank 0 writing and every other
// rank reading (queue_sweep.hpp); it shares the sweep of sizes and the report.
enum class Coll { all_reduce, reduce, broadcast, all_gather, reduce_scatter, gather, queue };

// The name a column uses for the Open MPI peer.
inline constexpr const char *mpi_peer = "mpi";
// The name of the NCCL peer: NCCL called directly inside the rank processes
// (raw_nccl.hpp), on the same device buffers as the plexus columns.
inline constexpr const char *raw_nccl_peer = "raw-nccl";

// Where the buffers live (--mem). device and device_pool put every rank on
// GPU rank % visible GPUs (device.hpp).
enum class Mem { host, shared_host, device, device_pool };

struct Options {
  Coll coll = Coll::all_reduce;
  plx_dtype dtype = PLX_FLOAT32;
  plx_reduce_op redop = PLX_SUM;
  int32_t wire = -1;  // --wire: the plexus columns send reductions as this float dtype (opts->wire_dtype)
  int32_t ranks = 4;
  uint64_t min_bytes = 8;
  uint64_t max_bytes = 32ull << 20;
  uint64_t factor = 4;
  int32_t iters = 0;    // 0: clamp(2G / size, 5, 200)
  int32_t warmup = -1;  // -1: max(2, iterations / 10)
  int32_t timeout_s = 1800;
  std::vector<std::string> backends;  // empty: the default backend
  Mem mem = Mem::host;
  bool graph = false;             // --graph: each sample is one launch of a captured CUDA graph
  int32_t samples = 0;            // device: timed samples per size; 0: 20
  bool allow_shared_gpu = false;  // device: more ranks than GPUs is allowed
  bool skip_without_gpu = false;  // device: exit 77 (a skipped test) without a CUDA device
  bool rewrite_input = false;     // host: each rank writes its input again before every call
  std::string csv, json, plot;
};

// Returns -1 to go on, else the exit status: 0 after --help, 2 after a
// usage error (printed with the usage text).
int parse_options(int argc, char **argv, Options *out);

// One size of the sweep. bytes is the largest per-rank buffer (nccl-tests'
// convention): the input of all_reduce, reduce, broadcast and
// reduce_scatter, the gathered output of all_gather and gather; count is
// its elements. A gathering or scattering op moves count / nranks elements
// per rank.
// Host buffers: samples == iters, each sample one call. Device buffers
// (nccl-tests' method): each sample is iters calls back to back on the
// stream and one synchronisation, divided by iters.
struct SizePoint {
  uint64_t bytes = 0;
  uint64_t count = 0;
  int32_t iters = 0;
  int32_t warmup = 0;
  int32_t samples = 0;
};

// Sizes min, min*f, ... up to max; a size whose per-rank share holds no
// whole element is left out, others are rounded down to whole shares.
std::vector<SizePoint> sweep_points(const Options &o);

// Elements each rank sends and receives at one size.
uint64_t send_count(const Options &o, const SizePoint &p);
uint64_t recv_count(const Options &o, const SizePoint &p);

bool is_reduction(Coll c);
inline bool is_queue(const Options &o) { return o.coll == Coll::queue; }
inline bool on_device(const Options &o) { return o.mem == Mem::device || o.mem == Mem::device_pool; }
const char *mem_name(Mem m);
// "eager" (one call after the other), "graph" (--graph) or "rewrite" (host
// buffers, each call after its input was written again: --rewrite-input).
inline const char *mode_name(const Options &o) { return o.graph ? "graph" : o.rewrite_input ? "rewrite" : "eager"; }
// The memory a column's buffers really are: the peers keep ordinary
// buffers where the plexus columns use a backend's pool.
const char *column_mem(const Options &o, const std::string &label);
// nccl-tests' bus bandwidth factor: busbw = algbw * factor.
double bus_factor(Coll c, int32_t nranks);

const char *coll_name(Coll c);
const char *dtype_name(plx_dtype dtype);
size_t dtype_bytes(plx_dtype dtype);
const char *redop_name(plx_reduce_op op);
// 8, 512, 2K, 32M: the sweep's sizes as a person writes them.
std::string human_bytes(uint64_t bytes);

}  // namespace plexus::bench

// Inside the composite's table making: the collective helpers the tuning
// file and the measurement share, and the measurement (composite_sweep.cpp).
#pragma once

#include <string>
#include <vector>

#include "loader/composite.hpp"

namespace plexus::loader {

// An in-place descriptor with default options and stream NULL.
plx_coll_desc desc_of(int32_t coll, void *buf, uint64_t count, int32_t dtype, int32_t op, int32_t root);
plx_status member_call(const CompositeComm &c, size_t m, const plx_coll_desc &d);
// Every rank's values become the largest over the ranks (through member `host`).
plx_status max_over_ranks(const CompositeComm &c, size_t host, std::vector<double> *values);

// One memory kind to measure: the members that could all-reduce on it.
struct Sweep {
  MemClass kind = MemClass::host;
  std::vector<size_t> members;
  std::vector<uint64_t> sizes;  // bytes, ascending
  int32_t dtype = PLX_FLOAT32;
};

// The kinds that two or more members could serve (device ones only where
// the CUDA driver can be waited for).
std::vector<Sweep> sweeps_of(const CompositeComm &c);

// Times every member of every sweep at every size (collective: every rank
// runs the same calls), merges the timings over the ranks through member
// `host`, and gives the rules that send each size to its winner.
plx_status measure_table(const CompositeComm &c, size_t host, const std::vector<Sweep> &sweeps,
                         std::vector<TuneRule> *rules);

}  // namespace plexus::loader

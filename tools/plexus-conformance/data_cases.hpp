// The data groups: which cases run, in an order every rank computes alike
// from the backend's properties, so all ranks issue the same collectives.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memory_kinds.hpp"
#include "plexus/plexus.h"

namespace plexus::conformance {

struct DataCase {
  plx_coll_kind coll;
  plx_dtype dtype;
  plx_reduce_op op;  // -1 for data movement
  uint64_t count;  // elements per rank (all-gather, reduce-scatter, gather: each rank's part)
  bool in_place;
  bool aligned;  // false: send and recv start 1 and 3 elements past a 256-byte boundary
  bool varied;  // gather: per-rank counts, rank 1 contributing none
  int32_t root;
  MemSource mem;
  uint64_t seq;  // the case's number: seeds its inputs, picks the checking rank
  int32_t absent = -1;  // the rank passing PLX_COLL_FLAG_NO_CONTRIBUTION, or -1
  int32_t wire = -1;    // opts->wire_dtype, or -1 (the buffer's own dtype)
};

bool is_reduction(plx_coll_kind coll);
// A wire dtype beyond float32 reductions on a half-type wire (a copy sent
// narrower, float64 sent as float32): PLX-P-24 lets the backend refuse it
// with PLX_ERR_UNSUPPORTED or carry it rounded, never send its own dtype.
bool wire_may_be_refused(const DataCase &c);
std::string data_group(const DataCase &c);  // "all_reduce float32 sum", "... device pool"
std::string data_case_name(const DataCase &c);  // "size 1023 in-place unaligned root 1"
// Gather's per-rank counts (varied or not).
std::vector<uint64_t> gather_counts(const DataCase &c, int32_t nranks);

// Every advertised collective x dtype x operator x size x placement x
// alignment x memory source (`sources`, memory_kinds.hpp). The 64 MiB size runs for a representative
// subset (float32 sum all-reduce, int8 broadcast) unless `full`; sizes up
// to 1023 run aligned and unaligned, larger ones unaligned unless `full`.
// With PLX_CAP_NO_CONTRIBUTION, reductions also run with one rank adding
// nothing (small sizes; 1 Mi + 3 for float32 sum, or all with `full`).
// With PLX_CAP_WIRE_PRECISION, float32 reductions also travel as every
// narrower float dtype the backend declares, and every float as itself;
// float32 copies ask for a declared half-type wire and float64 sums for a
// float32 one, which the backend may refuse (wire_may_be_refused).
std::vector<DataCase> plan_data_cases(const plx_backend_props &props, int32_t nranks, bool full,
                                     const std::vector<MemSource> &sources);
// What the plan leaves out, and why, for the report.
std::vector<std::string> plan_notes(const plx_backend_props &props);

}  // namespace plexus::conformance

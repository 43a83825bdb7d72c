#include "data_cases.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace plexus::conformance {
namespace {

constexpr uint64_t kLargeBytes = 64ull << 20;

// The counts of every group: the last is past 1 MiB in every dtype (past a
// typical slot or one-shot limit, an odd count) without 8 MiB of float64,
// whose reference would cost 8 times int8's for no path int8 misses.
std::array<uint64_t, 5> counts_of(plx_dtype dtype) {
  return {0, 1, 7, 1023, (uint64_t{1} << 20) / plx_dtype_size(dtype) + 3};
}
constexpr plx_coll_kind kColls[] = {PLX_COLL_ALL_REDUCE, PLX_COLL_REDUCE,     PLX_COLL_REDUCE_SCATTER,
                                    PLX_COLL_BROADCAST,  PLX_COLL_ALL_GATHER, PLX_COLL_GATHER};

bool has(uint32_t mask, int32_t bit) { return (mask >> bit) & 1u; }

bool is_float_dtype(plx_dtype d) {
  return d == PLX_FLOAT16 || d == PLX_BFLOAT16 || d == PLX_FLOAT32 || d == PLX_FLOAT64;
}

// `wanted` when the mask has it, else its lowest member.
int32_t preferred(uint32_t mask, int32_t wanted) {
  if (has(mask, wanted) || mask == 0) return wanted;
  return __builtin_ctz(mask);
}

bool representative(const plx_backend_props &p, plx_coll_kind coll, plx_dtype dtype, plx_reduce_op op) {
  if (coll == PLX_COLL_ALL_REDUCE)
    return dtype == preferred(p.dtype_mask, PLX_FLOAT32) && op == preferred(p.reduce_op_mask, PLX_SUM);
  return coll == PLX_COLL_BROADCAST && dtype == preferred(p.dtype_mask, PLX_INT8);
}

struct Planner {
  const plx_backend_props &props;
  int32_t nranks;
  bool full;
  const std::vector<MemSource> &sources;
  std::vector<DataCase> cases;

  void add(DataCase c, bool no_contribution = false) {
    c.seq = cases.size();
    c.root = static_cast<int32_t>(c.seq % static_cast<uint64_t>(nranks));
    if (no_contribution) c.absent = static_cast<int32_t>(c.seq / 2 % static_cast<uint64_t>(nranks));
    cases.push_back(c);
  }

  // One rank adds nothing: it passes the flag and no send buffer.
  void no_contribution(const DataCase &c) {
    const bool all = full || (c.dtype == preferred(props.dtype_mask, PLX_FLOAT32) &&
                              c.op == preferred(props.reduce_op_mask, PLX_SUM));
    for (const uint64_t count : counts_of(c.dtype))
      for (const bool in_place : {false, true})
        if (count > 0 && (count <= 1023 || (all && !in_place)))
          add({c.coll, c.dtype, c.op, count, in_place, false, false, 0, c.mem, 0}, true);
  }

  void sizes(DataCase c) {
    for (const uint64_t count : counts_of(c.dtype))
      for (const bool in_place : {false, true})
        for (const bool aligned : {true, false}) {
          if (aligned && count > 1023 && !full) continue;
          for (const bool varied : {false, true})
            if (!varied || c.coll == PLX_COLL_GATHER)
              add({c.coll, c.dtype, c.op, count, in_place, aligned, varied, 0, c.mem, 0});
        }
    if (is_reduction(c.coll) && nranks > 1 && (props.capabilities & PLX_CAP_NO_CONTRIBUTION))
      no_contribution(c);
    if (is_reduction(c.coll) && is_float_dtype(c.dtype) && (props.capabilities & PLX_CAP_WIRE_PRECISION))
      wire_precision(c);
    if (props.capabilities & PLX_CAP_WIRE_PRECISION) other_wire_pairings(c);
    if (!full && !representative(props, c.coll, c.dtype, c.op)) return;
    const uint64_t large = kLargeBytes / plx_dtype_size(c.dtype);
    for (const bool in_place : {false, true})
      add({c.coll, c.dtype, c.op, large, in_place, false, false, 0, c.mem, 0});
  }

  // The call's data travels as `wire`, for sum and max: float32 as each
  // narrower declared float dtype (plexus.h's own example) at small and
  // ring-sized counts; every float dtype as itself (the same as -1).
  void wire_precision(const DataCase &c) {
    if (c.op != PLX_SUM && c.op != PLX_MAX) return;
    for (const plx_dtype wire : {PLX_FLOAT16, PLX_BFLOAT16, c.dtype}) {
      const bool narrower = c.dtype == PLX_FLOAT32 && wire != c.dtype;
      if (!has(props.dtype_mask, wire) || (!narrower && wire != c.dtype)) continue;
      for (const uint64_t count : {uint64_t{7}, uint64_t{1023}, counts_of(c.dtype).back()})
        for (const bool in_place : {false, true}) {
          if (!narrower && count > 1023) continue;
          DataCase w{c.coll, c.dtype, c.op, count, in_place, false, false, 0, c.mem, 0};
          w.wire = wire;
          add(w);
        }
    }
  }

  // Pairings a backend may refuse (wire_may_be_refused): float32 copies as
  // each declared half type, float64 sums as float32; small counts, out of
  // place.
  void other_wire_pairings(const DataCase &c) {
    std::vector<plx_dtype> wires;
    if (!is_reduction(c.coll) && c.dtype == PLX_FLOAT32) wires = {PLX_FLOAT16, PLX_BFLOAT16};
    if (is_reduction(c.coll) && c.dtype == PLX_FLOAT64 && c.op == PLX_SUM) wires = {PLX_FLOAT32};
    for (const plx_dtype wire : wires) {
      if (!has(props.dtype_mask, wire)) continue;
      for (const uint64_t count : {uint64_t{7}, uint64_t{1023}}) {
        DataCase w{c.coll, c.dtype, c.op, count, false, false, false, 0, c.mem, 0};
        w.wire = wire;
        add(w);
      }
    }
  }

  void collective(plx_coll_kind coll) {
    for (plx_dtype d = 0; d < PLX_DTYPE_COUNT; ++d) {
      if (!has(props.dtype_mask, d)) continue;
      for (plx_reduce_op op = 0; op < (is_reduction(coll) ? PLX_REDUCE_OP_COUNT : 1); ++op) {
        if (is_reduction(coll) && !has(props.reduce_op_mask, op)) continue;
        for (const MemSource mem : sources)
          sizes({coll, d, is_reduction(coll) ? op : -1, 0, false, false, false, 0, mem, 0});
      }
    }
  }
};

}  // namespace

bool is_reduction(plx_coll_kind coll) {
  return coll == PLX_COLL_ALL_REDUCE || coll == PLX_COLL_REDUCE || coll == PLX_COLL_REDUCE_SCATTER;
}

bool wire_may_be_refused(const DataCase &c) {
  if (c.wire < 0 || c.wire == c.dtype) return false;
  return !(is_reduction(c.coll) && c.dtype == PLX_FLOAT32 && (c.wire == PLX_FLOAT16 || c.wire == PLX_BFLOAT16));
}

std::string data_group(const DataCase &c) {
  std::string name = fmt::format("{} {}", plx_coll_string(c.coll), plx_dtype_string(c.dtype));
  if (c.op >= 0) name += fmt::format(" {}", plx_reduce_op_string(c.op));
  if (c.mem.kind != PLX_MEM_HOST || c.mem.pool) name += " " + mem_source_name(c.mem);
  return name;
}

std::string data_case_name(const DataCase &c) {
  const uint64_t bytes = c.count * plx_dtype_size(c.dtype);
  std::string name = fmt::format("size {}", c.count);
  if (bytes >= (64ull << 20)) name += fmt::format(" ({} MiB)", bytes >> 20);
  name += c.in_place ? " in-place" : " out-of-place";
  name += c.aligned ? " aligned" : " unaligned";
  if (c.coll == PLX_COLL_REDUCE || c.coll == PLX_COLL_BROADCAST || c.coll == PLX_COLL_GATHER)
    name += fmt::format(" root {}", c.root);
  if (c.varied) name += " per-rank counts";
  if (c.absent >= 0) name += fmt::format(" rank {} contributes nothing", c.absent);
  if (c.wire >= 0) name += fmt::format(" wire {}", plx_dtype_string(c.wire));
  return name;
}

std::vector<uint64_t> gather_counts(const DataCase &c, int32_t nranks) {
  std::vector<uint64_t> counts(static_cast<size_t>(nranks), c.count);
  if (c.varied)
    for (int32_t r = 0; r < nranks; ++r) counts[r] = (r % 2 == 1) ? 0 : c.count + static_cast<uint64_t>(r);
  return counts;
}

std::vector<DataCase> plan_data_cases(const plx_backend_props &props, int32_t nranks, bool full,
                                     const std::vector<MemSource> &sources) {
  Planner planner{props, nranks, full, sources, {}};
  for (const plx_coll_kind coll : kColls)
    if (props.capabilities & PLX_CAP_COLL(coll)) planner.collective(coll);
  return std::move(planner.cases);
}

std::vector<std::string> plan_notes(const plx_backend_props &props) {
  std::vector<std::string> notes;
  std::string missing;
  for (plx_coll_kind coll = 0; coll < PLX_COLL_KIND_COUNT; ++coll)
    if (!(props.capabilities & PLX_CAP_COLL(coll))) missing += fmt::format(" {}", plx_coll_string(coll));
  if (!missing.empty()) notes.push_back("not advertised, not tested:" + missing);
  const uint64_t send_recv = PLX_CAP_COLL(PLX_COLL_SEND) | PLX_CAP_COLL(PLX_COLL_RECV);
  if ((props.capabilities & send_recv) == send_recv && (props.capabilities & PLX_CAP_GROUP))
    notes.push_back("send/recv are tested only as a ring inside a group (session groups)");
  else if (props.capabilities & send_recv)
    notes.push_back("send/recv are advertised but not yet tested by plexus-conformance");
  // Topology, pools, defragment, queues, groups and registration have
  // sessions of their own.
  if (props.capabilities & PLX_CAP_WIRE_PRECISION)
    notes.push_back("wire precision is tested as float32 reductions sent as narrower float dtypes, floats "
                    "sent as themselves, and float32 copies and float64 sums sent narrower (refused or "
                    "rounded); a half type sent wider is not");
  return notes;
}

}  // namespace plexus::conformance

// The ABI's enumerations as messages, statistics and JSON spell them, one
// table each for the loader and every plugin; and which collectives reduce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

#include "plexus/types.h"

namespace plexus::core {

inline constexpr const char *kDtypeNames[] = {"int8",   "uint8",   "int32",    "uint32",  "int64",
                                              "uint64", "float16", "bfloat16", "float32", "float64"};
inline constexpr const char *kReduceOpNames[] = {"sum", "prod", "min", "max", "avg"};
inline constexpr const char *kCollNames[] = {"all_reduce", "reduce",  "broadcast", "all_gather", "gather",
                                             "reduce_scatter", "barrier", "send",  "recv"};
inline constexpr const char *kAlgoNames[] = {"auto",      "one_shot", "two_shot", "ring",        "tree",
                                             "kary_tree", "copy",     "cpu_star", "low_latency", "library"};
static_assert(std::size(kDtypeNames) == PLX_DTYPE_COUNT);
static_assert(std::size(kReduceOpNames) == PLX_REDUCE_OP_COUNT);
static_assert(std::size(kCollNames) == PLX_COLL_KIND_COUNT);
static_assert(std::size(kAlgoNames) == PLX_ALGO_COUNT);

// The entry of `names` for `value`, or nullptr outside the enumeration.
template <size_t N>
constexpr const char *name_in(const char *const (&names)[N], int32_t value) {
  return value >= 0 && static_cast<size_t>(value) < N ? names[value] : nullptr;
}

// Collective kind `coll` by name, "collective" outside the enumeration (for
// messages about a descriptor the loader has already checked).
constexpr const char *coll_name(int32_t coll) {
  const char *name = name_in(kCollNames, coll);
  return name != nullptr ? name : "collective";
}

// All-reduce, reduce and reduce-scatter: the collectives an operator, a
// rank that contributes nothing and a wire dtype apply to.
constexpr bool is_reduction(int32_t coll) {
  return coll == PLX_COLL_ALL_REDUCE || coll == PLX_COLL_REDUCE || coll == PLX_COLL_REDUCE_SCATTER;
}

// A float32 reduction whose opts->wire_dtype is float16 or bfloat16: the
// one pairing the plugins that honour a wire dtype narrow (the others send
// their own dtype or are refused).
constexpr bool float32_on_half_wire(int32_t coll, int32_t dtype, int32_t wire) {
  return is_reduction(coll) && dtype == PLX_FLOAT32 && (wire == PLX_FLOAT16 || wire == PLX_BFLOAT16);
}

}  // namespace plexus::core

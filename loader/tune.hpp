// The PLEXUS_TUNE grammar: the routing table of auto's composite
// communicator (docs/auto.md), also the format of the tuning file's tables.
//
//   tune    := item (';' item)*
//   item    := rule | '+' backend
//   rule    := op ['@' kind] ':' range ':' backend
//   op      := all_reduce | reduce | broadcast | all_gather | gather
//            | reduce_scatter | barrier | p2p | '*'
//   kind    := host | device
//   range   := '*' | [size] '-' [size]      lo included, hi excluded
//   size    := digits ['K' | 'M' | 'G']      powers of 1024
//   backend := plugin-name ['#' digit]       '#N' is the N-th extra instance
//
// Spaces around tokens are ignored. Anything else is rejected naming the
// item, the token and what was expected, with the grammar in the message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/types.h"

namespace plexus::loader {

// The memory a call's buffers are in, as routing sees it.
enum class MemClass : int8_t { any, host, device };

// Rule ops are PLX_COLL_* values; send and recv route together as p2p,
// because a send and its matching recv must meet on one backend.
constexpr int32_t route_op_any = -1;
constexpr int32_t route_op_p2p = PLX_COLL_SEND;

constexpr uint64_t size_unbounded = UINT64_MAX;
constexpr size_t tune_max_items = 64;
constexpr size_t tune_max_chars = 4096;
constexpr int32_t tune_max_instance = 7;

struct TuneRule {
  int32_t op = route_op_any;
  MemClass kind = MemClass::any;
  uint64_t lo = 0;              // bytes, included
  uint64_t hi = size_unbounded; // bytes, excluded; size_unbounded: no limit
  std::string backend;          // "nccl", "shm-native#1"

  bool matches(int32_t call_op, MemClass call_kind, uint64_t bytes) const;
};

struct TuneSpec {
  std::vector<std::string> added;  // '+backend' items, in order
  std::vector<TuneRule> rules;     // in order; the first match wins
};

extern const char *const tune_grammar;

// Parses `text`; on failure sets the last error (naming `source`, e.g.
// "PLEXUS_TUNE") and returns PLX_ERR_INVALID_ARGUMENT.
plx_status parse_tune(std::string_view text, std::string_view source, TuneSpec *out);

// The text that parses back to the same rule or spec.
std::string tune_text(const TuneRule &rule);
std::string tune_text(const TuneSpec &spec);

// "shm-native#1" -> ("shm-native", 1); "nccl" -> ("nccl", 0). False for a
// label that is not a plugin name with an optional '#N' (N <= 7).
bool parse_backend_label(std::string_view label, std::string *name, int32_t *instance);

// The op of a call for routing (send and recv give route_op_p2p).
inline int32_t route_op_of(int32_t coll) { return coll == PLX_COLL_RECV ? route_op_p2p : coll; }

// "all_reduce", ..., "p2p", "*".
const char *route_op_name(int32_t op);
const char *mem_class_name(MemClass kind);  // "host", "device", "*"

// 4096 -> "4K", 1536 -> "1536", size_unbounded -> "".
std::string size_text(uint64_t bytes);

// The all-reduce rules of a measurement: `seconds` holds, row by row, the
// time of each of `labels` at each of `sizes` (ascending). Each size goes
// to its fastest backend, except that the previous size's winner keeps it
// unless beaten by more than `keep_margin` (noise must not split ranges);
// a range ends halfway (geometrically) between the sizes where the winner
// changes. Infinite times never win.
std::vector<TuneRule> rules_from_times(MemClass kind, const std::vector<uint64_t> &sizes,
                                       const std::vector<std::string> &labels,
                                       const std::vector<double> &seconds, double keep_margin = 1.03);

}  // namespace plexus::loader

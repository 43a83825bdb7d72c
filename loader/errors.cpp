// Library-level calls: version, status and enum names, the last error.
#include "loader/errors.hpp"

#include <fmt/format.h>

#include "core/dtype.hpp"
#include "core/status.hpp"
#include "plexus/plexus.h"
#include "plexus/plugin.h"
#include "plexus_config.h"

namespace plexus::loader {
namespace {

thread_local std::string last_error;

template <size_t N>
const char *lookup(const char *const (&names)[N], int32_t value) {
  return value >= 0 && static_cast<size_t>(value) < N ? names[value] : nullptr;
}

const char *const dtype_names[] = {"int8",    "uint8",    "int32",    "uint32",  "int64",
                                   "uint64",  "float16",  "bfloat16", "float32", "float64"};
const char *const op_names[] = {"sum", "prod", "min", "max", "avg"};
const char *const coll_names[] = {"all_reduce", "reduce",  "broadcast", "all_gather", "gather",
                                  "reduce_scatter", "barrier", "send",  "recv"};
const char *const algo_names[] = {"auto", "one_shot", "two_shot",  "ring",        "tree",
                                  "kary_tree", "copy", "cpu_star", "low_latency", "library"};
static_assert(sizeof(dtype_names) / sizeof(*dtype_names) == PLX_DTYPE_COUNT);
static_assert(sizeof(op_names) / sizeof(*op_names) == PLX_REDUCE_OP_COUNT);
static_assert(sizeof(coll_names) / sizeof(*coll_names) == PLX_COLL_KIND_COUNT);
static_assert(sizeof(algo_names) / sizeof(*algo_names) == PLX_ALGO_COUNT);

}  // namespace

plx_status set_last_error(plx_status status, const char *message) {
  last_error = message ? message : "";
  return status;
}

plx_status name_failure(const char *fn, const char *arg, plx_status status) {
  if (status == PLX_OK || plexus::core::is_sticky(status)) return status;
  return set_last_error(status, fmt::format("{}: {}: {}", fn, arg, last_error).c_str());
}

const char *dtype_name(plx_dtype dtype) { return lookup(dtype_names, dtype); }
const char *reduce_op_name(plx_reduce_op op) { return lookup(op_names, op); }
const char *coll_name(plx_coll_kind coll) { return lookup(coll_names, coll); }
const char *algorithm_name(plx_algorithm a) { return lookup(algo_names, a); }

}  // namespace plexus::loader

using namespace plexus::loader;

extern "C" {

plx_status plx_version(int32_t *major, int32_t *minor, int32_t *patch) {
  if (major) *major = PLX_VERSION_MAJOR;
  if (minor) *minor = PLX_VERSION_MINOR;
  if (patch) *patch = PLX_VERSION_PATCH;
  return PLX_OK;
}

const char *plx_version_string(void) {
  static const std::string text = fmt::format("{} (plugin ABI {}.{})", PLEXUS_VERSION,
                                              PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR);
  return text.c_str();
}

const char *plx_status_string(plx_status status) { return plexus::core::status_name(status); }
const char *plx_last_error(void) { return last_error.c_str(); }

const char *plx_dtype_string(plx_dtype dtype) {
  const char *name = dtype_name(dtype);
  return name ? name : "<unknown dtype>";
}

size_t plx_dtype_size(plx_dtype dtype) { return plexus::core::dtype_bytes(dtype); }

const char *plx_reduce_op_string(plx_reduce_op op) {
  const char *name = reduce_op_name(op);
  return name ? name : "<unknown op>";
}

const char *plx_coll_string(plx_coll_kind coll) {
  const char *name = coll_name(coll);
  return name ? name : "<unknown>";
}

const char *plx_algorithm_string(plx_algorithm algorithm) {
  const char *name = algorithm_name(algorithm);
  return name ? name : "<unknown>";
}

}  // extern "C"

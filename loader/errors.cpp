// Library-level calls: version, status and enum names, the last error.
#include "loader/errors.hpp"

#include <fmt/format.h>

#include "core/dtype.hpp"
#include "core/names.hpp"
#include "core/status.hpp"
#include "plexus/plexus.h"
#include "plexus/plugin.h"
#include "plexus_config.h"

namespace plexus::loader {
namespace {

thread_local std::string last_error;

}  // namespace

plx_status set_last_error(plx_status status, const char *message) {
  last_error = message ? message : "";
  return status;
}

plx_status name_failure(const char *fn, const char *arg, plx_status status) {
  if (status == PLX_OK || plexus::core::is_sticky(status)) return status;
  return set_last_error(status, fmt::format("{}: {}: {}", fn, arg, last_error).c_str());
}

const char *dtype_name(plx_dtype dtype) { return core::name_in(core::kDtypeNames, dtype); }
const char *reduce_op_name(plx_reduce_op op) { return core::name_in(core::kReduceOpNames, op); }
const char *coll_name(plx_coll_kind coll) { return core::name_in(core::kCollNames, coll); }
const char *algorithm_name(plx_algorithm a) { return core::name_in(core::kAlgoNames, a); }

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

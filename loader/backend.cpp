// The backend family of plexus.h: open, close, properties, reports,
// topology, unique ids.
#include <cstring>

#include "core/json.hpp"
#include "loader/composite.hpp"
#include "loader/describe.hpp"
#include "loader/errors.hpp"
#include "loader/objects.hpp"
#include "loader/retired.hpp"
#include "loader/open.hpp"
#include "loader/unique_id.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

// The size of the first version of each struct: smaller is a caller error
// (PLX-L-25); larger comes from newer headers and is read as far as known.
constexpr uint32_t props_v1_size = 72;
constexpr uint32_t topology_info_v1_size = 32;
static_assert(sizeof(plx_backend_props) == props_v1_size);
static_assert(sizeof(plx_topology_info) == topology_info_v1_size);

plx_status check_struct(const char *fn, const char *arg, uint32_t given, uint32_t v1_size) {
  if (given >= v1_size) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT,
                    "{}: {}->struct_size is {}, smaller than the first version of the struct "
                    "({} bytes): set it to sizeof() of the struct", fn, arg, given, v1_size);
}

// Copies a full struct into a caller's, as far as the caller's struct_size
// reaches, keeping the caller's struct_size.
template <typename T>
void copy_struct_out(const T &full, T *caller) {
  const uint32_t size = caller->struct_size;
  std::memcpy(static_cast<void *>(caller), &full, std::min<size_t>(size, sizeof(T)));
  caller->struct_size = size;
}

}  // namespace

namespace plexus::loader {

plx_status check_backend(const char *fn, plx_backend *b) {
  if (b == nullptr) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: backend is NULL", fn);
  if (b->magic != backend_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: backend is not an open plexus backend "
                      "(closed already, or not a plx_backend_h)", fn);
  return PLX_OK;
}

plx_status check_not_null(const char *fn, const char *arg, const void *p) {
  return p ? PLX_OK : core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: {} is NULL", fn, arg);
}

plx_status missing_slot(const char *fn, plx_backend *b, const char *slot) {
  return core::fail(PLX_ERR_UNSUPPORTED, "{}: backend '{}' does not implement {} (its ABI {}.{} "
                    "vtable leaves the slot empty)", fn, b->lib->info->name, slot,
                    b->lib->vtable->abi_major, b->lib->vtable->abi_minor);
}

}  // namespace plexus::loader

extern "C" {

plx_status plx_backend_open(const char *spec, plx_backend_h *out) {
  if (plx_status s = check_not_null("plx_backend_open", "out", out)) return s;
  return open_backend(spec, out);
}

plx_status plx_backend_close(plx_backend_h backend) {
  if (plx_status s = check_backend("plx_backend_close", backend)) return s;
  if (const int32_t live = backend->live_objects.load())
    return core::fail(PLX_ERR_INVALID_USAGE, "plx_backend_close: {} communicator(s) of backend "
                      "'{}' are still open; destroy them first", live, backend->lib->info->name);
  plx_status s = PLX_CALL_SLOT("plx_backend_close", backend, finalize, backend->state);
  retire(backend);
  return s;
}

plx_status plx_backend_props_get(plx_backend_h backend, plx_backend_props *props) {
  const char *fn = "plx_backend_props_get";
  if (plx_status s = check_backend(fn, backend)) return s;
  if (plx_status s = check_not_null(fn, "props", props)) return s;
  if (plx_status s = check_struct(fn, "props", props->struct_size, props_v1_size)) return s;
  const PluginLib &lib = *backend->lib;
  const plx_plugin_info &i = *lib.info;
  const plx_backend_props full = {sizeof(plx_backend_props), lib.abi_major, lib.abi_minor, i.name,
                                  lib.path.c_str(), i.build_info ? i.build_info : "",
                                  i.version_major, i.version_minor, i.version_patch, i.threading,
                                  i.capabilities, i.mem_kind_mask, i.alloc_kind_mask,
                                  i.dtype_mask, i.reduce_op_mask};
  copy_struct_out(full, props);
  return PLX_OK;
}

plx_status plx_load_report(plx_backend_h backend, plx_format format, char *buf, size_t capacity,
                           size_t *needed) {
  const char *fn = "plx_load_report";
  if (format != PLX_FORMAT_TEXT && format != PLX_FORMAT_JSON)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: format {} is neither PLX_FORMAT_TEXT nor "
                      "PLX_FORMAT_JSON", fn, format);
  if (buf == nullptr && capacity > 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: buf is NULL but capacity is {}", fn, capacity);
  std::shared_ptr<const LoadReport> last;
  const LoadReport *report = nullptr;
  if (backend != nullptr) {
    if (plx_status s = check_backend(fn, backend)) return s;
    report = &backend->report;
  } else if ((last = last_thread_report())) {
    report = last.get();
  } else {
    return core::fail(PLX_ERR_NOT_FOUND, "{}: this thread has not called plx_backend_open yet", fn);
  }
  return core::copy_text_out(format == PLX_FORMAT_JSON ? report->json() : report->text(), buf, capacity, needed);
}

plx_status plx_plugins_describe(plx_format format, char *buf, size_t capacity, size_t *needed) {
  if (format != PLX_FORMAT_TEXT && format != PLX_FORMAT_JSON)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_plugins_describe: format {} is neither "
                      "PLX_FORMAT_TEXT nor PLX_FORMAT_JSON", format);
  if (buf == nullptr && capacity > 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_plugins_describe: buf is NULL but capacity is {}", capacity);
  return core::copy_text_out(describe_plugins(format), buf, capacity, needed);
}

plx_status plx_backend_topology(plx_backend_h backend, plx_topology_info *info, char *json,
                                size_t capacity, size_t *needed) {
  const char *fn = "plx_backend_topology";
  if (plx_status s = check_backend(fn, backend)) return s;
  if (json == nullptr && capacity > 0)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: json is NULL but capacity is {}", fn, capacity);
  if (info && check_struct(fn, "info", info->struct_size, topology_info_v1_size)) return PLX_ERR_INVALID_ARGUMENT;
  plx_topology_info full{};
  full.struct_size = sizeof(full);
  const plx_status s = PLX_CALL_SLOT(fn, backend, topology, backend->state, &full, json, capacity, needed);
  if (s == PLX_OK && info) copy_struct_out(full, info);
  return s;
}

plx_status plx_get_unique_id(plx_backend_h backend, plx_unique_id *id) {
  const char *fn = "plx_get_unique_id";
  if (plx_status s = check_backend(fn, backend)) return s;
  if (plx_status s = check_not_null(fn, "id", id)) return s;
  plx_unique_id made{};
  // auto's composite writes and seals all 256 bytes itself (composite_id.hpp).
  const bool whole = is_composite(backend);
  const plx_status s = PLX_CALL_SLOT(fn, backend, get_unique_id, backend->state,
                                     whole ? made.bytes : unique_id_payload(&made));
  if (s != PLX_OK) return s;
  if (!whole) seal_unique_id(&made, backend->lib->info->name);
  *id = made;
  return PLX_OK;
}

}  // extern "C"

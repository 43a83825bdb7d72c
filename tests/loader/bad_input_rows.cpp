// Rows of the bad-input sweep (bad_input.hpp): backends, communicators.
#include <cstring>

#include "bad_input.hpp"

namespace plx_test {
namespace {

constexpr plx_status kInvalid = PLX_ERR_INVALID_ARGUMENT;

plx_comm_h junk_comm(World &w) { return reinterpret_cast<plx_comm_h>(w.junk); }
plx_backend_h junk_backend(World &w) { return reinterpret_cast<plx_backend_h>(w.junk); }

plx_status open_spec(const char *spec) {
  plx_backend_h b = nullptr;
  const plx_status s = plx_backend_open(spec, &b);
  if (b) plx_backend_close(b);
  return s;
}

plx_status init_with(World &w, const plx_unique_id *id, int32_t nranks, int32_t rank, const plx_comm_config *config) {
  plx_comm_h out = nullptr;
  const plx_status s = plx_comm_init(w.backend, id, nranks, rank, config, &out);
  if (out) plx_comm_destroy(out);
  return s;
}

plx_status init_config(World &w, plx_comm_config cfg) { return init_with(w, &w.id, 1, 0, &cfg); }

plx_comm_config config_with(uint32_t size, uint32_t flags, int32_t timeout) {
  plx_comm_config c = PLX_COMM_CONFIG_INIT;
  c.struct_size = size, c.flags = flags, c.timeout_ms = timeout;
  return c;
}

// An id with one byte changed (the checksum catches it), and one made by
// another plugin.
plx_status init_corrupted(World &w) {
  plx_unique_id id = w.id;
  id.bytes[100] ^= 0x40;
  return init_with(w, &id, 1, 0, nullptr);
}

plx_status init_foreign(World &w) {
  plx_unique_id id{};
  if (plx_get_unique_id(w.fixture, &id) != PLX_OK) return PLX_ERR_INTERNAL;
  return init_with(w, &id, 1, 0, nullptr);
}

plx_status split_with(World &w, plx_comm_h comm, int32_t color, const plx_comm_config *cfg, bool out) {
  plx_comm_h made = nullptr;
  const plx_status s = plx_comm_split(comm, color, 0, cfg, out ? &made : nullptr);
  if (made) plx_comm_destroy(made);
  (void)w;
  return s;
}

plx_status props_sized(World &w, uint32_t size) {
  plx_backend_props p{};
  p.struct_size = size;
  return plx_backend_props_get(w.backend, &p);
}

plx_status stats_sized(World &w, plx_coll_kind coll, uint32_t size) {
  plx_op_stats s{};
  s.struct_size = size;
  return plx_comm_stats(w.comm, coll, &s);
}

plx_status topology_info_sized(World &w, uint32_t size) {
  plx_topology_info info{};
  info.struct_size = size;
  return plx_backend_topology(w.backend, &info, nullptr, 0, nullptr);
}

size_t needed = 0;
int32_t value = 0;
plx_status status_out = 0;
plx_backend_props props{sizeof(plx_backend_props), 0, 0, nullptr, nullptr, nullptr, 0, 0, 0, 0, 0, 0, 0, 0, 0};
plx_op_stats op_stats{sizeof(plx_op_stats), 0, 0, 0, 0, 0, 0, {}};
plx_unique_id id_out{};

}  // namespace

std::vector<Row> library_and_backend_rows() {
  return {
      {"plx_backend_open", "NULL out-pointer", [](World &) { return plx_backend_open("shm-native", nullptr); },
       kInvalid, {"plx_backend_open", "out is NULL"}},
      {"plx_backend_open", "malformed spec", [](World &) { return open_spec("./libplexus-x.so"); }, kInvalid,
       {"relative path", "grammar"}},
      {"plx_backend_open", "malformed spec", [](World &) { return open_spec("shm-native,,nccl"); }, kInvalid,
       {"empty", "grammar"}},
      {"plx_backend_open", "malformed spec", [](World &) { return open_spec("shm-native,^nccl"); }, kInvalid,
       {"^", "grammar"}},
      {"plx_backend_open", "unknown plugin", [](World &) { return open_spec("no-such-plugin"); }, PLX_ERR_NOT_FOUND,
       {"no-such-plugin"}},
      {"plx_backend_close", "NULL handle", [](World &) { return plx_backend_close(nullptr); }, kInvalid,
       {"plx_backend_close", "backend is NULL"}},
      {"plx_backend_close", "not a handle", [](World &w) { return plx_backend_close(junk_backend(w)); }, kInvalid,
       {"plx_backend_close", "backend", "not an open"}},
      {"plx_backend_close", "closed handle", [](World &w) { return plx_backend_close(w.closed_backend); }, kInvalid,
       {"plx_backend_close", "backend", "not an open"}},
      {"plx_backend_close", "wrong state", [](World &w) { return plx_backend_close(w.backend); }, PLX_ERR_INVALID_USAGE,
       {"plx_backend_close", "still open"}},
      {"plx_backend_props_get", "NULL handle", [](World &) { return plx_backend_props_get(nullptr, &props); }, kInvalid,
       {"plx_backend_props_get", "backend is NULL"}},
      {"plx_backend_props_get", "closed handle",
       [](World &w) { return plx_backend_props_get(w.closed_backend, &props); }, kInvalid,
       {"plx_backend_props_get", "backend"}},
      {"plx_backend_props_get", "NULL out-pointer", [](World &w) { return plx_backend_props_get(w.backend, nullptr); },
       kInvalid, {"plx_backend_props_get", "props is NULL"}},
      {"plx_backend_props_get", "struct_size", [](World &w) { return props_sized(w, 0); }, kInvalid,
       {"plx_backend_props_get", "props->struct_size is 0"}},
      {"plx_backend_props_get", "struct_size", [](World &w) { return props_sized(w, 71); }, kInvalid,
       {"plx_backend_props_get", "props->struct_size is 71"}},
      {"plx_load_report", "bad enum", [](World &w) { return plx_load_report(w.backend, 7, nullptr, 0, &needed); },
       kInvalid, {"plx_load_report", "format 7"}},
      {"plx_load_report", "NULL buffer",
       [](World &w) { return plx_load_report(w.backend, PLX_FORMAT_TEXT, nullptr, 16, &needed); }, kInvalid,
       {"plx_load_report", "buf is NULL"}},
      {"plx_load_report", "not a handle",
       [](World &w) { return plx_load_report(junk_backend(w), PLX_FORMAT_TEXT, nullptr, 0, &needed); }, kInvalid,
       {"plx_load_report", "backend"}},
      {"plx_load_report", "closed handle",
       [](World &w) { return plx_load_report(w.closed_backend, PLX_FORMAT_JSON, nullptr, 0, &needed); }, kInvalid,
       {"plx_load_report", "backend"}},
      {"plx_plugins_describe", "bad enum", [](World &) { return plx_plugins_describe(-1, nullptr, 0, &needed); },
       kInvalid, {"plx_plugins_describe", "format -1"}},
      {"plx_plugins_describe", "NULL buffer",
       [](World &) { return plx_plugins_describe(PLX_FORMAT_JSON, nullptr, 8, &needed); }, kInvalid,
       {"plx_plugins_describe", "buf is NULL"}},
      {"plx_backend_topology", "NULL handle",
       [](World &) { return plx_backend_topology(nullptr, nullptr, nullptr, 0, nullptr); }, kInvalid,
       {"plx_backend_topology", "backend is NULL"}},
      {"plx_backend_topology", "closed handle",
       [](World &w) { return plx_backend_topology(w.closed_backend, nullptr, nullptr, 0, nullptr); }, kInvalid,
       {"plx_backend_topology", "backend"}},
      {"plx_backend_topology", "NULL buffer",
       [](World &w) { return plx_backend_topology(w.backend, nullptr, nullptr, 64, &needed); }, kInvalid,
       {"plx_backend_topology", "json is NULL"}},
      {"plx_backend_topology", "struct_size", [](World &w) { return topology_info_sized(w, 4); }, kInvalid,
       {"plx_backend_topology", "info->struct_size is 4"}},
      {"plx_get_unique_id", "NULL handle", [](World &) { return plx_get_unique_id(nullptr, &id_out); }, kInvalid,
       {"plx_get_unique_id", "backend is NULL"}},
      {"plx_get_unique_id", "closed handle", [](World &w) { return plx_get_unique_id(w.closed_backend, &id_out); },
       kInvalid, {"plx_get_unique_id", "backend"}},
      {"plx_get_unique_id", "NULL out-pointer", [](World &w) { return plx_get_unique_id(w.backend, nullptr); },
       kInvalid, {"plx_get_unique_id", "id is NULL"}},
  };
}

std::vector<Row> communicator_rows() {
  return {
      {"plx_comm_init", "NULL handle",
       [](World &w) { plx_comm_h o; return plx_comm_init(nullptr, &w.id, 1, 0, nullptr, &o); }, kInvalid,
       {"plx_comm_init", "backend is NULL"}},
      {"plx_comm_init", "closed handle",
       [](World &w) { plx_comm_h o; return plx_comm_init(w.closed_backend, &w.id, 1, 0, nullptr, &o); }, kInvalid,
       {"plx_comm_init", "backend"}},
      {"plx_comm_init", "NULL pointer", [](World &w) { return init_with(w, nullptr, 1, 0, nullptr); }, kInvalid,
       {"plx_comm_init", "id is NULL"}},
      {"plx_comm_init", "NULL out-pointer",
       [](World &w) { return plx_comm_init(w.backend, &w.id, 1, 0, nullptr, nullptr); }, kInvalid,
       {"plx_comm_init", "out is NULL"}},
      {"plx_comm_init", "rank out of range", [](World &w) { return init_with(w, &w.id, 0, 0, nullptr); }, kInvalid,
       {"plx_comm_init", "nranks is 0"}},
      {"plx_comm_init", "rank out of range", [](World &w) { return init_with(w, &w.id, -3, 0, nullptr); }, kInvalid,
       {"plx_comm_init", "nranks is -3"}},
      {"plx_comm_init", "rank out of range", [](World &w) { return init_with(w, &w.id, 2, 2, nullptr); }, kInvalid,
       {"plx_comm_init", "rank 2 is out of range"}},
      {"plx_comm_init", "rank out of range", [](World &w) { return init_with(w, &w.id, 2, -1, nullptr); }, kInvalid,
       {"plx_comm_init", "rank -1 is out of range"}},
      {"plx_comm_init", "struct_size", [](World &w) { return init_config(w, config_with(8, 0, 0)); }, kInvalid,
       {"plx_comm_init", "config->struct_size is 8"}},
      {"plx_comm_init", "flags", [](World &w) { return init_config(w, config_with(sizeof(plx_comm_config), 4, 0)); },
       kInvalid, {"plx_comm_init", "config->flags"}},
      {"plx_comm_init", "value out of range",
       [](World &w) { return init_config(w, config_with(sizeof(plx_comm_config), 0, -5)); }, kInvalid,
       {"plx_comm_init", "timeout_ms"}},
      {"plx_comm_init", "corrupted id", [](World &w) { return init_corrupted(w); }, kInvalid, {"plx_comm_init", "id"}},
      {"plx_comm_init", "foreign id", [](World &w) { return init_foreign(w); }, kInvalid,
       {"plx_comm_init", "id", "fixture-good"}},
      {"plx_comm_init", "foreign id",
       [](World &w) { const plx_unique_id zero{}; return init_with(w, &zero, 1, 0, nullptr); }, kInvalid,
       {"plx_comm_init", "id"}},
      {"plx_comm_split", "NULL handle", [](World &w) { return split_with(w, nullptr, 0, nullptr, true); }, kInvalid,
       {"plx_comm_split", "comm is NULL"}},
      {"plx_comm_split", "destroyed handle", [](World &w) { return split_with(w, w.destroyed_comm, 0, nullptr, true); },
       kInvalid, {"plx_comm_split", "comm", "not a live"}},
      {"plx_comm_split", "NULL out-pointer", [](World &w) { return split_with(w, w.comm, 0, nullptr, false); },
       kInvalid, {"plx_comm_split", "out is NULL"}},
      {"plx_comm_split", "value out of range", [](World &w) { return split_with(w, w.comm, -2, nullptr, true); },
       kInvalid, {"plx_comm_split", "color -2"}},
      {"plx_comm_split", "struct_size",
       [](World &w) { const plx_comm_config c = config_with(4, 0, 0); return split_with(w, w.comm, 0, &c, true); },
       kInvalid, {"plx_comm_split", "config->struct_size is 4"}},
      {"plx_comm_destroy", "NULL handle", [](World &) { return plx_comm_destroy(nullptr); }, kInvalid,
       {"plx_comm_destroy", "comm"}},
      {"plx_comm_destroy", "not a handle", [](World &w) { return plx_comm_destroy(junk_comm(w)); }, kInvalid,
       {"plx_comm_destroy", "comm", "not a live"}},
      {"plx_comm_destroy", "destroyed handle", [](World &w) { return plx_comm_destroy(w.destroyed_comm); }, kInvalid,
       {"plx_comm_destroy", "comm", "not a live"}},
      {"plx_comm_destroy", "wrong state", [](World &w) { return plx_comm_destroy(w.comm); }, PLX_ERR_INVALID_USAGE,
       {"plx_comm_destroy", "queue"}},
      {"plx_comm_abort", "NULL handle", [](World &) { return plx_comm_abort(nullptr); }, kInvalid,
       {"plx_comm_abort", "comm"}},
      {"plx_comm_abort", "destroyed handle", [](World &w) { return plx_comm_abort(w.destroyed_comm); }, kInvalid,
       {"plx_comm_abort", "comm", "not a live"}},
      {"plx_comm_async_status", "NULL handle", [](World &) { return plx_comm_async_status(nullptr, &status_out); },
       kInvalid, {"plx_comm_async_status", "comm is NULL"}},
      {"plx_comm_async_status", "destroyed handle",
       [](World &w) { return plx_comm_async_status(w.destroyed_comm, &status_out); }, kInvalid,
       {"plx_comm_async_status", "comm", "not a live"}},
      {"plx_comm_async_status", "NULL out-pointer", [](World &w) { return plx_comm_async_status(w.comm, nullptr); },
       kInvalid, {"plx_comm_async_status", "status is NULL"}},
      {"plx_comm_rank", "NULL handle", [](World &) { return plx_comm_rank(nullptr, &value); }, kInvalid,
       {"plx_comm_rank", "comm is NULL"}},
      {"plx_comm_rank", "destroyed handle", [](World &w) { return plx_comm_rank(w.destroyed_comm, &value); }, kInvalid,
       {"plx_comm_rank", "comm", "not a live"}},
      {"plx_comm_rank", "NULL out-pointer", [](World &w) { return plx_comm_rank(w.comm, nullptr); }, kInvalid,
       {"plx_comm_rank", "rank is NULL"}},
      {"plx_comm_size", "NULL handle", [](World &) { return plx_comm_size(nullptr, &value); }, kInvalid,
       {"plx_comm_size", "comm is NULL"}},
      {"plx_comm_size", "not a handle", [](World &w) { return plx_comm_size(junk_comm(w), &value); }, kInvalid,
       {"plx_comm_size", "comm", "not a live"}},
      {"plx_comm_size", "NULL out-pointer", [](World &w) { return plx_comm_size(w.comm, nullptr); }, kInvalid,
       {"plx_comm_size", "size is NULL"}},
      {"plx_comm_device", "NULL handle", [](World &) { return plx_comm_device(nullptr, &value); }, kInvalid,
       {"plx_comm_device", "comm is NULL"}},
      {"plx_comm_device", "NULL out-pointer", [](World &w) { return plx_comm_device(w.comm, nullptr); }, kInvalid,
       {"plx_comm_device", "cuda_device is NULL"}},
      {"plx_comm_stats", "NULL handle", [](World &) { return plx_comm_stats(nullptr, PLX_COLL_ALL_REDUCE, &op_stats); },
       kInvalid, {"plx_comm_stats", "comm is NULL"}},
      {"plx_comm_stats", "destroyed handle",
       [](World &w) { return plx_comm_stats(w.destroyed_comm, PLX_COLL_ALL_REDUCE, &op_stats); }, kInvalid,
       {"plx_comm_stats", "comm", "not a live"}},
      {"plx_comm_stats", "NULL out-pointer",
       [](World &w) { return plx_comm_stats(w.comm, PLX_COLL_ALL_REDUCE, nullptr); }, kInvalid,
       {"plx_comm_stats", "stats is NULL"}},
      {"plx_comm_stats", "bad enum", [](World &w) { return stats_sized(w, 99, sizeof(plx_op_stats)); }, kInvalid,
       {"plx_comm_stats", "coll 99"}},
      {"plx_comm_stats", "bad enum", [](World &w) { return stats_sized(w, -1, sizeof(plx_op_stats)); }, kInvalid,
       {"plx_comm_stats", "coll -1"}},
      {"plx_comm_stats", "struct_size", [](World &w) { return stats_sized(w, PLX_COLL_BARRIER, 40); }, kInvalid,
       {"plx_comm_stats", "stats->struct_size is 40"}},
      {"plx_comm_routes", "NULL handle", [](World &) { return plx_comm_routes(nullptr, PLX_FORMAT_TEXT, nullptr, 0, &needed); },
       kInvalid, {"plx_comm_routes", "comm is NULL"}},
      {"plx_comm_routes", "destroyed handle",
       [](World &w) { return plx_comm_routes(w.destroyed_comm, PLX_FORMAT_JSON, nullptr, 0, &needed); }, kInvalid,
       {"plx_comm_routes", "comm", "not a live"}},
      {"plx_comm_routes", "bad enum", [](World &w) { return plx_comm_routes(w.comm, 7, nullptr, 0, &needed); }, kInvalid,
       {"plx_comm_routes", "format 7"}},
      {"plx_comm_routes", "NULL buffer",
       [](World &w) { return plx_comm_routes(w.comm, PLX_FORMAT_TEXT, nullptr, 16, &needed); }, kInvalid,
       {"plx_comm_routes", "buf is NULL"}},
  };
}

}  // namespace plx_test

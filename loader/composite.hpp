// auto's composite backend (docs/auto.md): one plx_backend_h over several
// initialised plugins, implemented in the loader as a plugin of its own
// (the vtable below), so the loader's argument checks, sticky failures and
// statistics apply to it unchanged. Its communicators hold a communicator
// of every member and route each collective by op, size and memory kind
// (composite_route.cpp) through a table from PLEXUS_TUNE, the tuning file
// or a measurement (composite_tuning.cpp).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "loader/auto_select.hpp"
#include "loader/objects.hpp"
#include "loader/tune.hpp"

namespace plexus::loader {

struct Member {
  std::string label;  // "nccl", "shm-native#1" (the name PLEXUS_TUNE uses)
  const PluginLib *lib = nullptr;
  void *backend = nullptr;  // the plugin's backend state

  const plx_plugin_info &info() const { return *lib->info; }
  bool takes(MemClass kind) const;
};

struct CompositeBackend {
  std::vector<Member> members;  // routing's last resort goes in this order
  TuneSpec tune;                // PLEXUS_TUNE as given
  AutoTopology topology;
  AutoHosts hosts;
  plx_plugin_info info{};       // what the loader checks calls against: the members' union
  std::string build_info;
};

struct RouteCounter {
  std::atomic<uint64_t> calls{0}, bytes{0};
  std::atomic<bool> logged{false};
};

// One line of the table, resolved to a member; the members themselves
// follow the table as the last resort (source "member order").
struct Route {
  TuneRule rule;
  size_t member = 0;
  std::string source;  // "PLEXUS_TUNE", "measured", "tuning file <path>", "member order"
};

struct CompositeComm {
  CompositeBackend *backend = nullptr;
  std::vector<void *> comms;  // per member, same order
  int32_t rank = 0, size = 0, device = -1;
  bool has_host = false, has_device = false;
  std::vector<Route> routes;
  std::unique_ptr<RouteCounter[]> counters;  // per route
  std::string table_source;                  // where the table came from, for the reports
  MemClass last_kind = MemClass::host;       // for a rank that passes no buffer
  bool in_group = false;
  std::atomic<int32_t> last_member[PLX_COLL_KIND_COUNT];
  std::mutex blocks_mutex;
  std::unordered_map<void *, size_t> blocks;  // plx_mem_alloc's blocks: which member gave each
  // plx_mem_register's handles: the members' handles, one per member (NULL
  // where a member does not register), keyed by the handle given out.
  std::unordered_map<void *, std::unique_ptr<std::vector<void *>>> registrations;
};

// Wraps initialised member backends (owned from now on) into a backend.
plx_status make_composite_backend(std::vector<Member> members, TuneSpec tune, const AutoTopology &topology,
                                  const AutoHosts &hosts, plx_backend **out);
bool is_composite(const plx_backend *backend);
const CompositeBackend &composite_of(const plx_backend *backend);

// The vtable every composite shares. The id slots take and give all 256
// bytes of the plx_unique_id (the loader seals and checks only plugin ids).
extern const plx_plugin_vtable composite_vtable;
plx_status composite_finalize(void *backend);
plx_status composite_topology(void *backend, plx_topology_info *info, char *json, size_t capacity, size_t *needed);
plx_status composite_unique_id(void *backend, uint8_t *id_bytes);
// composite_comm.cpp
plx_status composite_comm_init(void *backend, const uint8_t *id_bytes, int32_t nranks, int32_t rank,
                               const plx_comm_config *config, void **comm);
plx_status composite_comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out);
plx_status composite_comm_destroy(void *comm);
plx_status composite_comm_abort(void *comm);
plx_status composite_comm_async_status(void *comm, plx_status *status);
plx_status composite_comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *device);
plx_status composite_comm_stats(void *comm, int32_t coll, plx_op_stats *stats);
plx_status composite_group_start(void *comm);
plx_status composite_group_end(void *comm);
// composite_memory.cpp
plx_status composite_mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr);
plx_status composite_mem_free(void *comm, void *ptr);
plx_status composite_mem_register(void *comm, void *ptr, uint64_t bytes, void **handle);
plx_status composite_mem_deregister(void *comm, void *handle);
plx_status composite_mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats);
plx_status composite_mem_defragment(void *comm, int32_t kind, uint64_t *released);
plx_status composite_mem_trim(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released);
plx_status composite_mem_pressure(void *comm, int32_t kind, plx_pressure *level);
plx_status composite_queue_create(void *comm, const plx_queue_config *config, void **queue);
plx_status composite_queue_enqueue(void *queue, const void *msg, uint64_t bytes, int32_t timeout_ms);
plx_status composite_queue_dequeue(void *queue, void *buf, uint64_t capacity, uint64_t *bytes, int32_t timeout_ms);
plx_status composite_queue_destroy(void *queue);

// Calls a member's slot with its lock when it is single-threaded.
#define PLX_MEMBER_CALL(member, slot, ...) \
  (plexus::loader::CallGuard((member).lib), (member).lib->vtable->slot(__VA_ARGS__))
#define PLX_MEMBER_HAS(member, slot) PLX_VTABLE_HAS((member).lib->vtable, slot)

// Routing (composite_route.cpp).
plx_status composite_collective(void *comm, const plx_coll_desc *desc);
// Resolves the table's rules to members; PLX_ERR_INVALID_ARGUMENT for a
// label that is no member.
plx_status resolve_routes(CompositeComm *c, const std::vector<TuneRule> &rules, const std::string &source);
void add_member_order(CompositeComm *c);
std::string routes_report(const CompositeComm &c, plx_format format);

// The table: PLEXUS_TUNE, else cached or measured (composite_tuning.cpp).
plx_status settle_table(CompositeComm *c);

}  // namespace plexus::loader

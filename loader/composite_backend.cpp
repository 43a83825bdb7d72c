// The backend half of auto's composite: what it declares (the union of its
// members, or their intersection where every member must take part), its
// topology and its unique id, and the vtable the loader calls it through.
#include <fmt/format.h>

#include "core/status.hpp"
#include "loader/composite.hpp"
#include "loader/composite_id.hpp"
#include "loader/services.hpp"
#include "plexus_config.h"

namespace plexus::loader {
namespace {

constexpr uint64_t coll_bits = (1ull << 16) - 1;
// A communicator can do these only when every member can: each member's
// communicator must split, abort, take thread ranks or span hosts with it.
// NO_CONTRIBUTION too: the flag is set by some ranks only, so it cannot
// steer the route (ranks would meet on different backends); every member
// must take it, or the composite does not offer it.
constexpr uint64_t every_member_bits =
    PLX_CAP_SPLIT | PLX_CAP_ABORT | PLX_CAP_THREAD_RANKS | PLX_CAP_MULTI_NODE | PLX_CAP_NO_CONTRIBUTION;
// Stream semantics are the device members' (host members are synchronous).
constexpr uint64_t every_device_member_bits = PLX_CAP_STREAM_ORDERED | PLX_CAP_GRAPH_CAPTURE;

uint64_t capabilities_of(const std::vector<Member> &members) {
  uint64_t any = 0, every = ~0ull, every_device = ~0ull;
  bool device = false;
  for (const Member &m : members) {
    any |= m.info().capabilities;
    every &= m.info().capabilities;
    if (m.takes(MemClass::device)) every_device &= m.info().capabilities, device = true;
  }
  const uint64_t union_bits = any & ~(every_member_bits | every_device_member_bits);
  return union_bits | (every & every_member_bits) | ((device ? every_device : 0) & every_device_member_bits);
}

void fill_info(CompositeBackend *cb) {
  plx_plugin_info &i = cb->info;
  i.struct_size = sizeof(plx_plugin_info);
  i.abi_major = PLX_PLUGIN_ABI_MAJOR, i.abi_minor = PLX_PLUGIN_ABI_MINOR;
  i.name = "auto";
  i.version_major = PLX_VERSION_MAJOR, i.version_minor = PLX_VERSION_MINOR, i.version_patch = PLX_VERSION_PATCH;
  i.threading = PLX_THREAD_PER_COMM;  // single-threaded members are locked per call (PLX_MEMBER_CALL)
  i.capabilities = capabilities_of(cb->members);
  for (const Member &m : cb->members) {
    i.mem_kind_mask |= m.info().mem_kind_mask, i.alloc_kind_mask |= m.info().alloc_kind_mask;
    i.dtype_mask |= m.info().dtype_mask, i.reduce_op_mask |= m.info().reduce_op_mask;
  }
  i.vtable = &composite_vtable;
  i.build_info = cb->build_info.c_str();
}

std::string build_info_of(const std::vector<Member> &members) {
  std::vector<std::string> parts;
  for (const Member &m : members)
    parts.push_back(fmt::format("{} {}.{}.{}{}", m.label, m.info().version_major, m.info().version_minor,
                                m.info().version_patch,
                                m.info().build_info && *m.info().build_info ? fmt::format(" ({})", m.info().build_info) : ""));
  return fmt::format("auto over {}", fmt::join(parts, ", "));
}

std::string paths_of(const std::vector<Member> &members) {
  std::vector<std::string> paths;
  for (const Member &m : members) paths.push_back(m.lib->path);
  return fmt::format("{}", fmt::join(paths, ":"));
}

// The member whose topology speaks for the composite: a device one first.
const Member *topology_member(const CompositeBackend &cb) {
  const Member *host = nullptr;
  for (const Member &m : cb.members) {
    if (!(m.info().capabilities & PLX_CAP_TOPOLOGY) || !PLX_MEMBER_HAS(m, topology)) continue;
    if (m.takes(MemClass::device)) return &m;
    if (host == nullptr) host = &m;
  }
  return host;
}

}  // namespace

bool Member::takes(MemClass kind) const {
  const uint32_t mask = info().mem_kind_mask;
  if (kind == MemClass::device) return mask & PLX_BIT(PLX_MEM_DEVICE);
  if (kind == MemClass::host) return mask & PLX_BIT(PLX_MEM_HOST);
  return true;
}

plx_status make_composite_backend(std::vector<Member> members, TuneSpec tune, const AutoTopology &topology,
                                  const AutoHosts &hosts, plx_backend **out) {
  auto cb = std::make_unique<CompositeBackend>();
  cb->members = std::move(members);
  cb->tune = std::move(tune);
  cb->topology = topology, cb->hosts = hosts;
  cb->build_info = build_info_of(cb->members);
  fill_info(cb.get());
  auto b = std::make_unique<plx_backend>();
  b->own_lib.reset(new PluginLib{paths_of(cb->members), &cb->info, &composite_vtable, PLX_PLUGIN_ABI_MAJOR,
                                 PLX_PLUGIN_ABI_MINOR, {}});
  b->lib = b->own_lib.get();
  b->state = cb.release();
  *out = b.release();
  return PLX_OK;
}

bool is_composite(const plx_backend *backend) { return backend->own_lib != nullptr; }

const CompositeBackend &composite_of(const plx_backend *backend) {
  return *static_cast<const CompositeBackend *>(backend->state);
}

plx_status composite_finalize(void *backend) {
  std::unique_ptr<CompositeBackend> cb(static_cast<CompositeBackend *>(backend));
  plx_status first = PLX_OK;
  for (const Member &m : cb->members) {
    const plx_status s = PLX_MEMBER_CALL(m, finalize, m.backend);
    if (first == PLX_OK) first = s;
  }
  return first;
}

plx_status composite_topology(void *backend, plx_topology_info *info, char *json, size_t capacity, size_t *needed) {
  const Member *m = topology_member(*static_cast<CompositeBackend *>(backend));
  if (m == nullptr) return core::fail(PLX_ERR_UNSUPPORTED, "auto: none of its backends probes a topology");
  return PLX_MEMBER_CALL(*m, topology, m->backend, info, json, capacity, needed);
}

plx_status composite_unique_id(void *backend, uint8_t *id_bytes) {
  const CompositeBackend &cb = *static_cast<CompositeBackend *>(backend);
  std::vector<CompositeIdMember> ids(cb.members.size());
  for (size_t i = 0; i < cb.members.size(); ++i) {
    const Member &m = cb.members[i];
    ids[i].label = m.label;
    if (plx_status s = PLX_MEMBER_CALL(m, get_unique_id, m.backend, ids[i].payload.data())) return s;
  }
  plx_unique_id id{};
  if (plx_status s = pack_composite_id(ids, &id)) return s;
  std::memcpy(id_bytes, id.bytes, sizeof(id.bytes));
  return PLX_OK;
}

namespace {

// Never called: plx_backend_open makes a composite from backends it has
// initialised already (auto_open.cpp).
plx_status composite_init(const plx_host_info *, void **) {
  return core::fail(PLX_ERR_INTERNAL, "auto: the composite is not a plugin to initialise");
}

}  // namespace

const plx_plugin_vtable composite_vtable = {
    sizeof(plx_plugin_vtable), PLX_PLUGIN_ABI_MAJOR, PLX_PLUGIN_ABI_MINOR,
    composite_init, composite_finalize, composite_topology, composite_unique_id,
    composite_comm_init, composite_comm_split, composite_comm_destroy, composite_comm_abort,
    composite_comm_async_status, composite_comm_query, composite_comm_stats,
    composite_collective, composite_group_start, composite_group_end,
    composite_mem_alloc, composite_mem_free, composite_mem_register, composite_mem_deregister,
    composite_mem_stats, composite_mem_defragment, composite_mem_trim, composite_mem_pressure,
    composite_queue_create, composite_queue_enqueue, composite_queue_dequeue, composite_queue_destroy};

}  // namespace plexus::loader

// The communicator half of auto's composite: a communicator of every member,
// made, split, aborted and destroyed together, in member order on every
// rank, so the members' own rendezvous and collectives meet.
#include <fmt/format.h>

#include "core/status.hpp"
#include "loader/composite.hpp"
#include "loader/composite_id.hpp"

namespace plexus::loader {
namespace {

CompositeComm &comm_of(void *comm) { return *static_cast<CompositeComm *>(comm); }

std::vector<std::string> labels_of(const std::vector<Member> &members) {
  std::vector<std::string> labels;
  for (const Member &m : members) labels.push_back(m.label);
  return labels;
}

plx_status check_labels(const CompositeBackend &cb, const std::vector<CompositeIdMember> &ids) {
  std::vector<std::string> theirs;
  for (const CompositeIdMember &m : ids) theirs.push_back(m.label);
  const std::vector<std::string> ours = labels_of(cb.members);
  if (theirs == ours) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_comm_init: id was made by auto over [{}]; this rank's "
                    "auto has [{}]: every rank must open the same backends (same plugins, "
                    "PLEXUS_BACKEND and PLEXUS_TUNE)", fmt::join(theirs, ", "), fmt::join(ours, ", "));
}

// Destroys the member communicators made so far (after a failure).
void destroy_members(CompositeComm *c) {
  for (size_t i = 0; i < c->comms.size(); ++i)
    if (c->comms[i]) (void)PLX_MEMBER_CALL(c->backend->members[i], comm_destroy, c->comms[i]);
  c->comms.assign(c->comms.size(), nullptr);
}

// The member's status, its message prefixed with its label.
plx_status member_failed(const Member &m, plx_status s) {
  return core::fail(s, "auto: {}: {}", m.label, plx_last_error());
}

std::unique_ptr<CompositeComm> new_comm(CompositeBackend *cb) {
  auto c = std::make_unique<CompositeComm>();
  c->backend = cb;
  c->comms.assign(cb->members.size(), nullptr);
  for (auto &last : c->last_member) last.store(-1);
  for (const Member &m : cb->members) c->has_host |= m.takes(MemClass::host), c->has_device |= m.takes(MemClass::device);
  c->last_kind = c->has_device ? MemClass::device : MemClass::host;
  return c;
}

// Rank, size and device from the members (the device of the first device one).
plx_status query_members(CompositeComm *c) {
  for (size_t i = 0; i < c->comms.size(); ++i) {
    const Member &m = c->backend->members[i];
    int32_t rank = 0, size = 0, device = -1;
    if (plx_status s = PLX_MEMBER_CALL(m, comm_query, c->comms[i], &rank, &size, &device)) return member_failed(m, s);
    if (i == 0) c->rank = rank, c->size = size;
    if (c->device < 0 && device >= 0) c->device = device;
  }
  return PLX_OK;
}

plx_status init_members(CompositeComm *c, const std::vector<CompositeIdMember> &ids, int32_t nranks,
                        int32_t rank, const plx_comm_config *config) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const Member &m = c->backend->members[i];
    if (plx_status s = PLX_MEMBER_CALL(m, comm_init, m.backend, ids[i].payload.data(), nranks, rank, config, &c->comms[i]))
      return member_failed(m, s);
  }
  return query_members(c);
}

plx_status split_members(CompositeComm &parent, int32_t color, int32_t key, const plx_comm_config *config,
                         CompositeComm *child) {
  for (size_t i = 0; i < parent.comms.size(); ++i) {
    const Member &m = parent.backend->members[i];
    if (!PLX_MEMBER_HAS(m, comm_split))
      return core::fail(PLX_ERR_UNSUPPORTED, "plx_comm_split: auto's backend {} cannot split", m.label);
    if (plx_status s = PLX_MEMBER_CALL(m, comm_split, parent.comms[i], color, key, config, &child->comms[i]))
      return member_failed(m, s);
  }
  return PLX_OK;
}

// The child routes as its parent does: same members, same table.
void inherit_routes(const CompositeComm &parent, CompositeComm *child) {
  child->routes = parent.routes;
  child->counters = std::make_unique<RouteCounter[]>(child->routes.size());
  child->table_source = parent.table_source + " (inherited from the parent communicator)";
}

}  // namespace

plx_status composite_comm_init(void *backend, const uint8_t *id_bytes, int32_t nranks, int32_t rank,
                               const plx_comm_config *config, void **comm) {
  auto *cb = static_cast<CompositeBackend *>(backend);
  plx_unique_id id;
  std::memcpy(id.bytes, id_bytes, sizeof(id.bytes));
  std::vector<CompositeIdMember> ids;
  if (plx_status s = unpack_composite_id("plx_comm_init", id, &ids)) return s;
  if (plx_status s = check_labels(*cb, ids)) return s;
  std::unique_ptr<CompositeComm> c = new_comm(cb);
  plx_status s = init_members(c.get(), ids, nranks, rank, config);
  if (s == PLX_OK) s = settle_table(c.get());
  if (s != PLX_OK) {
    const std::string message = plx_last_error();
    destroy_members(c.get());
    return core::fail_message(s, message);
  }
  *comm = c.release();
  return PLX_OK;
}

plx_status composite_comm_split(void *comm, int32_t color, int32_t key, const plx_comm_config *config, void **out) {
  CompositeComm &parent = comm_of(comm);
  std::unique_ptr<CompositeComm> child = new_comm(parent.backend);
  plx_status s = split_members(parent, color, key, config, child.get());
  size_t made = 0;
  for (void *m : child->comms) made += m != nullptr;
  if (s == PLX_OK && made != 0 && made != child->comms.size())
    s = core::fail(PLX_ERR_INTERNAL, "plx_comm_split: auto's backends disagree on this rank's color");
  if (s == PLX_OK && made != 0) s = query_members(child.get());
  if (s != PLX_OK || made == 0) {
    const std::string message = plx_last_error();
    destroy_members(child.get());
    *out = nullptr;
    return s == PLX_OK ? PLX_OK : core::fail_message(s, message);
  }
  inherit_routes(parent, child.get());
  *out = child.release();
  return PLX_OK;
}

plx_status composite_comm_destroy(void *comm) {
  std::unique_ptr<CompositeComm> c(static_cast<CompositeComm *>(comm));
  plx_status first = PLX_OK;
  for (size_t i = 0; i < c->comms.size(); ++i) {
    const plx_status s = PLX_MEMBER_CALL(c->backend->members[i], comm_destroy, c->comms[i]);
    if (first == PLX_OK && s != PLX_OK) first = member_failed(c->backend->members[i], s);
  }
  return first;
}

// Every member, so a rank waiting in any of them wakes up; no lock, as
// abort must get through while another thread is inside a call.
plx_status composite_comm_abort(void *comm) {
  CompositeComm &c = comm_of(comm);
  plx_status first = PLX_OK;
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    const plx_status s = PLX_MEMBER_HAS(m, comm_abort) ? m.lib->vtable->comm_abort(c.comms[i]) : PLX_ERR_UNSUPPORTED;
    if (first == PLX_OK && s != PLX_OK) first = s;
  }
  return first == PLX_OK ? PLX_OK : core::fail(first, "auto: a backend could not abort every rank");
}

// The first failure of any member, else pending work anywhere, else idle.
plx_status composite_comm_async_status(void *comm, plx_status *status) {
  CompositeComm &c = comm_of(comm);
  plx_status combined = PLX_OK;
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    plx_status state = PLX_OK;
    if (!PLX_MEMBER_HAS(m, comm_async_status)) continue;
    if (plx_status s = PLX_MEMBER_CALL(m, comm_async_status, c.comms[i], &state)) return s;
    if (state < 0) return *status = state, PLX_OK;
    if (state == PLX_IN_PROGRESS) combined = PLX_IN_PROGRESS;
  }
  *status = combined;
  return PLX_OK;
}

plx_status composite_comm_query(void *comm, int32_t *rank, int32_t *size, int32_t *device) {
  const CompositeComm &c = comm_of(comm);
  *rank = c.rank, *size = c.size, *device = c.device;
  return PLX_OK;
}

// Algorithm counts of every member added up; the last algorithm is that of
// the member that ran the kind last.
plx_status composite_comm_stats(void *comm, int32_t coll, plx_op_stats *stats) {
  CompositeComm &c = comm_of(comm);
  const int32_t last = c.last_member[coll].load();
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    plx_op_stats one{};
    one.struct_size = sizeof(one);
    if (!PLX_MEMBER_HAS(m, comm_stats) || PLX_MEMBER_CALL(m, comm_stats, c.comms[i], coll, &one) != PLX_OK) continue;
    for (int a = 0; a < PLX_OP_STATS_ALGO_SLOTS; ++a) stats->algorithm_calls[a] += one.algorithm_calls[a];
    if (static_cast<int32_t>(i) == last) stats->last_algorithm = one.last_algorithm;
  }
  return PLX_OK;
}

// A group opens on every member that groups, so a call inside it may go to
// any of them; each rank closes them in member order, so they meet.
plx_status composite_group_start(void *comm) {
  CompositeComm &c = comm_of(comm);
  if (c.in_group) return core::fail(PLX_ERR_INVALID_USAGE, "plx_group_start: a group is open already; close it first");
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    if (!(m.info().capabilities & PLX_CAP_GROUP) || !PLX_MEMBER_HAS(m, group_start)) continue;
    if (plx_status s = PLX_MEMBER_CALL(m, group_start, c.comms[i])) return member_failed(m, s);
  }
  c.in_group = true;
  return PLX_OK;
}

plx_status composite_group_end(void *comm) {
  CompositeComm &c = comm_of(comm);
  if (!c.in_group) return core::fail(PLX_ERR_INVALID_USAGE, "plx_group_end: no group is open (plx_group_start first)");
  c.in_group = false;
  plx_status first = PLX_OK;
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    if (!(m.info().capabilities & PLX_CAP_GROUP) || !PLX_MEMBER_HAS(m, group_end)) continue;
    const plx_status s = PLX_MEMBER_CALL(m, group_end, c.comms[i]);
    if (first == PLX_OK && s != PLX_OK) first = member_failed(m, s);
  }
  return first;
}

}  // namespace plexus::loader

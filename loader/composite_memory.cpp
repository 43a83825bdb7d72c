// Memory and queues of auto's composite. A pool call goes to the first
// member with a pool of that kind, and the composite remembers which member
// gave each block, so plx_mem_free returns it there; a registration goes to
// every member that registers, since any of them may get the buffer; a
// queue lives on the first member with queues.
#include <fmt/format.h>

#include "core/status.hpp"
#include "loader/composite.hpp"

namespace plexus::loader {
namespace {

CompositeComm &comm_of(void *comm) { return *static_cast<CompositeComm *>(comm); }

struct CompositeQueue {
  const Member *member;
  void *state;
};

// The member with a pool of `kind`, or nullptr.
const Member *pool_member(const CompositeComm &c, int32_t kind, size_t *index) {
  for (size_t i = 0; i < c.backend->members.size(); ++i) {
    const Member &m = c.backend->members[i];
    if (m.info().alloc_kind_mask & PLX_BIT(kind)) return *index = i, &m;
  }
  return nullptr;
}

plx_status no_pool(const char *fn, int32_t kind) {
  return core::fail(PLX_ERR_UNSUPPORTED, "{}: none of auto's backends has a pool of memory kind {}", fn, kind);
}

plx_status missing(const Member &m, const char *fn) {
  return core::fail(PLX_ERR_UNSUPPORTED, "{}: auto's backend {} does not implement it", fn, m.label);
}

// Runs `call(member, member comm)` on the pool member of `kind`.
template <typename Call>
plx_status on_pool(void *comm, const char *fn, int32_t kind, const Call &call) {
  CompositeComm &c = comm_of(comm);
  size_t i = 0;
  const Member *m = pool_member(c, kind, &i);
  return m ? call(*m, c.comms[i]) : no_pool(fn, kind);
}

void deregister_all(const CompositeComm &c, const std::vector<void *> &handles) {
  for (size_t i = 0; i < handles.size(); ++i)
    if (handles[i]) (void)PLX_MEMBER_CALL(c.backend->members[i], mem_deregister, c.comms[i], handles[i]);
}

}  // namespace

plx_status composite_mem_alloc(void *comm, const plx_mem_alloc_params *params, void **ptr) {
  CompositeComm &c = comm_of(comm);
  size_t i = 0;
  const Member *m = pool_member(c, params->kind, &i);
  if (m == nullptr) return no_pool("plx_mem_alloc", params->kind);
  if (!PLX_MEMBER_HAS(*m, mem_alloc)) return missing(*m, "plx_mem_alloc");
  void *block = nullptr;
  if (plx_status s = PLX_MEMBER_CALL(*m, mem_alloc, c.comms[i], params, &block)) return s;
  std::lock_guard lock(c.blocks_mutex);
  c.blocks[block] = i;
  *ptr = block;
  return PLX_OK;
}

plx_status composite_mem_free(void *comm, void *ptr) {
  CompositeComm &c = comm_of(comm);
  std::unique_lock lock(c.blocks_mutex);
  const auto it = c.blocks.find(ptr);
  if (it == c.blocks.end())
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_mem_free: {} is not the start of a live block of this "
                      "communicator (freed already, inside a block, or never given out): nothing was freed", ptr);
  const size_t i = it->second;
  const plx_status s = PLX_MEMBER_CALL(c.backend->members[i], mem_free, c.comms[i], ptr);
  if (s == PLX_OK) c.blocks.erase(it);
  return s;
}

plx_status composite_mem_register(void *comm, void *ptr, uint64_t bytes, void **handle) {
  CompositeComm &c = comm_of(comm);
  auto handles = std::make_unique<std::vector<void *>>(c.comms.size(), nullptr);
  size_t registered = 0;
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    if (!(m.info().capabilities & PLX_CAP_MEM_REGISTER) || !PLX_MEMBER_HAS(m, mem_register)) continue;
    if (plx_status s = PLX_MEMBER_CALL(m, mem_register, c.comms[i], ptr, bytes, &(*handles)[i])) {
      deregister_all(c, *handles);
      return s;
    }
    ++registered;
  }
  if (registered == 0) return core::fail(PLX_ERR_UNSUPPORTED, "plx_mem_register: none of auto's backends registers memory");
  std::lock_guard lock(c.blocks_mutex);
  *handle = handles.get();
  c.registrations.emplace(handles.get(), std::move(handles));
  return PLX_OK;
}

plx_status composite_mem_deregister(void *comm, void *handle) {
  CompositeComm &c = comm_of(comm);
  std::unique_ptr<std::vector<void *>> handles;
  {
    std::lock_guard lock(c.blocks_mutex);
    const auto it = c.registrations.find(handle);
    if (it == c.registrations.end())
      return core::fail(PLX_ERR_INVALID_ARGUMENT, "plx_mem_deregister: {} is not a live registration of this "
                        "communicator", handle);
    handles = std::move(it->second);
    c.registrations.erase(it);
  }
  deregister_all(c, *handles);
  return PLX_OK;
}

plx_status composite_mem_stats(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats) {
  return on_pool(comm, "plx_mem_stats_get", kind, [&](const Member &m, void *mc) {
    return PLX_MEMBER_HAS(m, mem_stats) ? PLX_MEMBER_CALL(m, mem_stats, mc, kind, tag, stats) : missing(m, "plx_mem_stats_get");
  });
}

plx_status composite_mem_defragment(void *comm, int32_t kind, uint64_t *released) {
  return on_pool(comm, "plx_mem_defragment", kind, [&](const Member &m, void *mc) {
    return PLX_MEMBER_HAS(m, mem_defragment) ? PLX_MEMBER_CALL(m, mem_defragment, mc, kind, released)
                                             : missing(m, "plx_mem_defragment");
  });
}

plx_status composite_mem_trim(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released) {
  return on_pool(comm, "plx_mem_trim", kind, [&](const Member &m, void *mc) {
    return PLX_MEMBER_HAS(m, mem_trim) ? PLX_MEMBER_CALL(m, mem_trim, mc, kind, keep_bytes, released)
                                       : missing(m, "plx_mem_trim");
  });
}

plx_status composite_mem_pressure(void *comm, int32_t kind, plx_pressure *level) {
  return on_pool(comm, "plx_mem_pressure", kind, [&](const Member &m, void *mc) {
    return PLX_MEMBER_HAS(m, mem_pressure) ? PLX_MEMBER_CALL(m, mem_pressure, mc, kind, level)
                                           : missing(m, "plx_mem_pressure");
  });
}

plx_status composite_queue_create(void *comm, const plx_queue_config *config, void **queue) {
  CompositeComm &c = comm_of(comm);
  for (size_t i = 0; i < c.comms.size(); ++i) {
    const Member &m = c.backend->members[i];
    if (!(m.info().capabilities & PLX_CAP_QUEUE) || !PLX_MEMBER_HAS(m, queue_create)) continue;
    void *state = nullptr;
    if (plx_status s = PLX_MEMBER_CALL(m, queue_create, c.comms[i], config, &state)) return s;
    *queue = new CompositeQueue{&m, state};
    return PLX_OK;
  }
  return core::fail(PLX_ERR_UNSUPPORTED, "plx_queue_create: none of auto's backends has queues");
}

plx_status composite_queue_enqueue(void *queue, const void *msg, uint64_t bytes, int32_t timeout_ms) {
  const auto &q = *static_cast<CompositeQueue *>(queue);
  return PLX_MEMBER_CALL(*q.member, queue_enqueue, q.state, msg, bytes, timeout_ms);
}

plx_status composite_queue_dequeue(void *queue, void *buf, uint64_t capacity, uint64_t *bytes, int32_t timeout_ms) {
  const auto &q = *static_cast<CompositeQueue *>(queue);
  return PLX_MEMBER_CALL(*q.member, queue_dequeue, q.state, buf, capacity, bytes, timeout_ms);
}

plx_status composite_queue_destroy(void *queue) {
  std::unique_ptr<CompositeQueue> q(static_cast<CompositeQueue *>(queue));
  return PLX_MEMBER_CALL(*q->member, queue_destroy, q->state);
}

}  // namespace plexus::loader

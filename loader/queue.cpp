// The queue family of plexus.h (host-memory backends).
#include <memory>

#include "loader/errors.hpp"
#include "loader/objects.hpp"
#include "loader/retired.hpp"

using namespace plexus;
using namespace plexus::loader;

namespace {

constexpr uint32_t queue_config_v1_size = 24;
static_assert(sizeof(plx_queue_config) == queue_config_v1_size);

plx_status check_queue(const char *fn, plx_queue *q) {
  if (q == nullptr || q->magic != queue_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: queue is NULL or not a live queue", fn);
  return check_comm(fn, q->comm);
}

plx_status check_timeout(const char *fn, int32_t timeout_ms) {
  if (timeout_ms >= -1) return PLX_OK;
  return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: timeout_ms {} must be -1, 0 or positive", fn, timeout_ms);
}

plx_status check_queue_config(const char *fn, plx_comm *comm, const plx_queue_config *cfg) {
  if (cfg->struct_size < queue_config_v1_size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->struct_size is {}, smaller than "
                      "sizeof(plx_queue_config) v1 ({})", fn, cfg->struct_size, queue_config_v1_size);
  if (cfg->writer_rank < 0 || cfg->writer_rank >= comm->size)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->writer_rank {} is out of range for a "
                      "communicator of {} ranks", fn, cfg->writer_rank, comm->size);
  if (cfg->flags != 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: config->flags must be 0", fn);
  return PLX_OK;
}

}  // namespace

extern "C" {

plx_status plx_queue_create(plx_comm_h comm, const plx_queue_config *config, plx_queue_h *queue) {
  const char *fn = "plx_queue_create";
  if (plx_status s = check_comm(fn, comm)) return s;
  if (plx_status s = check_not_null(fn, "config", config)) return s;
  if (plx_status s = check_not_null(fn, "queue", queue)) return s;
  if (plx_status s = check_queue_config(fn, comm, config)) return s;
  plx_queue_config full = *config;
  full.struct_size = sizeof(full);
  void *state = nullptr;
  const plx_status s = note_result(comm, PLX_CALL_SLOT(fn, comm->backend, queue_create, comm->state, &full, &state));
  if (s != PLX_OK) return s == PLX_ERR_INVALID_ARGUMENT ? name_failure(fn, "config", s) : s;
  auto q = std::make_unique<plx_queue>();
  q->comm = comm, q->state = state;
  comm->live_queues.fetch_add(1);
  *queue = q.release();
  return PLX_OK;
}

plx_status plx_queue_enqueue(plx_queue_h queue, const void *msg, uint64_t bytes, int32_t timeout_ms) {
  const char *fn = "plx_queue_enqueue";
  if (plx_status s = check_queue(fn, queue)) return s;
  if (msg == nullptr && bytes > 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: msg is NULL", fn);
  if (plx_status s = queue->comm->blocks.check(fn, "msg", msg, bytes)) return s;  // PLX-L-33
  if (plx_status s = check_timeout(fn, timeout_ms)) return s;
  return note_queue_result(queue->comm, PLX_CALL_SLOT(fn, queue->comm->backend, queue_enqueue, queue->state,
                                                      msg, bytes, timeout_ms));
}

plx_status plx_queue_dequeue(plx_queue_h queue, void *buf, uint64_t capacity, uint64_t *bytes,
                             int32_t timeout_ms) {
  const char *fn = "plx_queue_dequeue";
  if (plx_status s = check_queue(fn, queue)) return s;
  if (buf == nullptr && capacity > 0) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: buf is NULL", fn);
  if (bytes == nullptr) return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: bytes is NULL", fn);
  if (plx_status s = queue->comm->blocks.check(fn, "buf", buf, capacity)) return s;  // PLX-L-33
  if (plx_status s = check_timeout(fn, timeout_ms)) return s;
  return note_queue_result(queue->comm, PLX_CALL_SLOT(fn, queue->comm->backend, queue_dequeue, queue->state,
                                                      buf, capacity, bytes, timeout_ms));
}

plx_status plx_queue_destroy(plx_queue_h queue) {
  const char *fn = "plx_queue_destroy";
  if (queue == nullptr || queue->magic != queue_magic)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{}: queue is NULL or not a live queue", fn);
  const plx_status s = PLX_CALL_SLOT(fn, queue->comm->backend, queue_destroy, queue->state);
  queue->comm->live_queues.fetch_sub(1);
  retire(queue);
  return s;
}

}  // extern "C"

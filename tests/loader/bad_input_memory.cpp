// Rows of the bad-input sweep (bad_input.hpp): memory pools and queues.
#include "bad_input.hpp"

namespace plx_test {
namespace {

constexpr plx_status kInvalid = PLX_ERR_INVALID_ARGUMENT;

plx_status alloc_with(World &w, plx_mem_alloc_params p) {
  void *ptr = nullptr;
  const plx_status s = plx_mem_alloc(w.comm, &p, &ptr);
  if (ptr) plx_mem_free(w.comm, ptr);
  return s;
}

plx_mem_alloc_params params(int32_t kind, uint64_t bytes, uint64_t alignment = 0, uint32_t tag = 0) {
  return {sizeof(plx_mem_alloc_params), kind, bytes, alignment, tag, 0};
}

plx_status stats_with(World &w, plx_mem_kind kind, uint32_t tag, uint32_t size) {
  plx_mem_stats s{};
  s.struct_size = size;
  return plx_mem_stats_get(w.comm, kind, tag, &s);
}

plx_status queue_with(World &w, plx_queue_config c) {
  plx_queue_h q = nullptr;
  const plx_status s = plx_queue_create(w.comm, &c, &q);
  if (q) plx_queue_destroy(q);
  return s;
}

plx_queue_config queue_config(uint32_t size, int32_t writer, uint64_t slot_bytes, uint32_t flags) {
  return {size, writer, slot_bytes, 0, flags};
}

// A block freed twice: the second free must find no live block.
plx_status double_free(World &w) {
  plx_mem_alloc_params p = params(PLX_MEM_SHARED_HOST, 64);
  void *ptr = nullptr;
  if (plx_mem_alloc(w.comm, &p, &ptr) != PLX_OK || plx_mem_free(w.comm, ptr) != PLX_OK) return PLX_ERR_INTERNAL;
  return plx_mem_free(w.comm, ptr);
}

void *ptr_out = nullptr;
uint64_t released = 0, got = 0;
plx_pressure level = 0;
plx_mem_reg_h reg = nullptr;
const plx_mem_alloc_params good = params(PLX_MEM_SHARED_HOST, 256);
const plx_queue_config good_queue = PLX_QUEUE_CONFIG_INIT;
char message[64];

std::vector<Row> memory_rows() {
  return {
      {"plx_mem_alloc", "NULL handle", [](World &) { return plx_mem_alloc(nullptr, &good, &ptr_out); }, kInvalid,
       {"plx_mem_alloc", "comm is NULL"}},
      {"plx_mem_alloc", "destroyed handle", [](World &w) { return plx_mem_alloc(w.destroyed_comm, &good, &ptr_out); },
       kInvalid, {"plx_mem_alloc", "comm", "not a live"}},
      {"plx_mem_alloc", "NULL pointer", [](World &w) { return plx_mem_alloc(w.comm, nullptr, &ptr_out); }, kInvalid,
       {"plx_mem_alloc", "params is NULL"}},
      {"plx_mem_alloc", "NULL out-pointer", [](World &w) { return plx_mem_alloc(w.comm, &good, nullptr); }, kInvalid,
       {"plx_mem_alloc", "ptr is NULL"}},
      {"plx_mem_alloc", "struct_size",
       [](World &w) { plx_mem_alloc_params p = good; p.struct_size = 12; return alloc_with(w, p); }, kInvalid,
       {"plx_mem_alloc", "params->struct_size is 12"}},
      {"plx_mem_alloc", "value out of range", [](World &w) { return alloc_with(w, params(PLX_MEM_SHARED_HOST, 0)); },
       kInvalid, {"plx_mem_alloc", "params->bytes is 0"}},
      {"plx_mem_alloc", "misaligned", [](World &w) { return alloc_with(w, params(PLX_MEM_SHARED_HOST, 64, 384)); },
       kInvalid, {"plx_mem_alloc", "params->alignment 384"}},
      {"plx_mem_alloc", "value out of range",
       [](World &w) { return alloc_with(w, params(PLX_MEM_SHARED_HOST, 64, 0, 64)); }, kInvalid,
       {"plx_mem_alloc", "params->tag 64"}},
      {"plx_mem_alloc", "flags", [](World &w) { plx_mem_alloc_params p = good; p.flags = 1; return alloc_with(w, p); },
       kInvalid, {"plx_mem_alloc", "params->flags"}},
      {"plx_mem_alloc", "bad enum", [](World &w) { return alloc_with(w, params(99, 64)); }, kInvalid,
       {"plx_mem_alloc", "kind 99"}},
      {"plx_mem_alloc", "bad enum", [](World &w) { return alloc_with(w, params(PLX_MEM_HOST, 64)); }, kInvalid,
       {"plx_mem_alloc", "kind 0", "not a pool kind"}},
      {"plx_mem_alloc", "unsupported", [](World &w) { return alloc_with(w, params(PLX_MEM_DEVICE, 64)); },
       PLX_ERR_UNSUPPORTED, {"plx_mem_alloc", "shm-native", "kind 3"}},
      {"plx_mem_alloc", "count overflow",
       [](World &w) { return alloc_with(w, params(PLX_MEM_SHARED_HOST, 1ull << 60)); }, PLX_ERR_OUT_OF_MEMORY,
       {"plx_mem_alloc", "params->bytes"}},
      {"plx_mem_free", "NULL handle", [](World &w) { return plx_mem_free(nullptr, w.block); }, kInvalid,
       {"plx_mem_free", "comm"}},
      {"plx_mem_free", "destroyed handle", [](World &w) { return plx_mem_free(w.destroyed_comm, w.block); }, kInvalid,
       {"plx_mem_free", "comm", "not a live"}},
      {"plx_mem_free", "not a block", [](World &w) { return plx_mem_free(w.comm, w.send); }, kInvalid,
       {"plx_mem_free", "ptr", "not a live block"}},
      {"plx_mem_free", "not a block", [](World &w) { return plx_mem_free(w.comm, static_cast<char *>(w.block) + 8); },
       kInvalid, {"plx_mem_free", "ptr", "not a live block"}},
      {"plx_mem_free", "freed block", double_free, kInvalid, {"plx_mem_free", "ptr", "not a live block"}},
      {"plx_mem_register", "NULL handle", [](World &w) { return plx_mem_register(nullptr, w.send, 64, &reg); },
       kInvalid, {"plx_mem_register", "comm is NULL"}},
      {"plx_mem_register", "NULL pointer", [](World &w) { return plx_mem_register(w.comm, nullptr, 64, &reg); },
       kInvalid, {"plx_mem_register", "ptr is NULL"}},
      {"plx_mem_register", "NULL out-pointer", [](World &w) { return plx_mem_register(w.comm, w.send, 64, nullptr); },
       kInvalid, {"plx_mem_register", "handle is NULL"}},
      {"plx_mem_register", "value out of range", [](World &w) { return plx_mem_register(w.comm, w.send, 0, &reg); },
       kInvalid, {"plx_mem_register", "bytes is 0"}},
      {"plx_mem_register", "unsupported", [](World &w) { return plx_mem_register(w.comm, w.send, 64, &reg); },
       PLX_ERR_UNSUPPORTED, {"plx_mem_register", "shm-native", "mem_register"}},
      {"plx_mem_deregister", "NULL handle",
       [](World &w) { return plx_mem_deregister(nullptr, reinterpret_cast<plx_mem_reg_h>(w.junk)); }, kInvalid,
       {"plx_mem_deregister", "comm"}},
      {"plx_mem_deregister", "NULL pointer", [](World &w) { return plx_mem_deregister(w.comm, nullptr); }, kInvalid,
       {"plx_mem_deregister", "handle is NULL"}},
      {"plx_mem_stats_get", "NULL handle",
       [](World &) { return plx_mem_stats_get(nullptr, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, nullptr); }, kInvalid,
       {"plx_mem_stats_get", "comm is NULL"}},
      {"plx_mem_stats_get", "NULL out-pointer",
       [](World &w) { return plx_mem_stats_get(w.comm, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, nullptr); }, kInvalid,
       {"plx_mem_stats_get", "stats is NULL"}},
      {"plx_mem_stats_get", "bad enum",
       [](World &w) { return stats_with(w, -1, PLX_MEM_TAG_ALL, sizeof(plx_mem_stats)); }, kInvalid,
       {"plx_mem_stats_get", "kind -1"}},
      {"plx_mem_stats_get", "value out of range",
       [](World &w) { return stats_with(w, PLX_MEM_SHARED_HOST, 64, sizeof(plx_mem_stats)); }, kInvalid,
       {"plx_mem_stats_get", "tag 64"}},
      {"plx_mem_stats_get", "struct_size", [](World &w) { return stats_with(w, PLX_MEM_SHARED_HOST, 0, 8); }, kInvalid,
       {"plx_mem_stats_get", "stats->struct_size is 8"}},
      {"plx_mem_defragment", "NULL handle",
       [](World &) { return plx_mem_defragment(nullptr, PLX_MEM_SHARED_HOST, &released); }, kInvalid,
       {"plx_mem_defragment", "comm is NULL"}},
      {"plx_mem_defragment", "bad enum", [](World &w) { return plx_mem_defragment(w.comm, 7, &released); }, kInvalid,
       {"plx_mem_defragment", "kind 7"}},
      {"plx_mem_defragment", "unsupported",
       [](World &w) { return plx_mem_defragment(w.comm, PLX_MEM_PINNED_HOST, &released); }, PLX_ERR_UNSUPPORTED,
       {"plx_mem_defragment", "kind 2"}},
      {"plx_mem_trim", "destroyed handle",
       [](World &w) { return plx_mem_trim(w.destroyed_comm, PLX_MEM_SHARED_HOST, 0, &released); }, kInvalid,
       {"plx_mem_trim", "comm", "not a live"}},
      {"plx_mem_trim", "bad enum", [](World &w) { return plx_mem_trim(w.comm, PLX_MEM_HOST, 0, &released); }, kInvalid,
       {"plx_mem_trim", "kind 0"}},
      {"plx_mem_pressure", "NULL handle",
       [](World &) { return plx_mem_pressure(nullptr, PLX_MEM_SHARED_HOST, &level); }, kInvalid,
       {"plx_mem_pressure", "comm is NULL"}},
      {"plx_mem_pressure", "bad enum", [](World &w) { return plx_mem_pressure(w.comm, 4, &level); }, kInvalid,
       {"plx_mem_pressure", "kind 4"}},
      {"plx_mem_pressure", "NULL out-pointer",
       [](World &w) { return plx_mem_pressure(w.comm, PLX_MEM_SHARED_HOST, nullptr); }, kInvalid,
       {"plx_mem_pressure", "level is NULL"}},
  };
}

std::vector<Row> queue_rows() {
  return {
      {"plx_queue_create", "NULL handle",
       [](World &) { plx_queue_h q; return plx_queue_create(nullptr, &good_queue, &q); }, kInvalid,
       {"plx_queue_create", "comm is NULL"}},
      {"plx_queue_create", "destroyed handle",
       [](World &w) { plx_queue_h q; return plx_queue_create(w.destroyed_comm, &good_queue, &q); }, kInvalid,
       {"plx_queue_create", "comm", "not a live"}},
      {"plx_queue_create", "NULL pointer",
       [](World &w) { plx_queue_h q; return plx_queue_create(w.comm, nullptr, &q); }, kInvalid,
       {"plx_queue_create", "config is NULL"}},
      {"plx_queue_create", "NULL out-pointer", [](World &w) { return plx_queue_create(w.comm, &good_queue, nullptr); },
       kInvalid, {"plx_queue_create", "queue is NULL"}},
      {"plx_queue_create", "struct_size", [](World &w) { return queue_with(w, queue_config(2, 0, 0, 0)); }, kInvalid,
       {"plx_queue_create", "config->struct_size is 2"}},
      {"plx_queue_create", "rank out of range", [](World &w) { return queue_with(w, queue_config(24, 1, 0, 0)); },
       kInvalid, {"plx_queue_create", "writer_rank 1"}},
      {"plx_queue_create", "rank out of range", [](World &w) { return queue_with(w, queue_config(24, -1, 0, 0)); },
       kInvalid, {"plx_queue_create", "writer_rank -1"}},
      {"plx_queue_create", "flags", [](World &w) { return queue_with(w, queue_config(24, 0, 0, 2)); }, kInvalid,
       {"plx_queue_create", "config->flags"}},
      {"plx_queue_create", "value out of range",
       [](World &w) { return queue_with(w, queue_config(24, 0, 1ull << 31, 0)); }, kInvalid,
       {"plx_queue_create", "config", "slot_bytes"}},
      {"plx_queue_enqueue", "NULL handle", [](World &) { return plx_queue_enqueue(nullptr, message, 4, 0); }, kInvalid,
       {"plx_queue_enqueue", "queue"}},
      {"plx_queue_enqueue", "not a handle",
       [](World &w) { return plx_queue_enqueue(reinterpret_cast<plx_queue_h>(w.junk), message, 4, 0); }, kInvalid,
       {"plx_queue_enqueue", "queue", "not a live"}},
      {"plx_queue_enqueue", "destroyed handle",
       [](World &w) { return plx_queue_enqueue(w.destroyed_queue, message, 4, 0); }, kInvalid,
       {"plx_queue_enqueue", "queue", "not a live"}},
      {"plx_queue_enqueue", "NULL buffer", [](World &w) { return plx_queue_enqueue(w.queue, nullptr, 4, 0); }, kInvalid,
       {"plx_queue_enqueue", "msg is NULL"}},
      {"plx_queue_enqueue", "block too small", [](World &w) { return plx_queue_enqueue(w.queue, w.block, 257, 0); },
       kInvalid, {"plx_queue_enqueue", "msg", "runs 1 bytes past the end of its pool block"}},
      {"plx_queue_dequeue", "block too small",
       [](World &w) { return plx_queue_dequeue(w.queue, static_cast<char *>(w.block) + 200, 100, &got, 0); },
       kInvalid, {"plx_queue_dequeue", "buf", "runs 44 bytes past the end of its pool block"}},
      {"plx_queue_enqueue", "value out of range", [](World &w) { return plx_queue_enqueue(w.queue, message, 4, -2); },
       kInvalid, {"plx_queue_enqueue", "timeout_ms -2"}},
      {"plx_queue_dequeue", "NULL handle", [](World &) { return plx_queue_dequeue(nullptr, message, 4, &got, 0); },
       kInvalid, {"plx_queue_dequeue", "queue"}},
      {"plx_queue_dequeue", "destroyed handle",
       [](World &w) { return plx_queue_dequeue(w.destroyed_queue, message, 4, &got, 0); }, kInvalid,
       {"plx_queue_dequeue", "queue", "not a live"}},
      {"plx_queue_dequeue", "NULL buffer", [](World &w) { return plx_queue_dequeue(w.queue, nullptr, 4, &got, 0); },
       kInvalid, {"plx_queue_dequeue", "buf is NULL"}},
      {"plx_queue_dequeue", "NULL out-pointer",
       [](World &w) { return plx_queue_dequeue(w.queue, message, 4, nullptr, 0); }, kInvalid,
       {"plx_queue_dequeue", "bytes is NULL"}},
      {"plx_queue_dequeue", "value out of range",
       [](World &w) { return plx_queue_dequeue(w.queue, message, 4, &got, -9); }, kInvalid,
       {"plx_queue_dequeue", "timeout_ms -9"}},
      {"plx_queue_dequeue", "wrong state", [](World &w) { return plx_queue_dequeue(w.queue, message, 4, &got, 0); },
       PLX_ERR_INVALID_USAGE, {"plx_queue_dequeue", "writes"}},
      {"plx_queue_destroy", "NULL handle", [](World &) { return plx_queue_destroy(nullptr); }, kInvalid,
       {"plx_queue_destroy", "queue"}},
      {"plx_queue_destroy", "destroyed handle", [](World &w) { return plx_queue_destroy(w.destroyed_queue); }, kInvalid,
       {"plx_queue_destroy", "queue", "not a live"}},
  };
}

}  // namespace

std::vector<Row> memory_and_queue_rows() {
  std::vector<Row> rows = memory_rows();
  for (Row &r : queue_rows()) rows.push_back(std::move(r));
  return rows;
}

}  // namespace plx_test

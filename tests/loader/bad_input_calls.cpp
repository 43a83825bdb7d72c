// Rows of the bad-input sweep (bad_input.hpp): collectives, memory, queues.
// Each collective gets the same classes through one table builder, so a
// collective added later gets all of them by one line.
#include <cstdint>

#include "bad_input.hpp"

namespace plx_test {
namespace {

constexpr plx_status kInvalid = PLX_ERR_INVALID_ARGUMENT;

// One collective with every argument settable; the defaults are valid.
struct Args {
  plx_comm_h comm = nullptr;  // nullptr: the world's communicator
  bool null_comm = false, null_send = false, null_recv = false;
  int64_t send_in_block = -1, recv_in_block = -1;  // >= 0: the buffer is the world's pool block + this many bytes
  uint64_t count = 4;
  plx_dtype dtype = PLX_FLOAT32;
  plx_reduce_op op = PLX_SUM;
  int32_t root = 0;
  const plx_coll_options *opts = nullptr;
};

using Collective = plx_status (*)(World &, const Args &);

plx_comm_h comm_of(World &w, const Args &a) { return a.null_comm ? nullptr : a.comm ? a.comm : w.comm; }
void *in_block(World &w, int64_t offset) { return static_cast<char *>(w.block) + offset; }
const void *send_of(World &w, const Args &a) {
  return a.null_send ? nullptr : a.send_in_block >= 0 ? in_block(w, a.send_in_block) : w.send;
}
void *recv_of(World &w, const Args &a) {
  return a.null_recv ? nullptr : a.recv_in_block >= 0 ? in_block(w, a.recv_in_block) : w.recv;
}

plx_status all_reduce(World &w, const Args &a) {
  return plx_all_reduce(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, a.dtype, a.op, a.opts, nullptr);
}
plx_status reduce(World &w, const Args &a) {
  return plx_reduce(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, a.dtype, a.op, a.root, a.opts, nullptr);
}
plx_status broadcast(World &w, const Args &a) {
  return plx_broadcast(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, a.dtype, a.root, a.opts, nullptr);
}
plx_status all_gather(World &w, const Args &a) {
  return plx_all_gather(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, a.dtype, a.opts, nullptr);
}
plx_status gather(World &w, const Args &a) {
  return plx_gather(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, nullptr, a.dtype, a.root, a.opts, nullptr);
}
plx_status reduce_scatter(World &w, const Args &a) {
  return plx_reduce_scatter(comm_of(w, a), send_of(w, a), recv_of(w, a), a.count, a.dtype, a.op, a.opts, nullptr);
}
plx_status barrier(World &w, const Args &a) { return plx_barrier(comm_of(w, a), a.opts, nullptr); }

plx_coll_options options(uint32_t size, uint32_t flags, int32_t wire, int32_t algorithm, uint64_t reserved) {
  return {size, flags, wire, algorithm, {0, reserved}};
}

const plx_coll_options small_opts = options(4, 0, -1, PLX_ALGO_AUTO, 0);
const plx_coll_options flag_opts = options(sizeof(plx_coll_options), 0x80, -1, PLX_ALGO_AUTO, 0);
const plx_coll_options wire_opts = options(sizeof(plx_coll_options), 0, PLX_INT32, PLX_ALGO_AUTO, 0);
const plx_coll_options algo_opts = options(sizeof(plx_coll_options), 0, -1, 99, 0);
const plx_coll_options reserved_opts = options(sizeof(plx_coll_options), 0, -1, PLX_ALGO_AUTO, 1);

// What every collective gets; `fields` says which arguments it has.
struct Shape {
  const char *name;
  Collective call;
  bool buffers, reduces, rooted;
};

void add(std::vector<Row> *rows, const Shape &c, const char *cls, Args a, std::vector<std::string> words) {
  words.insert(words.begin(), c.name);
  rows->push_back({c.name, cls, [call = c.call, a](World &w) { return call(w, a); }, kInvalid, words});
}

void option_rows(std::vector<Row> *rows, const Shape &c) {
  add(rows, c, "struct_size", {.opts = &small_opts}, {"opts->struct_size is 4"});
  add(rows, c, "flags", {.opts = &flag_opts}, {"opts->flags 0x80"});
  add(rows, c, "bad enum", {.opts = &wire_opts}, {"opts->wire_dtype 2"});
  add(rows, c, "bad enum", {.opts = &algo_opts}, {"opts->algorithm 99"});
  add(rows, c, "reserved field", {.opts = &reserved_opts}, {"opts->reserved"});
}

void buffer_rows(std::vector<Row> *rows, const Shape &c) {
  add(rows, c, "NULL buffer", {.null_send = true}, {"send is NULL"});
  add(rows, c, "NULL buffer", {.null_recv = true}, {"recv is NULL"});
  add(rows, c, "bad enum", {.dtype = 42}, {"dtype 42"});
  add(rows, c, "bad enum", {.dtype = -1}, {"dtype -1"});
  add(rows, c, "count overflow", {.count = UINT64_MAX / 2}, {"count", "overflows"});
  add(rows, c, "count overflow", {.count = (1ull << 62) + 1, .dtype = PLX_FLOAT64}, {"count", "overflows"});
  // The world's block holds 256 bytes, 64 floats (PLX-L-33); on one rank
  // every buffer of these calls holds count elements.
  add(rows, c, "block too small", {.send_in_block = 0, .count = 65},
      {"send", "260 bytes", "runs 4 bytes past the end of its pool block", "256 bytes"});
  add(rows, c, "block too small", {.recv_in_block = 128, .count = 40},
      {"recv", "160 bytes", "runs 32 bytes past the end of its pool block"});
}

std::vector<Row> collective_table(const Shape &c) {
  std::vector<Row> rows;
  add(&rows, c, "NULL handle", {.null_comm = true}, {"comm is NULL"});
  rows.push_back({c.name,
                  "destroyed handle",
                  [call = c.call](World &w) { return call(w, {.comm = w.destroyed_comm}); },
                  kInvalid,
                  {c.name, "comm", "not a live"}});
  rows.push_back({c.name,
                  "not a handle",
                  [call = c.call](World &w) { return call(w, {.comm = reinterpret_cast<plx_comm_h>(w.junk)}); },
                  kInvalid,
                  {c.name, "comm", "not a live"}});
  option_rows(&rows, c);
  if (c.buffers) buffer_rows(&rows, c);
  if (c.reduces) add(&rows, c, "bad enum", {.op = 9}, {"op 9"});
  if (c.reduces) add(&rows, c, "bad enum", {.op = -2}, {"op -2"});
  if (c.rooted) add(&rows, c, "rank out of range", {.root = 1}, {"root 1 is out of range"});
  if (c.rooted) add(&rows, c, "rank out of range", {.root = -1}, {"root -1 is out of range"});
  return rows;
}

// Per-rank counts whose sum wraps past 2^64 (the 1-rank communicator has
// one count; it alone already overflows the byte size).
plx_status gather_counts(World &w) {
  const uint64_t counts[1] = {UINT64_MAX / 2};
  return plx_gather(w.comm, w.send, w.recv, 0, counts, PLX_FLOAT32, 0, nullptr, nullptr);
}

// send and recv exist only on fixture-good: its communicator takes them.
std::vector<Row> point_to_point_rows() {
  return {
      {"plx_send", "NULL buffer",
       [](World &w) { return plx_send(w.fixture_comm, nullptr, 4, PLX_FLOAT32, 0, nullptr, nullptr); }, kInvalid,
       {"plx_send", "buf is NULL"}},
      {"plx_send", "rank out of range",
       [](World &w) { return plx_send(w.fixture_comm, w.send, 4, PLX_FLOAT32, 1, nullptr, nullptr); }, kInvalid,
       {"plx_send", "peer 1"}},
      {"plx_send", "bad enum", [](World &w) { return plx_send(w.fixture_comm, w.send, 4, 10, 0, nullptr, nullptr); },
       kInvalid, {"plx_send", "dtype 10"}},
      {"plx_send", "count overflow",
       [](World &w) { return plx_send(w.fixture_comm, w.send, UINT64_MAX / 4, PLX_INT64, 0, nullptr, nullptr); },
       kInvalid, {"plx_send", "overflows"}},
      {"plx_send", "NULL handle",
       [](World &w) { return plx_send(nullptr, w.send, 4, PLX_FLOAT32, 0, nullptr, nullptr); }, kInvalid,
       {"plx_send", "comm is NULL"}},
      {"plx_send", "unsupported",
       [](World &w) { return plx_send(w.comm, w.send, 4, PLX_FLOAT32, 0, nullptr, nullptr); }, PLX_ERR_UNSUPPORTED,
       {"plx_send", "shm-native", "send"}},
      {"plx_recv", "NULL buffer",
       [](World &w) { return plx_recv(w.fixture_comm, nullptr, 4, PLX_FLOAT32, 0, nullptr, nullptr); }, kInvalid,
       {"plx_recv", "buf is NULL"}},
      {"plx_recv", "rank out of range",
       [](World &w) { return plx_recv(w.fixture_comm, w.recv, 4, PLX_FLOAT32, -1, nullptr, nullptr); }, kInvalid,
       {"plx_recv", "peer -1"}},
      {"plx_recv", "flags",
       [](World &w) { return plx_recv(w.fixture_comm, w.recv, 4, PLX_FLOAT32, 0, &flag_opts, nullptr); }, kInvalid,
       {"plx_recv", "opts->flags"}},
      {"plx_recv", "destroyed handle",
       [](World &w) { return plx_recv(w.destroyed_comm, w.recv, 4, PLX_FLOAT32, 0, nullptr, nullptr); }, kInvalid,
       {"plx_recv", "comm", "not a live"}},
      {"plx_group_start", "NULL handle", [](World &) { return plx_group_start(nullptr); }, kInvalid,
       {"plx_group_start", "comm is NULL"}},
      {"plx_group_start", "destroyed handle", [](World &w) { return plx_group_start(w.destroyed_comm); }, kInvalid,
       {"plx_group_start", "comm", "not a live"}},
      {"plx_group_start", "unsupported", [](World &w) { return plx_group_start(w.comm); }, PLX_ERR_UNSUPPORTED,
       {"plx_group_start", "shm-native", "group_start"}},
      {"plx_group_end", "NULL handle", [](World &) { return plx_group_end(nullptr); }, kInvalid,
       {"plx_group_end", "comm is NULL"}},
      {"plx_group_end", "not a handle", [](World &w) { return plx_group_end(reinterpret_cast<plx_comm_h>(w.junk)); },
       kInvalid, {"plx_group_end", "comm", "not a live"}},
      {"plx_gather", "count overflow", gather_counts, kInvalid, {"plx_gather", "overflows"}},
  };
}

}  // namespace

std::vector<Row> collective_rows() {
  const Shape shapes[] = {{"plx_all_reduce", all_reduce, true, true, false},
                          {"plx_reduce", reduce, true, true, true},
                          {"plx_broadcast", broadcast, true, false, true},
                          {"plx_all_gather", all_gather, true, false, false},
                          {"plx_gather", gather, true, false, true},
                          {"plx_reduce_scatter", reduce_scatter, true, true, false},
                          {"plx_barrier", barrier, false, false, false}};
  std::vector<Row> rows = point_to_point_rows();
  for (const Shape &c : shapes)
    for (Row &r : collective_table(c)) rows.push_back(std::move(r));
  return rows;
}

}  // namespace plx_test

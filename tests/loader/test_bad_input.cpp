// The bad-input sweep (bad_input.hpp) through the C ABI: every row gets
// the status plexus.h documents and a message naming the function and the
// argument, nothing of the world breaks, and every function plexus.h
// declares has rows. Prints the counts docs/reliability.md records.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "bad_input.hpp"
#include "loader_test_util.hpp"
#include "tests/resident_memory.hpp"

namespace plx_test {

namespace {

plx_comm_h join_alone(plx_backend_h backend) {
  plx_unique_id id{};
  plx_comm_h comm = nullptr;
  plx_comm_config cfg = PLX_COMM_CONFIG_INIT;
  cfg.timeout_ms = cfg.init_timeout_ms = 5000;
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  REQUIRE_MESSAGE(plx_comm_init(backend, &id, 1, 0, &cfg, &comm) == PLX_OK, plx_last_error());
  return comm;
}

plx_backend_h open_path(const std::string &path) {
  plx_backend_h b = nullptr;
  REQUIRE_MESSAGE(plx_backend_open(path.c_str(), &b) == PLX_OK, plx_last_error());
  return b;
}

std::string shm_native_path() {
  return required_env("PLEXUS_BUILD_PLUGIN_DIR") + "/shm-native/libplexus-shm-native.so";
}

plx_queue_h make_queue(plx_comm_h comm) {
  const plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  plx_queue_h q = nullptr;
  REQUIRE_MESSAGE(plx_queue_create(comm, &qc, &q) == PLX_OK, plx_last_error());
  return q;
}

// Destroyed queues keep no memory (loader/handle_memory.hpp): 10,000 made
// and destroyed one after the other leave resident memory where it was
// (when each destroyed plx_queue stayed allocated, the soak measured 42-45
// bytes a queue, 440 KiB here), and no handle repeats an earlier one.
// Under ASan and TSan only the handles are checked: their allocators hold
// freed memory back (ASan's quarantine grew RSS by 8.6 MiB here).
TEST_CASE("loader.bad_input.destroyed_queues_keep_no_memory") {
  World w;
  constexpr int kQueues = 10000;
  std::vector<plx_queue_h> handles(kQueues + 1000, nullptr);  // touched now, not while measuring
  for (int i = 0; i < 1000; ++i) {  // malloc and the plugin settle
    handles[kQueues + i] = make_queue(w.comm);
    REQUIRE(plx_queue_destroy(handles[kQueues + i]) == PLX_OK);
  }
  const int64_t before = plexus::test::resident_kib();
  for (int i = 0; i < kQueues; ++i) {
    handles[i] = make_queue(w.comm);
    REQUIRE(plx_queue_destroy(handles[i]) == PLX_OK);
  }
  const int64_t grew = plexus::test::resident_kib() - before;
  MESSAGE("resident memory after ", kQueues, " queues made and destroyed: ", grew, " KiB more");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // their allocators keep freed memory
  CHECK(grew < 256);
#endif
  std::sort(handles.begin(), handles.end());
  CHECK(std::adjacent_find(handles.begin(), handles.end()) == handles.end());
  CHECK_FAILS(plx_queue_enqueue(handles[0], "x", 1, 0), PLX_ERR_INVALID_ARGUMENT, "not a live queue");
}

}  // namespace

World::World() {
  backend = open_path(shm_native_path());
  fixture = open_path(fixture_path("fixture-good"));
  comm = join_alone(backend);
  fixture_comm = join_alone(fixture);
  queue = make_queue(comm);
  const plx_mem_alloc_params p = {sizeof(p), PLX_MEM_SHARED_HOST, 256, 0, 0, 0};
  REQUIRE(plx_mem_alloc(comm, &p, &block) == PLX_OK);
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  destroyed_queue = make_queue(comm);
  REQUIRE(plx_queue_destroy(destroyed_queue) == PLX_OK);
  destroyed_comm = join_alone(backend);
  REQUIRE(plx_comm_destroy(destroyed_comm) == PLX_OK);
  closed_backend = open_path(shm_native_path());
  REQUIRE(plx_backend_close(closed_backend) == PLX_OK);
}

World::~World() {
  plx_mem_free(comm, block);
  plx_queue_destroy(queue);
  plx_comm_destroy(comm);
  plx_comm_destroy(fixture_comm);
  plx_backend_close(backend);
  plx_backend_close(fixture);
}

}  // namespace plx_test

namespace {

using namespace plx_test;

std::vector<Row> all_rows() {
  std::vector<Row> rows;
  for (auto table : {library_and_backend_rows, communicator_rows, collective_rows, memory_and_queue_rows})
    for (Row &r : table()) rows.push_back(std::move(r));
  return rows;
}

// The functions plexus.h declares, read from the header itself so that a
// function added there without rows here fails this test.
std::set<std::string> declared_functions() {
  std::ifstream in(required_env("PLEXUS_HEADER"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string header = text.str();
  const std::regex decl(R"(PLX_API\s+[^;(]*?\b(plx_\w+)\s*\()");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(header.begin(), header.end(), decl); it != std::sregex_iterator(); ++it)
    names.insert((*it)[1]);
  return names;
}

// Functions that return a value, not a status: their "invalid argument" is
// an unknown enum value, which must give the documented placeholder.
const std::set<std::string> value_functions = {"plx_version", "plx_version_string", "plx_status_string",
    "plx_last_error", "plx_dtype_string", "plx_dtype_size", "plx_reduce_op_string", "plx_coll_string",
    "plx_algorithm_string"};

// A call of another function fails first, so that a row whose call left
// the message alone cannot pass on an older message.
void run_row(World &w, const Row &row) {
  plx_comm_rank(nullptr, nullptr);
  const plx_status got = row.call(w);
  const std::string error = plx_last_error();
  const std::string function = row.function, argument_class = row.argument_class;
  CAPTURE(function);
  CAPTURE(argument_class);
  CHECK_MESSAGE(got == row.want, "gave ", plx_status_string(got), ", not ", plx_status_string(row.want), ": ", error);
  for (const std::string &word : row.words)
    CHECK_MESSAGE(has(error, word), "'", word, "' is not in the message: ", error);
  if (std::getenv("PLEXUS_BAD_INPUT_LIST"))  // every row's outcome, for reading the messages
    fmt::print("{} | {} | {} | {}\n", row.function, row.argument_class, plx_status_string(got), error);
  plx_status state = PLX_ERR_INTERNAL;  // bad input never breaks the communicator
  CHECK(plx_comm_async_status(w.comm, &state) == PLX_OK);
  CHECK(state == PLX_OK);
}

}  // namespace

TEST_CASE("loader.bad_input.every_row_gets_its_status_and_message") {
  World w;
  const std::vector<Row> rows = all_rows();
  std::map<std::string, int> per_class;
  std::set<std::string> functions;
  for (const Row &row : rows) {
    run_row(w, row);
    ++per_class[row.argument_class], functions.insert(row.function);
  }
  std::string classes;
  for (const auto &[name, n] : per_class) classes += fmt::format("{}{} {}", classes.empty() ? "" : ", ", name, n);
  fmt::print("loader.bad_input: {} rows over {} functions that return a status, {} classes: {}\n", rows.size(),
             functions.size(), per_class.size(), classes);
}

TEST_CASE("loader.bad_input.every_declared_function_has_rows") {
  const std::set<std::string> declared = declared_functions();
  REQUIRE(declared.size() > 40);
  std::set<std::string> covered = value_functions;
  for (const Row &row : all_rows()) covered.insert(row.function);
  for (const std::string &name : declared) CHECK_MESSAGE(covered.count(name), name, " has no bad-input row");
  for (const std::string &name : covered) CHECK_MESSAGE(declared.count(name), name, " is not declared in plexus.h");
}

TEST_CASE("loader.bad_input.value_functions_name_unknown_values") {
  CHECK(plx_version(nullptr, nullptr, nullptr) == PLX_OK);
  CHECK(std::strlen(plx_version_string()) > 0);
  CHECK(std::string(plx_status_string(12345)) == "PLX_ERR_<unknown>");
  CHECK(std::string(plx_status_string(INT32_MIN)) == "PLX_ERR_<unknown>");
  CHECK(plx_last_error() != nullptr);
  CHECK(std::string(plx_dtype_string(PLX_DTYPE_COUNT)) == "<unknown dtype>");
  CHECK(std::string(plx_dtype_string(-1)) == "<unknown dtype>");
  CHECK(plx_dtype_size(-1) == 0);
  CHECK(plx_dtype_size(PLX_DTYPE_COUNT) == 0);
  CHECK(std::string(plx_reduce_op_string(PLX_REDUCE_OP_COUNT)) == "<unknown op>");
  CHECK(std::string(plx_coll_string(-1)) == "<unknown>");
  CHECK(std::string(plx_algorithm_string(PLX_ALGO_COUNT)) == "<unknown>");
}

// Host buffers need no alignment: an odd address is not an error, and the
// result is right (the counterpart of the rows above: what must work).
TEST_CASE("loader.bad_input.misaligned_host_buffers_are_accepted") {
  World w;
  alignas(16) unsigned char send[64] = {}, recv[64] = {};
  const float values[7] = {1, 2, 3, 4, 5, 6, 7};
  std::memcpy(send + 1, values, sizeof(values));
  CHECK_OK(plx_all_reduce(w.comm, send + 1, recv + 3, 7, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  CHECK(std::memcmp(recv + 3, values, sizeof(values)) == 0);
  CHECK_OK(plx_all_gather(w.comm, send + 1, recv + 5, 7, PLX_FLOAT32, nullptr, nullptr));
  CHECK(std::memcmp(recv + 5, values, sizeof(values)) == 0);
  CHECK_OK(plx_all_reduce(w.comm, static_cast<char *>(w.block) + 1, recv + 1, 7, PLX_FLOAT32, PLX_MAX, nullptr, nullptr));
}

// A buffer that ends exactly at the end of its pool block, or lies wholly
// inside it, is accepted (the counterpart of the "block too small" rows);
// after the block is freed its range is no longer checked, and a new block
// is checked against its own size.
TEST_CASE("loader.bad_input.buffers_within_a_pool_block_are_accepted") {
  World w;
  float *block = static_cast<float *>(w.block);  // 64 floats
  for (int i = 0; i < 64; ++i) block[i] = static_cast<float>(i);
  CHECK_OK(plx_all_reduce(w.comm, block, block, 64, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  CHECK_OK(plx_all_reduce(w.comm, block + 60, w.recv, 4, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  CHECK(w.recv[3] == 63.0f);
  CHECK_OK(plx_reduce_scatter(w.comm, w.send, block + 32, 32, PLX_FLOAT32, PLX_SUM, nullptr, nullptr));
  const plx_mem_alloc_params small = {sizeof(small), PLX_MEM_SHARED_HOST, 64, 0, 0, 0};
  void *other = nullptr;
  REQUIRE(plx_mem_alloc(w.comm, &small, &other) == PLX_OK);
  CHECK_FAILS(plx_broadcast(w.comm, other, other, 17, PLX_FLOAT32, 0, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT,
              "64 bytes from plx_mem_alloc");
  CHECK_OK(plx_broadcast(w.comm, other, other, 16, PLX_FLOAT32, 0, nullptr, nullptr));
  REQUIRE(plx_mem_free(w.comm, other) == PLX_OK);
}

// A destroyed handle keeps its memory (loader/retired.hpp): later objects
// never take its address, so a stale handle can never reach one of them.
TEST_CASE("loader.bad_input.destroyed_handles_never_alias_new_ones") {
  World w;
  std::set<plx_comm_h> seen = {w.destroyed_comm};
  for (int i = 0; i < 50; ++i) {
    plx_unique_id id{};
    plx_comm_h c = nullptr;
    REQUIRE(plx_get_unique_id(w.fixture, &id) == PLX_OK);
    REQUIRE(plx_comm_init(w.fixture, &id, 1, 0, nullptr, &c) == PLX_OK);
    CHECK(seen.insert(c).second);
    REQUIRE(plx_comm_destroy(c) == PLX_OK);
  }
  for (plx_comm_h stale : seen)
    CHECK_FAILS(plx_barrier(stale, nullptr, nullptr), PLX_ERR_INVALID_ARGUMENT, "not a live communicator");
}

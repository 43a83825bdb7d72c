// Communicators through the loader: absent slots (PLX-L-8), unique ids
// (PLX-L-12), sticky failure and abort (PLX-L-14), closing with live objects
// (PLX-L-18), and what the good fixture does with its pool and parameters.
#include <cstring>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

plx_mem_alloc_params shared_block(uint64_t bytes, uint32_t tag = 0) {
  return {sizeof(plx_mem_alloc_params), PLX_MEM_SHARED_HOST, bytes, 0, tag, 0};
}

// Calls every slot the fixture's vtable does not have; each must fail with
// PLX_ERR_UNSUPPORTED naming the slot and the ABI, never reach the plugin.
void check_absent_slots(plx_comm_h comm) {
  const plx_mem_alloc_params params = shared_block(64);
  void *ptr = nullptr;
  plx_queue_h queue = nullptr;
  const plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  plx_mem_stats stats{};
  stats.struct_size = sizeof(stats);
  uint64_t released = 0;
  plx_pressure level = PLX_PRESSURE_LOW;
  int dummy = 0;
  plx_mem_reg_h reg = nullptr;
  CHECK_FAILS(plx_mem_alloc(comm, &params, &ptr), PLX_ERR_UNSUPPORTED, "does not implement mem_alloc", "ABI 1.0");
  CHECK(ptr == nullptr);
  CHECK_FAILS(plx_mem_free(comm, &dummy), PLX_ERR_UNSUPPORTED, "mem_free");
  CHECK_FAILS(plx_mem_stats_get(comm, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &stats), PLX_ERR_UNSUPPORTED, "mem_stats");
  CHECK_FAILS(plx_mem_register(comm, &dummy, sizeof(dummy), &reg), PLX_ERR_UNSUPPORTED, "mem_register");
  CHECK_FAILS(plx_mem_defragment(comm, PLX_MEM_SHARED_HOST, &released), PLX_ERR_UNSUPPORTED, "mem_defragment");
  CHECK_FAILS(plx_mem_trim(comm, PLX_MEM_SHARED_HOST, 0, &released), PLX_ERR_UNSUPPORTED, "mem_trim");
  CHECK_FAILS(plx_mem_pressure(comm, PLX_MEM_SHARED_HOST, &level), PLX_ERR_UNSUPPORTED, "mem_pressure");
  CHECK_FAILS(plx_queue_create(comm, &qc, &queue), PLX_ERR_UNSUPPORTED, "queue_create");
  CHECK_FAILS(plx_group_start(comm), PLX_ERR_UNSUPPORTED, "group_start");
  CHECK_FAILS(plx_group_end(comm), PLX_ERR_UNSUPPORTED, "group_end");
}

float all_reduce_one(plx_comm_h comm, float value) {
  float out = 0;
  const plx_status s = plx_all_reduce(comm, &value, &out, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  return s == PLX_OK ? out : -1.0f;
}

}  // namespace

TEST_CASE("Loader.Comm.null_slots_are_unsupported_naming_the_slot") {
  Backend b("fixture-nullslots");
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  check_absent_slots(c.handle);
  plx_comm_h child = nullptr;
  CHECK_FAILS(plx_comm_split(c.handle, 0, 0, nullptr, &child), PLX_ERR_UNSUPPORTED,
              "backend 'fixture-nullslots' does not implement comm_split", "ABI 1.0 vtable");
  plx_topology_info info{};
  info.struct_size = sizeof(info);
  CHECK_FAILS(plx_backend_topology(b.handle, &info, nullptr, 0, nullptr), PLX_ERR_UNSUPPORTED, "topology");
  plx_status async = PLX_ERR_INTERNAL;
  CHECK_OK(plx_comm_async_status(c.handle, &async));  // optional: absent means healthy
  CHECK(async == PLX_OK);
  CHECK(all_reduce_one(c.handle, 2.5f) == 2.5f);
}

TEST_CASE("Loader.Comm.slots_past_an_older_vtable_are_never_called") {
  // fixture-oldminor's slots past struct_size abort() the process if called.
  Backend b("fixture-oldminor");
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  CHECK_OK(plx_backend_props_get(b.handle, &props));
  CHECK((props.capabilities & PLX_CAP_MEM_ALLOC) != 0);  // claims it; the vtable decides
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  check_absent_slots(c.handle);
  CHECK(all_reduce_one(c.handle, 4.0f) == 4.0f);
  plx_comm_h child = nullptr;
  CHECK_OK(plx_comm_split(c.handle, 3, 0, nullptr, &child));  // covered by the old size
  CHECK_OK(plx_comm_destroy(child));
}

TEST_CASE("Loader.Comm.unique_id_is_checked_before_the_plugin_reads_it") {
  Backend good("fixture-good");
  Backend dup(required_env("FIXTURE_DUP_A").append("/libplexus-fixture-dup.so").c_str());
  REQUIRE_MESSAGE(good.status == PLX_OK, good.error);
  REQUIRE_MESSAGE(dup.status == PLX_OK, dup.error);
  plx_unique_id id{};
  CHECK_OK(plx_get_unique_id(good.handle, &id));
  plx_comm_h comm = nullptr;
  CHECK_FAILS(plx_comm_init(dup.handle, &id, 1, 0, nullptr, &comm), PLX_ERR_INVALID_ARGUMENT,
              "plx_comm_init", "made by backend 'fixture-good', not by 'fixture-dup'");
  plx_unique_id corrupted = id;
  corrupted.bytes[200] ^= 0x01;  // the plugin's payload
  CHECK_FAILS(plx_comm_init(good.handle, &corrupted, 1, 0, nullptr, &comm), PLX_ERR_INVALID_ARGUMENT, "corrupted");
  corrupted = id;
  corrupted.bytes[40] ^= 0x40;  // the plugin name in the header
  CHECK_FAILS(plx_comm_init(good.handle, &corrupted, 1, 0, nullptr, &comm), PLX_ERR_INVALID_ARGUMENT, "corrupted");
  corrupted = id;
  corrupted.bytes[0] = 'X';  // the magic
  CHECK_FAILS(plx_comm_init(good.handle, &corrupted, 1, 0, nullptr, &comm), PLX_ERR_INVALID_ARGUMENT,
              "not a plexus unique id");
  const plx_unique_id zero{};
  CHECK_FAILS(plx_comm_init(good.handle, &zero, 1, 0, nullptr, &comm), PLX_ERR_INVALID_ARGUMENT, "not a plexus unique id");
  CHECK(comm == nullptr);
  CHECK_OK(plx_comm_init(good.handle, &id, 1, 0, nullptr, &comm));
  CHECK_OK(plx_comm_destroy(comm));
}

TEST_CASE("Loader.Comm.timeout_is_sticky_with_the_first_message") {
  Backend b("fixture-sticky");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  CHECK(all_reduce_one(c.handle, 1.0f) == 1.0f);
  float x = 1, y = 0;
  CHECK_FAILS(plx_all_reduce(c.handle, &x, &y, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr), PLX_ERR_TIMEOUT,
              "simulated timeout");
  // The plugin would now answer PLX_ERR_INTERNAL: the loader must not ask it.
  for (int i = 0; i < 3; ++i) {
    CHECK_FAILS(plx_all_reduce(c.handle, &x, &y, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr), PLX_ERR_TIMEOUT,
                "plx_all_reduce: the communicator failed earlier", "collective #2 (simulated timeout)");
    CHECK_FAILS(plx_barrier(c.handle, nullptr, nullptr), PLX_ERR_TIMEOUT, "plx_barrier", "collective #2");
  }
  plx_comm_h child = nullptr;
  CHECK_FAILS(plx_comm_split(c.handle, 0, 0, nullptr, &child), PLX_ERR_TIMEOUT, "collective #2");
  plx_status async = PLX_OK;
  CHECK_OK(plx_comm_async_status(c.handle, &async));
  CHECK(async == PLX_ERR_TIMEOUT);
  plx_op_stats stats{};
  stats.struct_size = sizeof(stats);
  CHECK_OK(plx_comm_stats(c.handle, PLX_COLL_ALL_REDUCE, &stats));
  CHECK(stats.calls == 1);  // only the call that succeeded
}

TEST_CASE("Loader.Comm.abort_makes_later_calls_fail_aborted") {
  Backend b("fixture-good");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  CHECK(all_reduce_one(c.handle, 3.0f) == 3.0f);
  CHECK_OK(plx_comm_abort(c.handle));
  float x = 1, y = 0;
  CHECK_FAILS(plx_all_reduce(c.handle, &x, &y, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr), PLX_ERR_ABORTED,
              "this rank called plx_comm_abort");
  CHECK_FAILS(plx_barrier(c.handle, nullptr, nullptr), PLX_ERR_ABORTED, "plx_barrier");
  const plx_mem_alloc_params params = shared_block(64);
  void *ptr = nullptr;
  CHECK_FAILS(plx_mem_alloc(c.handle, &params, &ptr), PLX_ERR_ABORTED, "plx_mem_alloc");
  plx_status async = PLX_OK;
  CHECK_OK(plx_comm_async_status(c.handle, &async));
  CHECK(async == PLX_ERR_ABORTED);
  CHECK_OK(plx_comm_abort(c.handle));  // again: harmless
}

TEST_CASE("Loader.Comm.close_with_live_objects_fails_and_closes_nothing") {
  plx_backend_h b = nullptr;
  REQUIRE(plx_backend_open("fixture-good", &b) == PLX_OK);
  plx_unique_id id{};
  plx_comm_h comm = nullptr;
  CHECK_OK(plx_get_unique_id(b, &id));
  CHECK_OK(plx_comm_init(b, &id, 1, 0, nullptr, &comm));
  CHECK_FAILS(plx_backend_close(b), PLX_ERR_INVALID_USAGE, "plx_backend_close", "1 communicator(s)", "still open");
  plx_queue_h queue = nullptr;
  const plx_queue_config qc = PLX_QUEUE_CONFIG_INIT;
  CHECK_OK(plx_queue_create(comm, &qc, &queue));
  CHECK_OK(plx_queue_enqueue(queue, "hi", 2, 0));
  CHECK_FAILS(plx_comm_destroy(comm), PLX_ERR_INVALID_USAGE, "plx_comm_destroy", "1 queue(s)");
  CHECK(all_reduce_one(comm, 5.0f) == 5.0f);  // both still work
  CHECK_OK(plx_queue_destroy(queue));
  CHECK_OK(plx_comm_destroy(comm));
  CHECK_OK(plx_backend_close(b));
}

TEST_CASE("Loader.Comm.pool_counts_what_is_in_use") {
  Backend b("fixture-good");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  void *blocks[3] = {};
  for (int i = 0; i < 3; ++i) {
    const plx_mem_alloc_params params = shared_block(100 + i, i == 0 ? 7 : 0);
    CHECK_OK(plx_mem_alloc(c.handle, &params, &blocks[i]));
    CHECK(reinterpret_cast<uintptr_t>(blocks[i]) % 256 == 0);
  }
  std::memset(blocks[2], 0xab, 102);
  plx_mem_stats stats{};
  stats.struct_size = sizeof(stats);
  CHECK_OK(plx_mem_stats_get(c.handle, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &stats));
  CHECK(stats.bytes_in_use == 3 * 256);
  CHECK(stats.bytes_requested == 303);
  CHECK(stats.alloc_count == 3);
  CHECK_OK(plx_mem_stats_get(c.handle, PLX_MEM_SHARED_HOST, 7, &stats));
  CHECK(stats.bytes_requested == 100);
  int not_a_block = 0;
  CHECK_FAILS(plx_mem_free(c.handle, &not_a_block), PLX_ERR_INVALID_ARGUMENT, "not a live block");
  for (void *p : blocks) CHECK_OK(plx_mem_free(c.handle, p));
  CHECK_OK(plx_mem_free(c.handle, nullptr));
  CHECK_OK(plx_mem_stats_get(c.handle, PLX_MEM_SHARED_HOST, PLX_MEM_TAG_ALL, &stats));
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.free_count == 3);
  CHECK(stats.bytes_peak == 3 * 256);
}

TEST_CASE("Loader.Comm.plugin_parameters_follow_the_environment") {
  ScopedEnv slots("PLEXUS_FIXTURE_GOOD_SLOTS", "2");
  ScopedEnv greeting("PLEXUS_FIXTURE_GOOD_GREETING", "good day");
  Backend b("fixture-good");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  const plx_mem_alloc_params params = shared_block(8);
  void *p[3] = {};
  CHECK_OK(plx_mem_alloc(c.handle, &params, &p[0]));
  CHECK_OK(plx_mem_alloc(c.handle, &params, &p[1]));
  CHECK_FAILS(plx_mem_alloc(c.handle, &params, &p[2]), PLX_ERR_OUT_OF_MEMORY, "all 2 slots are in use");
  char json[256] = {};
  size_t needed = 0;
  plx_topology_info info{};
  info.struct_size = sizeof(info);
  CHECK_OK(plx_backend_topology(b.handle, &info, json, sizeof(json), &needed));
  CHECK(has(json, "\"greeting\":\"good day\""));
  CHECK(needed == std::strlen(json) + 1);
  CHECK(info.p2p_all_pairs == -1);
  CHECK_OK(plx_mem_free(c.handle, p[0]));
  CHECK_OK(plx_mem_free(c.handle, p[1]));
}

TEST_CASE("Loader.Comm.split_gives_a_new_comm_or_none") {
  Backend b("fixture-good");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  plx_comm_h none = reinterpret_cast<plx_comm_h>(&c);
  CHECK_OK(plx_comm_split(c.handle, PLX_SPLIT_NO_COLOR, 0, nullptr, &none));
  CHECK(none == nullptr);
  plx_comm_h child = nullptr;
  CHECK_OK(plx_comm_split(c.handle, 4, 1, nullptr, &child));
  REQUIRE(child != nullptr);
  int32_t rank = -1, size = -1, device = 0;
  CHECK_OK(plx_comm_rank(child, &rank));
  CHECK_OK(plx_comm_size(child, &size));
  CHECK_OK(plx_comm_device(child, &device));
  CHECK((rank == 0 && size == 1 && device == -1));
  CHECK(all_reduce_one(child, 6.0f) == 6.0f);
  CHECK_FAILS(plx_comm_split(c.handle, -2, 0, nullptr, &child), PLX_ERR_INVALID_ARGUMENT, "color -2");
  CHECK_OK(plx_comm_destroy(child));
}

TEST_CASE("Loader.Comm.plugin_refuses_more_than_one_rank") {
  Backend b("fixture-good");
  plx_unique_id id{};
  CHECK_OK(plx_get_unique_id(b.handle, &id));
  plx_comm_h comm = nullptr;
  CHECK_FAILS(plx_comm_init(b.handle, &id, 2, 1, nullptr, &comm), PLX_ERR_UNSUPPORTED, "exactly 1 rank, not 2");
  CHECK(comm == nullptr);
}

// auto's composite through the public API (docs/auto.md), on this machine's
// shm-native: PLEXUS_TUNE adds a second instance, so the composite routes
// between two real backends by size; ranks are threads of this process.
// Checks the routing and its report, the statistics, the composite id, the
// measured table and its file, the trace log, and PLEXUS_TUNE's errors.
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

std::string shm_native_dir() { return required_env("PLEXUS_BUILD_PLUGIN_DIR") + "/shm-native"; }

// The environment of one case: only shm-native to choose from, the given
// table, and no tuning file unless given.
struct AutoEnv {
  explicit AutoEnv(std::optional<std::string> tune, std::string tuning_file = "none")
      : path("PLEXUS_PLUGIN_PATH", shm_native_dir()), backend("PLEXUS_BACKEND", std::nullopt),
        tune_env("PLEXUS_TUNE", std::move(tune)), file("PLEXUS_TUNING_FILE", std::move(tuning_file)),
        hosts("PLEXUS_AUTO_HOSTS", "1") {}
  ScopedEnv path, backend, tune_env, file, hosts;
};

// Runs body(rank, comm) on `n` thread ranks of one communicator.
void run_ranks(plx_backend_h backend, int n, const std::function<void(int, plx_comm_h)> &body) {
  plx_unique_id id{};
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  std::vector<plx_comm_h> comms(n, nullptr);
  std::vector<plx_status> status(n, PLX_OK);
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      status[r] = plx_comm_init(backend, &id, n, r, nullptr, &comms[r]);
      if (status[r] != PLX_OK) errors[r] = plx_last_error();
    });
  for (std::thread &t : threads) t.join();
  threads.clear();
  for (int r = 0; r < n; ++r) REQUIRE_MESSAGE(status[r] == PLX_OK, errors[r]);
  for (int r = 0; r < n; ++r) threads.emplace_back([&, r] { body(r, comms[r]); });
  for (std::thread &t : threads) t.join();
  for (plx_comm_h c : comms) CHECK(plx_comm_destroy(c) == PLX_OK);
}

std::string routes(plx_comm_h comm, plx_format format) {
  size_t needed = 0;
  REQUIRE(plx_comm_routes(comm, format, nullptr, 0, &needed) == PLX_OK);
  std::string text(needed, '\0');
  REQUIRE(plx_comm_routes(comm, format, text.data(), needed, &needed) == PLX_OK);
  text.resize(needed - 1);
  return text;
}

// An all-reduce of `count` floats (sum of rank + 1) with its result checked.
plx_status checked_all_reduce(int rank, int nranks, plx_comm_h comm, uint64_t count, std::string *error) {
  std::vector<float> x(count, static_cast<float>(rank + 1));
  const plx_status s = plx_all_reduce(comm, x.data(), x.data(), count, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
  if (s != PLX_OK) return *error = plx_last_error(), s;
  for (float v : x)
    if (v != static_cast<float>(nranks * (nranks + 1) / 2)) return *error = "wrong sum", PLX_ERR_INTERNAL;
  return PLX_OK;
}

std::string props_path(plx_backend_h b) {
  plx_backend_props props{};
  props.struct_size = sizeof(props);
  REQUIRE(plx_backend_props_get(b, &props) == PLX_OK);
  return std::string(props.name) + " " + props.path;
}

plx_status init_with(plx_backend_h backend, const plx_unique_id &id, std::string *error) {
  plx_comm_h comm = nullptr;
  const plx_status s = plx_comm_init(backend, &id, 2, 0, nullptr, &comm);
  *error = s == PLX_OK ? "" : plx_last_error();
  if (comm) plx_comm_destroy(comm);
  return s;
}

}  // namespace

TEST_CASE("Loader.Composite.routes_by_size" * doctest::timeout(60)) {
  AutoEnv env("all_reduce:-1K:shm-native#1");
  Backend b(nullptr);
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  const std::string lib = shm_native_dir() + "/libplexus-shm-native.so";
  CHECK(props_path(b.handle) == "auto " + lib + ":" + lib);
  const std::string report = load_report(b.handle, PLX_FORMAT_TEXT);
  CHECK_MESSAGE(has(report, "chose auto over shm-native + shm-native#1"), report);
  CHECK(has(report, "routing: PLEXUS_TUNE 'all_reduce:-1K:shm-native#1'"));
  CHECK(has(load_report(b.handle, PLX_FORMAT_JSON), "\"auto\":{\"members\":[\"shm-native\",\"shm-native#1\"]"));
  std::vector<std::string> errors(2);
  run_ranks(b.handle, 2, [&](int rank, plx_comm_h comm) {
    CHECK(checked_all_reduce(rank, 2, comm, 16, &errors[rank]) == PLX_OK);    // 64 B: the rule
    CHECK(checked_all_reduce(rank, 2, comm, 1024, &errors[rank]) == PLX_OK);  // 4 KiB: member order
    CHECK(checked_all_reduce(rank, 2, comm, 255, &errors[rank]) == PLX_OK);
    CHECK_MESSAGE(errors[rank].empty(), errors[rank]);
    if (rank != 0) return;
    const std::string json = routes(comm, PLX_FORMAT_JSON);
    INFO(json);
    CHECK(has(json, "{\"rule\":\"all_reduce:-1K:shm-native#1\",\"backend\":\"shm-native#1\",\"source\":\"PLEXUS_TUNE\","
                    "\"calls\":2,\"bytes\":1084}"));
    CHECK(has(json, "{\"rule\":\"*:*:shm-native\",\"backend\":\"shm-native\",\"source\":\"member order\",\"calls\":1,"
                    "\"bytes\":4096}"));
    CHECK(has(routes(comm, PLX_FORMAT_TEXT), "auto over 2 backends; table from PLEXUS_TUNE"));
    plx_op_stats stats{};
    stats.struct_size = sizeof(stats);
    CHECK(plx_comm_stats(comm, PLX_COLL_ALL_REDUCE, &stats) == PLX_OK);
    CHECK(stats.calls == 3);
  });
}

TEST_CASE("Loader.Composite.one_backend_is_no_composite") {
  AutoEnv env(std::nullopt);
  Backend b(nullptr);
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  CHECK(props_path(b.handle) == "shm-native " + shm_native_dir() + "/libplexus-shm-native.so");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  CHECK(has(routes(c.handle, PLX_FORMAT_TEXT), "one backend, shm-native"));
  CHECK(has(routes(c.handle, PLX_FORMAT_JSON), "\"table_source\":\"one backend\""));
  CHECK_FAILS(plx_comm_routes(nullptr, PLX_FORMAT_TEXT, nullptr, 0, nullptr), PLX_ERR_INVALID_ARGUMENT, "comm");
  CHECK_FAILS(plx_comm_routes(c.handle, 7, nullptr, 0, nullptr), PLX_ERR_INVALID_ARGUMENT, "format 7");
  CHECK_FAILS(plx_comm_routes(c.handle, PLX_FORMAT_TEXT, nullptr, 4, nullptr), PLX_ERR_INVALID_ARGUMENT, "buf");
}

TEST_CASE("Loader.Composite.ids_are_checked") {
  AutoEnv env("+shm-native#1");
  Backend composite(nullptr);
  REQUIRE_MESSAGE(composite.status == PLX_OK, composite.error);
  plx_unique_id id{};
  REQUIRE(plx_get_unique_id(composite.handle, &id) == PLX_OK);
  std::string error;
  plx_unique_id corrupted = id;
  corrupted.bytes[100] ^= 0x20;
  CHECK(init_with(composite.handle, corrupted, &error) == PLX_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE(has(error, "id is corrupted (checksum mismatch)"), error);
  Backend plain("shm-native");
  CHECK(init_with(plain.handle, id, &error) == PLX_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE(has(error, "made by auto over several backends"), error);
  plx_unique_id plain_id{};
  REQUIRE(plx_get_unique_id(plain.handle, &plain_id) == PLX_OK);
  CHECK(init_with(composite.handle, plain_id, &error) == PLX_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE(has(error, "made by backend 'shm-native', not by auto"), error);
  ScopedEnv other("PLEXUS_TUNE", "+shm-native#2");
  Backend different(nullptr);
  REQUIRE_MESSAGE(different.status == PLX_OK, different.error);
  CHECK(init_with(different.handle, id, &error) == PLX_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE(has(error, "made by auto over [shm-native, shm-native#1]; this rank's auto has "
                           "[shm-native, shm-native#2]"), error);
}

TEST_CASE("Loader.Composite.tune_errors_fail_the_open") {
  {
    AutoEnv env("allreduce:*:shm-native");
    const OpenResult r = try_open(nullptr);
    CHECK(r.status == PLX_ERR_INVALID_ARGUMENT);
    CHECK_MESSAGE(has(r.error, "PLEXUS_TUNE item 1 'allreduce:*:shm-native': 'allreduce' is not an op. The grammar"), r.error);
  }
  {
    AutoEnv env("*:*:nccl");
    const OpenResult r = try_open("^nccl");
    CHECK(r.status == PLX_ERR_INVALID_ARGUMENT);
    CHECK_MESSAGE(has(r.error, "PLEXUS_TUNE names nccl, which the spec argument='^nccl' excludes"), r.error);
  }
  {
    AutoEnv env("*:-1K:fixture-nowhere");
    const OpenResult r = try_open(nullptr);
    CHECK(r.status == PLX_ERR_NOT_FOUND);
    CHECK_MESSAGE(has(r.error, "PLEXUS_TUNE names fixture-nowhere, which could not be opened"), r.error);
  }
  {
    AutoEnv env("allreduce");  // only auto reads it: a named backend opens as named
    Backend named("shm-native");
    CHECK_MESSAGE(named.status == PLX_OK, named.error);
  }
}

TEST_CASE("Loader.Composite.measures_once_then_reads_the_tuning_file" * doctest::timeout(120)) {
  TempDir dir;
  const std::string file = dir.path() + "/cache/plexus/tuning.txt";
  AutoEnv env("+shm-native#1", file);
  auto source_of_a_new_communicator = [] {
    Backend b(nullptr);
    REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
    std::string text;
    run_ranks(b.handle, 2, [&](int rank, plx_comm_h comm) {
      std::string error;
      CHECK_MESSAGE(checked_all_reduce(rank, 2, comm, 333, &error) == PLX_OK, error);
      if (rank == 0) text = routes(comm, PLX_FORMAT_TEXT);
    });
    return text;
  };
  const std::string first = source_of_a_new_communicator();
  CHECK_MESSAGE(has(first, "table from a measurement at the first communicator, kept in " + file), first);
  CHECK(has(first, "all_reduce@host:"));
  const std::string cached = read_file(file);
  CHECK_MESSAGE(has(cached, "v1 nranks=2 gpus=0 p2p=-1 nvlink=-1 members=shm-native=0.1.0,shm-native#1=0.1.0\t"
                            "all_reduce@host:"), cached);
  const std::string second = source_of_a_new_communicator();
  CHECK_MESSAGE(has(second, "table from the tuning file " + file), second);
  // A table that no longer parses is measured again and replaced.
  std::ofstream(file) << cached.substr(0, cached.find('\t') + 1) << "all_reduce@host:*:garbage!\n";
  CHECK(has(source_of_a_new_communicator(), "table from a measurement"));
  CHECK_FALSE(has(read_file(file), "garbage!"));
}

// The body the next case runs in a child of its own, with trace logging.
TEST_CASE("Loader.Composite.trace_child") {
  if (std::getenv("COMPOSITE_TRACE_CHILD") == nullptr) return;
  AutoEnv env("all_reduce:-1K:shm-native#1");
  Backend b(nullptr);
  REQUIRE(b.status == PLX_OK);
  Comm c(b.handle);
  REQUIRE(c.status == PLX_OK);
  std::string error;
  for (int i = 0; i < 2; ++i) REQUIRE(checked_all_reduce(0, 1, c.handle, 16, &error) == PLX_OK);
  REQUIRE(checked_all_reduce(0, 1, c.handle, 1024, &error) == PLX_OK);
}

TEST_CASE("Loader.Composite.the_trace_log_shows_each_decision") {
  TempDir dir;
  const std::string log = dir.path() + "/trace.txt";
  const Child child = run_child({"/proc/self/exe", "--test-case=Loader.Composite.trace_child"},
                                {{"COMPOSITE_TRACE_CHILD", "1"}, {"PLEXUS_LOG_LEVEL", "trace"}, {"PLEXUS_LOG_FILE", log}},
                                dir.path() + "/child-stdout.txt");
  CHECK(child.exit_code == 0);
  const std::string text = read_file(log);
  INFO(text);
  const std::string small = "auto: rank 0: all_reduce of 64 B on host memory -> shm-native#1 (route 0 "
                            "'all_reduce:-1K:shm-native#1', from PLEXUS_TUNE)";
  CHECK(has(text, "loader debug] " + small));  // the first use of a route at debug
  CHECK(has(text, "loader trace] " + small));  // every later one at trace
  CHECK(has(text, "loader debug] auto: rank 0: all_reduce of 4096 B on host memory -> shm-native (route 1 "
                  "'*:*:shm-native', from member order)"));
}

// Threads: a PLX_THREAD_SINGLE plugin is entered by one thread at a time
// (PLX-L-13), the last error belongs to its thread (PLX-L-15), and opening
// is thread-safe.
#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "loader_test_util.hpp"

using namespace plx_test;

namespace {

constexpr int thread_count = 8;
constexpr int calls_per_thread = 200;

// Each thread makes its own 1-rank communicator on `backends[t % n]` and
// hammers it; fixture-single answers PLX_ERR_INTERNAL when entered twice.
void hammer(const std::vector<plx_backend_h> &backends, std::atomic<int> *failures, std::string *first) {
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t)
    threads.emplace_back([&, t] {
      Comm c(backends[t % backends.size()]);
      for (int i = 0; i < calls_per_thread && c.status == PLX_OK; ++i) {
        float x = static_cast<float>(i), y = -1;
        const plx_status s = plx_all_reduce(c.handle, &x, &y, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
        if (s != PLX_OK || y != x) {
          if (failures->fetch_add(1) == 0) *first = plx_last_error();
          break;
        }
      }
      if (c.status != PLX_OK && failures->fetch_add(1) == 0) *first = c.error;
    });
  for (std::thread &t : threads) t.join();
}

}  // namespace

TEST_CASE("Loader.Threads.single_threaded_plugin_is_serialised" * doctest::timeout(60)) {
  Backend b("fixture-single");
  REQUIRE_MESSAGE(b.status == PLX_OK, b.error);
  std::atomic<int> failures{0};
  std::string first;
  hammer({b.handle}, &failures, &first);
  CHECK_MESSAGE(failures.load() == 0, first);
}

TEST_CASE("Loader.Threads.single_threaded_plugin_is_serialised_across_backends" * doctest::timeout(60)) {
  // Two opens of one plugin share the library and its globals: the lock is the plugin's.
  Backend one("fixture-single"), two("fixture-single");
  REQUIRE_MESSAGE(one.status == PLX_OK, one.error);
  REQUIRE_MESSAGE(two.status == PLX_OK, two.error);
  std::atomic<int> failures{0};
  std::string first;
  hammer({one.handle, two.handle}, &failures, &first);
  CHECK_MESSAGE(failures.load() == 0, first);
}

TEST_CASE("Loader.Threads.abort_gets_through_a_single_threaded_plugin") {
  Backend b("fixture-single");
  Comm c(b.handle);
  REQUIRE_MESSAGE(c.status == PLX_OK, c.error);
  CHECK_OK(plx_comm_abort(c.handle));
  plx_status async = PLX_OK;
  CHECK_OK(plx_comm_async_status(c.handle, &async));
  CHECK(async == PLX_ERR_ABORTED);
}

TEST_CASE("Loader.Threads.last_error_is_per_thread") {
  std::barrier sync(2);
  std::string a_before, a_after, b_message;
  std::thread a([&] {
    float x = 0;
    plx_all_reduce(nullptr, &x, &x, 1, PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
    a_before = plx_last_error();
    sync.arrive_and_wait();  // b fails now
    sync.arrive_and_wait();
    a_after = plx_last_error();
  });
  std::thread b([&] {
    CHECK(std::string(plx_last_error()).empty());  // a fresh thread has had no failure
    sync.arrive_and_wait();
    plx_backend_h h = nullptr;
    plx_backend_open("./relative.so", &h);
    b_message = plx_last_error();
    sync.arrive_and_wait();
  });
  a.join();
  b.join();
  CHECK(has(a_before, "plx_all_reduce: comm is NULL"));
  CHECK(a_after == a_before);
  CHECK(has(b_message, "plx_backend_open"));
  CHECK(has(b_message, "relative path"));
}

TEST_CASE("Loader.Threads.opening_is_thread_safe" * doctest::timeout(60)) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t)
    threads.emplace_back([&, t] {
      const char *spec = t % 2 ? "fixture-good" : "fixture-decline,fixture-sticky";
      for (int i = 0; i < 20; ++i) {
        Backend b(spec);
        Comm c(b.handle);
        if (b.status != PLX_OK || c.status != PLX_OK) failures.fetch_add(1);
      }
    });
  for (std::thread &t : threads) t.join();
  CHECK(failures.load() == 0);
}

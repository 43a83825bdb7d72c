// plexus/plexus.hpp, compiled as C++17 and as C++20 (meson builds this file
// twice): errors become plexus::error with status and message, handles are
// move-only RAII, the typed collectives pick the dtype from T, and a 2-rank
// shm-native communicator (ranks as threads) all-reduces, gathers and
// passes queue messages.
#include <plexus/plexus.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

int failures = 0;

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

static_assert(!std::is_copy_constructible_v<plexus::backend>, "move only");
static_assert(std::is_nothrow_move_constructible_v<plexus::comm>, "movable");
static_assert(!std::is_copy_assignable_v<plexus::mem_block>, "move only");
static_assert(plexus::dtype_of<float>::value == plexus::dtype::float32, "dtype map");
static_assert(plexus::dtype_of<const uint64_t>::value == plexus::dtype::uint64, "dtype map");
static_assert(!plexus::is_element_v<void> && !plexus::is_element_v<short>, "no dtype");

void bad_spec_throws() {
  try {
    plexus::backend b("./relative.so");
    EXPECT(false);
  } catch (const plexus::error &e) {
    EXPECT(e.status() == PLX_ERR_INVALID_ARGUMENT);
    EXPECT(std::string(e.status_name()) == "PLX_ERR_INVALID_ARGUMENT");
    EXPECT(e.message().find("relative path") != std::string::npos);
    EXPECT(std::string(e.what()).rfind("plx_backend_open: PLX_ERR_INVALID_ARGUMENT: ", 0) == 0);
    EXPECT(plexus::last_load_report(plexus::format::json).find("PLX_ERR_INVALID_ARGUMENT") !=
           std::string::npos);
  }
}

void rank_main(plexus::backend &be, const plx_unique_id &id, int rank, std::vector<int> &ok) {
  plexus::comm c(be, id, 2, rank);
  std::vector<double> v(1000, rank + 1.0);
  c.all_reduce(v);  // in place, sum
  std::vector<int32_t> mine(3, rank), all(6, -1);
  c.all_gather(mine.data(), all.data(), mine.size());
  plexus::mem_block block = c.alloc(4096 * sizeof(float));
  float *f = block.as<float>();
  for (uint64_t i = 0; i < block.count<float>(); ++i) f[i] = 1.0f;
  c.all_reduce(f, f, block.count<float>(), plexus::reduce_op::max);
  plexus::queue q = c.make_queue(0, 64);
  std::vector<uint8_t> msg;
  static const char text[] = "a message longer than one slot of 64 bytes, chunked through the ring";
  if (rank == 0) q.enqueue(text, sizeof(text));  // with its NUL: 69 bytes
  else q.dequeue(msg);
  c.barrier();
  bool good = v[0] == 3.0 && v[999] == 3.0 && all[0] == 0 && all[5] == 1 && f[4095] == 1.0f &&
              c.rank() == rank && c.size() == 2 &&
              c.stats(PLX_COLL_ALL_REDUCE).calls == 2 && c.mem_stats(plexus::mem_kind::shared_host).alloc_count == 1;
  if (rank == 1) good = good && msg.size() == sizeof(text) && std::memcmp(msg.data(), "a message", 9) == 0;
  ok[rank] = good ? 1 : 0;
}

void two_ranks() {
  plexus::backend be("shm-native");
  EXPECT(be.name() == "shm-native");
  EXPECT(be.has(PLX_CAP_THREAD_RANKS));
  EXPECT(be.load_report().find("shm-native") != std::string::npos);
  plx_topology_info info{};
  EXPECT(!be.topology(&info).empty() && info.core_count >= 1);
  plx_unique_id id = be.unique_id();
  std::vector<int> ok(2, 0);
  std::thread peer([&] {
    try {
      rank_main(be, id, 1, ok);
    } catch (const plexus::error &e) {
      std::fprintf(stderr, "rank 1: %s\n", e.what());
    }
  });
  try {
    rank_main(be, id, 0, ok);
  } catch (const plexus::error &e) {
    std::fprintf(stderr, "rank 0: %s\n", e.what());
  }
  peer.join();
  EXPECT(ok[0] == 1 && ok[1] == 1);
}

void errors_from_calls() {
  plexus::backend be("shm-native");
  plexus::comm c(be, be.unique_id(), 1, 0);
  float x[4] = {1, 2, 3, 4};
  try {
    c.broadcast(x, x, 4, 5);  // root 5 of 1 rank
    EXPECT(false);
  } catch (const plexus::error &e) {
    EXPECT(e.status() == PLX_ERR_INVALID_ARGUMENT);
    EXPECT(e.message().find("root") != std::string::npos);
  }
  plexus::comm moved = std::move(c);
  EXPECT(!c && moved);
  moved.all_reduce(x, x, 4, plexus::dtype::float32, plexus::reduce_op::sum);  // untyped
  EXPECT(x[3] == 4.0f);
  try {
    be.close();  // a communicator is still open
    EXPECT(false);
  } catch (const plexus::error &e) {
    EXPECT(e.status() == PLX_ERR_INVALID_USAGE);
  }
  moved.destroy();
  be.close();
  EXPECT(be.handle() == nullptr);
}

}  // namespace

int main() {
  bad_spec_throws();
  two_ranks();
  errors_from_calls();
  std::printf("plexus.hpp (C++%ld): %s\n", static_cast<long>(__cplusplus / 100 % 100),
              failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}

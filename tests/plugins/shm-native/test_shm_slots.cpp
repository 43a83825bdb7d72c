// shm-native's staging slots: they start at SLOT_MIN_BYTES, grow by 1.5x
// up to SLOT_BYTES when a collective needs more (a reduction from 8 KiB, 16
// KiB beyond 4 ranks: to SLOT_BYTES at once), with every rank growing at the same call; ranks that
// disagree on a parameter that decides it are refused; results stay exact
// across growth; a rank killed while its slots grow is noticed; nothing is
// left in /dev/shm. The size, growth count and NUMA placement are read from
// the backend's topology JSON.
#include <dirent.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "tests/plugins/shm-native/fork_ranks.hpp"

namespace {

using plexus::test::run_ranks_on_backend;

using plexus::test::expected_sum;
using plexus::test::random_floats;

// All-reduce of random data into a poisoned buffer, checked element by element.
int all_reduce_exact(plx_comm_h comm, int rank, int nranks, size_t n, uint32_t seed) {
  const std::vector<float> send = random_floats(n, seed + rank);
  std::vector<float> recv(n, -777.0f);
  if (plx_all_reduce(comm, send.data(), recv.data(), n, PLX_FLOAT32, PLX_SUM, nullptr, nullptr) != PLX_OK) return 1;
  return std::memcmp(recv.data(), expected_sum(n, nranks, seed).data(), n * sizeof(float)) == 0 ? 0 : 2;
}

std::string topology_json(plx_backend_h backend) {
  size_t needed = 0;
  if (plx_backend_topology(backend, nullptr, nullptr, 0, &needed) != PLX_OK) return {};
  std::string json(needed, '\0');
  if (plx_backend_topology(backend, nullptr, json.data(), json.size(), &needed) != PLX_OK) return {};
  json.resize(needed - 1);
  return json;
}

// The text of `key`'s value in the "staging" object ("null", "65536", "\"verified\"").
std::string staging_value(plx_backend_h backend, const std::string &key) {
  const std::string json = topology_json(backend);
  const size_t staging = json.find("\"staging\"");
  const size_t at = staging == std::string::npos ? staging : json.find("\"" + key + "\"", staging);
  if (at == std::string::npos) return "<missing>";
  size_t from = json.find(':', at) + 1;
  while (json[from] == ' ') ++from;
  return json.substr(from, json.find_first_of(",}", from) - from);
}

uint64_t staging_number(plx_backend_h backend, const std::string &key) {
  return std::strtoull(staging_value(backend, key).c_str(), nullptr, 10);
}

// Names in /dev/shm made by any of `pids` ("/plexus-<uid>-<pid>-...").
int shm_names_of(const std::vector<pid_t> &pids) {
  int n = 0;
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  while (dirent *e = readdir(d))
    for (pid_t pid : pids)
      n += std::strstr(e->d_name, ("-" + std::to_string(pid) + "-").c_str()) != nullptr;
  closedir(d);
  return n;
}

// This process's descriptors of slot segments (its own and its peers').
int slot_fds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  char link[256];
  while (dirent *e = readdir(d)) {
    const std::string path = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t len = readlink(path.c_str(), link, sizeof(link) - 1);
    n += len > 0 && std::strncmp(link, "/memfd:plexus-slots", 19) == 0;
  }
  closedir(d);
  return n;
}

// Sets PLEXUS_SHM_NATIVE_<name> for the backends opened while it lives.
struct ScopedParam {
  std::string name;
  ScopedParam(const char *param, const char *value) : name(std::string("PLEXUS_SHM_NATIVE_") + param) {
    setenv(name.c_str(), value, 1);
  }
  ~ScopedParam() { unsetenv(name.c_str()); }
};

constexpr size_t four_mib_floats = (4u << 20) / sizeof(float);

}  // namespace

TEST_CASE("plugins.shm_native.slots.start_small_and_grow_by_1_5_to_the_cap") {
  for (int nranks : {2, 3}) {
    CAPTURE(nranks);
    CHECK(run_ranks_on_backend(nranks, [&](plx_backend_h b, plx_comm_h c, int r) {
      if (staging_number(b, "slot_bytes") != 65536 || staging_number(b, "growths") != 0) return 10;
      if (staging_value(b, "growable") != "true") return 11;
      // A reduction below rotate_min_bytes (8 KiB) does not grow them.
      if (int e = all_reduce_exact(c, r, nranks, 2000, 50)) return 12 + e;
      if (staging_number(b, "slot_bytes") != 65536) return 15;
      // A 100000-byte broadcast: 64K -> 96K -> 144K.
      std::vector<int32_t> bytes(25000, r == 1 ? 7 : 0);
      if (plx_broadcast(c, bytes.data(), bytes.data(), bytes.size(), PLX_INT32, 1, nullptr, nullptr)) return 20;
      for (int32_t v : bytes)
        if (v != 7) return 21;
      if (staging_number(b, "slot_bytes") != 147456 || staging_number(b, "growths") != 1) return 30;
      // Reductions from 8 KiB rotate through the slots: they grow to the cap at once.
      if (int e = all_reduce_exact(c, r, nranks, 2048, 100)) return 40 + e;
      if (staging_number(b, "slot_bytes") != (1u << 20) || staging_number(b, "growths") != 2) return 50;
      if (int e = all_reduce_exact(c, r, nranks, four_mib_floats, 200)) return 55 + e;
      // At the cap: the next large one grows no more, small ones never shrink it.
      if (int e = all_reduce_exact(c, r, nranks, 2 * four_mib_floats, 300)) return 60 + e;
      if (int e = all_reduce_exact(c, r, nranks, 7, 400)) return 70 + e;
      return staging_number(b, "slot_bytes") == (1u << 20) && staging_number(b, "growths") == 2 ? 0 : 80;
    }) == 0);
  }
}

// ROTATE_MIN_BYTES "auto" (the default) rotates from 8 KiB up to 4 ranks
// (the case above) and from 16 KiB beyond: at 5 ranks an 8 KiB reduction
// leaves the slots small and a 16 KiB one takes them to the cap at once; a
// size set by hand holds at any rank count; a word that is neither is refused.
TEST_CASE("plugins.shm_native.slots.rotation_starts_by_rank_count") {
  const int nranks = 5;
  for (const char *value : {"", "auto", "8K"}) {
    const std::string shown = value;
    CAPTURE(shown);
    ScopedParam rotate("ROTATE_MIN_BYTES", value);
    if (*value == '\0') unsetenv(rotate.name.c_str());
    const uint64_t after_8k = std::strcmp(value, "8K") == 0 ? (1u << 20) : 65536;
    CHECK(run_ranks_on_backend(nranks, [&](plx_backend_h b, plx_comm_h c, int r) {
      if (int e = all_reduce_exact(c, r, nranks, 2048, 900)) return 10 + e;
      if (staging_number(b, "slot_bytes") != after_8k) return 20;
      if (int e = all_reduce_exact(c, r, nranks, 4096, 910)) return 30 + e;
      return staging_number(b, "slot_bytes") == (1u << 20) ? 0 : 40;
    }) == 0);
  }
  ScopedParam rotate("ROTATE_MIN_BYTES", "soon");
  plx_backend_h backend = nullptr;
  CHECK(plx_backend_open("shm-native", &backend) != PLX_OK);
  CHECK(std::strstr(plx_last_error(), "ROTATE_MIN_BYTES=soon") != nullptr);
}

TEST_CASE("plugins.shm_native.slots.every_collective_grows_its_slots") {
  ScopedParam cap("SLOT_BYTES", "256K"), min("SLOT_MIN_BYTES", "16K");
  const int nranks = 3;
  const size_t n = 150000;  // 600000 bytes of int32 a rank: beyond the cap
  for (int kind = 0; kind < 5; ++kind) {
    CAPTURE(kind);
    CHECK(run_ranks_on_backend(nranks, [&](plx_backend_h b, plx_comm_h c, int r) {
      if (staging_number(b, "slot_bytes") != 16384) return 10;
      std::vector<int32_t> in(n * nranks), out(n * nranks, -1);
      for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int32_t>(i * 3 + r);
      plx_status s = PLX_OK;
      bool ok = true;
      if (kind == 0) {
        s = plx_broadcast(c, in.data(), out.data(), n, PLX_INT32, 2, nullptr, nullptr);
        for (size_t i = 0; i < n; ++i) ok = ok && out[i] == static_cast<int32_t>(i * 3 + 2);
      } else if (kind == 1) {
        s = plx_all_gather(c, in.data(), out.data(), n, PLX_INT32, nullptr, nullptr);
        for (size_t i = 0; i < n * nranks; ++i) ok = ok && out[i] == static_cast<int32_t>(i % n * 3 + i / n);
      } else if (kind == 2) {
        s = plx_gather(c, in.data(), out.data(), n, nullptr, PLX_INT32, 1, nullptr, nullptr);
        for (size_t i = 0; r == 1 && i < n * nranks; ++i) ok = ok && out[i] == static_cast<int32_t>(i % n * 3 + i / n);
      } else if (kind == 3) {
        s = plx_reduce_scatter(c, in.data(), out.data(), n, PLX_INT32, PLX_SUM, nullptr, nullptr);
        for (size_t i = 0; i < n; ++i) ok = ok && out[i] == static_cast<int32_t>((r * n + i) * 9 + 3);
      } else {
        s = plx_reduce(c, in.data(), out.data(), n, PLX_INT32, PLX_MAX, 0, nullptr, nullptr);
        for (size_t i = 0; r == 0 && i < n; ++i) ok = ok && out[i] == static_cast<int32_t>(i * 3 + 2);
      }
      if (s != PLX_OK) return 20;
      if (!ok) return 30;
      return staging_number(b, "slot_bytes") == 262144 && staging_number(b, "growths") == 1 ? 0 : 40;
    }) == 0);
  }
}

TEST_CASE("plugins.shm_native.slots.threads_as_ranks_grow_together") {
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  plx_unique_id id;
  REQUIRE(plx_get_unique_id(backend, &id) == PLX_OK);
  const int nranks = 3;
  std::vector<int> results(nranks, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      plx_comm_h comm = nullptr;
      if (plx_comm_init(backend, &id, nranks, r, nullptr, &comm)) return;
      results[r] = all_reduce_exact(comm, r, nranks, four_mib_floats, 500) * 10 +
                   all_reduce_exact(comm, r, nranks, 1000, 600);
      plx_comm_destroy(comm);
    });
  for (auto &t : threads) t.join();
  CHECK(results == std::vector<int>{0, 0, 0});
  CHECK(staging_number(backend, "slot_bytes") == (1u << 20));
  CHECK(staging_number(backend, "growths") == 3);  // one per rank, recorded by the shared backend
  CHECK(plx_backend_close(backend) == PLX_OK);
}

// The only collective of each communicator grows the slots, and a rank that
// is done with it destroys the communicator and exits at once: a slower
// peer must still have mapped its new segment (finish_growth waits for
// every peer's mapping before the step goes on). 20 communicators, as the
// race needs a fast rank.
TEST_CASE("plugins.shm_native.slots.a_last_collective_that_grows_the_slots") {
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    CHECK(run_ranks_on_backend(3, [&](plx_backend_h, plx_comm_h c, int r) {
      return all_reduce_exact(c, r, 3, 4096 + static_cast<size_t>(round), 2000 + static_cast<uint32_t>(round));
    }) == 0);
  }
}

// Rank 1 kills itself as soon as it holds a second slot segment of its own,
// i.e. while its slots grow; the survivors must fail, never hang.
TEST_CASE("plugins.shm_native.slots.rank_killed_while_growing_is_lost_not_hung") {
  const int nranks = 3, timeout_ms = 3000;
  std::vector<pid_t> pids;
  const int failed = run_ranks_on_backend(nranks, [&](plx_backend_h, plx_comm_h c, int r) {
    if (r == 1) {
      const int at_init = slot_fds();
      std::thread([at_init] {
        while (slot_fds() <= at_init) std::this_thread::yield();
        raise(SIGKILL);
      }).detach();
    }
    const auto start = std::chrono::steady_clock::now();
    for (int call = 0; call < (r == 1 ? 3 : 4); ++call) {
      std::vector<float> buf(four_mib_floats, 1.0f);
      const plx_status s = plx_all_reduce(c, buf.data(), buf.data(), buf.size(), PLX_FLOAT32, PLX_SUM, nullptr, nullptr);
      if (s == PLX_OK) {
        if (buf[0] != 3.0f || buf.back() != 3.0f) return 1;
        continue;
      }
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > std::chrono::milliseconds(timeout_ms + 2000)) return 2;
      return s == PLX_ERR_PEER_LOST || s == PLX_ERR_TIMEOUT ? 0 : 3;
    }
    if (r == 1) raise(SIGKILL);
    return 4;  // a survivor never noticed
  }, timeout_ms, &pids);
  CHECK(failed == 1);  // rank 1 itself
  pids.push_back(getpid());
  CHECK(shm_names_of(pids) == 0);
}

TEST_CASE("plugins.shm_native.slots.numa_placement_is_reported") {
  CHECK(run_ranks_on_backend(2, [](plx_backend_h b, plx_comm_h c, int r) {
    const std::string placement = staging_value(b, "placement");
    if (placement != "\"verified\"" && placement != "\"not verified\"" && placement != "\"elsewhere\"") return 1;
    const std::string placed = staging_value(b, "placed_node");
    if (placement == "\"verified\"" && placed != staging_value(b, "numa_node")) return 2;
    if (placement == "\"not verified\"" && placed != "null") return 3;
    return all_reduce_exact(c, r, 2, 300000, 700) ? 4 : 0;
  }) == 0);
  plx_backend_h backend = nullptr;
  REQUIRE(plx_backend_open("shm-native", &backend) == PLX_OK);
  CHECK(staging_value(backend, "placement") == "\"no communicator yet\"");
  CHECK(staging_value(backend, "slot_bytes") == "null");
  CHECK(plx_backend_close(backend) == PLX_OK);
}

TEST_CASE("plugins.shm_native.slots.bad_sizes_are_refused") {
  for (const char *bad : {"100", "1000", "2G", "lots"}) {
    CAPTURE(bad);
    ScopedParam min("SLOT_MIN_BYTES", bad);
    plx_backend_h backend = nullptr;
    CHECK(plx_backend_open("shm-native", &backend) != PLX_OK);
    CHECK(std::strstr(plx_last_error(), "SLOT_MIN_BYTES") != nullptr);
  }
  ScopedParam min("SLOT_MIN_BYTES", "4M");  // above the cap: slots start at the cap
  CHECK(run_ranks_on_backend(2, [](plx_backend_h b, plx_comm_h c, int r) {
    if (staging_number(b, "slot_bytes") != (1u << 20)) return 1;
    return all_reduce_exact(c, r, 2, four_mib_floats, 800) || staging_number(b, "growths") != 0 ? 2 : 0;
  }) == 0);
}

// One rank opens its backend with another value of a parameter that every
// rank must share (each decides alone when slots grow, which algorithm and
// slot region a call takes, whether LL lines are mapped): every rank's init
// refuses the communicator and names the variable.
TEST_CASE("plugins.shm_native.slots.ranks_that_disagree_on_a_shared_parameter_are_refused") {
  for (const auto &entry : {std::pair{"SLOT_MIN_BYTES", "128K"}, std::pair{"SLOT_BYTES", "2M"},
                            std::pair{"ONESHOT_MAX_BYTES", "16K"}, std::pair{"ROTATE_MIN_BYTES", "2K"},
                            std::pair{"LL_MAX_BYTES", "4K"}, std::pair{"READ_IN_PLACE", "0"}}) {
    const char *name = entry.first, *value = entry.second;  // not bindings: CAPTURE and the lambda take them
    CAPTURE(name);
    const std::string variable = std::string("PLEXUS_SHM_NATIVE_") + name;
    auto setup = [&](int r) { if (r == 2) setenv(variable.c_str(), value, 1); };
    CHECK(plexus::test::ranks_refused_at_init(3, setup, variable.c_str()) == 3);
  }
}

std::string own_executable() {
  char path[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

// Non-dumpable ranks cannot open each other's /proc/<pid>/fd (root could,
// so the ranks run as nobody): the slots cannot grow and start at the cap,
// in named segments removed once mapped.
TEST_CASE("plugins.shm_native.slots.without_proc_access_slots_start_at_the_cap") {
  const std::string exe = own_executable();
  const pid_t child = fork();
  if (child == 0) {
    int code = 77;
    try {
      if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
      // A build under a root-only directory (mktemp -d's) hides the plugins from nobody.
      if (access(exe.c_str(), R_OK) != 0) _exit(77);
      std::vector<pid_t> pids;
      code = run_ranks_on_backend(2, [](plx_backend_h b, plx_comm_h c, int r) {
        if (staging_value(b, "growable") != "false" || staging_number(b, "slot_bytes") != (1u << 20)) return 1;
        if (all_reduce_exact(c, r, 2, four_mib_floats, 900) || all_reduce_exact(c, r, 2, 100, 901)) return 2;
        return staging_number(b, "growths") == 0 ? 0 : 3;
      }, 10000, &pids, [](int) { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); });
      pids.push_back(getpid());
      if (code == 0 && shm_names_of(pids) != 0) code = 4;
    } catch (...) {
      code = 99;
    }
    _exit(code);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) MESSAGE("skipped: cannot run the ranks as another user (or it cannot read ", exe, ")");
  else CHECK(WEXITSTATUS(status) == 0);
}

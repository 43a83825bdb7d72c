// Unique ids (loader/unique_id.hpp, PLX-L-12) and the shm-native rendezvous
// they lead to, on corrupted and forged ids. Promises:
//  - the loader's check accepts only an intact id of the backend's plugin,
//    and a sealed id with any one byte changed is PLX_ERR_INVALID_ARGUMENT;
//  - plx_comm_init on a forged id (intact header, payload of the fuzzer's
//    choosing) returns a status plexus.h documents, never crashes;
//  - a forged id naming the segment of another job (a child process waiting
//    in its rendezvous) or of another user never attaches, and leaves that
//    segment where it was.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <fuzzer/FuzzedDataProvider.h>

#include "core/rendezvous.hpp"
#include "core/status.hpp"
#include "fuzz_check.hpp"
#include "loader/unique_id.hpp"
#include "plexus/plexus.h"

using plexus::fuzz::one_of;

namespace {

constexpr const char *kPlugin = "shm-native";

struct World {
  plx_backend_h backend = nullptr;
  std::string job_segment;   // another job's rendezvous, held by a child process
  uint64_t job_nonce = 0;    // its secret: only the job's ranks hold it
  std::string user_segment;  // a segment that is not private to this user
  pid_t job_pid = -1;
};
World world;

void clean_up() {
  if (world.job_pid > 0) {
    ::kill(world.job_pid, SIGKILL);
    ::waitpid(world.job_pid, nullptr, 0);
  }
  ::shm_unlink(world.job_segment.c_str());  // the killed child never unlinked it
  ::shm_unlink(world.user_segment.c_str());
}

bool segment_exists(const std::string &name) {
  struct stat st {};
  return ::stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// The child's copies of both names' paths, for its signal handler.
char leftover_paths[2][160];

void unlink_leftovers_and_exit(int) {
  for (const char *path : leftover_paths) ::unlink(path);  // async-signal-safe
  ::_exit(0);
}

// libFuzzer leaves by _Exit on a finding or a timeout, so clean_up (atexit)
// does not run and nothing would unlink the two names: the child does it
// when its parent-death signal comes.
void unlink_when_the_fuzzer_dies(pid_t fuzzer) {
  std::snprintf(leftover_paths[0], sizeof(leftover_paths[0]), "/dev/shm%s", world.job_segment.c_str());
  std::snprintf(leftover_paths[1], sizeof(leftover_paths[1]), "/dev/shm%s", world.user_segment.c_str());
  struct sigaction action {};
  action.sa_handler = unlink_leftovers_and_exit;
  ::sigaction(SIGTERM, &action, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != fuzzer) unlink_leftovers_and_exit(0);  // it died before prctl
}

// A child joins a 2-rank communicator as rank 0 and waits for rank 1 forever.
void start_other_job() {
  plx_unique_id id;
  if (plx_get_unique_id(world.backend, &id) != PLX_OK) std::abort();
  plexus::core::RendezvousId rid;
  std::memcpy(&rid, plexus::loader::unique_id_payload(&id), sizeof(rid));
  world.job_segment = rid.name;
  world.job_nonce = rid.nonce;
  const pid_t fuzzer = ::getpid();
  world.job_pid = ::fork();
  if (world.job_pid == 0) {
    unlink_when_the_fuzzer_dies(fuzzer);
    plx_comm_config config = PLX_COMM_CONFIG_INIT;
    config.init_timeout_ms = -1;
    plx_comm_h comm = nullptr;
    plx_comm_init(world.backend, &id, 2, 0, &config, &comm);
    for (;;) ::pause();  // only reached when the rendezvous failed: still the one to unlink the names
  }
  for (int i = 0; i < 1000 && !segment_exists(world.job_segment); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its header is published
  if (!segment_exists(world.job_segment)) std::abort();
}

// Root may open anything, so the segment belongs to nobody; anyone else
// makes it readable by the group, which plexus refuses as well.
void make_user_segment() {
  world.user_segment = "/plexus-fuzz-user-" + std::to_string(::getpid());
  const int fd = ::shm_open(world.user_segment.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0 || ::ftruncate(fd, 1 << 20) != 0) std::abort();
  if (::geteuid() == 0 ? ::fchown(fd, 65534, 65534) != 0 : ::fchmod(fd, 0640) != 0) std::abort();
  ::close(fd);
}

plx_status init(const plx_unique_id &id, int32_t nranks, int32_t rank) {
  plx_comm_config config = PLX_COMM_CONFIG_INIT;
  config.init_timeout_ms = 1;
  config.timeout_ms = 1000;
  plx_comm_h comm = nullptr;
  const plx_status s = plx_comm_init(world.backend, &id, nranks, rank, &config, &comm);
  FUZZ_EXPECT(one_of(s, {PLX_OK, PLX_ERR_INVALID_ARGUMENT, PLX_ERR_TIMEOUT, PLX_ERR_INVALID_USAGE,
                         PLX_ERR_SYSTEM, PLX_ERR_OUT_OF_MEMORY, PLX_ERR_UNSUPPORTED}),
              "plx_comm_init returned an undocumented status", s, plx_last_error());
  FUZZ_EXPECT(s == PLX_OK || *plx_last_error() != '\0', "an error without a message", s, nullptr);
  if (s == PLX_OK) plx_comm_destroy(comm);
  return s;
}

plx_unique_id sealed(FuzzedDataProvider &in, const char *plugin) {
  plx_unique_id id{};
  const auto payload = in.ConsumeBytes<uint8_t>(PLX_UNIQUE_ID_PAYLOAD_BYTES);
  if (!payload.empty()) std::memcpy(plexus::loader::unique_id_payload(&id), payload.data(), payload.size());
  plexus::loader::seal_unique_id(&id, plugin);
  return id;
}

// Raw bytes: the loader accepts them only when they are exactly an id
// sealed for this plugin.
void raw_id(FuzzedDataProvider &in) {
  plx_unique_id id{};
  const auto bytes = in.ConsumeBytes<uint8_t>(PLX_UNIQUE_ID_BYTES);
  if (!bytes.empty()) std::memcpy(id.bytes, bytes.data(), bytes.size());
  const plx_status s = plexus::loader::check_unique_id("fuzz", &id, kPlugin);
  plx_unique_id resealed = id;
  plexus::loader::seal_unique_id(&resealed, kPlugin);
  const bool intact = std::memcmp(&resealed, &id, sizeof(id)) == 0;
  FUZZ_EXPECT(s == (intact ? PLX_OK : PLX_ERR_INVALID_ARGUMENT), "check_unique_id misjudged an id", s,
              plexus::core::last_message().c_str());
  if (!intact) FUZZ_EXPECT(init(id, 1, 0) == PLX_ERR_INVALID_ARGUMENT, "plx_comm_init took a bad id", -1, nullptr);
}

// A sealed id with one byte changed: corrupted, whichever byte it is.
void corrupted_id(FuzzedDataProvider &in) {
  const bool ours = in.ConsumeBool();
  const std::string plugin = ours ? kPlugin : in.ConsumeRandomLengthString(40);
  const size_t at = in.ConsumeIntegralInRange<size_t>(0, PLX_UNIQUE_ID_BYTES - 1);
  const uint8_t flip = in.ConsumeIntegralInRange<uint8_t>(1, 255);
  plx_unique_id id = sealed(in, plugin.c_str());
  id.bytes[at] ^= flip;
  const plx_status s = plexus::loader::check_unique_id("fuzz", &id, kPlugin);
  FUZZ_EXPECT(s == PLX_ERR_INVALID_ARGUMENT, "a corrupted id passed the check", s,
              plexus::core::last_message().c_str());
  FUZZ_EXPECT(init(id, 1, 0) == PLX_ERR_INVALID_ARGUMENT, "plx_comm_init took a corrupted id", -1, nullptr);
}

// An intact header around the fuzzer's payload, optionally naming the other
// job's or user's segment with a guessed nonce.
void forged_id(FuzzedDataProvider &in) {
  const int target = in.ConsumeIntegralInRange<int>(0, 2);
  const int32_t nranks = in.ConsumeIntegralInRange<int32_t>(1, 4);
  const int32_t rank = in.ConsumeIntegralInRange<int32_t>(0, nranks - 1);
  plx_unique_id id = sealed(in, kPlugin);
  if (target == 0) {
    init(id, nranks, rank);
    return;
  }
  const std::string &name = target == 1 ? world.job_segment : world.user_segment;
  plexus::core::RendezvousId rid;
  std::memcpy(&rid, plexus::loader::unique_id_payload(&id), sizeof(rid));
  std::memset(rid.name, 0, sizeof(rid.name));
  std::memcpy(rid.name, name.data(), name.size());
  // The job's own nonce makes the id the job's: a holder of it is one of its
  // ranks, whose mismatched call fails the job (and removes its segment).
  // 64 random bits cannot be guessed, but the fuzzer reads them off the
  // comparison (libFuzzer's CMP tracing), so a forged id never carries them.
  if (target == 1 && rid.nonce == world.job_nonce) rid.nonce ^= 1;
  std::memcpy(plexus::loader::unique_id_payload(&id), &rid, sizeof(rid));
  plexus::loader::seal_unique_id(&id, kPlugin);
  const plx_status s = init(id, nranks, rank);
  FUZZ_EXPECT(s == (target == 1 ? PLX_ERR_INVALID_USAGE : PLX_ERR_INVALID_ARGUMENT),
              "a forged id reached another job's or user's segment", s, plx_last_error());
  FUZZ_EXPECT(segment_exists(name), "a forged id removed another job's or user's segment", s, nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  ::setenv("PLEXUS_LOG_LEVEL", "error", 0);
  if (plx_backend_open(kPlugin, &world.backend) != PLX_OK) {
    std::fprintf(stderr, "fuzz: cannot open %s: %s\n", kPlugin, plx_last_error());
    std::abort();
  }
  make_user_segment();  // first: the job's child must know its name
  start_other_job();
  std::atexit(clean_up);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: raw_id(in); break;
    case 1: corrupted_id(in); break;
    default: forged_id(in); break;
  }
  return 0;
}

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "core/random.hpp"
#include "core/shm_segment.hpp"
#include "core/status.hpp"

using namespace plexus::core;

namespace {

bool name_exists(const std::string &name) { return std::filesystem::exists("/dev/shm" + name); }

// Names this process made: "/plexus-<uid>-<pid>-...".
int names_of_this_process() {
  const std::string prefix =
      "plexus-" + std::to_string(::geteuid()) + "-" + std::to_string(::getpid()) + "-";
  int count = 0;
  for (const auto &entry : std::filesystem::directory_iterator("/dev/shm"))
    count += entry.path().filename().string().rfind(prefix, 0) == 0;
  return count;
}

// A segment made behind ShmSegment's back, with the mode given.
std::string make_raw_segment(mode_t mode, size_t bytes) {
  const std::string name = ShmSegment::make_name("raw");
  const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::fchmod(fd, mode) == 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
  ::close(fd);
  return name;
}

}  // namespace

TEST_CASE("Core.Random.hex_has_the_length_asked_and_differs") {
  const std::string a = random_hex(16), b = random_hex(16);
  CHECK(a.size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
  CHECK(random_hex(0).empty());
}

TEST_CASE("Core.ShmSegment.create_open_unlink_round_trip") {
  const std::string name = ShmSegment::make_name("roundtrip");
  ShmSegment creator, opener;
  REQUIRE(ShmSegment::create(name, 10000, &creator) == PLX_OK);
  CHECK(creator.size() == 10000);
  CHECK(creator.name() == name);
  std::strcpy(static_cast<char *>(creator.data()), "hello");
  REQUIRE(ShmSegment::open(name, 10000, &opener) == PLX_OK);
  CHECK(opener.data() != creator.data());
  CHECK(std::string(static_cast<char *>(opener.data())) == "hello");
  CHECK(creator.unlink() == PLX_OK);
  CHECK_FALSE(name_exists(name));
  CHECK(creator.unlink() == PLX_OK);            // idempotent
  static_cast<char *>(opener.data())[0] = 'j';  // mappings outlive the name
  CHECK(std::string(static_cast<char *>(creator.data())) == "jello");
}

TEST_CASE("Core.ShmSegment.cross_process_round_trip") {
  const std::string name = ShmSegment::make_name("fork");
  ShmSegment creator;
  REQUIRE(ShmSegment::create(name, 4096, &creator) == PLX_OK);
  auto *words = static_cast<volatile int *>(creator.data());
  words[0] = 4711;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No doctest assertions here: report through the exit code only.
    ShmSegment opener;
    if (ShmSegment::open(name, 4096, &opener) != PLX_OK) _exit(2);
    auto *seen = static_cast<volatile int *>(opener.data());
    if (seen[0] != 4711) _exit(3);
    seen[1] = 1174;
    _exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(words[1] == 1174);
}

TEST_CASE("Core.ShmSegment.create_twice_fails") {
  const std::string name = ShmSegment::make_name("twice");
  ShmSegment first, second;
  REQUIRE(ShmSegment::create(name, 4096, &first) == PLX_OK);
  CHECK(ShmSegment::create(name, 4096, &second) == PLX_ERR_SYSTEM);
  CHECK(default_last_error().find(name) != std::string::npos);
  CHECK(default_last_error().find("File exists") != std::string::npos);
  CHECK_FALSE(second.valid());
  CHECK(name_exists(name));  // the failed create left the first alone
}

TEST_CASE("Core.ShmSegment.open_rejects_a_segment_others_can_read") {
  const std::string name = make_raw_segment(0644, 4096);
  ShmSegment segment;
  CHECK(ShmSegment::open(name, 4096, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error().find("mode 0644") != std::string::npos);
  CHECK(default_last_error().find(name) != std::string::npos);
  CHECK_FALSE(segment.valid());
  ::shm_unlink(name.c_str());
}

TEST_CASE("Core.ShmSegment.open_rejects_a_segment_of_another_user") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: giving a segment to another user needs root");
    return;
  }
  const std::string name = make_raw_segment(0600, 4096);
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::fchown(fd, 65534, 65534) == 0);  // nobody
  ::close(fd);
  ShmSegment segment;
  CHECK(ShmSegment::open(name, 4096, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error().find("owned by uid 65534") != std::string::npos);
  CHECK_FALSE(segment.valid());
  ::shm_unlink(name.c_str());
}

// Created 0600 whatever the umask: a umask only takes bits away, and the
// mode plexus asks for has none for group or others.
TEST_CASE("Core.ShmSegment.created_segments_are_private_whatever_the_umask") {
  const mode_t old = ::umask(0);
  ShmSegment segment;
  const plx_status s = ShmSegment::create(ShmSegment::make_name("mode"), 4096, &segment);
  ::umask(old);
  REQUIRE(s == PLX_OK);
  struct stat st {};
  REQUIRE(::fstat(segment.fd(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_uid == ::geteuid());
}

TEST_CASE("Core.ShmSegment.open_rejects_a_small_segment") {
  const std::string name = make_raw_segment(0600, 100);
  ShmSegment segment;
  CHECK(ShmSegment::open(name, 4096, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(default_last_error().find("has 100 bytes, expected at least 4096") != std::string::npos);
  ::shm_unlink(name.c_str());
}

TEST_CASE("Core.ShmSegment.open_of_a_missing_name_is_not_found") {
  const std::string name = ShmSegment::make_name("missing");
  ShmSegment segment;
  CHECK(ShmSegment::open(name, 1, &segment) == PLX_ERR_NOT_FOUND);
  CHECK(default_last_error() == "shared memory segment " + name + " does not exist");
}

TEST_CASE("Core.ShmSegment.no_space_fails_at_create") {
  struct statvfs fs {};
  REQUIRE(::statvfs("/dev/shm", &fs) == 0);
  // Only a size-limited tmpfs refuses up front; an unlimited one would try.
  if (fs.f_blocks == 0) return;
  const size_t too_big = 2 * static_cast<size_t>(fs.f_blocks) * fs.f_frsize;
  const std::string name = ShmSegment::make_name("huge");
  ShmSegment segment;
  CHECK(ShmSegment::create(name, too_big, &segment) == PLX_ERR_OUT_OF_MEMORY);
  CHECK(default_last_error().find(name) != std::string::npos);
  CHECK_FALSE(name_exists(name));
}

TEST_CASE("Core.ShmSegment.memfd_beyond_physical_memory_fails_at_once") {
  // A memfd has no size limit of its own: without the check this would fill
  // the machine's memory (found by fuzzing plx_mem_alloc).
  ShmSegment segment;
  CHECK(ShmSegment::create_memfd("huge", size_t{1} << 50, &segment) == PLX_ERR_OUT_OF_MEMORY);
  CHECK(default_last_error().find("more than the machine's") != std::string::npos);
}

TEST_CASE("Core.ShmSegment.bad_names_and_sizes_are_rejected") {
  ShmSegment segment;
  CHECK(ShmSegment::create("no-slash", 4096, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(ShmSegment::create("/a/b", 4096, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(ShmSegment::create("/" + std::string(300, 'x'), 4096, &segment) ==
        PLX_ERR_INVALID_ARGUMENT);
  const std::string name = ShmSegment::make_name("empty");
  CHECK(ShmSegment::create(name, 0, &segment) == PLX_ERR_INVALID_ARGUMENT);
  CHECK_FALSE(name_exists(name));
}

TEST_CASE("Core.ShmSegment.destroy_leaves_no_name") {
  const int before = names_of_this_process();
  std::string name;
  {
    ShmSegment creator, opener;
    name = ShmSegment::make_name("leak");
    REQUIRE(ShmSegment::create(name, 1 << 20, &creator) == PLX_OK);
    REQUIRE(ShmSegment::open(name, 1, &opener) == PLX_OK);
    { ShmSegment dropped = std::move(opener); }  // an opener never unlinks
    CHECK(name_exists(name));
  }
  CHECK_FALSE(name_exists(name));
  CHECK(names_of_this_process() == before);
}

TEST_CASE("Core.ShmSegment.move_transfers_the_mapping") {
  ShmSegment a;
  REQUIRE(ShmSegment::create(ShmSegment::make_name("move"), 4096, &a) == PLX_OK);
  void *data = a.data();
  ShmSegment b(std::move(a));
  CHECK_FALSE(a.valid());
  CHECK(b.data() == data);
  a = std::move(b);
  CHECK(a.data() == data);
  CHECK(a.size() == 4096);
}

TEST_CASE("Core.ShmSegment.open_or_create_creates_once") {
  const std::string name = ShmSegment::make_name("either");
  ShmSegment first, second;
  bool created = false;
  REQUIRE(ShmSegment::open_or_create(name, 8192, 64, &first, &created) == PLX_OK);
  CHECK(created);
  REQUIRE(ShmSegment::open_or_create(name, 8192, 64, &second, &created) == PLX_OK);
  CHECK_FALSE(created);
  CHECK(second.size() == 8192);
  const std::string small = make_raw_segment(0600, 0);  // a creator that has not sized it yet
  ShmSegment pending;
  CHECK(ShmSegment::open_or_create(small, 8192, 64, &pending, &created) == PLX_IN_PROGRESS);
  ::shm_unlink(small.c_str());
}

TEST_CASE("Core.ShmSegment.memfd_maps_again_from_its_fd") {
  ShmSegment anonymous, again;
  REQUIRE(ShmSegment::create_memfd("plexus-test", 4096, &anonymous) == PLX_OK);
  CHECK(anonymous.name().empty());
  CHECK(anonymous.unlink() == PLX_OK);
  static_cast<int *>(anonymous.data())[7] = 42;
  REQUIRE(ShmSegment::from_fd(anonymous.fd(), 4096, &again) == PLX_OK);
  CHECK(again.fd() != anonymous.fd());
  CHECK(static_cast<int *>(again.data())[7] == 42);
  CHECK(ShmSegment::from_fd(anonymous.fd(), 8192, &again) == PLX_ERR_INVALID_ARGUMENT);
  CHECK(again.valid());  // a failed call leaves *out as it was
}

TEST_CASE("Core.ShmSegment.names_are_unique_and_greppable") {
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = ShmSegment::make_name("unique/purpose with spaces");
    CHECK(name.rfind("/plexus-", 0) == 0);
    CHECK(name.size() < 250);
    CHECK(name.find('/', 1) == std::string::npos);
    CHECK(name.find(' ') == std::string::npos);
    names.insert(name);
  }
  CHECK(names.size() == 1000);
  CHECK(ShmSegment::make_name(std::string(1000, 'p')).size() < 250);
}

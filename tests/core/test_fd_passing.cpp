#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/fd_passing.hpp"
#include "core/services.hpp"

using namespace plexus::core;

namespace {

constexpr char kText[] = "plexus fd passing: the same bytes on both sides";

// A memfd holding kText.
int memfd_with_text() {
  const int fd = memfd_create("plexus-test-fd-passing", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, kText, sizeof kText) == static_cast<ssize_t>(sizeof kText));
  return fd;
}

// Whether `fd` holds kText from offset 0 (a duplicate shares the offset, so
// pread, not read).
bool holds_text(int fd) {
  char got[sizeof kText] = {};
  return pread(fd, got, sizeof got, 0) == static_cast<ssize_t>(sizeof got) && std::memcmp(got, kText, sizeof got) == 0;
}

int wait_exit_code(pid_t child) {
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// The child (no doctest in it): receives the fd and a payload, checks both.
[[noreturn]] void receive_and_check(int socket) {
  int fd = -1;
  uint64_t payload = 0;
  if (receive_fd(socket, &fd, &payload, sizeof payload, 10000) != PLX_OK) _exit(2);
  _exit(payload == 0x1234567890abcdefull && holds_text(fd) ? 0 : 3);
}

}  // namespace

TEST_CASE("core.fd_passing.memfd_reaches_a_forked_child") {
  int parent_end = -1, child_end = -1;
  REQUIRE(fd_socket_pair(&parent_end, &child_end) == PLX_OK);
  const int fd = memfd_with_text();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(parent_end);
    receive_and_check(child_end);
  }
  close(child_end);
  const uint64_t payload = 0x1234567890abcdefull;
  CHECK(send_fd(parent_end, fd, &payload, sizeof payload) == PLX_OK);
  CHECK(wait_exit_code(child) == 0);
  close(fd);
  close(parent_end);
}

TEST_CASE("core.fd_passing.child_sends_back_through_an_abstract_socket") {
  const std::string name = "plexus-test-fd-" + std::to_string(getpid());
  int listener = -1;
  REQUIRE(fd_listen(name, &listener) == PLX_OK);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(listener);
    int socket = -1;
    if (fd_connect(name, 10000, &socket) != PLX_OK) _exit(2);
    const int fd = memfd_with_text();
    _exit(send_fd(socket, fd, nullptr, 0) == PLX_OK ? 0 : 3);
  }
  int socket = -1;
  REQUIRE(fd_accept(listener, 10000, &socket) == PLX_OK);
  int fd = -1;
  CHECK(receive_fd(socket, &fd, nullptr, 0, 10000) == PLX_OK);
  CHECK(holds_text(fd));
  CHECK(wait_exit_code(child) == 0);
  close(fd);
  close(socket);
  close(listener);
}

TEST_CASE("core.fd_passing.errors_are_reported_not_crashed") {
  int a = -1, b = -1;
  REQUIRE(fd_socket_pair(&a, &b) == PLX_OK);
  int fd = 7;
  CHECK(receive_fd(a, &fd, nullptr, 0, 20) == PLX_ERR_TIMEOUT);
  CHECK(fd == -1);
  CHECK(send_fd(a, -1, nullptr, 0) == PLX_ERR_INVALID_ARGUMENT);
  const char plain = 'x';
  REQUIRE(write(b, &plain, 1) == 1);  // a message without a descriptor
  CHECK(receive_fd(a, &fd, nullptr, 0, 1000) == PLX_ERR_REMOTE);
  close(b);
  CHECK(receive_fd(a, &fd, nullptr, 0, 1000) == PLX_ERR_PEER_LOST);
  close(a);
  int socket = -1;
  CHECK(fd_connect("plexus-test-nobody-listens-here", 30, &socket) == PLX_ERR_TIMEOUT);
  CHECK(fd_listen(std::string(200, 'n'), &socket) == PLX_ERR_INVALID_ARGUMENT);
}
